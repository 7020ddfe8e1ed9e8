#include "virtio/block.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

#include "tests/support/test_virtqueue.h"
#include "virtio/mmio_transport.h"
#include "vmm/base/event_loop.h"
#include "vmm/base/state_stream.h"

namespace mote::virtio {
namespace {

using testing::Buffer;
using testing::FakeInterrupt;
using testing::TestVirtqueue;

constexpr uint32_t kIn = 0, kOut = 1, kFlush = 4, kGetId = 8, kDiscard = 11, kWriteZeroes = 13;

struct Fixture {
  explicit Fixture(BlockDevice::Options options = {}, uint64_t disk_bytes = 64 * 512) {
    auto b = std::make_unique<MemoryBackend>(disk_bytes);
    backend = b.get();
    for (size_t i = 0; i < b->data().size(); ++i) b->data()[i] = static_cast<uint8_t>(i / 512);
    device = std::make_unique<BlockDevice>(std::move(b), std::move(options));
    mem = std::move(*GuestMemory::Create({{0, 4 << 20}}));
    vq = std::make_unique<TestVirtqueue>(*mem, 16);
    vq->Configure(queue);
    ActivationContext ctx;
    ctx.mem = mem.get();
    ctx.queues = {&queue};
    ctx.interrupt = &irq;
    ctx.watch_fd = [this](int fd, uint32_t, std::function<void()> cb) {
      timer_fd = fd;  // a disk in memory has no engine: the only fd is the throttle's timer
      on_timer = std::move(cb);
      return absl::OkStatus();
    };
    REQUIRE(device->Activate(ctx).ok());
  }
  void AddRead(uint64_t sector) {
    uint64_t header = Header(kIn, sector);
    vq->AddChain({{header, 16, false}, {vq->Alloc(512), 512, true}, {vq->Alloc(1), 1, true}});
  }
  // Serves the throttle's timer until `want` requests are done; the time it took.
  double CompleteAll(uint16_t want) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 500 && vq->PendingUsed() < want; ++i) {
      pollfd p{timer_fd, POLLIN, 0};
      if (poll(&p, 1, 10) == 1) on_timer();
    }
    REQUIRE(vq->PendingUsed() == want);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  uint64_t Header(uint32_t type, uint64_t sector) {
    uint8_t h[16] = {};
    std::memcpy(h, &type, 4);
    std::memcpy(h + 8, &sector, 8);
    return vq->AllocBytes(absl::Span<const uint8_t>(h, 16));
  }
  // Submits `buffers`, runs the device, returns (used len, status byte).
  std::pair<uint32_t, uint8_t> Run(const std::vector<Buffer>& buffers, uint64_t status_gpa) {
    vq->AddChain(buffers);
    device->ProcessQueue(0);
    auto used = vq->TakeUsed();
    REQUIRE(used.has_value());
    uint8_t status = status_gpa ? vq->ReadBytes(status_gpa, 1)[0] : 0xff;
    return {used->len, status};
  }
  uint64_t Status() {
    uint64_t s = vq->Alloc(1);
    vq->WriteBytes(s, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>("\xff"), 1));
    return s;
  }

  MemoryBackend* backend;
  std::unique_ptr<BlockDevice> device;
  std::unique_ptr<GuestMemory> mem;
  Queue queue{16};
  std::unique_ptr<TestVirtqueue> vq;
  FakeInterrupt irq;
  int timer_fd = -1;
  std::function<void()> on_timer;
};

TEST_CASE("virtio-blk reads sectors into a split buffer", "[virtio_blk]") {
  Fixture f;
  uint64_t a = f.vq->Alloc(512), b = f.vq->Alloc(512), st = f.Status();
  auto [len, status] =
      f.Run({{f.Header(kIn, 5), 16, false}, {a, 512, true}, {b, 512, true}, {st, 1, true}}, st);
  CHECK(status == 0);
  CHECK(len == 1025);
  CHECK(f.vq->ReadBytes(a, 512)[0] == 5);
  CHECK(f.vq->ReadBytes(b, 512)[511] == 6);
  CHECK(f.device->counters().reads == 1);
  CHECK(f.irq.used == 1);
}

TEST_CASE("virtio-blk writes, then flushes", "[virtio_blk]") {
  Fixture f;
  uint64_t data = f.vq->AllocBytes(std::string(1024, 'W')), st = f.Status();
  auto [len, status] =
      f.Run({{f.Header(kOut, 10), 16, false}, {data, 1024, false}, {st, 1, true}}, st);
  CHECK(status == 0);
  CHECK(len == 1);
  CHECK(f.backend->data()[10 * 512] == 'W');
  CHECK(f.backend->data()[12 * 512 - 1] == 'W');
  CHECK(f.backend->data()[12 * 512] == 12);
  uint64_t st2 = f.Status();
  CHECK(f.Run({{f.Header(kFlush, 0), 16, false}, {st2, 1, true}}, st2).second == 0);
  CHECK(f.backend->flushes() == 1);
}

TEST_CASE("virtio-blk: a read-only disk refuses writes and offers RO", "[virtio_blk]") {
  Fixture f(BlockDevice::Options{true, ""});
  CHECK(f.device->AvailableFeatures() & BlockDevice::kFeatureReadOnly);
  CHECK_FALSE(f.device->AvailableFeatures() & BlockDevice::kFeatureDiscard);
  uint64_t data = f.vq->AllocBytes(std::string(512, 'W')), st = f.Status();
  CHECK(f.Run({{f.Header(kOut, 1), 16, false}, {data, 512, false}, {st, 1, true}}, st).second == 1);
  CHECK(f.backend->data()[512] == 1);  // untouched
}

TEST_CASE("virtio-blk GET_ID returns the serial, NUL-padded", "[virtio_blk]") {
  Fixture f(BlockDevice::Options{false, "MOTE-SERIAL-1"});
  uint64_t id = f.vq->Alloc(20), st = f.Status();
  auto [len, status] = f.Run({{f.Header(kGetId, 0), 16, false}, {id, 20, true}, {st, 1, true}}, st);
  CHECK(status == 0);
  CHECK(len == 21);
  std::string serial = f.vq->ReadString(id, 20);
  CHECK(std::string(serial.c_str()) == "MOTE-SERIAL-1");
}

TEST_CASE("virtio-blk discard and write-zeroes clear sectors", "[virtio_blk]") {
  Fixture f;
  for (uint32_t type : {kDiscard, kWriteZeroes}) {
    uint8_t seg[16] = {};
    uint64_t sector = type == kDiscard ? 3 : 20;
    uint32_t count = 2;
    std::memcpy(seg, &sector, 8);
    std::memcpy(seg + 8, &count, 4);
    uint64_t s = f.vq->AllocBytes(absl::Span<const uint8_t>(seg, 16)), st = f.Status();
    CHECK(f.Run({{f.Header(type, 0), 16, false}, {s, 16, false}, {st, 1, true}}, st).second == 0);
    CHECK(f.backend->data()[sector * 512] == 0);
    CHECK(f.backend->data()[(sector + 2) * 512 - 1] == 0);
    CHECK(f.backend->data()[(sector + 2) * 512] == sector + 2);
  }
}

TEST_CASE("virtio-blk answers impossible requests with an error, never success", "[virtio_blk]") {
  Fixture f;
  SECTION("read past the end of the disk") {
    uint64_t a = f.vq->Alloc(512), st = f.Status();
    CHECK(f.Run({{f.Header(kIn, 64), 16, false}, {a, 512, true}, {st, 1, true}}, st).second == 1);
  }
  SECTION("read straddling the end") {
    uint64_t a = f.vq->Alloc(1024), st = f.Status();
    CHECK(f.Run({{f.Header(kIn, 63), 16, false}, {a, 1024, true}, {st, 1, true}}, st).second == 1);
  }
  SECTION("sector number that overflows when scaled") {
    uint64_t a = f.vq->Alloc(512), st = f.Status();
    CHECK(f.Run({{f.Header(kIn, ~0ull / 256), 16, false}, {a, 512, true}, {st, 1, true}}, st)
              .second == 1);
  }
  SECTION("data that is not whole sectors") {
    uint64_t a = f.vq->Alloc(100), st = f.Status();
    CHECK(f.Run({{f.Header(kIn, 0), 16, false}, {a, 100, true}, {st, 1, true}}, st).second == 1);
  }
  SECTION("an unknown request type") {
    uint64_t st = f.Status();
    CHECK(f.Run({{f.Header(99, 0), 16, false}, {st, 1, true}}, st).second == 2);
  }
  SECTION("a header that is too short") {
    uint64_t h = f.vq->Alloc(8), st = f.Status();
    CHECK(f.Run({{h, 8, false}, {st, 1, true}}, st).second == 1);
  }
  SECTION("no status byte at all: completed with length 0") {
    CHECK(f.Run({{f.Header(kIn, 0), 16, false}}, 0).first == 0);
  }
  SECTION("a buffer outside guest RAM: a bad chain, length 0") {
    CHECK(f.Run({{f.Header(kIn, 0), 16, false}, {0xfffff0000000, 512, true}}, 0).first == 0);
  }
  CHECK(f.device->counters().errors == 1);
  // The device still serves a good request afterwards.
  uint64_t a = f.vq->Alloc(512), st = f.Status();
  CHECK(f.Run({{f.Header(kIn, 2), 16, false}, {a, 512, true}, {st, 1, true}}, st).second == 0);
  CHECK(f.irq.needs_reset == 0);
}

TEST_CASE("virtio-blk config space describes the disk", "[virtio_blk]") {
  Fixture f({}, 2048 * 512);
  uint8_t cfg[24];
  f.device->ReadConfig(0, absl::Span<uint8_t>(cfg, sizeof(cfg)));
  uint64_t capacity;
  uint32_t blk_size, seg_max;
  std::memcpy(&capacity, cfg, 8);
  std::memcpy(&seg_max, cfg + 12, 4);
  std::memcpy(&blk_size, cfg + 20, 4);
  CHECK(capacity == 2048);
  CHECK(blk_size == 512);
  CHECK(seg_max == BlockDevice::kQueueSize - 2);
  uint8_t beyond = 0xee;
  f.device->ReadConfig(4000, absl::Span<uint8_t>(&beyond, 1));
  CHECK(beyond == 0);
}

TEST_CASE("virtio-blk on an async engine: reads, writes and flush complete later", "[virtio_blk]") {
  auto aio = GENERATE(BlockDevice::Aio::kIoUring, BlockDevice::Aio::kThreads);
  uint16_t queues = GENERATE(1, 3);
  // The requests go to the last queue, so several queues are really used.
  uint16_t qi = queues - 1;
  std::string path = "/tmp/mote-blk-async-" + std::to_string(getpid()) + ".img";
  {
    std::ofstream out(path, std::ios::binary);
    for (int sector = 0; sector < 64; ++sector)
      out << std::string(512, static_cast<char>('A' + sector % 26));
  }
  auto backend = FileBackend::Open(path, false, false);
  REQUIRE(backend.ok());
  BlockDevice::Options options;
  options.aio = aio;
  options.queues = queues;
  BlockDevice device(std::move(*backend), options);
  CHECK(device.QueueMaxSizes().size() == queues);
  CHECK(((device.AvailableFeatures() & BlockDevice::kFeatureMultiQueue) != 0) == (queues > 1));
  auto mem = std::move(*GuestMemory::Create({{0, 4 << 20}}));
  std::vector<Queue> queue_objects(queues, Queue(16));
  TestVirtqueue vq(*mem, 16);
  vq.Configure(queue_objects[qi]);
  FakeInterrupt irq;
  int watched_fd = -1;
  std::function<void()> on_ready;
  ActivationContext ctx;
  ctx.mem = mem.get();
  for (Queue& q : queue_objects) ctx.queues.push_back(&q);
  ctx.interrupt = &irq;
  ctx.watch_fd = [&](int fd, uint32_t, std::function<void()> cb) {
    if (watched_fd >= 0) return absl::OkStatus();  // the first is the engine's completions
    watched_fd = fd;
    on_ready = std::move(cb);
    return absl::OkStatus();
  };
  REQUIRE(device.Activate(ctx).ok());
  INFO("engine " << device.engine_name() << ", " << queues << " queue(s)");
  if (aio == BlockDevice::Aio::kThreads) CHECK(std::string(device.engine_name()) == "threads");
  REQUIRE(watched_fd >= 0);
  auto header = [&](uint32_t type, uint64_t sector) {
    uint8_t h[16] = {};
    std::memcpy(h, &type, 4);
    std::memcpy(h + 8, &sector, 8);
    return vq.AllocBytes(absl::Span<const uint8_t>(h, 16));
  };
  auto status = [&] {
    uint64_t s = vq.Alloc(1);
    vq.WriteBytes(s, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>("\xff"), 1));
    return s;
  };
  // Waits for the completion eventfd and lets the device finish its requests.
  auto complete = [&](int want) {
    for (int i = 0; i < 1000 && vq.PendingUsed() < want; ++i) {
      pollfd p{watched_fd, POLLIN, 0};
      if (poll(&p, 1, 10) == 1) on_ready();
    }
    REQUIRE(vq.PendingUsed() == want);
  };
  uint64_t data = vq.Alloc(1024), s1 = status();
  uint64_t wdata = vq.AllocBytes(std::string(512, 'z')), s2 = status(), s3 = status();
  vq.AddChain({{header(kIn, 2), 16, false}, {data, 1024, true}, {s1, 1, true}});
  vq.AddChain({{header(kOut, 40), 16, false}, {wdata, 512, false}, {s2, 1, true}});
  vq.AddChain({{header(kFlush, 0), 16, false}, {s3, 1, true}});
  device.ProcessQueue(qi);
  complete(3);
  CHECK(device.counters().async_ops == 3);
  std::map<uint32_t, uint32_t> lens;
  while (auto used = vq.TakeUsed()) lens[used->id] = used->len;
  CHECK(vq.ReadBytes(s1, 1)[0] == 0);
  CHECK(vq.ReadBytes(s2, 1)[0] == 0);
  CHECK(vq.ReadBytes(s3, 1)[0] == 0);
  CHECK(vq.ReadString(data, 1) == "C");
  CHECK(vq.ReadString(data + 1023, 1) == "D");
  CHECK(irq.used >= 1);
  std::ifstream in(path, std::ios::binary);
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(file[40 * 512] == 'z');
  CHECK(file[41 * 512] == 'A' + 41 % 26);
  // Reset waits for whatever is still in flight before it returns.
  device.Reset();
  unlink(path.c_str());
}

// A disk in memory with rate limits, whose throttle timer the test drives.
BlockDevice::Options Limited(const IoLimits& limits) {
  BlockDevice::Options options;
  options.limits = limits;
  return options;
}

TEST_CASE("virtio-blk: requests over the rate limit wait on the ring, then complete",
          "[virtio_blk][throttle]") {
  IoLimits limits;
  limits.in.ops = {20, 1};  // 20 reads a second, one at a time
  Fixture disk(Limited(limits));
  for (uint64_t i = 0; i < 5; ++i) disk.AddRead(i);
  disk.device->ProcessQueue(0);
  CHECK(disk.vq->PendingUsed() == 1);   // the burst
  CHECK(disk.queue.next_avail() == 1);  // the rest are still the driver's, on the ring
  CHECK(disk.device->throttled() == 1);
  // Notifications while the queue rests change nothing.
  disk.device->ProcessQueue(0);
  CHECK(disk.vq->PendingUsed() == 1);
  double took = disk.CompleteAll(5);  // four more at 50 ms each
  CHECK(took >= 0.15);
  CHECK(took < 2.0);
  CHECK(disk.device->counters().reads == 5);
  CHECK(disk.device->counters().errors == 0);
  CHECK(disk.device->throttled_ns() >= 150'000'000);
}

TEST_CASE("virtio-blk: a new limit takes effect at once, from any thread",
          "[virtio_blk][throttle]") {
  IoLimits limits;
  limits.in.ops = {1, 1};  // one read a second
  Fixture disk(Limited(limits));
  for (uint64_t i = 0; i < 4; ++i) disk.AddRead(i);
  disk.device->ProcessQueue(0);
  REQUIRE(disk.vq->PendingUsed() == 1);
  std::thread([&] { disk.device->SetLimits(IoLimits{}); }).join();
  CHECK(disk.device->limits() == IoLimits{});
  CHECK(disk.CompleteAll(4) < 0.5);  // not the 3 s the old limit wanted
}

TEST_CASE("virtio-blk: writes are charged by their data, reads limits leave them alone",
          "[virtio_blk][throttle]") {
  IoLimits limits;
  limits.in.ops = {1, 1};
  limits.out.bytes = {1 << 20, 4096};
  Fixture disk(Limited(limits));
  // Three 1 KiB writes fit in the 4 KiB burst; the reads' limit is not theirs.
  for (int i = 0; i < 3; ++i) {
    disk.vq->AddChain({{disk.Header(kOut, 8 + i * 2), 16, false},
                       {disk.vq->AllocBytes(std::string(1024, 'w')), 1024, false},
                       {disk.vq->Alloc(1), 1, true}});
  }
  disk.device->ProcessQueue(0);
  CHECK(disk.vq->PendingUsed() == 3);
  CHECK(disk.device->throttled() == 0);
}

// What a restore brings along besides the device state: guest RAM.
void CopyRam(const GuestMemory& from, const GuestMemory& to) {
  auto a = from.GetSlice(GuestAddress{0}, 4 << 20);
  auto b = to.GetSlice(GuestAddress{0}, 4 << 20);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  std::memcpy(b->data(), a->data(), a->size());
}

// A disk image whose sector i is filled with 'A' + i % 26.
std::string MakeImage(const std::string& name) {
  std::string path = "/tmp/mote-blk-" + name + "-" + std::to_string(getpid()) + ".img";
  std::ofstream out(path, std::ios::binary);
  for (int sector = 0; sector < 64; ++sector)
    out << std::string(512, static_cast<char>('A' + sector % 26));
  return path;
}

TEST_CASE("virtio-blk Quiesce completes the requests in the engine", "[virtio_blk][snapshot]") {
  auto aio = GENERATE(BlockDevice::Aio::kIoUring, BlockDevice::Aio::kThreads);
  std::string path = MakeImage("quiesce");
  auto backend = FileBackend::Open(path, false, false);
  REQUIRE(backend.ok());
  BlockDevice::Options options;
  options.aio = aio;
  BlockDevice device(std::move(*backend), options);
  auto mem = std::move(*GuestMemory::Create({{0, 4 << 20}}));
  Queue queue(16);
  TestVirtqueue vq(*mem, 16);
  vq.Configure(queue);
  FakeInterrupt irq;
  std::function<void()> on_ready;
  ActivationContext ctx;
  ctx.mem = mem.get();
  ctx.queues = {&queue};
  ctx.interrupt = &irq;
  ctx.watch_fd = [&](int, uint32_t, std::function<void()> cb) {
    on_ready = std::move(cb);  // never called before Quiesce: the loop is not running
    return absl::OkStatus();
  };
  REQUIRE(device.Activate(ctx).ok());
  INFO("engine " << device.engine_name());
  auto header = [&](uint32_t type, uint64_t sector) {
    uint8_t h[16] = {};
    std::memcpy(h, &type, 4);
    std::memcpy(h + 8, &sector, 8);
    return vq.AllocBytes(absl::Span<const uint8_t>(h, 16));
  };
  auto status = [&] {
    uint64_t s = vq.Alloc(1);
    vq.WriteBytes(s, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>("\xff"), 1));
    return s;
  };
  uint64_t data = vq.Alloc(1024), s1 = status();
  uint64_t wdata = vq.AllocBytes(std::string(512, 'q')), s2 = status(), s3 = status();
  uint16_t read = vq.AddChain({{header(kIn, 2), 16, false}, {data, 1024, true}, {s1, 1, true}});
  uint16_t write = vq.AddChain({{header(kOut, 40), 16, false}, {wdata, 512, false}, {s2, 1, true}});
  uint16_t flush = vq.AddChain({{header(kFlush, 0), 16, false}, {s3, 1, true}});
  device.ProcessQueue(0);
  REQUIRE(device.counters().async_ops == 3);
  CHECK(vq.PendingUsed() == 0);  // in the engine until the loop reaps them

  device.Quiesce();
  REQUIRE(vq.PendingUsed() == 3);
  std::map<uint32_t, uint32_t> lens;
  while (auto used = vq.TakeUsed()) lens[used->id] = used->len;
  CHECK(lens == std::map<uint32_t, uint32_t>{{read, 1025}, {write, 1}, {flush, 1}});
  CHECK(vq.ReadBytes(s1, 1)[0] == 0);
  CHECK(vq.ReadBytes(s2, 1)[0] == 0);
  CHECK(vq.ReadBytes(s3, 1)[0] == 0);
  CHECK(vq.ReadString(data, 1) == "C");
  CHECK(vq.ReadString(data + 1023, 1) == "D");
  CHECK(irq.used == 1);
  CHECK(device.counters().reads == 1);
  CHECK(device.counters().writes == 1);
  // Nothing is left for a second Quiesce or for the loop's completion callback.
  device.Quiesce();
  if (on_ready) on_ready();
  CHECK(vq.UsedIdx() == 3);
  CHECK(irq.used == 1);
  device.Reset();
  unlink(path.c_str());
}

TEST_CASE("virtio-blk behind virtio-mmio: saved with a request in flight, restored, runs on",
          "[virtio_blk][snapshot]") {
  auto aio = GENERATE(BlockDevice::Aio::kIoUring, BlockDevice::Aio::kThreads);
  std::string path = MakeImage("restore");
  BlockDevice::Options options;
  options.aio = aio;
  // The rings, where the driver put them, and the data area after them.
  constexpr uint64_t kDesc = 0x10000, kAvail = 0x11000, kUsed = 0x12000;
  auto mem1 = std::move(*GuestMemory::Create({{0, 4 << 20}}));
  auto mem2 = std::move(*GuestMemory::Create({{0, 4 << 20}}));
  auto loop1 = std::move(*EventLoop::Create());
  auto loop2 = std::move(*EventLoop::Create());
  auto backend1 = FileBackend::Open(path, false, false);
  // The restored device's process would lock the image once the first let go.
  auto backend2 = FileBackend::Open(path, false, false, ImageLocking::kOff);
  REQUIRE(backend1.ok());
  REQUIRE(backend2.ok());
  auto device1 = std::make_shared<BlockDevice>(std::move(*backend1), options);
  auto device2 = std::make_shared<BlockDevice>(std::move(*backend2), options);
  auto t1 = MmioTransport::Create(device1, mem1.get(), loop1.get());
  auto t2 = MmioTransport::Create(device2, mem2.get(), loop2.get());
  REQUIRE(t1.ok());
  REQUIRE(t2.ok());
  auto write32 = [](MmioTransport& t, uint64_t offset, uint32_t v) {
    t.Write(offset, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  };
  // The driver brings up queue 0 with VERSION_1 only.
  MmioTransport& driver = **t1;
  write32(driver, 0x070, 1 | 2);
  write32(driver, 0x024, 1);
  write32(driver, 0x020, 1);
  write32(driver, 0x070, 1 | 2 | 8);
  write32(driver, 0x030, 0);
  write32(driver, 0x038, 16);
  write32(driver, 0x080, kDesc);
  write32(driver, 0x090, kAvail);
  write32(driver, 0x0a0, kUsed);
  write32(driver, 0x044, 1);
  write32(driver, 0x070, 1 | 2 | 8 | 4);
  REQUIRE(driver.status() == (1 | 2 | 8 | 4));

  TestVirtqueue vq(*mem1, 16, {kDesc, kAvail, kUsed, 0x20000, 0x100000});
  auto header = [&](uint32_t type, uint64_t sector) {
    uint8_t h[16] = {};
    std::memcpy(h, &type, 4);
    std::memcpy(h + 8, &sector, 8);
    return vq.AllocBytes(absl::Span<const uint8_t>(h, 16));
  };
  // A write the device has taken (it is in the engine at the save), then
  // a read of the same sector the device has not seen yet.
  uint64_t wdata = vq.AllocBytes(std::string(512, 'm')), s1 = vq.Alloc(1);
  vq.AddChain({{header(kOut, 7), 16, false}, {wdata, 512, false}, {s1, 1, true}});
  device1->ProcessQueue(0);  // as the loop thread would; the loop is not running
  REQUIRE(device1->counters().async_ops == 1);
  REQUIRE(vq.UsedIdx() == 0);
  uint64_t rdata = vq.Alloc(512), s2 = vq.Alloc(1);
  vq.AddChain({{header(kIn, 7), 16, false}, {rdata, 512, true}, {s2, 1, true}});

  StateWriter out;
  (*t1)->SaveState(out);
  CHECK(vq.UsedIdx() == 1);  // the write completed before its state was taken
  CHECK(vq.ReadBytes(s1, 1)[0] == 0);
  CopyRam(*mem1, *mem2);

  StateReader in(out.bytes(), "virtio-mmio");
  REQUIRE((*t2)->RestoreState(in).ok());
  CHECK((*t2)->status() == (1 | 2 | 8 | 4));
  // The restored device is activated and notified: it finds the read.
  std::thread runner([&] { REQUIRE(loop2->Run().ok()); });
  // The loop thread publishes used idx with an atomic store, as a driver reads it.
  auto used_idx = [&] {
    auto slice = mem2->GetSlice(GuestAddress{kUsed + 2}, 2);
    REQUIRE(slice.ok());
    return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(slice->data()))
        .load(std::memory_order_acquire);
  };
  for (int i = 0; i < 2000 && used_idx() < 2; ++i) usleep(1000);
  loop2->Stop();
  runner.join();
  INFO("engine " << device2->engine_name());
  CHECK(used_idx() == 2);
  uint8_t status = 0xff;
  REQUIRE(mem2->Read(GuestAddress{s2}, absl::MakeSpan(&status, 1)).ok());
  CHECK(status == 0);
  std::vector<uint8_t> back(512);
  REQUIRE(mem2->Read(GuestAddress{rdata}, absl::MakeSpan(back)).ok());
  CHECK(back == std::vector<uint8_t>(512, 'm'));
  CHECK(device2->counters().reads == 1);
  unlink(path.c_str());
}

TEST_CASE("FileBackend opens, checks and serves an image file", "[virtio_blk]") {
  std::string path = "/tmp/mote-blk-test-" + std::to_string(getpid()) + ".img";
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(4096, 'x');
  }
  auto backend = FileBackend::Open(path, false, false);
  REQUIRE(backend.ok());
  CHECK((*backend)->size() == 4096);
  std::string data(512, 'y');
  REQUIRE((*backend)
              ->WriteAt(512, absl::Span<const uint8_t>(
                                 reinterpret_cast<const uint8_t*>(data.data()), 512))
              .ok());
  REQUIRE((*backend)->Flush().ok());
  uint8_t back[512];
  REQUIRE((*backend)->ReadAt(512, absl::Span<uint8_t>(back, 512)).ok());
  CHECK(back[0] == 'y');
  REQUIRE((*backend)->Discard(1024, 512).ok());
  REQUIRE((*backend)->ReadAt(1024, absl::Span<uint8_t>(back, 512)).ok());
  CHECK(back[0] == 0);
  auto direct = FileBackend::Open(path, true, true);
  if (direct.ok()) {  // tmpfs has no O_DIRECT; other filesystems do
    REQUIRE((*direct)->ReadAt(512, absl::Span<uint8_t>(back, 512)).ok());
    CHECK(back[511] == 'y');
  }
  {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << "odd";
  }
  auto odd = FileBackend::Open(path, false, false);
  CHECK(odd.status().message().find("not a multiple of 512") != absl::string_view::npos);
  unlink(path.c_str());
  CHECK(absl::IsNotFound(FileBackend::Open(path, false, false).status()));
  CHECK(FileBackend::Open("/tmp", false, false).status().message().find("/tmp") !=
        absl::string_view::npos);
}

}  // namespace
}  // namespace mote::virtio
