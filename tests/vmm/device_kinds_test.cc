#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <set>
#include <string>

#include "arch/x86/layout.h"
#include "virtio/virtio_device.h"
#include "vmm/base/bus.h"
#include "vmm/config_json.h"
#include "vmm/device_kinds/device_kind.h"
#include "vmm/device_kinds/platform.h"
#include "vmm/device_kinds/virtio_blk.h"

namespace mote {
namespace {

// A 1 MiB disk file, removed at the end of the test.
class DiskFile {
 public:
  explicit DiskFile(off_t bytes = 1 << 20) {
    char templ[] = "/tmp/mote-device-kinds-XXXXXX";
    int fd = mkstemp(templ);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, bytes) == 0);
    close(fd);
    path_ = templ;
  }
  ~DiskFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

DiskConfig Disk(const std::string& path, const std::string& id) {
  DiskConfig disk;
  disk.path = path;
  disk.id = id;
  return disk;
}

TEST_CASE("The registry lists each virtio device kind once, in slot order", "[device_kinds]") {
  std::vector<std::string> names;
  for (const DeviceKind* kind : DeviceKinds()) {
    names.emplace_back(kind->name);
    CHECK(kind->open != nullptr);
    CHECK(FindDeviceKind(kind->name) == kind);
  }
  // Disks first, then NICs, then the rng: the slots a guest has always seen.
  CHECK(names == std::vector<std::string>{"virtio-blk", "virtio-net", "virtio-rng"});
  CHECK(FindDeviceKind("virtio-balloon") == nullptr);
}

TEST_CASE("virtio-rng: one device with --rng, none without", "[device_kinds]") {
  const DeviceKind& rng = *FindDeviceKind("virtio-rng");
  VmConfig config;
  auto none = rng.open(config);
  REQUIRE(none.ok());
  CHECK(none->empty());
  config.rng = true;
  auto one = rng.open(config);
  REQUIRE(one.ok());
  REQUIRE(one->size() == 1);
  CHECK((*one)[0]->DeviceType() == virtio::kDeviceTypeRng);
}

TEST_CASE("virtio-blk: opens each disk, names a bad one, reports counters by id",
          "[device_kinds]") {
  DiskFile a, b;
  VmConfig config;
  config.disks = {Disk(a.path(), "root"), Disk(b.path(), "data")};
  auto disks = kVirtioBlk.open(config);
  REQUIRE(disks.ok());
  REQUIRE(disks->size() == 2);
  CHECK((*disks)[1]->DeviceType() == virtio::kDeviceTypeBlock);
  CHECK(AsBlockDevice(*(*disks)[1]).counters().reads == 0);

  control::Counters counters;
  kVirtioBlk.report_counters(config, *disks, counters);
  REQUIRE(counters.disks.size() == 2);
  CHECK(counters.disks[0].id == "root");
  CHECK(counters.disks[1].id == "data");
  CHECK(counters.nics.empty());

  // Their images are locked: a second VM cannot have them.
  auto again = kVirtioBlk.open(config);
  REQUIRE_FALSE(again.ok());
  CHECK_THAT(std::string(again.status().message()), Catch::Contains(a.path() + " is in use"));
  disks->clear();

  config.disks.push_back(Disk("/nonexistent/disk.img", "gone"));
  auto bad = kVirtioBlk.open(config);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("/nonexistent/disk.img"));
}

TEST_CASE("virtio-blk validates ids across disks; ValidateConfig asks it", "[device_kinds]") {
  VmConfig config;
  config.kernel = "k";
  config.disks = {Disk("a", "x"), Disk("b", "x")};
  absl::Status s = kVirtioBlk.validate(config);
  CHECK(s.message() == "two disks are named 'x'");
  CHECK(ValidateDevices(config) == s);
  CHECK(ValidateConfig(config) == s);
  config.disks[1].id = "y";
  CHECK(ValidateConfig(config).ok());
}

TEST_CASE("virtio-net: an inherited fd that is no TAP is refused", "[device_kinds]") {
  VmConfig config;
  config.nets.emplace_back();
  config.nets[0].fd = 0;  // stdin
  auto nics = FindDeviceKind("virtio-net")->open(config);
  CHECK_FALSE(nics.ok());
}

TEST_CASE("Every kind saves its devices for snapshots; disks and NICs take rate limits",
          "[device_kinds]") {
  for (const DeviceKind* kind : DeviceKinds()) {
    INFO(std::string(kind->name));
    CHECK(kind->save_state != nullptr);
    CHECK(kind->restore_state != nullptr);
    CHECK((kind->set_limits != nullptr) == (kind->name != "virtio-rng"));
  }
}

TEST_CASE("A restored virtio-blk must show the snapshot's disk: the same size",
          "[device_kinds][snapshot]") {
  const DeviceKind* blk = FindDeviceKind("virtio-blk");
  DiskFile small, big(2 << 20);
  auto open = [blk](const DiskFile& file, const std::string& serial) {
    VmConfig config;
    config.disks.push_back(Disk(file.path(), "d"));
    config.disks[0].serial = serial;
    auto devices = blk->open(config);
    REQUIRE(devices.ok());
    return (*devices)[0];
  };
  auto saved = blk->save_state(*open(small, "a"));
  REQUIRE(saved.ok());
  CHECK(blk->restore_state(*open(small, "a"), *saved).ok());
  CHECK_FALSE(blk->restore_state(*open(big, "a"), *saved).ok());
  CHECK_FALSE(blk->restore_state(*open(small, "a"), absl::Span<const uint8_t>()).ok());
}

TEST_CASE("Platform port devices sit side by side and reach the VM's event sink",
          "[device_kinds]") {
  struct Recorder : GuestEventSink {
    std::vector<std::pair<GuestEvent, uint64_t>> seen;
    void OnGuestEvent(GuestEvent event, uint64_t value) override { seen.push_back({event, value}); }
  } sink;
  SystemClock clock;
  MonotonicClock monotonic;
  Bus bus("pio");
  std::set<std::string> names;
  for (const PortDevice& device : PlatformPortDevices()) {
    INFO(std::string(device.name));
    CHECK(names.insert(std::string(device.name)).second);
    // Insert refuses a range that overlaps one already there.
    PlatformWiring full{
        .events = &sink, .clock = &clock, .monotonic = &monotonic, .acpi_full = true};
    PlatformWiring reduced = full;
    reduced.acpi_full = false;
    CHECK(bus.Insert(device.make(full), device.port, device.port_count).ok());
    CHECK((device.make(reduced) == nullptr) == (device.name == "acpi-pm1"));
  }
  uint8_t value = 0x21;
  CHECK(bus.Write(x86::kDebugExitPort, {&value, 1}));
  REQUIRE(sink.seen.size() == 1);
  CHECK(sink.seen[0] == std::pair{GuestEvent::kDebugExit, uint64_t{0x21}});
}

}  // namespace
}  // namespace mote
