#include "virtio/net.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <utility>

#include "tests/support/test_virtqueue.h"

namespace mote::virtio {
namespace {

using testing::FakeInterrupt;
using testing::TestVirtqueue;

// A NetDevice on one end of a SOCK_SEQPACKET pair; the test plays the TAP on
// the other end. Queues 0 (rx) and 1 (tx) live at different addresses.
struct Fixture {
  explicit Fixture(bool mergeable = true, const IoLimits& limits = {}) {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    peer.Reset(fds[1]);
    device_fd = fds[0];
    device = std::make_unique<NetDevice>(FileDescriptor(fds[0]), NetDevice::Mac{2, 0, 0, 0, 0, 9},
                                         nullptr, limits);
    mem = std::move(*GuestMemory::Create({{0, 8 << 20}}));
    rx = std::make_unique<TestVirtqueue>(*mem, 16, 0x10000);
    tx = std::make_unique<TestVirtqueue>(*mem, 16, 0x400000);
    rx->Configure(rx_queue);
    tx->Configure(tx_queue);
    ctx.mem = mem.get();
    ctx.queues = {&rx_queue, &tx_queue};
    ctx.interrupt = &irq;
    ctx.features = kFeatureVersion1 | (mergeable ? NetDevice::kFeatureMrgRxbuf : 0);
    // The device watches its packet fd and its throttle timer.
    ctx.watch_fd = [this](int fd, uint32_t, std::function<void()> cb) {
      watched.emplace_back(fd, std::move(cb));
      return absl::OkStatus();
    };
  }
  // Serves the throttle's timer until `done` holds; the seconds it took.
  double ServeTimer(const std::function<bool()>& done) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 500 && !done(); ++i) {
      for (auto& [fd, cb] : watched) {
        pollfd p{fd, POLLIN, 0};
        if (fd != device_fd && poll(&p, 1, 10) == 1) cb();
      }
    }
    REQUIRE(done());
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  void SendFrame(const std::string& body) {
    uint64_t hdr = tx->AllocBytes(std::string(NetDevice::kHeaderSize, '\0'));
    uint64_t data = tx->AllocBytes(body);
    tx->AddChain(
        {{hdr, NetDevice::kHeaderSize, false}, {data, static_cast<uint32_t>(body.size()), false}});
  }
  void Activate() { REQUIRE(device->Activate(ctx).ok()); }
  // Sends header (zeros) + `frame` from the "TAP" side.
  void Inject(const std::string& frame) {
    std::string packet(NetDevice::kHeaderSize, '\0');
    packet += frame;
    REQUIRE(send(peer.get(), packet.data(), packet.size(), 0) ==
            static_cast<ssize_t>(packet.size()));
  }
  uint64_t PostRx(uint32_t size) {
    uint64_t gpa = rx->Alloc(size);
    rx->AddChain({{gpa, size, true}});
    return gpa;
  }

  FileDescriptor peer;
  std::unique_ptr<NetDevice> device;
  std::unique_ptr<GuestMemory> mem;
  Queue rx_queue{16}, tx_queue{16};
  std::unique_ptr<TestVirtqueue> rx, tx;
  FakeInterrupt irq;
  ActivationContext ctx;
  std::vector<std::pair<int, std::function<void()>>> watched;
  int device_fd = -1;  // the device's end of the pair: the others watched are the timer
};

TEST_CASE("virtio-net transmits header and frame as one packet", "[virtio_net]") {
  Fixture f;
  f.Activate();
  std::string frame = std::string(NetDevice::kHeaderSize, '\0') + "ETHERNET-FRAME-BYTES";
  uint64_t hdr = f.tx->AllocBytes(frame.substr(0, 12));
  uint64_t body = f.tx->AllocBytes(frame.substr(12));
  f.tx->AddChain({{hdr, 12, false}, {body, 20, false}});
  f.device->ProcessQueue(1);
  char buf[256];
  ssize_t n = recv(f.peer.get(), buf, sizeof(buf), 0);
  REQUIRE(n == 32);
  CHECK(std::string(buf + 12, 20) == "ETHERNET-FRAME-BYTES");
  CHECK(f.tx->TakeUsed()->len == 0);
  CHECK(f.device->counters().tx_frames == 1);
  CHECK(f.irq.used == 1);
}

TEST_CASE("virtio-net delivers a packet into one buffer with num_buffers = 1", "[virtio_net]") {
  Fixture f;
  uint64_t buf = f.PostRx(2048);
  f.Activate();
  f.Inject("hello from the tap");
  f.device->ProcessQueue(0);
  auto used = f.rx->TakeUsed();
  REQUIRE(used.has_value());
  CHECK(used->len == 12 + 18);
  std::vector<uint8_t> header = f.rx->ReadBytes(buf, 12);
  CHECK(header[10] == 1);
  CHECK(header[11] == 0);
  CHECK(f.rx->ReadString(buf + 12, 18) == "hello from the tap");
  CHECK(f.device->counters().rx_frames == 1);
}

TEST_CASE("virtio-net spreads a packet over mergeable buffers", "[virtio_net]") {
  Fixture f;
  std::vector<uint64_t> bufs;
  for (int i = 0; i < 6; ++i) bufs.push_back(f.PostRx(64));
  f.Activate();
  std::string frame(188, 'x');
  for (size_t i = 0; i < frame.size(); ++i) frame[i] = static_cast<char>('a' + i % 26);
  f.Inject(frame);
  f.device->ProcessQueue(0);
  std::vector<uint32_t> lens;
  while (auto used = f.rx->TakeUsed()) lens.push_back(used->len);
  REQUIRE(lens == std::vector<uint32_t>{64, 64, 64, 8});  // 200 bytes with the header
  CHECK(f.rx->ReadBytes(bufs[0], 12)[10] == 4);
  std::string joined = f.rx->ReadString(bufs[0] + 12, 52) + f.rx->ReadString(bufs[1], 64) +
                       f.rx->ReadString(bufs[2], 64) + f.rx->ReadString(bufs[3], 8);
  CHECK(joined == frame);
}

TEST_CASE("virtio-net: frames over the transmit limit wait on the ring, then go",
          "[virtio_net][throttle]") {
  IoLimits limits;
  limits.out.ops = {20, 1};  // 20 frames a second, one at a time
  Fixture f(true, limits);
  f.Activate();
  for (int i = 0; i < 5; ++i) f.SendFrame("frame " + std::to_string(i));
  f.device->ProcessQueue(1);
  CHECK(f.device->counters().tx_frames == 1);
  CHECK(f.tx_queue.next_avail() == 1);  // the others are still the driver's
  double took = f.ServeTimer([&] { return f.device->counters().tx_frames == 5; });
  CHECK(took >= 0.15);
  CHECK(took < 2.0);
  char buf[256];
  for (int i = 0; i < 5; ++i) {
    ssize_t n = recv(f.peer.get(), buf, sizeof(buf), 0);
    REQUIRE(n == 12 + 7);
    CHECK(std::string(buf + 12, 7) == "frame " + std::to_string(i));  // in order
  }
  CHECK(f.device->throttled() >= 1);
}

TEST_CASE("virtio-net: frames over the receive limit wait in the TAP, then arrive",
          "[virtio_net][throttle]") {
  IoLimits limits;
  limits.in.bytes = {1000, 100};  // 1000 bytes a second, 100 at once
  Fixture f(true, limits);
  for (int i = 0; i < 4; ++i) f.PostRx(2048);
  f.Activate();
  for (int i = 0; i < 4; ++i) f.Inject(std::string(100, static_cast<char>('a' + i)));
  f.device->ProcessQueue(0);
  CHECK(f.device->counters().rx_frames == 1);  // the burst; the next waits for its 100 bytes
  double took = f.ServeTimer([&] { return f.device->counters().rx_frames == 4; });
  CHECK(took >= 0.15);  // three more frames of 100 bytes at 1000 a second
  CHECK(took < 2.0);
  for (int i = 0; i < 4; ++i) {
    auto used = f.rx->TakeUsed();
    REQUIRE(used.has_value());
    CHECK(used->len == 12 + 100);
  }
  // Lifted from another thread: what waits comes at once.
  for (int i = 0; i < 3; ++i) f.PostRx(2048);
  for (int i = 0; i < 3; ++i) f.Inject(std::string(100, 'z'));
  f.device->ProcessQueue(0);
  std::thread([&] { f.device->SetLimits(IoLimits{}); }).join();
  CHECK(f.ServeTimer([&] { return f.device->counters().rx_frames == 7; }) < 0.5);
}

TEST_CASE("virtio-net holds a packet until the guest adds receive buffers", "[virtio_net]") {
  Fixture f;
  f.Activate();
  f.Inject("early packet");
  f.device->ProcessQueue(0);  // nothing to put it in
  CHECK(f.rx->PendingUsed() == 0);
  uint64_t buf = f.PostRx(256);
  f.device->ProcessQueue(0);  // the guest's notification
  REQUIRE(f.rx->PendingUsed() == 1);
  CHECK(f.rx->ReadString(buf + 12, 12) == "early packet");
}

TEST_CASE("virtio-net without mergeable buffers truncates into one buffer", "[virtio_net]") {
  Fixture f(false);
  uint64_t small = f.PostRx(40);
  f.PostRx(2048);
  f.Activate();
  f.Inject(std::string(100, 'z'));
  f.device->ProcessQueue(0);
  auto used = f.rx->TakeUsed();
  REQUIRE(used.has_value());
  CHECK(used->len == 40);
  CHECK(f.rx->ReadBytes(small, 12)[10] == 1);
  CHECK(f.device->counters().rx_dropped == 1);
  CHECK(f.rx->PendingUsed() == 0);  // the next buffer is left for the next packet
}

TEST_CASE("virtio-net drops hostile transmit buffers and carries on", "[virtio_net]") {
  Fixture f;
  f.Activate();
  uint64_t tiny = f.tx->AllocBytes("short");
  f.tx->AddChain({{tiny, 5, false}});             // shorter than the header
  f.tx->AddChain({{0xfffff0000000, 64, false}});  // outside guest RAM
  uint64_t ok = f.tx->AllocBytes(std::string(12, '\0') + "good");
  f.tx->AddChain({{ok, 16, false}});
  f.device->ProcessQueue(1);
  CHECK(f.tx->PendingUsed() == 3);
  CHECK(f.device->counters().tx_dropped == 2);
  CHECK(f.device->counters().tx_frames == 1);
  char buf[64];
  CHECK(recv(f.peer.get(), buf, sizeof(buf), 0) == 16);
  CHECK(f.irq.needs_reset == 0);
}

TEST_CASE("virtio-net config space has the MAC and link up", "[virtio_net]") {
  Fixture f;
  uint8_t cfg[8];
  f.device->ReadConfig(0, absl::Span<uint8_t>(cfg, 8));
  CHECK(cfg[0] == 2);
  CHECK(cfg[5] == 9);
  CHECK(cfg[6] == 1);  // VIRTIO_NET_S_LINK_UP
  CHECK((f.device->AvailableFeatures() & NetDevice::kFeatureMrgRxbuf) != 0);
  CHECK((f.device->AvailableFeatures() & NetDevice::kFeatureGuestTso4) == 0);  // not a TAP
}

}  // namespace
}  // namespace mote::virtio
