#include "virtio/mmio_transport.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <thread>

#include "tests/support/fake_virtio_device.h"
#include "tests/support/test_virtqueue.h"
#include "vmm/base/state_stream.h"

namespace mote::virtio {
namespace {

using testing::FakeDevice;
constexpr uint64_t kFeatureBit0 = testing::kFakeFeatureBit0;

// Counts the transport's requests to finish the work in flight.
class QuiescingDevice : public FakeDevice {
 public:
  void Quiesce() override { ++quiesced; }
  int quiesced = 0;
};

struct Fixture {
  Fixture() {
    auto m = GuestMemory::Create({{0, 1 << 20}});
    REQUIRE(m.ok());
    mem = std::move(*m);
    auto l = EventLoop::Create();
    REQUIRE(l.ok());
    loop = std::move(*l);
    device = std::make_shared<QuiescingDevice>();
    auto t = MmioTransport::Create(device, mem.get(), loop.get());
    REQUIRE(t.ok());
    transport = std::move(*t);
  }
  uint32_t Read32(uint64_t offset) {
    uint32_t v = 0;
    transport->Read(offset, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  }
  void Write32(uint64_t offset, uint32_t v) {
    transport->Write(offset, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  }
  // Driver initialisation up to FEATURES_OK (3.1.1), accepting `features`;
  // whether the device kept FEATURES_OK.
  bool Negotiate(uint64_t features) {
    Write32(0x070, 0);
    Write32(0x070, 1);
    Write32(0x070, 1 | 2);
    Write32(0x024, 0);
    Write32(0x020, static_cast<uint32_t>(features));
    Write32(0x024, 1);
    Write32(0x020, static_cast<uint32_t>(features >> 32));
    Write32(0x070, 1 | 2 | 8);
    return (Read32(0x070) & 8) == 8;
  }
  // Queue `index` of `size` with its rings in RAM at `base`; whether the
  // device took it (QueueReady reads 1).
  bool SetUpQueue(uint32_t index, uint32_t size, uint64_t base) {
    Write32(0x030, index);
    Write32(0x038, size);
    Write32(0x080, static_cast<uint32_t>(base));
    Write32(0x084, 0);
    Write32(0x090, static_cast<uint32_t>(base + 0x1000));
    Write32(0x094, 0);
    Write32(0x0a0, static_cast<uint32_t>(base + 0x2000));
    Write32(0x0a4, 0);
    Write32(0x044, 1);
    return Read32(0x044) == 1;
  }

  std::unique_ptr<GuestMemory> mem;
  std::unique_ptr<EventLoop> loop;
  std::shared_ptr<QuiescingDevice> device;
  std::unique_ptr<MmioTransport> transport;
};

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

TEST_CASE("virtio-mmio identifies a modern device", "[virtio_mmio]") {
  Fixture f;
  CHECK(f.Read32(0x000) == 0x74726976);
  CHECK(f.Read32(0x004) == 2);
  CHECK(f.Read32(0x008) == 42);
  CHECK(f.Read32(0x00c) == 0x45544f4d);
  uint8_t byte = 0xee;
  f.transport->Read(0x000, absl::Span<uint8_t>(&byte, 1));
  CHECK(byte == 0);  // registers take 32-bit accesses only
  uint8_t cfg[2];
  f.transport->Read(0x102, absl::Span<uint8_t>(cfg, 2));
  CHECK(cfg[0] == 0xa2);  // config space goes to the device, at its own offset
}

TEST_CASE("virtio-mmio feature negotiation", "[virtio_mmio]") {
  Fixture f;
  f.Write32(0x014, 0);
  CHECK(f.Read32(0x010) == kFeatureBit0);
  f.Write32(0x014, 1);
  CHECK(f.Read32(0x010) == 1);  // VERSION_1 is bit 32
  f.Write32(0x014, 7);
  CHECK(f.Read32(0x010) == 0);

  SECTION("a subset with VERSION_1 is accepted") {
    CHECK(f.Negotiate(kFeatureVersion1 | kFeatureBit0));
  }
  SECTION("a driver without VERSION_1 (legacy) is refused") {
    CHECK_FALSE(f.Negotiate(kFeatureBit0));
  }
  SECTION("features the device does not offer are refused") {
    CHECK_FALSE(f.Negotiate(kFeatureVersion1 | (1ull << 5)));
  }
}

TEST_CASE("virtio-mmio queue set-up, activation and frozen layout", "[virtio_mmio]") {
  Fixture f;
  REQUIRE(f.Negotiate(kFeatureVersion1));
  f.Write32(0x030, 1);
  CHECK(f.Read32(0x034) == 16);
  f.Write32(0x030, 5);
  CHECK(f.Read32(0x034) == 0);  // no such queue
  REQUIRE(f.SetUpQueue(0, 8, 0x10000));
  CHECK(f.Read32(0x080) == 0x10000);
  f.Write32(0x070, 1 | 2 | 8 | 4);
  REQUIRE(f.device->activations == 1);
  REQUIRE(f.device->last.queues.size() == 2);
  CHECK(f.device->last.queues[0] != nullptr);
  CHECK(f.device->last.queues[1] == nullptr);  // never made ready
  CHECK(f.device->last.features == kFeatureVersion1);
  // After DRIVER_OK the driver cannot move the rings under the device.
  f.Write32(0x030, 0);
  f.Write32(0x080, 0x20000);
  CHECK(f.Read32(0x080) == 0x10000);
}

TEST_CASE("virtio-mmio: a ready queue keeps the layout QueueReady checked", "[virtio_mmio]") {
  Fixture f;
  REQUIRE(f.Negotiate(kFeatureVersion1));
  REQUIRE(f.SetUpQueue(0, 8, 0x10000));
  f.Write32(0x038, 3);
  f.Write32(0x080, 0x7fff0000);
  CHECK(f.Read32(0x038) == 8);
  CHECK(f.Read32(0x080) == 0x10000);
  // Disabled, it can be moved, and is checked again when made ready.
  f.Write32(0x044, 0);
  f.Write32(0x038, 3);
  CHECK(f.Read32(0x038) == 3);
  f.Write32(0x044, 1);
  CHECK(f.Read32(0x044) == 0);
  REQUIRE(f.SetUpQueue(0, 4, 0x10000));
  CHECK(f.Read32(0x038) == 4);
}

TEST_CASE("virtio-mmio refuses a queue whose rings are outside RAM", "[virtio_mmio]") {
  Fixture f;
  REQUIRE(f.Negotiate(kFeatureVersion1));
  CHECK_FALSE(f.SetUpQueue(0, 8, 0x7fff0000));
  CHECK_FALSE(f.SetUpQueue(0, 6, 0x10000));   // not a power of two
  CHECK_FALSE(f.SetUpQueue(0, 64, 0x10000));  // more than QueueNumMax
  CHECK(f.SetUpQueue(0, 8, 0x10000));         // and a good one still works
}

TEST_CASE("virtio-mmio: a failed activation sets DEVICE_NEEDS_RESET", "[virtio_mmio]") {
  Fixture f;
  f.device->fail_activation = true;
  REQUIRE(f.Negotiate(kFeatureVersion1));
  REQUIRE(f.SetUpQueue(0, 8, 0x10000));
  f.Write32(0x070, 1 | 2 | 8 | 4);
  CHECK((f.Read32(0x070) & 0x40) == 0x40);
  CHECK((f.Read32(0x060) & 2) == 2);  // configuration-change interrupt
  CHECK(Readable(f.transport->interrupt_fd()));
}

TEST_CASE("virtio-mmio: notifications reach the device on the loop thread", "[virtio_mmio]") {
  Fixture f;
  f.device->signal_on_process = true;
  REQUIRE(f.Negotiate(kFeatureVersion1));
  REQUIRE(f.SetUpQueue(0, 8, 0x10000));
  REQUIRE(f.SetUpQueue(1, 16, 0x20000));
  f.Write32(0x070, 1 | 2 | 8 | 4);
  std::thread runner([&] { REQUIRE(f.loop->Run().ok()); });
  f.Write32(0x050, 1);  // QueueNotify without an ioeventfd in front of it
  for (int i = 0; i < 2000 && f.device->processed == 0; ++i) usleep(1000);
  f.loop->Stop();
  runner.join();
  CHECK(f.device->processed == 1);
  CHECK(f.device->processed_queue == 1);
  // The device's interrupt is visible to the driver and on the irqfd; ACK clears it.
  CHECK(f.Read32(0x060) == 1);
  CHECK(Readable(f.transport->interrupt_fd()));
  f.Write32(0x064, 1);
  CHECK(f.Read32(0x060) == 0);
  f.Write32(0x050, 99);  // no such queue: ignored
  f.loop->RunPosted();
  CHECK(f.device->processed == 1);
  CHECK(f.Read32(0x060) == 0);
}

TEST_CASE("virtio-mmio reset returns everything to its initial state", "[virtio_mmio]") {
  Fixture f;
  REQUIRE(f.Negotiate(kFeatureVersion1));
  REQUIRE(f.SetUpQueue(0, 8, 0x10000));
  f.Write32(0x070, 1 | 2 | 8 | 4);
  f.Write32(0x070, 0);
  CHECK(f.device->resets == 1);
  CHECK(f.Read32(0x070) == 0);
  f.Write32(0x030, 0);
  CHECK(f.Read32(0x044) == 0);
  CHECK(f.Read32(0x080) == 0);
  // The device can be brought up again.
  REQUIRE(f.Negotiate(kFeatureVersion1));
  REQUIRE(f.SetUpQueue(0, 8, 0x10000));
  f.Write32(0x070, 1 | 2 | 8 | 4);
  CHECK(f.device->activations == 2);
}

TEST_CASE("virtio-mmio ignores hostile register writes", "[virtio_mmio]") {
  Fixture f;
  f.Write32(0x000, 0);  // read-only
  CHECK(f.Read32(0x000) == 0x74726976);
  f.Write32(0x034, 0x1000);  // read-only
  CHECK(f.Read32(0x034) == 8);
  f.Write32(0x0f8, 0xffffffff);  // reserved
  CHECK(f.Read32(0x0f8) == 0);
  f.Write32(0x070, 4);  // DRIVER_OK without FEATURES_OK: no activation
  CHECK(f.device->activations == 0);
  const uint32_t status = f.Read32(0x070);
  uint16_t half = 1;
  f.transport->Write(0x070, absl::Span<const uint8_t>(reinterpret_cast<uint8_t*>(&half), 2));
  CHECK(f.Read32(0x070) == status);  // registers take 32-bit accesses only
  f.Write32(0x030, 0xffffffff);
  f.Write32(0x038, 0x10000);
  f.Write32(0x044, 1);
  CHECK(f.Read32(0x044) == 0);  // no such queue
  CHECK(f.device->activations == 0);
}

// What a restore brings along besides the device state: guest RAM.
void CopyRam(const GuestMemory& from, const GuestMemory& to) {
  auto a = from.GetSlice(GuestAddress{0}, 1 << 20);
  auto b = to.GetSlice(GuestAddress{0}, 1 << 20);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  std::memcpy(b->data(), a->data(), a->size());
}

// The saved layout (MmioTransport::SaveState, then TransportCore's):
// InterruptStatus u32; status u8, activated, device and driver feature
// selects u32, driver features u64, queue select u32, queue count u16, then
// each queue (size u16 first).
constexpr size_t kSavedStatusAt = 4, kSavedFeaturesAt = 14, kSavedQueueCountAt = 26,
                 kSavedQueue0At = 28;

TEST_CASE("virtio-mmio: a saved transport restores into a fresh one and runs on",
          "[virtio_mmio][snapshot]") {
  Fixture f;
  REQUIRE(f.Negotiate(kFeatureVersion1 | kFeatureBit0));
  REQUIRE(f.SetUpQueue(0, 8, 0x10000));
  REQUIRE(f.SetUpQueue(1, 16, 0x20000));
  f.Write32(0x070, 1 | 2 | 8 | 4);
  REQUIRE(f.device->activations == 1);
  // The driver's side of queue 0, where SetUpQueue put it; the device
  // completes one chain before the save and has one more waiting.
  testing::TestVirtqueue vq(*f.mem, 8, {0x10000, 0x11000, 0x12000, 0x13000, 0x20000});
  Queue* q0 = f.device->last.queues[0];
  REQUIRE(q0 != nullptr);
  uint16_t first = vq.AddChain({{vq.AllocBytes("first"), 5, false}});
  auto popped = q0->Pop(*f.mem);
  REQUIRE((popped.ok() && popped->status == PopStatus::kChain));
  REQUIRE(q0->AddUsed(*f.mem, first, 5).ok());
  f.device->last.interrupt->SignalUsedBuffers(0);
  uint16_t second = vq.AddChain({{vq.AllocBytes("second"), 6, false}});
  f.Write32(0x014, 1);  // select registers away from their reset values
  f.Write32(0x024, 1);
  f.Write32(0x030, 1);

  CHECK(f.transport->state_version() == 1);
  StateWriter out;
  f.transport->SaveState(out);
  CHECK(f.device->quiesced >= 1);

  Fixture g;
  CopyRam(*f.mem, *g.mem);
  StateReader in(out.bytes(), "virtio-mmio");
  REQUIRE(g.transport->RestoreState(in).ok());
  CHECK(g.Read32(0x038) == 16);  // QueueSel came along: queue 1 is selected
  for (uint64_t reg : {0x010, 0x060, 0x070}) {
    INFO("register 0x" << std::hex << reg);
    CHECK(g.Read32(reg) == f.Read32(reg));
  }
  for (uint32_t sel : {0u, 1u}) {
    f.Write32(0x030, sel);
    g.Write32(0x030, sel);
    for (uint64_t reg : {0x034, 0x038, 0x044, 0x080, 0x084, 0x090, 0x094, 0x0a0, 0x0a4}) {
      INFO("queue " << sel << ", register 0x" << std::hex << reg);
      CHECK(g.Read32(reg) == f.Read32(reg));
    }
  }
  // Activated again, as when the driver set DRIVER_OK, with the same queues.
  REQUIRE(g.device->activations == 1);
  CHECK(g.device->last.features == (kFeatureVersion1 | kFeatureBit0));
  REQUIRE(g.device->last.queues.size() == 2);
  Queue* r0 = g.device->last.queues[0];
  REQUIRE(r0 != nullptr);
  CHECK(g.device->last.queues[1] != nullptr);
  CHECK(r0->next_avail() == 1);
  CHECK(r0->next_used() == 1);
  // The interrupt the guest had not acknowledged is raised again.
  CHECK(g.Read32(0x060) == 1);
  CHECK(Readable(g.transport->interrupt_fd()));
  // Each queue is notified once, so work queued meanwhile is picked up.
  std::thread runner([&] { REQUIRE(g.loop->Run().ok()); });
  for (int i = 0; i < 2000 && g.device->processed < 2; ++i) usleep(1000);
  g.loop->Stop();
  runner.join();
  CHECK(g.device->processed == 2);
  // The chain waiting at the save comes next; the used index goes on from 1.
  auto next = r0->Pop(*g.mem);
  REQUIRE(next.ok());
  REQUIRE(next->status == PopStatus::kChain);
  CHECK(next->chain.head == second);
  REQUIRE(r0->AddUsed(*g.mem, second, 6).ok());
  CHECK(*g.mem->ReadObj<uint16_t>(GuestAddress{0x12002}) == 2);
}

TEST_CASE("virtio-mmio: a device saved mid-negotiation or failed is not activated",
          "[virtio_mmio][snapshot]") {
  Fixture f;
  Fixture g;
  SECTION("features written, FEATURES_OK not yet set") {
    f.Write32(0x070, 1 | 2);
    f.Write32(0x024, 0);
    f.Write32(0x020, 0xffffffff);  // more than offered: refused only at FEATURES_OK
    StateWriter out;
    f.transport->SaveState(out);
    StateReader in(out.bytes(), "virtio-mmio");
    REQUIRE(g.transport->RestoreState(in).ok());
    CHECK(g.Read32(0x070) == (1 | 2));
    CHECK(g.device->activations == 0);
    g.Write32(0x070, 1 | 2 | 8);
    CHECK((g.Read32(0x070) & 8) == 0);  // as the saved device would have answered
  }
  SECTION("DEVICE_NEEDS_RESET") {
    REQUIRE(f.Negotiate(kFeatureVersion1));
    REQUIRE(f.SetUpQueue(0, 8, 0x10000));
    f.Write32(0x070, 1 | 2 | 8 | 4);
    f.device->last.interrupt->SignalNeedsReset();
    StateWriter out;
    f.transport->SaveState(out);
    StateReader in(out.bytes(), "virtio-mmio");
    REQUIRE(g.transport->RestoreState(in).ok());
    CHECK(g.device->activations == 0);
    CHECK(g.Read32(0x070) == (1 | 2 | 8 | 4 | 0x40));
    CHECK(g.Read32(0x060) == 2);
    // The driver resets and brings the device up again.
    REQUIRE(g.Negotiate(kFeatureVersion1));
    REQUIRE(g.SetUpQueue(0, 8, 0x10000));
    g.Write32(0x070, 1 | 2 | 8 | 4);
    CHECK(g.device->activations == 1);
  }
}

TEST_CASE("virtio-mmio refuses hostile saved state", "[virtio_mmio][snapshot]") {
  Fixture f;
  REQUIRE(f.Negotiate(kFeatureVersion1));
  REQUIRE(f.SetUpQueue(0, 8, 0x10000));
  f.Write32(0x070, 1 | 2 | 8 | 4);
  StateWriter out;
  f.transport->SaveState(out);
  std::vector<uint8_t> bytes = out.bytes();
  REQUIRE(bytes[kSavedStatusAt] == (1 | 2 | 8 | 4));
  REQUIRE(bytes[kSavedQueueCountAt] == 2);
  REQUIRE(bytes[kSavedQueue0At] == 8);
  Fixture g;
  auto refused = [&](const std::vector<uint8_t>& state) {
    StateReader in(state, "virtio-mmio");
    absl::Status s = g.transport->RestoreState(in);
    CHECK(g.Read32(0x070) == 0);  // left reset
    g.Write32(0x030, 0);
    CHECK(g.Read32(0x044) == 0);
    return !s.ok();
  };
  SECTION("truncated anywhere") {
    for (size_t n = 0; n < bytes.size(); ++n) {
      INFO(n << " bytes");
      CHECK(refused(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n)));
    }
    CHECK(g.device->activations == 0);
  }
  SECTION("bytes left over") {
    bytes.push_back(0);
    CHECK(refused(bytes));
  }
  SECTION("driver features the device never offered") {
    bytes[kSavedFeaturesAt] |= 0x20;
    CHECK(refused(bytes));
    CHECK(g.device->activations == 0);
  }
  SECTION("accepted features without VERSION_1") {
    bytes[kSavedFeaturesAt + 4] = 0;
    CHECK(refused(bytes));
  }
  SECTION("a ready queue of size 3") {
    bytes[kSavedQueue0At] = 3;
    CHECK(refused(bytes));
    CHECK(g.device->activations == 0);
  }
  SECTION("another number of queues") {
    bytes[kSavedQueueCountAt] = 3;
    CHECK(refused(bytes));
  }
  SECTION("undefined InterruptStatus bits") {
    bytes[0] = 4;
    CHECK(refused(bytes));
  }
  SECTION("a device that refuses to run again") {
    g.device->fail_activation = true;
    CHECK(refused(bytes));
  }
  SECTION("the same bytes untouched restore") {
    StateReader in(bytes, "virtio-mmio");
    CHECK(g.transport->RestoreState(in).ok());
    CHECK(g.device->activations == 1);
  }
}

}  // namespace
}  // namespace mote::virtio
