// Fuzz target: virtio-net transmit and receive (virtio/net.cc) on one end of
// a SOCK_SEQPACKET pair that plays the TAP. Transmit chains of any shape
// (headers split or missing, frames over the limit) go out; frames of any
// length come in, with and without mergeable receive buffers, into receive
// chains of any shape.
// Input: the ring header (fuzz_support.h; options bit 0: mergeable receive
// buffers, bit 1: the offload features a TAP would get), u8 frame count,
// each frame as u16 length (mod 4096) and its bytes, then guest RAM. The
// receive queue's rings are at kDescTable, the transmit queue's at kTxRings.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>

#include "tests/fuzz/fuzz_support.h"
#include "tests/support/test_virtqueue.h"
#include "virtio/net.h"

using namespace mote;

namespace {

constexpr uint64_t kTxRings = 0x4000;

void Drain(int fd) {
  static uint8_t sink[70000];
  while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  fuzz::RingHeader header = fuzz::TakeRingHeader(in);
  std::vector<std::vector<uint8_t>> frames(in.Take<uint8_t>() % 16);
  for (auto& frame : frames) frame = in.TakeBytes(in.Take<uint16_t>() % 4096);

  auto mem = fuzz::MakeRam();
  virtio::Queue rx(virtio::NetDevice::kQueueSize), tx(virtio::NetDevice::kQueueSize);
  fuzz::ConfigureQueue(rx, header);
  fuzz::ConfigureQueue(tx, header);
  tx.set_desc_table(kTxRings);
  tx.set_avail_ring(kTxRings + 0x1000);
  tx.set_used_ring(kTxRings + 0x2000);
  fuzz::FillRam(*mem, in);
  if (!rx.Validate(*mem).ok() || !tx.Validate(*mem).ok()) return 0;

  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) abort();
  FileDescriptor peer(fds[1]);
  std::function<absl::Status(unsigned)> set_offload;
  if (header.options & 2) set_offload = [](unsigned) { return absl::OkStatus(); };
  virtio::NetDevice device(FileDescriptor(fds[0]), {0x52, 0x54, 0, 0x12, 0x34, 0x56}, set_offload);
  virtio::testing::FakeInterrupt interrupt;
  std::function<void()> on_packets;
  virtio::ActivationContext ctx;
  ctx.mem = mem.get();
  ctx.queues = {&rx, &tx};
  ctx.interrupt = &interrupt;
  ctx.features = device.AvailableFeatures();
  if (!(header.options & 1)) ctx.features &= ~virtio::NetDevice::kFeatureMrgRxbuf;
  ctx.watch_fd = [&on_packets](int, uint32_t, std::function<void()> ready) {
    on_packets = std::move(ready);
    return absl::OkStatus();
  };
  if (!device.Activate(ctx).ok()) return 0;

  device.ProcessQueue(1);  // transmit what the guest queued
  Drain(peer.get());
  for (const auto& frame : frames) (void)!send(peer.get(), frame.data(), frame.size(), 0);
  if (on_packets) on_packets();  // receive into the guest's buffers
  device.ProcessQueue(0);        // the guest added receive buffers
  uint8_t config[8];
  for (uint64_t offset = 0; offset < 32; offset += 4) device.ReadConfig(offset, config);
  device.Reset();
  return 0;
}
