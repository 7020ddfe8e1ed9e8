#include "virtio/mmio_transport.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "tests/support/fake_virtio_device.h"

namespace mote::virtio {
namespace {

using testing::FakeDevice;
constexpr uint64_t kFeatureBit0 = testing::kFakeFeatureBit0;

struct Fixture {
  Fixture() {
    auto m = GuestMemory::Create({{0, 1 << 20}});
    REQUIRE(m.ok());
    mem = std::move(*m);
    auto l = EventLoop::Create();
    REQUIRE(l.ok());
    loop = std::move(*l);
    device = std::make_shared<FakeDevice>();
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
  std::shared_ptr<FakeDevice> device;
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

}  // namespace
}  // namespace mote::virtio
