// The virtio devices the transport fuzz targets put behind a transport, so a
// script of register accesses can drive a real device all the way: blk on
// an in-memory disk, net on a socket pair, rng with a fixed byte pattern.
#ifndef MOTE_TESTS_FUZZ_FUZZ_DEVICES_H_
#define MOTE_TESTS_FUZZ_FUZZ_DEVICES_H_

#include <sys/socket.h>

#include <cstdlib>
#include <memory>

#include "tests/fuzz/fuzz_support.h"
#include "virtio/block.h"
#include "virtio/block_backend.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "vmm/base/fd.h"

namespace mote::fuzz {

struct FuzzDevice {
  std::shared_ptr<virtio::VirtioDevice> device;
  FileDescriptor peer;  // net: the TAP's end, which nobody reads (frames pile up, then drop)
};

// kind % 3: 0 blk, 1 net, 2 rng.
inline FuzzDevice MakeDevice(uint8_t kind) {
  FuzzDevice d;
  switch (kind % 3) {
    case 0:
      d.device = std::make_shared<virtio::BlockDevice>(
          std::make_unique<virtio::MemoryBackend>(64 * 512), virtio::BlockDevice::Options{});
      break;
    case 1: {
      int fds[2];
      if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) abort();
      d.peer = FileDescriptor(fds[1]);
      d.device = std::make_shared<virtio::NetDevice>(
          FileDescriptor(fds[0]), virtio::NetDevice::Mac{0x52, 0x54, 0, 1, 2, 3}, nullptr);
      break;
    }
    default:
      d.device = std::make_shared<virtio::RngDevice>([](absl::Span<uint8_t> out) {
        for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i);
        return true;
      });
  }
  return d;
}

// What a transport target starts from: the device the input's first byte
// picks, guest RAM and an event loop for queue notifications.
struct TransportBench {
  explicit TransportBench(Input& in)
      : device(MakeDevice(in.Take<uint8_t>())), mem(MakeRam()), loop(MakeLoop()) {}
  FuzzDevice device;
  std::unique_ptr<GuestMemory> mem;
  std::unique_ptr<EventLoop> loop;
};

// Runs a script of guest actions, each a u8 action (mod 8) and its fields:
//   0-5  a register access: TakeAccess(in, base, span), done by `access`
//   6    a RAM write: u16 address in low RAM, u8 length, the bytes (rings
//        and buffers for the device to find)
//   7    the event loop runs once (queue notifications reach the device)
// At most `max_steps` actions, so no input runs for long.
template <typename AccessFn>
void RunScript(Input& in, const GuestMemory& mem, EventLoop& loop, uint64_t base, uint64_t span,
               int max_steps, AccessFn access) {
  for (int step = 0; step < max_steps && !in.empty(); ++step) {
    uint8_t action = in.Take<uint8_t>() % 8;
    if (action < 6) {
      access(TakeAccess(in, base, span));
    } else if (action == 6) {
      uint16_t gpa = in.Take<uint16_t>();
      std::vector<uint8_t> bytes = in.TakeBytes(in.Take<uint8_t>());
      (void)mem.Write(GuestAddress{gpa}, bytes);
    } else {
      RunLoopOnce(loop);
    }
  }
  RunLoopOnce(loop);
}

}  // namespace mote::fuzz

#endif  // MOTE_TESTS_FUZZ_FUZZ_DEVICES_H_
