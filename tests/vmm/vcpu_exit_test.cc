#include "vmm/vcpu_exit.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace mote {
namespace {

// Keeps every access: offset, and the bytes written (or read back).
class RecordingDevice : public BusDevice {
 public:
  void Read(uint64_t offset, absl::Span<uint8_t> data) override {
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(0xa0 + i);
    reads.push_back(offset);
  }
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override {
    writes.push_back({offset, std::vector<uint8_t>(data.begin(), data.end())});
  }
  std::vector<uint64_t> reads;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> writes;
};

// A kvm_run page as KVM maps it: port I/O data lives inside the page, after
// the structure, at io.data_offset.
struct Exit {
  Exit() : page(std::make_unique<uint64_t[]>(kPageSize / 8)) {}
  kvm_run& run() { return *reinterpret_cast<kvm_run*>(page.get()); }
  uint8_t* io_data() { return reinterpret_cast<uint8_t*>(page.get()) + kIoDataOffset; }

  static constexpr size_t kPageSize = 4096, kIoDataOffset = 2048;
  std::unique_ptr<uint64_t[]> page;  // zeroed, and aligned for kvm_run
};

struct Fixture {
  Fixture() {
    REQUIRE(pio.Insert(port_device, 0x3f8, 8).ok());
    REQUIRE(mmio.Insert(mmio_device, 0xd0000000, 0x1000).ok());
  }
  std::optional<VmOutcome> Dispatch(kvm_run& run) {
    return DispatchExit(run, 3, pio, mmio, [this] {
      ++describes;
      return std::string("RIP=0x1234");
    });
  }
  Bus pio{"pio"}, mmio{"mmio"};
  std::shared_ptr<RecordingDevice> port_device = std::make_shared<RecordingDevice>();
  std::shared_ptr<RecordingDevice> mmio_device = std::make_shared<RecordingDevice>();
  int describes = 0;
};

TEST_CASE("DispatchExit: port output, string I/O as back-to-back accesses", "[vcpu_exit]") {
  Fixture f;
  Exit e;
  e.run().exit_reason = KVM_EXIT_IO;
  e.run().io = {KVM_EXIT_IO_OUT, 1, 0x3f9, 3, Exit::kIoDataOffset};
  std::memcpy(e.io_data(), "abc", 3);
  CHECK_FALSE(f.Dispatch(e.run()));
  REQUIRE(f.port_device->writes.size() == 3);
  CHECK(f.port_device->writes[0] == std::make_pair(uint64_t{1}, std::vector<uint8_t>{'a'}));
  CHECK(f.port_device->writes[2] == std::make_pair(uint64_t{1}, std::vector<uint8_t>{'c'}));
  CHECK(f.describes == 0);
}

TEST_CASE("DispatchExit: port input lands in the page; unmapped ports read all-ones",
          "[vcpu_exit]") {
  Fixture f;
  Exit e;
  e.run().exit_reason = KVM_EXIT_IO;
  e.run().io = {KVM_EXIT_IO_IN, 2, 0x3f8, 1, Exit::kIoDataOffset};
  CHECK_FALSE(f.Dispatch(e.run()));
  CHECK(f.port_device->reads == std::vector<uint64_t>{0});
  CHECK(e.io_data()[0] == 0xa0);
  CHECK(e.io_data()[1] == 0xa1);
  e.run().io = {KVM_EXIT_IO_IN, 4, 0x80, 1, Exit::kIoDataOffset};
  CHECK_FALSE(f.Dispatch(e.run()));
  CHECK(e.io_data()[3] == 0xff);
  CHECK(f.pio.unmapped_reads() == 1);
}

TEST_CASE("DispatchExit: MMIO reads and writes reach the device at its offset", "[vcpu_exit]") {
  Fixture f;
  Exit e;
  e.run().exit_reason = KVM_EXIT_MMIO;
  e.run().mmio.phys_addr = 0xd0000010;
  e.run().mmio.len = 4;
  e.run().mmio.is_write = 1;
  std::memcpy(e.run().mmio.data, "\x01\x02\x03\x04", 4);
  CHECK_FALSE(f.Dispatch(e.run()));
  REQUIRE(f.mmio_device->writes.size() == 1);
  CHECK(f.mmio_device->writes[0] ==
        std::make_pair(uint64_t{0x10}, std::vector<uint8_t>{1, 2, 3, 4}));
  e.run().mmio.is_write = 0;
  e.run().mmio.len = 2;
  CHECK_FALSE(f.Dispatch(e.run()));
  CHECK(f.mmio_device->reads == std::vector<uint64_t>{0x10});
  CHECK(e.run().mmio.data[0] == 0xa0);
  CHECK(e.run().mmio.data[1] == 0xa1);
}

TEST_CASE("DispatchExit: HLT keeps running", "[vcpu_exit]") {
  Fixture f;
  Exit e;
  e.run().exit_reason = KVM_EXIT_HLT;
  CHECK_FALSE(f.Dispatch(e.run()));
}

TEST_CASE("DispatchExit: a triple fault is a reset with the registers", "[vcpu_exit]") {
  Fixture f;
  Exit e;
  e.run().exit_reason = KVM_EXIT_SHUTDOWN;
  std::optional<VmOutcome> end = f.Dispatch(e.run());
  REQUIRE(end);
  CHECK(end->kind == OutcomeKind::kReset);
  CHECK(end->detail == "guest triple fault on vCPU 3 (treated as a reset)\nRIP=0x1234");
  CHECK(f.describes == 1);
}

TEST_CASE("DispatchExit: KVM system events", "[vcpu_exit]") {
  Fixture f;
  Exit e;
  e.run().exit_reason = KVM_EXIT_SYSTEM_EVENT;
  e.run().system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
  CHECK(f.Dispatch(e.run())->kind == OutcomeKind::kPowerOff);
  e.run().system_event.type = KVM_SYSTEM_EVENT_RESET;
  CHECK(f.Dispatch(e.run())->kind == OutcomeKind::kReset);
  e.run().system_event.type = KVM_SYSTEM_EVENT_CRASH;
  CHECK(f.Dispatch(e.run())->kind == OutcomeKind::kPanic);
  e.run().system_event.type = 0x7777;  // a newer kernel's event: not the VM's end
  CHECK_FALSE(f.Dispatch(e.run()));
  CHECK(f.describes == 0);
}

TEST_CASE("DispatchExit: fatal KVM exits end the VM with what went wrong", "[vcpu_exit]") {
  Fixture f;
  Exit e;
  SECTION("emulation failure") {
    e.run().exit_reason = KVM_EXIT_INTERNAL_ERROR;
    e.run().internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
    std::optional<VmOutcome> end = f.Dispatch(e.run());
    REQUIRE(end);
    CHECK(end->kind == OutcomeKind::kKvmError);
    CHECK(end->detail ==
          "the host could not emulate a guest instruction (KVM_EXIT_INTERNAL_ERROR suberror 1)"
          "\nRIP=0x1234");
  }
  SECTION("another internal error") {
    e.run().exit_reason = KVM_EXIT_INTERNAL_ERROR;
    e.run().internal.suberror = 3;
    CHECK(f.Dispatch(e.run())->detail ==
          "KVM internal error (KVM_EXIT_INTERNAL_ERROR suberror 3)\nRIP=0x1234");
  }
  SECTION("failed entry") {
    e.run().exit_reason = KVM_EXIT_FAIL_ENTRY;
    e.run().fail_entry.hardware_entry_failure_reason = 0x80000021;
    std::optional<VmOutcome> end = f.Dispatch(e.run());
    REQUIRE(end);
    CHECK(end->kind == OutcomeKind::kKvmError);
    CHECK(end->detail == "KVM could not enter the guest (hardware reason 0x80000021)\nRIP=0x1234");
  }
  SECTION("an exit mote does not know") {
    e.run().exit_reason = 9999;
    CHECK(f.Dispatch(e.run())->detail == "unexpected KVM exit reason 9999 on vCPU 3\nRIP=0x1234");
  }
  CHECK(f.describes == 1);
}

}  // namespace
}  // namespace mote
