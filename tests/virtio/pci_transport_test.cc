#include "virtio/pci_transport.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <thread>

#include "tests/support/fake_virtio_device.h"
#include "tests/support/recording_msi_router.h"

namespace mote::virtio {
namespace {

using testing::FakeDevice;
constexpr uint64_t kBar = 0xc0008000;
constexpr uint64_t kCommon = kBar + PciTransport::kCommonOffset;

// A driver's view of one virtio-pci function: config space and BAR0.
struct Fixture {
  Fixture() {
    auto m = GuestMemory::Create({{0, 1 << 20}});
    REQUIRE(m.ok());
    mem = std::move(*m);
    auto l = EventLoop::Create();
    REQUIRE(l.ok());
    loop = std::move(*l);
    device = std::make_shared<FakeDevice>();
    PciTransport::Placement placement{static_cast<uint32_t>(kBar), 0xc0000000, 0xd0000000};
    auto t = PciTransport::Create(device, mem.get(), loop.get(), &router, placement,
                                  [this](uint64_t address, int fd, bool assign) {
                                    if (assign)
                                      ioeventfds[address] = fd;
                                    else
                                      ioeventfds.erase(address);
                                    return absl::OkStatus();
                                  });
    REQUIRE(t.ok());
    transport = std::move(*t);
  }
  uint64_t Cfg(uint32_t offset, size_t size) {
    uint64_t v = 0;
    transport->ReadConfig(offset, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&v), size));
    return v;
  }
  void SetCfg(uint32_t offset, uint64_t v, size_t size) {
    transport->WriteConfig(offset, absl::Span<const uint8_t>(reinterpret_cast<uint8_t*>(&v), size));
  }
  uint64_t Bar(uint64_t addr, size_t size) {
    uint64_t v = 0;
    REQUIRE(transport->ReadBar(addr, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&v), size)));
    return v;
  }
  void SetBar(uint64_t addr, uint64_t v, size_t size) {
    REQUIRE(
        transport->WriteBar(addr, absl::Span<const uint8_t>(reinterpret_cast<uint8_t*>(&v), size)));
  }
  // The virtio capabilities by cfg_type, walking the list as a driver does.
  std::map<uint8_t, uint8_t> VirtioCaps() {
    std::map<uint8_t, uint8_t> caps;
    for (uint8_t at = Cfg(0x34, 1), n = 0; at != 0 && n < 48; at = Cfg(at + 1, 1), ++n) {
      if (Cfg(at, 1) == 0x09) caps[Cfg(at + 3, 1)] = at;
      if (Cfg(at, 1) == 0x11) msix_cap = at;
    }
    return caps;
  }
  void Negotiate(uint64_t features) {
    SetBar(kCommon + 0x14, 0, 1);
    SetBar(kCommon + 0x14, 1 | 2, 1);
    SetBar(kCommon + 0x08, 0, 4);
    SetBar(kCommon + 0x0c, static_cast<uint32_t>(features), 4);
    SetBar(kCommon + 0x08, 1, 4);
    SetBar(kCommon + 0x0c, features >> 32, 4);
    SetBar(kCommon + 0x14, 1 | 2 | 8, 1);
  }
  void SetUpQueue(uint16_t index, uint16_t size, uint64_t base, uint16_t vector) {
    SetBar(kCommon + 0x16, index, 2);
    SetBar(kCommon + 0x18, size, 2);
    SetBar(kCommon + 0x1a, vector, 2);
    SetBar(kCommon + 0x20, base, 8);
    SetBar(kCommon + 0x28, base + 0x1000, 4);  // two halves, as Linux writes them
    SetBar(kCommon + 0x2c, 0, 4);
    SetBar(kCommon + 0x30, base + 0x2000, 8);
    SetBar(kCommon + 0x1c, 1, 2);
  }
  void EnableMsix() {
    VirtioCaps();
    SetCfg(msix_cap + 2, pci::kMsixControlEnable, 2);
    for (uint16_t v = 0; v < 3; ++v) {
      uint64_t entry = kBar + PciTransport::kMsixTableOffset + 16 * v;
      SetBar(entry, 0xfee00000, 4);
      SetBar(entry + 4, 0, 4);
      SetBar(entry + 8, 0x40 + v, 4);
      SetBar(entry + 12, 0, 4);
    }
  }

  pci::testing::RecordingRouter router;
  std::map<uint64_t, int> ioeventfds;
  std::unique_ptr<GuestMemory> mem;
  std::unique_ptr<EventLoop> loop;
  std::shared_ptr<FakeDevice> device;
  std::unique_ptr<PciTransport> transport;
  uint8_t msix_cap = 0;
};

TEST_CASE("virtio-pci identifies a modern device with its capabilities", "[virtio_pci]") {
  Fixture f;
  CHECK(f.Cfg(0x00, 4) == ((0x1040u + 42) << 16 | 0x1af4));
  CHECK(f.Cfg(0x08, 1) == 1);  // revision 1: no legacy interface
  CHECK(f.Cfg(0x3d, 1) == 0);  // no INTx pin
  CHECK((f.Cfg(0x04, 2) & pci::kCommandMemory) != 0);
  CHECK(f.Cfg(0x10, 4) == kBar);
  auto caps = f.VirtioCaps();
  REQUIRE(caps.size() == 5);  // common, notify, ISR, device, PCI-cfg window
  auto region = [&](uint8_t type) {
    uint8_t at = caps.at(type);
    CHECK(f.Cfg(at + 4, 1) == 0);  // BAR0
    return std::pair<uint64_t, uint64_t>(f.Cfg(at + 8, 4), f.Cfg(at + 12, 4));
  };
  CHECK(region(1) == std::pair<uint64_t, uint64_t>(PciTransport::kCommonOffset, 0x38));
  CHECK(region(2).first == PciTransport::kNotifyOffset);
  CHECK(f.Cfg(caps[2] + 16, 4) == PciTransport::kNotifyMultiplier);
  CHECK(region(3) == std::pair<uint64_t, uint64_t>(PciTransport::kIsrOffset, 1));
  CHECK(region(4).first == PciTransport::kDeviceConfigOffset);
  REQUIRE(f.msix_cap != 0);
  CHECK((f.Cfg(f.msix_cap + 2, 2) & 0x7ff) == 2);  // 3 vectors: 2 queues + config
  CHECK(f.Cfg(f.msix_cap + 4, 4) == PciTransport::kMsixTableOffset);
  CHECK(f.Cfg(f.msix_cap + 8, 4) == PciTransport::kMsixPbaOffset);
  // Device configuration through BAR0.
  CHECK(f.Bar(kBar + PciTransport::kDeviceConfigOffset + 2, 1) == 0xa2);
}

TEST_CASE("virtio-pci common configuration: features and queues", "[virtio_pci]") {
  Fixture f;
  CHECK(f.Bar(kCommon + 0x12, 2) == 2);  // num_queues
  f.SetBar(kCommon + 0x00, 1, 4);
  CHECK(f.Bar(kCommon + 0x04, 4) == 1);  // VERSION_1 is bit 32
  f.Negotiate(kFeatureVersion1);
  CHECK(f.Bar(kCommon + 0x14, 1) == (1 | 2 | 8));
  f.SetBar(kCommon + 0x08, 1, 4);
  CHECK(f.Bar(kCommon + 0x0c, 4) == 1);  // driver_feature reads back
  f.SetBar(kCommon + 0x16, 1, 2);
  CHECK(f.Bar(kCommon + 0x18, 2) == 16);  // queue_size starts at the maximum
  CHECK(f.Bar(kCommon + 0x1e, 2) == 1);   // queue_notify_off
  f.SetBar(kCommon + 0x16, 9, 2);
  CHECK(f.Bar(kCommon + 0x18, 2) == 0);  // no such queue
  f.SetUpQueue(0, 8, 0x10000, 1);
  CHECK(f.Bar(kCommon + 0x1c, 2) == 1);
  CHECK(f.Bar(kCommon + 0x20, 8) == 0x10000);
  CHECK(f.Bar(kCommon + 0x28, 8) == 0x11000);
  f.SetBar(kCommon + 0x14, 1 | 2 | 8 | 4, 1);
  REQUIRE(f.device->activations == 1);
  CHECK(f.device->last.queues[0] != nullptr);
  CHECK(f.device->last.queues[1] == nullptr);
  // Rings outside RAM are refused.
  f.SetBar(kCommon + 0x14, 0, 1);
  CHECK(f.device->resets == 1);
  f.Negotiate(kFeatureVersion1);
  f.SetUpQueue(0, 8, 0x7fff0000, 1);
  CHECK(f.Bar(kCommon + 0x1c, 2) == 0);
}

TEST_CASE("virtio-pci: a legacy driver is refused", "[virtio_pci]") {
  Fixture f;
  f.Negotiate(testing::kFakeFeatureBit0);
  CHECK((f.Bar(kCommon + 0x14, 1) & 8) == 0);
}

TEST_CASE("virtio-pci: MSI-X vectors per queue, NO_VECTOR for bad ones", "[virtio_pci]") {
  Fixture f;
  f.device->signal_on_process = true;
  f.EnableMsix();
  f.Negotiate(kFeatureVersion1);
  f.SetBar(kCommon + 0x10, 0, 2);
  CHECK(f.Bar(kCommon + 0x10, 2) == 0);
  f.SetUpQueue(0, 8, 0x10000, 1);
  f.SetUpQueue(1, 16, 0x20000, 2);
  f.SetBar(kCommon + 0x16, 1, 2);
  CHECK(f.Bar(kCommon + 0x1a, 2) == 2);
  f.SetBar(kCommon + 0x1a, 3, 2);  // beyond the table
  CHECK(f.Bar(kCommon + 0x1a, 2) == PciTransport::kNoVector);
  f.SetBar(kCommon + 0x1a, 2, 2);
  f.SetBar(kCommon + 0x14, 1 | 2 | 8 | 4, 1);
  REQUIRE(f.device->activations == 1);
  // A notification through the BAR (no ioeventfd) reaches the device on
  // the loop thread; its used buffers raise queue 1's vector, 2.
  std::thread runner([&] { REQUIRE(f.loop->Run().ok()); });
  f.SetBar(kBar + PciTransport::kNotifyOffset + 4 * 1, 1, 2);
  for (int i = 0; i < 2000 && f.device->processed == 0; ++i) usleep(1000);
  f.loop->Stop();
  runner.join();
  CHECK(f.device->processed_queue == 1);
  CHECK(f.router.fired == std::vector<uint16_t>{2});
  bool routed = false;
  for (const auto& r : f.router.routes) routed |= r.vector == 2 && r.data == 0x42;
  CHECK(routed);
  CHECK(f.Bar(kBar + PciTransport::kIsrOffset, 1) == 1);
  CHECK(f.Bar(kBar + PciTransport::kIsrOffset, 1) == 0);  // read-to-clear
}

TEST_CASE("virtio-pci: a failed activation raises the config vector", "[virtio_pci]") {
  Fixture f;
  f.device->fail_activation = true;
  f.EnableMsix();
  f.Negotiate(kFeatureVersion1);
  f.SetBar(kCommon + 0x10, 0, 2);
  f.SetUpQueue(0, 8, 0x10000, 1);
  f.SetBar(kCommon + 0x14, 1 | 2 | 8 | 4, 1);
  CHECK((f.Bar(kCommon + 0x14, 1) & 0x40) == 0x40);
  CHECK(f.router.fired == std::vector<uint16_t>{0});
  CHECK(f.Bar(kBar + PciTransport::kIsrOffset, 1) == 2);
}

TEST_CASE("virtio-pci: ioeventfds follow BAR0 and memory decoding", "[virtio_pci]") {
  Fixture f;
  uint64_t notify = PciTransport::kNotifyOffset;
  REQUIRE(f.ioeventfds.size() == 2);
  CHECK(f.ioeventfds.count(kBar + notify) == 1);
  CHECK(f.ioeventfds.count(kBar + notify + 4) == 1);
  f.SetCfg(0x04, 0, 2);  // decoding off: BAR0 answers nothing
  CHECK(f.ioeventfds.empty());
  uint8_t b;
  CHECK(!f.transport->ReadBar(kBar, absl::MakeSpan(&b, 1)));
  f.SetCfg(0x10, 0xffffffff, 4);
  CHECK(f.Cfg(0x10, 4) == 0xffff8000);  // 32 KiB
  f.SetCfg(0x10, 0xc0100000, 4);
  f.SetCfg(0x04, pci::kCommandMemory, 2);
  CHECK(f.ioeventfds.count(0xc0100000 + notify) == 1);
  CHECK(f.ioeventfds.size() == 2);
  CHECK(f.Bar(0xc0100000 + PciTransport::kCommonOffset + 0x12, 2) == 2);
  // Outside the PCI window a BAR decodes nothing.
  f.SetCfg(0x10, 0xfec00000, 4);
  CHECK(f.ioeventfds.empty());
  CHECK(!f.transport->ReadBar(0xfec00000, absl::MakeSpan(&b, 1)));
}

TEST_CASE("virtio-pci: the PCI-cfg window reaches BAR0", "[virtio_pci]") {
  Fixture f;
  uint8_t window = f.VirtioCaps().at(5);
  f.SetCfg(window + 4, 0, 1);                                   // BAR0
  f.SetCfg(window + 8, PciTransport::kCommonOffset + 0x12, 4);  // num_queues
  f.SetCfg(window + 12, 2, 4);
  CHECK(f.Cfg(window + 16, 2) == 2);
  f.SetCfg(window + 8, PciTransport::kCommonOffset + 0x16, 4);  // queue_select
  f.SetCfg(window + 16, 1, 2);
  CHECK(f.Bar(kCommon + 0x16, 2) == 1);
  f.SetCfg(window + 12, 3, 4);  // bad length: nothing happens
  CHECK(f.Cfg(window + 16, 4) == 0);
}

TEST_CASE("virtio-pci ignores hostile accesses", "[virtio_pci]") {
  Fixture f;
  f.SetBar(kCommon + 0x12, 7, 2);  // num_queues is read-only
  CHECK(f.Bar(kCommon + 0x12, 2) == 2);
  f.SetBar(kCommon + 0x14, 4, 1);  // DRIVER_OK without FEATURES_OK
  f.SetBar(kCommon + 0x16, 0xffff, 2);
  f.SetBar(kCommon + 0x18, 0xffff, 2);
  f.SetBar(kCommon + 0x1c, 1, 2);
  f.SetBar(kCommon + 0x14, 0x12345678, 4);  // wrong width
  f.SetBar(kCommon + 0x37, 0xff, 1);
  f.SetBar(kBar + 0x7ff8, ~0ull, 8);                            // PBA is read-only
  f.SetBar(kBar + PciTransport::kNotifyOffset + 4 * 50, 1, 2);  // no such queue
  CHECK(f.Bar(kCommon + 0x36, 4) == 0);                         // straddles the end
  CHECK(f.device->activations == 0);
  for (uint32_t offset = 0; offset < 4096; offset += 4) f.SetCfg(offset, 0xffffffff, 4);
  CHECK(f.Cfg(0x00, 4) == ((0x1040u + 42) << 16 | 0x1af4));
}

}  // namespace
}  // namespace mote::virtio
