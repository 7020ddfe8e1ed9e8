#include "virtio/rng.h"

#include <catch2/catch.hpp>

#include "tests/support/test_virtqueue.h"

namespace mote::virtio {
namespace {

using testing::FakeInterrupt;
using testing::TestVirtqueue;

// A counting entropy source: byte i of the stream is i mod 251, so tests can
// tell exactly which bytes were written where.
struct CountingSource {
  uint64_t next = 0;
  bool Fill(absl::Span<uint8_t> out) {
    for (auto& b : out) b = static_cast<uint8_t>(next++ % 251);
    return true;
  }
};

struct Fixture {
  Fixture() : device([this](absl::Span<uint8_t> out) { return source.Fill(out); }) {
    auto m = GuestMemory::Create({{0, 4 << 20}});
    REQUIRE(m.ok());
    mem = std::move(*m);
    vq = std::make_unique<TestVirtqueue>(*mem, 16);
    vq->Configure(queue);
    ActivationContext ctx;
    ctx.mem = mem.get();
    ctx.queues = {&queue};
    ctx.interrupt = &irq;
    ctx.features = kFeatureVersion1;
    REQUIRE(device.Activate(ctx).ok());
  }
  CountingSource source;
  RngDevice device;
  std::unique_ptr<GuestMemory> mem;
  Queue queue{16};
  std::unique_ptr<TestVirtqueue> vq;
  FakeInterrupt irq;
};

TEST_CASE("virtio-rng fills writable buffers and reports the length", "[virtio_rng]") {
  Fixture f;
  uint64_t a = f.vq->Alloc(32), b = f.vq->Alloc(16);
  uint16_t head = f.vq->AddChain({{a, 32, true}, {b, 16, true}});
  f.device.ProcessQueue(0);
  auto used = f.vq->TakeUsed();
  REQUIRE(used.has_value());
  CHECK(used->id == head);
  CHECK(used->len == 48);
  std::vector<uint8_t> first = f.vq->ReadBytes(a, 32), second = f.vq->ReadBytes(b, 16);
  CHECK(first[0] == 0);
  CHECK(first[31] == 31);
  CHECK(second[0] == 32);  // the chain's buffers are filled in order
  CHECK(f.irq.used == 1);
  CHECK(f.device.bytes_served() == 48);
}

TEST_CASE("virtio-rng ignores readable buffers and serves several requests", "[virtio_rng]") {
  Fixture f;
  uint64_t in = f.vq->AllocBytes("driver data"), out = f.vq->Alloc(8);
  f.vq->AddChain({{in, 11, false}, {out, 8, true}});
  uint64_t out2 = f.vq->Alloc(4);
  f.vq->AddChain({{out2, 4, true}});
  f.device.ProcessQueue(0);
  CHECK(f.vq->TakeUsed()->len == 8);
  CHECK(f.vq->TakeUsed()->len == 4);
  CHECK(f.vq->ReadString(in, 11) == "driver data");
  CHECK(f.irq.used == 1);  // one interrupt for the batch
}

TEST_CASE("virtio-rng completes a bad chain with length 0 and goes on", "[virtio_rng]") {
  Fixture f;
  uint16_t bad = f.vq->AddChain({{0xfffff0000000, 64, true}});  // outside guest RAM
  uint64_t good = f.vq->Alloc(16);
  uint16_t next = f.vq->AddChain({{good, 16, true}});
  f.device.ProcessQueue(0);
  auto first = f.vq->TakeUsed();
  auto second = f.vq->TakeUsed();
  REQUIRE((first && second));
  CHECK(first->id == bad);
  CHECK(first->len == 0);
  CHECK(second->id == next);
  CHECK(second->len == 16);
  CHECK(f.irq.needs_reset == 0);
}

TEST_CASE("virtio-rng caps what one request can ask for", "[virtio_rng]") {
  Fixture f;
  uint64_t big = f.vq->Alloc(RngDevice::kMaxBytesPerRequest + 4096);
  f.vq->AddChain({{big, RngDevice::kMaxBytesPerRequest + 4096, true}});
  f.device.ProcessQueue(0);
  CHECK(f.vq->TakeUsed()->len == RngDevice::kMaxBytesPerRequest);
}

TEST_CASE("virtio-rng asks for a reset when the ring cannot be trusted", "[virtio_rng]") {
  Fixture f;
  f.vq->SetAvailIdx(1000);  // far more than the queue size ahead
  f.device.ProcessQueue(0);
  CHECK(f.irq.needs_reset == 1);
  f.device.ProcessQueue(0);  // no longer active: nothing more happens
  CHECK(f.irq.needs_reset == 1);
}

TEST_CASE("virtio-rng reports a failing entropy source as a short answer", "[virtio_rng]") {
  std::unique_ptr<GuestMemory> mem = std::move(*GuestMemory::Create({{0, 1 << 20}}));
  RngDevice device([](absl::Span<uint8_t>) { return false; });
  Queue queue(16);
  TestVirtqueue vq(*mem, 16);
  vq.Configure(queue);
  FakeInterrupt irq;
  ActivationContext ctx;
  ctx.mem = mem.get();
  ctx.queues = {&queue};
  ctx.interrupt = &irq;
  REQUIRE(device.Activate(ctx).ok());
  vq.AddChain({{vq.Alloc(8), 8, true}});
  device.ProcessQueue(0);
  CHECK(vq.TakeUsed()->len == 0);
}

TEST_CASE("virtio-rng refuses to activate without its queue", "[virtio_rng]") {
  RngDevice device;
  ActivationContext ctx;
  ctx.queues = {nullptr};
  CHECK_FALSE(device.Activate(ctx).ok());
  CHECK(device.AvailableFeatures() & kFeatureVersion1);
  CHECK(device.DeviceType() == 4);
}

}  // namespace
}  // namespace mote::virtio
