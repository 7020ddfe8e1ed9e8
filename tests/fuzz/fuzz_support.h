// Shared by the libFuzzer targets in tests/fuzz/: each target turns its input
// into what a hostile guest or client could do to the real code (register
// accesses, ring contents, files, socket bytes) and checks only that nothing
// crashes, hangs, leaks or reads out of bounds; the sanitizers do the
// checking. Single-threaded, like libFuzzer's driver.
#ifndef MOTE_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define MOTE_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "virtio/queue.h"
#include "vmm/base/bus.h"
#include "vmm/base/event_loop.h"
#include "vmm/base/guest_memory.h"
#include "vmm/base/logging.h"

namespace mote::fuzz {

// Guest RAM for ring fuzzing: two regions with a hole between them, so chains
// that straddle regions or point into the hole are reachable.
inline constexpr uint64_t kRamLow = 0, kRamLowSize = 64 << 10;
inline constexpr uint64_t kRamHigh = 1 << 20, kRamHighSize = 64 << 10;
// Where RingMemory places the rings of a queue (any size up to 256 fits).
inline constexpr uint64_t kDescTable = 0x1000, kAvailRing = 0x2000, kUsedRing = 0x3000;

// Quiet logs: a fuzzer drives every error path millions of times.
// MOTE_FUZZ_LOG=debug (or another level) shows them when replaying a crash.
inline void QuietLogs() {
  static bool done = [] {
    const char* level = std::getenv("MOTE_FUZZ_LOG");
    InitLogging(level != nullptr ? level : "off");
    return true;
  }();
  (void)done;
}

inline std::unique_ptr<GuestMemory> MakeRam() {
  auto mem = GuestMemory::Create({{kRamLow, kRamLowSize}, {kRamHigh, kRamHighSize}});
  if (!mem.ok()) abort();
  return std::move(*mem);
}

// The input, read front to back in little-endian fields; reads past the end
// give zeros. A fixed layout (unlike FuzzedDataProvider's) lets
// make_seeds.py write meaningful seeds.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  template <typename T>
  T Take() {
    T value{};
    size_t n = std::min(sizeof(T), size_ - std::min(pos_, size_));
    if (n > 0) std::memcpy(&value, data_ + pos_, n);
    pos_ += sizeof(T);
    return value;
  }
  std::vector<uint8_t> TakeBytes(size_t n) {
    size_t start = std::min(pos_, size_);
    size_t end = std::min(size_, start + n);
    pos_ = start + n;
    return std::vector<uint8_t>(data_ + start, data_ + end);
  }
  std::vector<uint8_t> Rest() { return TakeBytes(size_ - std::min(pos_, size_)); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Ring inputs start with a 6-byte header, then guest RAM:
//   u8 log2(queue size) (mod 10), u8 flags (1: EVENT_IDX, 2: INDIRECT_DESC),
//   u16 the device's starting avail/used index, u8 a count (how many rounds
//   to run), u8 option bits for the device under test; then low RAM from
//   kDescTable (rings, then data) and high RAM.
struct RingHeader {
  uint16_t size = 1;
  bool event_idx = false;
  bool indirect = false;
  uint16_t start = 0;
  uint8_t count = 0;
  uint8_t options = 0;
};

inline RingHeader TakeRingHeader(Input& in) {
  RingHeader h;
  h.size = static_cast<uint16_t>(1u << (in.Take<uint8_t>() % 10));
  uint8_t flags = in.Take<uint8_t>();
  h.event_idx = flags & 1;
  h.indirect = flags & 2;
  h.start = in.Take<uint16_t>();
  h.count = in.Take<uint8_t>();
  h.options = in.Take<uint8_t>();
  return h;
}

// A queue as a transport would configure it, rings at kDescTable.
inline void ConfigureQueue(virtio::Queue& queue, const RingHeader& h) {
  queue.set_size(h.size);
  queue.set_desc_table(kDescTable);
  queue.set_avail_ring(kAvailRing);
  queue.set_used_ring(kUsedRing);
  queue.set_event_idx(h.event_idx);
  queue.set_indirect(h.indirect);
  queue.RestoreIndices(h.start, h.start);
  queue.set_ready(true);
}

// What a guest driver (or a malicious one) left in memory before notifying:
// low RAM from kDescTable, then high RAM.
inline void FillRam(const GuestMemory& mem, Input& in) {
  std::vector<uint8_t> low = in.TakeBytes(kRamLowSize - kDescTable);
  (void)mem.Write(GuestAddress{kDescTable}, low);
  std::vector<uint8_t> high = in.TakeBytes(kRamHighSize);
  (void)mem.Write(GuestAddress{kRamHigh}, high);
}

// One register access of a guest: where, how wide, and (for writes) what.
struct Access {
  bool write = false;
  uint64_t addr = 0;
  size_t width = 1;
  uint64_t value = 0;
};

// An access inside [base, base + span): u8 op (bit 0 write, bits 1-3 pick a
// width: 1, 2, 4, 8, or an odd 3, 5, 6, 7 that no exit makes but a device
// must survive anyway), u32 offset (mod span), and for writes a u64 value.
inline Access TakeAccess(Input& in, uint64_t base, uint64_t span) {
  static constexpr size_t kWidths[] = {1, 2, 4, 8, 3, 5, 6, 7};
  Access a;
  uint8_t op = in.Take<uint8_t>();
  a.write = op & 1;
  a.width = kWidths[(op >> 1) & 7];
  a.addr = base + (span ? in.Take<uint32_t>() % span : 0);
  if (a.write) a.value = in.Take<uint64_t>();
  return a;
}

// Performs `a` on a device or bus with Read/Write(addr, span).
template <typename Target>
void Perform(Target& target, const Access& a) {
  uint8_t bytes[8];
  if (a.write) {
    std::memcpy(bytes, &a.value, sizeof(bytes));
    target.Write(a.addr, absl::Span<const uint8_t>(bytes, a.width));
  } else {
    target.Read(a.addr, absl::Span<uint8_t>(bytes, a.width));
  }
}

inline std::unique_ptr<EventLoop> MakeLoop() {
  auto loop = EventLoop::Create();
  if (!loop.ok()) abort();
  return std::move(*loop);
}

// Lets the loop handle everything that is ready now (queue notifications,
// socket input), then returns.
inline void RunLoopOnce(EventLoop& loop) {
  loop.Post([&loop] { loop.Stop(); });
  (void)loop.Run();
}

}  // namespace mote::fuzz

#endif  // MOTE_TESTS_FUZZ_FUZZ_SUPPORT_H_
