// Fuzz target: virtio-blk requests (virtio/block.cc) on an in-memory disk:
// headers of any type and sector, data buffers of any shape, missing or
// read-only status bytes, discard/write-zeroes segments, read-only disks.
// Each round the device serves whatever the ring holds; then the config
// space is read at every offset.
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/test_virtqueue.h"
#include "virtio/block.h"
#include "virtio/block_backend.h"

using namespace mote;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  fuzz::RingHeader header = fuzz::TakeRingHeader(in);
  auto mem = fuzz::MakeRam();
  virtio::Queue queue(virtio::BlockDevice::kQueueSize);
  fuzz::ConfigureQueue(queue, header);
  fuzz::FillRam(*mem, in);
  if (!queue.Validate(*mem).ok()) return 0;

  // options bit 0: read-only disk; bit 1: a serial number for GET_ID.
  virtio::BlockDevice::Options options;
  options.readonly = header.options & 1;
  if (header.options & 2) options.serial = "fuzz-serial-01234567";
  virtio::BlockDevice device(std::make_unique<virtio::MemoryBackend>(64 * 512), options);
  virtio::testing::FakeInterrupt interrupt;
  virtio::ActivationContext ctx;
  ctx.mem = mem.get();
  ctx.queues = {&queue};
  ctx.interrupt = &interrupt;
  ctx.features = device.AvailableFeatures();
  if (!device.Activate(ctx).ok()) return 0;
  int rounds = 1 + header.count % 4;
  for (int i = 0; i < rounds; ++i) device.ProcessQueue(0);
  uint8_t config[8];
  for (uint64_t offset = 0; offset < 80; offset += 8) device.ReadConfig(offset, config);
  device.Reset();
  return 0;
}
