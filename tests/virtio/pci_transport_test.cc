#include "virtio/pci_transport.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <thread>

#include "tests/support/fake_virtio_device.h"
#include "tests/support/recording_msi_router.h"
#include "tests/support/test_virtqueue.h"
#include "vmm/base/state_stream.h"

namespace mote::virtio {
namespace {

using testing::FakeDevice;
constexpr uint64_t kBar = 0xc0008000;
constexpr uint64_t kCommon = kBar + PciTransport::kCommonOffset;

// A driver's view of one virtio-pci function: config space and BAR0.
struct Fixture {
  explicit Fixture(std::shared_ptr<FakeDevice> d = std::make_shared<FakeDevice>())
      : device(std::move(d)) {
    auto m = GuestMemory::Create({{0, 1 << 20}});
    REQUIRE(m.ok());
    mem = std::move(*m);
    auto l = EventLoop::Create();
    REQUIRE(l.ok());
    loop = std::move(*l);
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

// What a restore brings along besides the device state: guest RAM.
void CopyRam(const GuestMemory& from, const GuestMemory& to) {
  auto a = from.GetSlice(GuestAddress{0}, 1 << 20);
  auto b = to.GetSlice(GuestAddress{0}, 1 << 20);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  std::memcpy(b->data(), a->data(), a->size());
}

TEST_CASE("virtio-pci: a saved function restores into a fresh one and runs on",
          "[virtio_pci][snapshot]") {
  Fixture f;
  f.EnableMsix();
  f.Negotiate(kFeatureVersion1);
  f.SetBar(kCommon + 0x10, 0, 2);
  f.SetUpQueue(0, 8, 0x10000, 1);
  f.SetUpQueue(1, 16, 0x20000, 2);
  f.SetBar(kCommon + 0x14, 1 | 2 | 8 | 4, 1);
  REQUIRE(f.device->activations == 1);
  // The guest moves BAR0.
  constexpr uint64_t kMoved = 0xc0100000;
  const uint64_t common = kMoved + PciTransport::kCommonOffset;
  const uint64_t table = kMoved + PciTransport::kMsixTableOffset;
  f.SetCfg(0x04, 0, 2);
  f.SetCfg(0x10, kMoved, 4);
  f.SetCfg(0x04, pci::kCommandMemory | pci::kCommandBusMaster, 2);
  // Queue 1's vector is masked when its used buffers arrive: pending.
  f.SetBar(table + 16 * 2 + 12, 1, 4);
  f.device->last.interrupt->SignalUsedBuffers(1);
  REQUIRE(f.router.fired.empty());
  // The device completes one chain on queue 0 and has one more waiting.
  testing::TestVirtqueue vq(*f.mem, 8, {0x10000, 0x11000, 0x12000, 0x13000, 0x20000});
  Queue* q0 = f.device->last.queues[0];
  REQUIRE(q0 != nullptr);
  uint16_t first = vq.AddChain({{vq.AllocBytes("first"), 5, false}});
  auto popped = q0->Pop(*f.mem);
  REQUIRE((popped.ok() && popped->status == PopStatus::kChain));
  REQUIRE(q0->AddUsed(*f.mem, first, 5).ok());
  uint16_t second = vq.AddChain({{vq.AllocBytes("second"), 6, false}});
  f.SetBar(common + 0x16, 1, 2);
  f.SetBar(common + 0x00, 1, 4);

  CHECK(f.transport->state_version() == 1);
  StateWriter out;
  f.transport->SaveState(out);

  Fixture g;
  CopyRam(*f.mem, *g.mem);
  StateReader in(out.bytes(), "virtio-pci");
  REQUIRE(g.transport->RestoreState(in).ok());
  // BAR0 and its ioeventfds are where the guest had put them.
  CHECK(g.ioeventfds.size() == 2);
  CHECK(g.ioeventfds.count(kMoved + PciTransport::kNotifyOffset) == 1);
  CHECK(g.ioeventfds.count(kMoved + PciTransport::kNotifyOffset + 4) == 1);
  uint8_t b;
  CHECK(!g.transport->ReadBar(kBar, absl::MakeSpan(&b, 1)));
  CHECK(g.Bar(kMoved + PciTransport::kIsrOffset, 1) == 1);
  CHECK(f.Bar(kMoved + PciTransport::kIsrOffset, 1) == 1);
  for (uint32_t offset = 0; offset < pci::kConfigSpaceSize; offset += 4) {
    INFO("config offset 0x" << std::hex << offset);
    CHECK(g.Cfg(offset, 4) == f.Cfg(offset, 4));
  }
  const std::vector<std::pair<uint64_t, size_t>> registers = {
      {0x00, 4}, {0x04, 4}, {0x08, 4}, {0x0c, 4}, {0x10, 2}, {0x12, 2}, {0x14, 1}, {0x16, 2},
      {0x18, 2}, {0x1a, 2}, {0x1c, 2}, {0x1e, 2}, {0x20, 8}, {0x28, 8}, {0x30, 8}};
  CHECK(g.Bar(common + 0x16, 2) == 1);
  for (uint16_t sel : {1, 0}) {
    f.SetBar(common + 0x16, sel, 2);
    g.SetBar(common + 0x16, sel, 2);
    for (auto [offset, size] : registers) {
      INFO("queue " << sel << ", common config 0x" << std::hex << offset);
      CHECK(g.Bar(common + offset, size) == f.Bar(common + offset, size));
    }
  }
  // MSI-X: the unmasked vectors are routed again; the masked one waits.
  std::map<uint16_t, uint32_t> routed;
  for (const auto& r : g.router.routes) routed[r.vector] = r.data;
  CHECK(routed == std::map<uint16_t, uint32_t>{{0, 0x40}, {1, 0x41}});
  CHECK(g.router.fired.empty());
  CHECK(g.Bar(kMoved + PciTransport::kMsixPbaOffset, 4) == 0x4);
  g.SetBar(table + 16 * 2 + 12, 0, 4);
  CHECK(g.router.fired == std::vector<uint16_t>{2});
  // Activated again with the same queues; each is notified once.
  REQUIRE(g.device->activations == 1);
  CHECK(g.device->last.features == kFeatureVersion1);
  REQUIRE(g.device->last.queues.size() == 2);
  Queue* r0 = g.device->last.queues[0];
  REQUIRE(r0 != nullptr);
  CHECK(g.device->last.queues[1] != nullptr);
  CHECK(r0->next_avail() == 1);
  CHECK(r0->next_used() == 1);
  std::thread runner([&] { REQUIRE(g.loop->Run().ok()); });
  for (int i = 0; i < 2000 && g.device->processed < 2; ++i) usleep(1000);
  g.loop->Stop();
  runner.join();
  CHECK(g.device->processed == 2);
  auto next = r0->Pop(*g.mem);
  REQUIRE(next.ok());
  REQUIRE(next->status == PopStatus::kChain);
  CHECK(next->chain.head == second);
  REQUIRE(r0->AddUsed(*g.mem, second, 6).ok());
  CHECK(*g.mem->ReadObj<uint16_t>(GuestAddress{0x12002}) == 2);
}

class OtherDevice : public FakeDevice {
 public:
  uint32_t DeviceType() const override { return 43; }
};

// The saved layout (PciTransport::SaveState): config space (u32 length and
// 4096 bytes), MSI-X (u16 count, per vector 4 u32 and pending, enabled,
// function masked), ISR u8, config vector u16, u16 count and queue vectors,
// then the core (status u8, activated, two u32 selects, features u64, ...).
constexpr size_t kSavedMsixAt = 4 + 4096, kSavedMsixEnabledAt = kSavedMsixAt + 2 + 3 * 17;
constexpr size_t kSavedQueueVectorsAt = kSavedMsixEnabledAt + 2 + 1 + 2 + 2;
constexpr size_t kSavedCoreAt = kSavedQueueVectorsAt + 2 * 2, kSavedFeaturesAt = kSavedCoreAt + 10;

TEST_CASE("virtio-pci refuses hostile saved state", "[virtio_pci][snapshot]") {
  Fixture f;
  f.EnableMsix();
  f.Negotiate(kFeatureVersion1);
  f.SetUpQueue(0, 8, 0x10000, 1);
  f.SetBar(kCommon + 0x14, 1 | 2 | 8 | 4, 1);
  StateWriter out;
  f.transport->SaveState(out);
  std::vector<uint8_t> bytes = out.bytes();
  REQUIRE(bytes.size() > kSavedFeaturesAt + 8);
  REQUIRE(bytes[kSavedMsixEnabledAt] == 1);
  REQUIRE(bytes[kSavedQueueVectorsAt] == 1);
  REQUIRE(bytes[kSavedCoreAt] == (1 | 2 | 8 | 4));
  REQUIRE(bytes[kSavedFeaturesAt + 4] == 1);  // VERSION_1
  Fixture g;
  auto refused = [&](const std::vector<uint8_t>& state) {
    StateReader in(state, "virtio-pci");
    absl::Status s = g.transport->RestoreState(in);
    CHECK(g.device->activations == 0);
    CHECK(g.Bar(kCommon + 0x14, 1) == 0);
    return !s.ok();
  };
  SECTION("truncated anywhere") {
    for (size_t n = 0; n < bytes.size(); ++n) {
      INFO(n << " bytes");
      CHECK(refused(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n)));
    }
  }
  SECTION("the state of another kind of device") {
    Fixture other(std::make_shared<OtherDevice>());
    StateReader in(bytes, "virtio-pci");
    absl::Status s = other.transport->RestoreState(in);
    CHECK_THAT(std::string(s.message()), Catch::Contains("a different PCI function"));
    CHECK(other.device->activations == 0);
  }
  SECTION("MSI-X enabled where the config space says disabled") {
    bytes[kSavedMsixEnabledAt] = 0;
    CHECK(refused(bytes));
  }
  SECTION("a queue vector beyond the table") {
    bytes[kSavedQueueVectorsAt] = 3;
    CHECK(refused(bytes));
  }
  SECTION("driver features the device never offered") {
    bytes[kSavedFeaturesAt + 1] = 0x10;
    CHECK(refused(bytes));
  }
  SECTION("the same bytes untouched restore") {
    StateReader in(bytes, "virtio-pci");
    CHECK(g.transport->RestoreState(in).ok());
    CHECK(g.device->activations == 1);
  }
}

}  // namespace
}  // namespace mote::virtio
