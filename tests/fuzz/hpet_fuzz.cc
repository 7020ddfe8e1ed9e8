// Fuzz target: the HPET (devices/hpet.cc) over its whole MMIO window, with the
// clock advancing and host timer callbacks (due, early, stale or for timers
// that do not exist) interleaved as the input says. Beyond the sanitizers it
// checks that the device never floods: each step makes at most one host call
// per timer and a bounded number of line changes, and never arms a deadline
// that is not in the future (a host would spin on it).
// Input: u32 the requested Tn_INT_ROUTE_CAP, then steps, each a u8 action:
//   0-3: a register access (TakeAccess over 0..0x3ff),
//   4: u32 n, u8 s: the clock advances n << (s % 31) ns,
//   5: i8 t: OnTimerDeadline(t), whatever is armed,
//   6: the host calls back every timer whose armed deadline has passed,
//   7: Reset().
#include <array>
#include <cstdlib>

#include "devices/hpet.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/fakes.h"

using namespace mote;

namespace {

class FuzzHost : public HpetHost {
 public:
  explicit FuzzHost(const Clock* clock) : clock_(clock) { deadline.fill(absl::InfiniteFuture()); }
  void Arm(int timer, absl::Time when) override {
    if (timer < 0 || timer >= Hpet::kNumTimers || when <= clock_->Now()) abort();
    deadline[timer] = when;
    ++calls;
  }
  void Disarm(int timer) override {
    if (timer < 0 || timer >= Hpet::kNumTimers) abort();
    deadline[timer] = absl::InfiniteFuture();
    ++calls;
  }
  std::array<absl::Time, Hpet::kNumTimers> deadline;
  int calls = 0;

 private:
  const Clock* clock_;
};

class CountingLine : public IrqLine {
 public:
  void SetLevel(bool) override { ++changes; }
  int changes = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  testing::FakeClock clock(absl::FromUnixSeconds(1'700'000'000));
  FuzzHost host(&clock);
  std::array<CountingLine, Hpet::kIoapicPins> lines;
  Hpet::IrqPins pins{};
  for (int i = 0; i < Hpet::kIoapicPins; ++i) pins[i] = &lines[i];
  uint32_t route_cap = in.Take<uint32_t>();
  auto hpet = std::make_shared<Hpet>(&clock, &host, pins, route_cap);
  Bus bus("mmio");
  constexpr uint64_t kBase = 0xfed00000;
  if (!bus.Insert(hpet, kBase, Hpet::kMmioSize).ok()) abort();
  auto line_changes = [&] {
    int n = 0;
    for (const CountingLine& line : lines) n += line.changes;
    return n;
  };
  for (int step = 0; step < 8192 && !in.empty(); ++step) {
    int calls_before = host.calls;
    int changes_before = line_changes();
    int callbacks = 1;
    uint8_t action = in.Take<uint8_t>() % 8;
    if (action < 4) {
      fuzz::Perform(bus, fuzz::TakeAccess(in, kBase, Hpet::kMmioSize));
    } else if (action == 4) {
      uint32_t n = in.Take<uint32_t>();
      uint8_t shift = in.Take<uint8_t>() % 31;
      clock.now += absl::Nanoseconds(static_cast<int64_t>(n) << shift);
    } else if (action == 5) {
      hpet->OnTimerDeadline(in.Take<int8_t>());
    } else if (action == 6) {
      callbacks = 0;
      for (int t = 0; t < Hpet::kNumTimers; ++t) {
        if (host.deadline[t] > clock.now) continue;
        host.deadline[t] = absl::InfiniteFuture();
        hpet->OnTimerDeadline(t);
        ++callbacks;
      }
    } else {
      hpet->Reset();
    }
    // One Settle per device call: a host call per timer at most, and per
    // timer a pulse (2 changes) or a level change on two pins (a route move).
    if (host.calls - calls_before > Hpet::kNumTimers * callbacks) abort();
    if (line_changes() - changes_before > 4 * Hpet::kNumTimers * callbacks) abort();
  }
  return 0;
}
