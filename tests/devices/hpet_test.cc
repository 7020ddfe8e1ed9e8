#include "devices/hpet.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "tests/support/fakes.h"

namespace mote {
namespace {

using testing::FakeClock;

// Registers and bits, as a guest driver spells them.
constexpr uint64_t kCap = 0x000, kConfig = 0x010, kStatus = 0x020, kCounter = 0x0f0;
constexpr uint64_t TimerConfig(int n) { return 0x100 + 0x20 * n; }
constexpr uint64_t Comparator(int n) { return 0x108 + 0x20 * n; }
constexpr uint64_t FsbRoute(int n) { return 0x110 + 0x20 * n; }
constexpr uint64_t kEnable = 1, kLegacy = 2;
constexpr uint64_t kLevel = 1 << 1, kIntEnable = 1 << 2, kPeriodic = 1 << 3, kPeriodicCap = 1 << 4,
                   kSize64Cap = 1 << 5, kValSet = 1 << 6, kMode32 = 1 << 8, kFsbEnable = 1 << 14,
                   kFsbCap = 1 << 15;
constexpr uint64_t Route(int pin) { return uint64_t(pin) << 9; }
constexpr uint64_t kRouteField = uint64_t{0x1f} << 9;

// Pins 2, 8 and 20..23: what the tests wire and offer.
constexpr uint32_t kRouteCap = 1u << 2 | 1u << 8 | 0xfu << 20;
constexpr absl::Time kStart = absl::FromUnixSeconds(1000);

absl::Duration Ticks(int64_t n) { return absl::Nanoseconds(10 * n); }

// An IOAPIC pin that counts rising edges (an edge pulse is high then low).
class PinLine : public IrqLine {
 public:
  void SetLevel(bool asserted) override {
    if (asserted && !level) ++rises;
    level = asserted;
  }
  bool level = false;
  int rises = 0;
};

class FakeHost : public HpetHost {
 public:
  FakeHost() { deadline.fill(absl::InfiniteFuture()); }
  void Arm(int timer, absl::Time when) override {
    deadline.at(timer) = when;
    ++arms;
  }
  void Disarm(int timer) override {
    deadline.at(timer) = absl::InfiniteFuture();
    ++disarms;
  }
  void OnLegacyReplacement(bool enabled) override {
    legacy = enabled;
    ++legacy_changes;
  }
  std::array<absl::Time, Hpet::kNumTimers> deadline;
  int arms = 0, disarms = 0, legacy_changes = 0;
  bool legacy = false;
};

// A device with its clock, host and lines (every pin wired).
struct Rig {
  explicit Rig(uint32_t cap = kRouteCap, bool wire_all = true) {
    Hpet::IrqPins pins{};
    for (int i = 0; i < Hpet::kIoapicPins; ++i) {
      if (wire_all || ((cap >> i) & 1) || i == 2 || i == 8) pins[i] = &lines[i];
    }
    hpet = std::make_unique<Hpet>(&clock, &host, pins, cap);
  }

  uint64_t Read64(uint64_t off) {
    uint8_t b[8];
    hpet->Read(off, absl::Span<uint8_t>(b, 8));
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | b[i];
    return v;
  }
  uint32_t Read32(uint64_t off) {
    uint8_t b[4];
    hpet->Read(off, absl::Span<uint8_t>(b, 4));
    return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  }
  void Write(uint64_t off, uint64_t v, size_t width) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    hpet->Write(off, absl::Span<const uint8_t>(b, width));
  }
  void Write64(uint64_t off, uint64_t v) { Write(off, v, 8); }
  void Write32(uint64_t off, uint32_t v) { Write(off, v, 4); }

  // Moves the clock to `until`, calling back each armed deadline on the way,
  // in order, at its time, as a host timer thread would.
  void RunUntil(absl::Time until) {
    for (int guard = 0; guard < 1'000'000; ++guard) {
      int next = -1;
      absl::Time when = until;
      for (int i = 0; i < Hpet::kNumTimers; ++i) {
        if (host.deadline[i] <= when) {
          next = i;
          when = host.deadline[i];
        }
      }
      if (next < 0) break;
      ++callbacks;
      clock.now = std::max(clock.now, when);
      host.deadline[next] = absl::InfiniteFuture();
      hpet->OnTimerDeadline(next);
    }
    clock.now = until;
  }
  void RunFor(absl::Duration d) { RunUntil(clock.now + d); }

  // Halted counter at 0, then enabled (with `extra` config bits).
  void Start(uint64_t extra = 0) { Write64(kConfig, kEnable | extra); }

  FakeClock clock{kStart};
  FakeHost host;
  std::array<PinLine, Hpet::kIoapicPins> lines;
  std::unique_ptr<Hpet> hpet;
  int callbacks = 0;
};

TEST_CASE("HPET capabilities: revision, 3 timers, 64-bit, legacy route, 100 MHz", "[hpet]") {
  Rig rig;
  uint64_t cap = rig.Read64(kCap);
  CHECK((cap & 0xff) == 1);                 // REV_ID
  CHECK(((cap >> 8) & 0x1f) == 2);          // NUM_TIM_CAP: last timer's index
  CHECK(((cap >> 13) & 1) == 1);            // COUNT_SIZE_CAP
  CHECK(((cap >> 14) & 1) == 0);            // reserved
  CHECK(((cap >> 15) & 1) == 1);            // LEG_RT_CAP
  CHECK(((cap >> 16) & 0xffff) == 0x8086);  // VENDOR_ID
  CHECK((cap >> 32) == 10'000'000);         // COUNTER_CLK_PERIOD, fs
  CHECK((cap >> 32) <= 0x05f5e100);         // the spec's ceiling (100 ns)
  CHECK(1'000'000'000'000'000 / (cap >> 32) == Hpet::kFrequencyHz);
  CHECK(static_cast<uint32_t>(cap) == Hpet::kEventTimerBlockId);
  CHECK(rig.Read32(kCap + 4) == 10'000'000);
  rig.Write64(kCap, 0);  // read-only
  CHECK(rig.Read64(kCap) == cap);
  CHECK(rig.Read64(kConfig) == 0);
  CHECK(rig.Read64(kStatus) == 0);
  CHECK(rig.Read64(kCounter) == 0);
  for (int n = 0; n < Hpet::kNumTimers; ++n) {
    uint64_t cfg = rig.Read64(TimerConfig(n));
    CHECK((cfg & kPeriodicCap) != 0);
    CHECK((cfg & kSize64Cap) != 0);
    CHECK((cfg & (kFsbCap | kFsbEnable)) == 0);  // no FSB delivery
    CHECK((cfg & (kIntEnable | kPeriodic | kLevel | kMode32)) == 0);
    CHECK((cfg >> 32) == kRouteCap);  // Tn_INT_ROUTE_CAP
    CHECK(rig.Read64(Comparator(n)) == ~uint64_t{0});
    CHECK(rig.Read64(FsbRoute(n)) == 0);
  }
  // Past the third timer: reserved, reads zero.
  CHECK(rig.Read64(TimerConfig(3)) == 0);
  CHECK(rig.Read64(0x3f8) == 0);
  CHECK(rig.host.arms == 0);
}

TEST_CASE("HPET route cap: pins without a line are not offered", "[hpet]") {
  Rig rig(kRouteCap | 1u << 5, /*wire_all=*/false);
  // Pin 5 is in the requested cap and wired; so the cap stands. Now unwire 20..23.
  Hpet::IrqPins pins{};
  pins[2] = &rig.lines[2];
  pins[8] = &rig.lines[8];
  pins[5] = &rig.lines[5];
  Hpet partial(&rig.clock, &rig.host, pins, kRouteCap | 1u << 5);
  CHECK(partial.route_cap() == (1u << 2 | 1u << 5 | 1u << 8));
  CHECK(rig.hpet->route_cap() == (kRouteCap | 1u << 5));
}

TEST_CASE("HPET main counter counts at 100 MHz only while enabled", "[hpet]") {
  Rig rig;
  rig.RunFor(absl::Seconds(1));
  CHECK(rig.Read64(kCounter) == 0);  // halted at reset
  rig.Start();
  rig.RunFor(absl::Milliseconds(1));
  CHECK(rig.Read64(kCounter) == 100'000);
  rig.RunFor(absl::Nanoseconds(15));  // 1.5 ticks: counts whole ticks
  CHECK(rig.Read64(kCounter) == 100'001);
  rig.RunFor(absl::Nanoseconds(5));
  CHECK(rig.Read64(kCounter) == 100'002);
  rig.Write64(kConfig, 0);
  rig.RunFor(absl::Seconds(3));
  CHECK(rig.Read64(kCounter) == 100'002);  // halted keeps its value
  rig.Write64(kConfig, kEnable);
  rig.RunFor(absl::Seconds(2));
  CHECK(rig.Read64(kCounter) == 100'002 + 2 * Hpet::kFrequencyHz);
  // Reserved configuration bits read as zero.
  rig.Write64(kConfig, ~uint64_t{0});
  CHECK(rig.Read64(kConfig) == (kEnable | kLegacy));
}

TEST_CASE("HPET main counter is writable while halted, in halves or whole", "[hpet]") {
  Rig rig;
  rig.Write64(kCounter, 0x1234'5678'9abc'def0);
  CHECK(rig.Read64(kCounter) == 0x1234'5678'9abc'def0);
  rig.Write32(kCounter + 4, 0x0000'0042);  // high half only
  CHECK(rig.Read64(kCounter) == 0x0000'0042'9abc'def0);
  rig.Write32(kCounter, 0x10);  // low half only
  CHECK(rig.Read64(kCounter) == 0x0000'0042'0000'0010);
  rig.Start();
  rig.RunFor(Ticks(7));
  CHECK(rig.Read64(kCounter) == 0x0000'0042'0000'0017);
  // Written while running (the spec says not to; hardware takes it): it
  // counts on from the new value.
  rig.Write64(kCounter, 1000);
  rig.RunFor(Ticks(5));
  CHECK(rig.Read64(kCounter) == 1005);
  // 64-bit wrap of the counter itself.
  rig.Write64(kConfig, 0);
  rig.Write64(kCounter, ~uint64_t{0} - 1);
  rig.Start();
  rig.RunFor(Ticks(3));
  CHECK(rig.Read64(kCounter) == 1);
}

TEST_CASE("HPET one-shot timer fires once when the counter reaches the comparator", "[hpet]") {
  Rig rig;
  rig.Write64(TimerConfig(0), kIntEnable | Route(20));
  rig.Write64(Comparator(0), 1000);
  CHECK(rig.host.deadline[0] == absl::InfiniteFuture());  // counter halted: nothing to arm
  rig.Start();
  CHECK(rig.host.deadline[0] == kStart + Ticks(1000));
  rig.RunFor(Ticks(999));
  CHECK(rig.lines[20].rises == 0);
  rig.RunFor(Ticks(1));
  CHECK(rig.lines[20].rises == 1);
  CHECK_FALSE(rig.lines[20].level);  // edge: a pulse
  CHECK(rig.Read64(kStatus) == 0);   // edge mode sets no status
  rig.RunFor(absl::Seconds(100));
  CHECK(rig.lines[20].rises == 1);  // 64-bit: not again
  CHECK(rig.host.deadline[0] == absl::InfiniteFuture());
  CHECK(rig.Read64(Comparator(0)) == 1000);  // one-shot leaves it alone
  CHECK(rig.callbacks == 1);
  // A new comparator ahead of the counter arms it again.
  uint64_t now = rig.Read64(kCounter);
  rig.Write64(Comparator(0), now + 50);
  CHECK(rig.host.deadline[0] == rig.clock.now + Ticks(50));
  rig.RunFor(Ticks(50));
  CHECK(rig.lines[20].rises == 2);
}

TEST_CASE("HPET: a comparator behind the counter or an early callback fires nothing", "[hpet]") {
  Rig rig;
  rig.Write64(kCounter, 5000);
  rig.Write64(TimerConfig(1), kIntEnable | Route(21));
  rig.Write64(Comparator(1), 4000);  // already passed, 64-bit: never
  rig.Start();
  CHECK(rig.host.deadline[1] == absl::InfiniteFuture());
  rig.Write64(Comparator(1), 6000);
  CHECK(rig.host.deadline[1] == kStart + Ticks(1000));
  // The host calls back early (another clock, a stale arm): nothing happens
  // and the deadline is re-armed.
  rig.RunFor(Ticks(400));
  rig.host.deadline[1] = absl::InfiniteFuture();
  rig.hpet->OnTimerDeadline(1);
  CHECK(rig.lines[21].rises == 0);
  CHECK(rig.host.deadline[1] == kStart + Ticks(1000));
  // Callbacks for timers that do not exist are ignored.
  rig.hpet->OnTimerDeadline(-1);
  rig.hpet->OnTimerDeadline(3);
  rig.hpet->OnTimerDeadline(1 << 30);
  // The counter rewritten meanwhile: the deadline follows it.
  rig.Write64(kConfig, 0);
  CHECK(rig.host.deadline[1] == absl::InfiniteFuture());  // halted: disarmed
  rig.Write64(kCounter, 5900);
  rig.Start();
  CHECK(rig.host.deadline[1] == rig.clock.now + Ticks(100));
  rig.RunFor(Ticks(100));
  CHECK(rig.lines[21].rises == 1);
}

TEST_CASE("HPET periodic timer fires every period and its comparator advances", "[hpet]") {
  Rig rig;
  constexpr uint64_t kPeriod = 100'000;  // 1 ms
  rig.Write64(TimerConfig(0), kIntEnable | kPeriodic | kValSet | Route(20));
  rig.Write64(Comparator(0), kPeriod);
  rig.Start();
  rig.RunFor(absl::Microseconds(10'500));
  CHECK(rig.lines[20].rises == 10);
  CHECK(rig.Read64(Comparator(0)) == 11 * kPeriod);
  CHECK(rig.host.deadline[0] == kStart + absl::Milliseconds(11));
  CHECK(rig.callbacks == 10);
  // Without VAL_SET a write changes the period only; the comparator keeps
  // its next match, then steps by the new period.
  rig.Write64(Comparator(0), 2 * kPeriod);
  CHECK(rig.Read64(Comparator(0)) == 11 * kPeriod);
  rig.RunUntil(kStart + absl::Microseconds(11'500));
  CHECK(rig.lines[20].rises == 11);
  CHECK(rig.Read64(Comparator(0)) == 13 * kPeriod);
  rig.RunUntil(kStart + absl::Microseconds(12'999));
  CHECK(rig.lines[20].rises == 11);
  rig.RunUntil(kStart + absl::Microseconds(13'000));
  CHECK(rig.lines[20].rises == 12);
  // Clearing the interrupt enable disarms; the comparator still runs (and is
  // caught up when read).
  rig.Write64(TimerConfig(0), kPeriodic | Route(20));
  CHECK(rig.host.deadline[0] == absl::InfiniteFuture());
  rig.RunFor(absl::Microseconds(4'500));
  CHECK(rig.lines[20].rises == 12);
  CHECK(rig.Read64(Comparator(0)) == 19 * kPeriod);
}

TEST_CASE("HPET periodic timer catches up after a stall with one interrupt", "[hpet]") {
  Rig rig;
  constexpr uint64_t kPeriod = 100'000;
  rig.Write64(TimerConfig(2), kIntEnable | kPeriodic | kValSet | Route(22));
  rig.Write64(Comparator(2), kPeriod);
  rig.Start();
  rig.clock.now += absl::Microseconds(5'500);  // the host slept through 5 periods
  rig.host.deadline[2] = absl::InfiniteFuture();
  rig.hpet->OnTimerDeadline(2);
  CHECK(rig.lines[22].rises == 1);
  CHECK(rig.Read64(Comparator(2)) == 6 * kPeriod);
  CHECK(rig.host.deadline[2] == kStart + absl::Milliseconds(6));
  // Late again, and other registers written meanwhile: it keeps its rhythm.
  rig.clock.now = kStart + absl::Microseconds(6'900);
  rig.host.deadline[2] = absl::InfiniteFuture();
  rig.hpet->OnTimerDeadline(2);
  CHECK(rig.lines[22].rises == 2);
  rig.clock.now += absl::Microseconds(50);
  rig.Write64(TimerConfig(1), kLevel);
  rig.Write64(Comparator(0), 12345);
  rig.Write64(kStatus, 7);
  CHECK(rig.host.deadline[2] == kStart + absl::Milliseconds(7));
  rig.RunUntil(kStart + absl::Milliseconds(9));
  CHECK(rig.lines[22].rises == 5);  // at 7, 8 and 9 ms
  CHECK(rig.Read64(Comparator(2)) == 10 * kPeriod);
}

TEST_CASE("HPET Tn_VAL_SET_CNF sets a periodic timer's comparator and clears itself", "[hpet]") {
  Rig rig;
  rig.Write64(TimerConfig(0), kPeriodic | Route(20));
  rig.Write64(Comparator(0), 500);  // periodic without VAL_SET: the period only
  CHECK(rig.Read64(Comparator(0)) == ~uint64_t{0});
  rig.Write64(TimerConfig(0), kPeriodic | kValSet | Route(20));
  CHECK((rig.Read64(TimerConfig(0)) & kValSet) != 0);
  rig.Write64(Comparator(0), 3000);  // comparator and period
  CHECK(rig.Read64(Comparator(0)) == 3000);
  CHECK((rig.Read64(TimerConfig(0)) & kValSet) == 0);
  // Linux's sequence: VAL_SET, first match, then the period.
  rig.Write64(TimerConfig(0), kIntEnable | kPeriodic | kValSet | Route(20));
  rig.Write32(Comparator(0), 100'000);
  rig.Write32(Comparator(0), 40'000);
  CHECK(rig.Read64(Comparator(0)) == 100'000);
  rig.Start();
  rig.RunFor(Ticks(100'000));
  CHECK(rig.lines[20].rises == 1);
  CHECK(rig.Read64(Comparator(0)) == 140'000);
  rig.RunFor(Ticks(120'000));
  CHECK(rig.lines[20].rises == 4);
  CHECK(rig.Read64(Comparator(0)) == 260'000);
  // A 64-bit comparator set in halves, VAL_SET before each (Intel's recipe).
  rig.Write64(TimerConfig(1), kPeriodic | kValSet);
  rig.Write32(Comparator(1), 0x89ab'cdef);
  rig.Write64(TimerConfig(1), kPeriodic | kValSet);
  rig.Write32(Comparator(1) + 4, 0x0123'4567);
  CHECK(rig.Read64(Comparator(1)) == 0x0123'4567'89ab'cdef);
  CHECK(rig.Read32(Comparator(1) + 4) == 0x0123'4567);
}

TEST_CASE("HPET 32-bit mode: the comparator is 32 bits and matches the counter's low half",
          "[hpet]") {
  Rig rig;
  rig.Write64(TimerConfig(1), kMode32 | kIntEnable | Route(21));
  CHECK(rig.Read64(Comparator(1)) == 0xffff'ffff);  // truncated by the mode switch
  rig.Write64(Comparator(1), 0xaaaa'bbbb'0000'0010);
  CHECK(rig.Read64(Comparator(1)) == 0x10);
  rig.Write32(Comparator(1) + 4, 0x1234);  // the upper half is ignored
  CHECK(rig.Read32(Comparator(1) + 4) == 0);
  // The counter's low half wraps at 2^32: 0x5'ffff'fff0 -> ...'0010 is 0x20 ticks.
  rig.Write64(kCounter, 0x5'ffff'fff0);
  rig.Start();
  CHECK(rig.host.deadline[1] == kStart + Ticks(0x20));
  rig.RunFor(Ticks(0x20));
  CHECK(rig.lines[21].rises == 1);
  // One-shot 32-bit: again only when the low half comes round (2^32 ticks).
  CHECK(rig.host.deadline[1] == kStart + Ticks(0x20) + Ticks(int64_t{1} << 32));
  rig.RunFor(Ticks((int64_t{1} << 32) - 1));
  CHECK(rig.lines[21].rises == 1);
  rig.RunFor(Ticks(1));
  CHECK(rig.lines[21].rises == 2);
  // The same comparator in 64-bit mode is behind the counter: never.
  rig.Write64(TimerConfig(1), kIntEnable | Route(21));
  CHECK(rig.host.deadline[1] == absl::InfiniteFuture());
}

TEST_CASE("HPET 32-bit periodic comparator wraps at 32 bits", "[hpet]") {
  Rig rig;
  rig.Write64(TimerConfig(0), kMode32 | kPeriodic | kValSet | kIntEnable | Route(20));
  rig.Write64(Comparator(0), 0xffff'0000);
  rig.Write64(Comparator(0), 0x10'0000);  // period (about 10 ms)
  rig.Write64(kCounter, 0xfffe'0000);
  rig.Start();
  rig.RunFor(Ticks(0x1'0000));
  CHECK(rig.lines[20].rises == 1);
  CHECK(rig.Read64(Comparator(0)) == 0xf'0000);  // 0xffff0000 + 0x100000, mod 2^32
  rig.RunFor(Ticks(0x10'0000));
  CHECK(rig.lines[20].rises == 2);
  CHECK(rig.Read64(Comparator(0)) == 0x1f'0000);
  CHECK(rig.Read64(kCounter) == 0x1'000f'0000);  // the main counter itself is 64-bit
}

TEST_CASE("HPET level-triggered: status bit and line held until written 1", "[hpet]") {
  Rig rig;
  rig.Write64(TimerConfig(2), kLevel | kIntEnable | Route(23));
  rig.Write64(Comparator(2), 100);
  rig.Start();
  rig.RunFor(Ticks(100));
  CHECK(rig.lines[23].level);
  CHECK(rig.Read64(kStatus) == 0b100);
  rig.RunFor(absl::Milliseconds(1));
  CHECK(rig.lines[23].level);
  rig.Write64(kStatus, 0b011);  // other timers' bits: no effect
  CHECK(rig.Read64(kStatus) == 0b100);
  CHECK(rig.lines[23].level);
  rig.Write32(kStatus, 0b100);
  CHECK(rig.Read64(kStatus) == 0);
  CHECK_FALSE(rig.lines[23].level);
  CHECK(rig.lines[23].rises == 1);
}

TEST_CASE("HPET level status is set with the interrupt disabled; edge sets none", "[hpet]") {
  Rig rig;
  rig.Write64(TimerConfig(0), kLevel | Route(20));  // level, interrupt disabled
  rig.Write64(Comparator(0), 100);
  rig.Write64(TimerConfig(1), Route(21));  // edge, interrupt disabled
  rig.Write64(Comparator(1), 100);
  rig.Start();
  CHECK(rig.host.deadline[0] == absl::InfiniteFuture());  // nothing to deliver on time
  rig.RunFor(Ticks(150));
  CHECK(rig.Read64(kStatus) == 0b001);
  CHECK_FALSE(rig.lines[20].level);
  CHECK(rig.lines[21].rises == 0);
  // Enabling the interrupt with the status still set asserts the line.
  rig.Write64(TimerConfig(0), kLevel | kIntEnable | Route(20));
  CHECK(rig.lines[20].level);
  // Halting the counter lowers it (interrupts off); the status stays.
  rig.Write64(kConfig, 0);
  CHECK_FALSE(rig.lines[20].level);
  CHECK(rig.Read64(kStatus) == 0b001);
  rig.Write64(kConfig, kEnable);
  CHECK(rig.lines[20].level);
  rig.Write64(kStatus, 1);
  CHECK_FALSE(rig.lines[20].level);
}

TEST_CASE("HPET timers sharing a pin: the line is the OR of their level interrupts", "[hpet]") {
  Rig rig;
  rig.Write64(TimerConfig(0), kLevel | kIntEnable | Route(20));
  rig.Write64(Comparator(0), 100);
  rig.Write64(TimerConfig(1), kLevel | kIntEnable | Route(20));
  rig.Write64(Comparator(1), 200);
  rig.Write64(TimerConfig(2), kIntEnable | Route(20));  // edge
  rig.Write64(Comparator(2), 300);
  rig.Start();
  rig.RunFor(Ticks(300));
  CHECK(rig.Read64(kStatus) == 0b011);
  CHECK(rig.lines[20].level);
  CHECK(rig.lines[20].rises == 1);  // no edge to give on a line held high
  rig.Write64(kStatus, 0b001);
  CHECK(rig.lines[20].level);  // timer 1 still asserts it
  rig.Write64(kStatus, 0b010);
  CHECK_FALSE(rig.lines[20].level);
  rig.Write64(Comparator(2), rig.Read64(kCounter) + 10);
  rig.RunFor(Ticks(10));
  CHECK(rig.lines[20].rises == 2);
  CHECK_FALSE(rig.lines[20].level);
}

TEST_CASE("HPET legacy replacement routes timer 0 to pin 2 and timer 1 to pin 8", "[hpet]") {
  Rig rig;
  rig.Write64(TimerConfig(0), kIntEnable | Route(20));
  rig.Write64(Comparator(0), 100);
  rig.Write64(TimerConfig(1), kIntEnable | Route(21));
  rig.Write64(Comparator(1), 200);
  rig.Write64(TimerConfig(2), kIntEnable | Route(22));
  rig.Write64(Comparator(2), 300);
  rig.Start(kLegacy);
  CHECK(rig.host.legacy);
  CHECK(rig.host.legacy_changes == 1);
  rig.RunFor(Ticks(300));
  CHECK(rig.lines[2].rises == 1);
  CHECK(rig.lines[8].rises == 1);
  CHECK(rig.lines[22].rises == 1);  // timer 2 keeps its own route
  CHECK(rig.lines[20].rises == 0);
  CHECK(rig.lines[21].rises == 0);
  // Off again: timers 0 and 1 use Tn_INT_ROUTE_CNF.
  rig.Write64(kConfig, kEnable);
  CHECK_FALSE(rig.host.legacy);
  CHECK(rig.host.legacy_changes == 2);
  uint64_t now = rig.Read64(kCounter);
  rig.Write64(Comparator(0), now + 10);
  rig.Write64(Comparator(1), now + 10);
  rig.RunFor(Ticks(10));
  CHECK(rig.lines[20].rises == 1);
  CHECK(rig.lines[21].rises == 1);
  CHECK(rig.lines[2].rises == 1);
  CHECK(rig.lines[8].rises == 1);
}

TEST_CASE("HPET legacy replacement moves an asserted level line", "[hpet]") {
  Rig rig;
  rig.Write64(TimerConfig(1), kLevel | kIntEnable | Route(21));
  rig.Write64(Comparator(1), 10);
  rig.Start();
  rig.RunFor(Ticks(10));
  CHECK(rig.lines[21].level);
  rig.Write64(kConfig, kEnable | kLegacy);
  CHECK_FALSE(rig.lines[21].level);
  CHECK(rig.lines[8].level);
  rig.Write64(kStatus, 0b10);
  CHECK_FALSE(rig.lines[8].level);
}

TEST_CASE("HPET refuses a route outside Tn_INT_ROUTE_CAP", "[hpet]") {
  Rig rig;
  rig.Write64(TimerConfig(0), kIntEnable | Route(20));
  rig.Write64(TimerConfig(0), kIntEnable | Route(5));  // not offered: the old route stays
  CHECK((rig.Read64(TimerConfig(0)) & kRouteField) == Route(20));
  CHECK((rig.Read64(TimerConfig(0)) & kIntEnable) != 0);  // the rest of the write applies
  rig.Write64(TimerConfig(0), kIntEnable | Route(31));
  CHECK((rig.Read64(TimerConfig(0)) & kRouteField) == Route(20));
  rig.Write64(Comparator(0), 10);
  rig.Start();
  rig.RunFor(Ticks(10));
  CHECK(rig.lines[20].rises == 1);
  CHECK(rig.lines[5].rises == 0);
  // The reset route (0) is not offered either: that timer interrupts nowhere.
  rig.Write64(TimerConfig(1), kIntEnable | kLevel);
  rig.Write64(Comparator(1), rig.Read64(kCounter) + 10);
  rig.RunFor(Ticks(10));
  CHECK(rig.Read64(kStatus) == 0b10);
  for (const PinLine& line : rig.lines) CHECK_FALSE(line.level);
  // Offered routes are taken.
  rig.Write64(TimerConfig(1), kIntEnable | kLevel | Route(8));
  CHECK((rig.Read64(TimerConfig(1)) & kRouteField) == Route(8));
  CHECK(rig.lines[8].level);
}

TEST_CASE("HPET access widths: 8 bytes whole, 4 bytes per half, others refused", "[hpet]") {
  Rig rig;
  rig.Write64(kCounter, 0x1122'3344'5566'7788);
  CHECK(rig.Read64(kCounter) == 0x1122'3344'5566'7788);
  CHECK(rig.Read32(kCounter) == 0x5566'7788);
  CHECK(rig.Read32(kCounter + 4) == 0x1122'3344);
  rig.Write64(Comparator(2), 0xaabb'ccdd'eeff'0011);
  CHECK(rig.Read32(Comparator(2)) == 0xeeff'0011);
  CHECK(rig.Read32(Comparator(2) + 4) == 0xaabb'ccdd);
  rig.Write32(Comparator(2) + 4, 0x1);
  CHECK(rig.Read64(Comparator(2)) == 0x0000'0001'eeff'0011);
  // The timer configuration's upper half is the read-only route cap.
  CHECK(rig.Read32(TimerConfig(0) + 4) == kRouteCap);
  rig.Write32(TimerConfig(0) + 4, 0);
  CHECK(rig.Read32(TimerConfig(0) + 4) == kRouteCap);
  // Odd widths and misaligned accesses: reads all-ones, writes dropped.
  uint8_t b[8] = {};
  for (size_t width : {1, 2, 3, 5, 6, 7}) {
    std::fill(b, b + 8, 0);
    rig.hpet->Read(kCounter, absl::Span<uint8_t>(b, width));
    for (size_t i = 0; i < width; ++i) CHECK(b[i] == 0xff);
  }
  rig.hpet->Read(kCounter + 4, absl::Span<uint8_t>(b, 8));
  CHECK(b[0] == 0xff);
  rig.hpet->Read(kCounter + 2, absl::Span<uint8_t>(b, 4));
  CHECK(b[3] == 0xff);
  rig.hpet->Read(Hpet::kMmioSize, absl::Span<uint8_t>(b, 4));
  CHECK(b[0] == 0xff);
  rig.Write(kConfig, kEnable, 1);
  rig.Write(kConfig, kEnable, 2);
  rig.Write(kConfig + 4, kEnable, 8);
  rig.Write(kConfig + 2, kEnable, 4);
  CHECK(rig.Read64(kConfig) == 0);
  rig.Write(kCounter, 0, 2);
  CHECK(rig.Read64(kCounter) == 0x1122'3344'5566'7788);
}

TEST_CASE("HPET hostile periods: 0 fires once, a tiny one cannot flood the host", "[hpet]") {
  Rig rig;
  // Period 0: the match happens, the comparator stays, nothing repeats.
  rig.Write64(TimerConfig(0), kIntEnable | kPeriodic | kValSet | Route(20));
  rig.Write64(Comparator(0), 100);
  rig.Write64(Comparator(0), 0);
  rig.Start();
  rig.RunFor(absl::Seconds(1));
  CHECK(rig.lines[20].rises == 1);
  CHECK(rig.callbacks == 1);
  CHECK(rig.Read64(Comparator(0)) == 100);
  CHECK(rig.host.deadline[0] == absl::InfiniteFuture());
  // Period 1 tick (10 ns): at most one interrupt per kMinPeriodicTicks, the
  // comparator stepping that far ahead of the counter.
  rig.Write64(TimerConfig(1), kIntEnable | kPeriodic | kValSet | Route(21));
  uint64_t now = rig.Read64(kCounter);
  rig.Write64(Comparator(1), now + 1);
  rig.Write64(Comparator(1), 1);
  int before = rig.callbacks;
  rig.RunFor(absl::Milliseconds(10));
  int fired = rig.callbacks - before;
  CHECK(fired >= 90);
  CHECK(fired <= 101);
  CHECK(rig.lines[21].rises == fired);
  uint64_t cmp = rig.Read64(Comparator(1));
  uint64_t counter = rig.Read64(kCounter);
  CHECK(cmp > counter);
  CHECK(cmp <= counter + Hpet::kMinPeriodicTicks);
  // A period near 2^64 and a comparator far away terminate too.
  rig.Write64(TimerConfig(2), kIntEnable | kPeriodic | kValSet | Route(22));
  rig.Write64(Comparator(2), rig.Read64(kCounter) + 5);
  rig.Write64(Comparator(2), ~uint64_t{0});
  rig.RunFor(absl::Seconds(1));
  CHECK(rig.lines[22].rises == 1);
}

TEST_CASE("HPET Reset returns to power-on state and lowers lines", "[hpet]") {
  Rig rig;
  rig.Write64(TimerConfig(0), kLevel | kIntEnable | Route(20));
  rig.Write64(Comparator(0), 10);
  rig.Write64(TimerConfig(1), kIntEnable | Route(21));
  rig.Write64(Comparator(1), 1'000'000);
  rig.Start(kLegacy);
  rig.RunFor(Ticks(10));
  CHECK(rig.lines[2].level);
  CHECK(rig.host.deadline[1] != absl::InfiniteFuture());
  rig.hpet->Reset();
  CHECK_FALSE(rig.lines[2].level);
  CHECK(rig.host.deadline[1] == absl::InfiniteFuture());
  CHECK_FALSE(rig.host.legacy);
  CHECK(rig.Read64(kConfig) == 0);
  CHECK(rig.Read64(kStatus) == 0);
  CHECK(rig.Read64(kCounter) == 0);
  CHECK((rig.Read64(TimerConfig(0)) & 0xffff) == (kPeriodicCap | kSize64Cap));
  CHECK(rig.Read64(Comparator(1)) == ~uint64_t{0});
}

// A host with a real timer thread, as the VM's would be: the thread calls
// OnTimerDeadline while vCPU-like threads access registers. No deadlock, and
// interrupts arrive.
class ThreadHost : public HpetHost {
 public:
  ThreadHost() { deadline_.fill(absl::InfiniteFuture()); }
  ~ThreadHost() override { Stop(); }
  void Start(Hpet* hpet) {
    thread_ = std::thread([this, hpet] { Loop(hpet); });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void Arm(int timer, absl::Time when) override {
    std::lock_guard<std::mutex> lock(mu_);
    deadline_[timer] = when;
    cv_.notify_all();
  }
  void Disarm(int timer) override {
    std::lock_guard<std::mutex> lock(mu_);
    deadline_[timer] = absl::InfiniteFuture();
  }

 private:
  void Loop(Hpet* hpet) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      int due = -1;
      absl::Time first = absl::InfiniteFuture();
      for (int i = 0; i < Hpet::kNumTimers; ++i) {
        if (deadline_[i] < first) {
          first = deadline_[i];
          due = i;
        }
      }
      if (due >= 0 && first <= absl::Now()) {
        deadline_[due] = absl::InfiniteFuture();
        lock.unlock();  // never call the device with our lock held
        hpet->OnTimerDeadline(due);
        lock.lock();
        continue;
      }
      cv_.wait_for(lock, std::chrono::microseconds(200));
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::array<absl::Time, Hpet::kNumTimers> deadline_;
  bool stop_ = false;
  std::thread thread_;
};

class AtomicLine : public IrqLine {
 public:
  void SetLevel(bool asserted) override {
    if (asserted) rises.fetch_add(1);
  }
  std::atomic<int> rises{0};
};

TEST_CASE("HPET with a host timer thread: callbacks and register accesses interleave", "[hpet]") {
  SystemClock clock;
  ThreadHost host;
  AtomicLine line;
  Hpet::IrqPins pins{};
  pins[20] = &line;
  Hpet hpet(&clock, &host, pins, 1u << 20);
  host.Start(&hpet);
  auto write64 = [&](uint64_t off, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    hpet.Write(off, absl::Span<const uint8_t>(b, 8));
  };
  write64(TimerConfig(0), kIntEnable | kPeriodic | kValSet | Route(20));
  write64(Comparator(0), 50'000);  // 0.5 ms
  write64(kConfig, kEnable);
  absl::Time start = absl::Now();
  std::thread vcpu([&] {
    uint8_t b[8];
    // Until 20 interrupts came, or a generous limit for a loaded machine.
    while (line.rises.load() < 20 && absl::Now() < start + absl::Seconds(5)) {
      hpet.Read(kCounter, absl::Span<uint8_t>(b, 8));
      hpet.Read(kStatus, absl::Span<uint8_t>(b, 4));
    }
  });
  vcpu.join();
  host.Stop();
  absl::Duration took = absl::Now() - start;
  CHECK(line.rises.load() >= 20);
  // Never more often than the period allows (plus the first one).
  CHECK(line.rises.load() <= took / absl::Microseconds(500) + 2);
}

std::vector<uint8_t> Save(Rig& rig) {
  StateWriter out;
  rig.hpet->SaveState(out);
  return out.Take();
}

absl::Status Restore(Rig& rig, absl::Span<const uint8_t> bytes) {
  StateReader in(bytes, "hpet");
  return rig.hpet->RestoreState(in);
}

TEST_CASE("HPET snapshot: registers come back, the counter counts on, timers are re-armed",
          "[hpet][snapshot]") {
  constexpr uint64_t kPeriod = 100'000;  // 1 ms
  Rig rig;
  CHECK(rig.hpet->state_version() == 1);
  rig.Write64(TimerConfig(0), kIntEnable | kPeriodic | kValSet | Route(20));
  rig.Write64(Comparator(0), kPeriod);
  rig.Write64(TimerConfig(1), kLevel | kIntEnable | Route(21));
  rig.Write64(Comparator(1), 50);
  rig.Write64(TimerConfig(2), kMode32 | kIntEnable | Route(22));
  rig.Write64(Comparator(2), 4 * kPeriod);
  rig.Start();
  rig.RunFor(absl::Microseconds(2'500));
  REQUIRE(rig.lines[20].rises == 2);
  REQUIRE(rig.lines[21].level);
  std::vector<uint8_t> state = Save(rig);

  // Restored in another process, an hour later by its clock.
  Rig copy;
  copy.clock.now = kStart + absl::Hours(1);
  REQUIRE(Restore(copy, state).ok());
  CHECK(copy.lines[21].level);  // the level interrupt, driven again
  CHECK(copy.lines[21].rises == 1);
  CHECK(copy.host.legacy_changes == 0);
  CHECK(copy.host.deadline[0] == copy.clock.now + Ticks(kPeriod / 2));
  CHECK(copy.host.deadline[1] == absl::InfiniteFuture());  // behind the counter: never
  CHECK(copy.host.deadline[2] == copy.clock.now + Ticks(kPeriod * 3 / 2));
  CHECK(copy.Read64(kCounter) == 250'000);
  CHECK(copy.Read64(kConfig) == kEnable);
  CHECK(copy.Read64(kStatus) == 0b010);
  for (int n = 0; n < Hpet::kNumTimers; ++n) {
    CHECK(copy.Read64(TimerConfig(n)) == rig.Read64(TimerConfig(n)));
    CHECK(copy.Read64(Comparator(n)) == rig.Read64(Comparator(n)));
  }
  // Both run on alike: the periodic timer keeps its period, the 32-bit
  // one-shot fires at its comparator.
  for (Rig* r : {&rig, &copy}) {
    int rises = r->lines[20].rises;
    r->RunFor(absl::Microseconds(1'490));
    CHECK(r->lines[20].rises == rises + 1);
    CHECK(r->lines[22].rises == 0);
    r->RunFor(absl::Microseconds(10));
    CHECK(r->lines[20].rises == rises + 2);
    CHECK(r->lines[22].rises == 1);
    CHECK(r->Read64(Comparator(0)) == 5 * kPeriod);
    CHECK(r->Read64(kCounter) == 4 * kPeriod);
    r->Write64(kStatus, 0b010);
    CHECK_FALSE(r->lines[21].level);
  }
}

TEST_CASE("HPET snapshot: a match due at the save is acted on after the restore",
          "[hpet][snapshot]") {
  Rig rig;
  rig.Write64(TimerConfig(0), kIntEnable | Route(20));  // one-shot, edge
  rig.Write64(Comparator(0), 1000);
  rig.Write64(TimerConfig(1), kLevel | Route(21));  // level, interrupt off
  rig.Write64(Comparator(1), 1000);
  rig.Start();
  rig.clock.now += Ticks(1500);  // the host has not called back yet
  std::vector<uint8_t> state = Save(rig);

  Rig copy;
  REQUIRE(Restore(copy, state).ok());
  // Nothing during the restore; the host is asked to call back at once.
  CHECK(copy.lines[20].rises == 0);
  CHECK(copy.host.deadline[0] == copy.clock.now);
  CHECK(copy.host.deadline[1] == absl::InfiniteFuture());
  copy.RunFor(absl::ZeroDuration());
  CHECK(copy.lines[20].rises == 1);
  CHECK(copy.Read64(kStatus) == 0b10);  // caught up at the access
  CHECK(copy.host.deadline[0] == absl::InfiniteFuture());
  copy.RunFor(absl::Seconds(1));
  CHECK(copy.lines[20].rises == 1);
}

TEST_CASE("HPET snapshot: legacy replacement and a halted counter", "[hpet][snapshot]") {
  Rig rig;
  rig.Write64(TimerConfig(0), kIntEnable | Route(20));
  rig.Write64(Comparator(0), 1000);
  rig.Write64(kCounter, 0x1234);
  rig.Write64(kConfig, kLegacy);  // routed, counter halted
  std::vector<uint8_t> state = Save(rig);

  Rig copy;
  REQUIRE(Restore(copy, state).ok());
  CHECK(copy.host.legacy);
  CHECK(copy.host.legacy_changes == 1);
  CHECK(copy.host.arms == 0);
  copy.RunFor(absl::Seconds(1));
  CHECK(copy.Read64(kCounter) == 0x1234);  // halted stays halted
  copy.Start(kLegacy);
  copy.RunFor(absl::Seconds(1));  // a 64-bit comparator behind the counter: never
  CHECK(copy.lines[2].rises == 0);
  copy.Write64(kCounter, 990);
  copy.RunFor(Ticks(10));
  CHECK(copy.lines[2].rises == 1);  // timer 0 on pin 2
  CHECK(copy.lines[20].rises == 0);
  // Restoring a state without it turns it off again.
  Rig plain;
  REQUIRE(Restore(copy, Save(plain)).ok());
  CHECK_FALSE(copy.host.legacy);
  CHECK(copy.host.legacy_changes == 2);
  CHECK(copy.host.deadline[0] == absl::InfiniteFuture());
}

struct SavedTimer {
  uint64_t config = 0, comparator = ~uint64_t{0}, period = 0;
  uint8_t due = 0;
};

std::vector<uint8_t> HpetState(uint64_t config, uint64_t status, uint64_t counter,
                               std::array<SavedTimer, 3> timers, uint8_t num_timers = 3) {
  StateWriter w;
  w.U8(num_timers);
  w.U64(config);
  w.U64(status);
  w.U64(counter);
  for (const SavedTimer& t : timers) {
    w.U64(t.config);
    w.U64(t.comparator);
    w.U64(t.period);
    w.U8(t.due);
  }
  return w.Take();
}

TEST_CASE("HPET snapshot: truncated or out-of-range state is refused, the device unchanged",
          "[hpet][snapshot]") {
  Rig rig;
  std::vector<uint8_t> good = Save(rig);
  REQUIRE(good == HpetState(0, 0, 0, {}));

  Rig target;
  target.Write64(TimerConfig(2), kLevel | kIntEnable | Route(23));
  target.Write64(Comparator(2), 100);
  target.Start();
  target.RunFor(Ticks(100));
  REQUIRE(target.lines[23].level);
  target.Write64(Comparator(1), 5000);
  target.Write64(TimerConfig(1), kIntEnable | Route(21));
  absl::Time deadline = target.host.deadline[1];
  int arms = target.host.arms, disarms = target.host.disarms;

  for (size_t n = 0; n < good.size(); ++n) {
    CHECK(Restore(target, absl::MakeConstSpan(good.data(), n)).code() ==
          absl::StatusCode::kDataLoss);
  }
  auto message = [&](const std::vector<uint8_t>& bad) {
    absl::Status s = Restore(target, bad);
    CHECK(s.code() == absl::StatusCode::kDataLoss);
    return std::string(s.message());
  };
  CHECK(message(HpetState(0, 0, 0, {}, 4)).find("timers") != std::string::npos);
  CHECK(message(HpetState(4, 0, 0, {})).find("general configuration") != std::string::npos);
  CHECK(message(HpetState(0, 0b1000, 0, {})).find("status") != std::string::npos);
  CHECK(message(HpetState(0, 0, 0, {SavedTimer{.config = kPeriodicCap}}))
            .find("timer 0 configuration") != std::string::npos);
  CHECK(message(HpetState(0, 0, 0, {SavedTimer{}, SavedTimer{.config = Route(5)}}))
            .find("timer 1 routed to pin 5") != std::string::npos);
  CHECK(message(HpetState(0, 0, 0, {SavedTimer{.config = kMode32, .comparator = 1ull << 32}}))
            .find("32-bit") != std::string::npos);
  CHECK(
      message(HpetState(0, 0, 0, {SavedTimer{.config = kMode32, .comparator = 5, .period = ~0ull}}))
          .find("32-bit") != std::string::npos);
  CHECK(message(HpetState(kEnable, 0, 0, {SavedTimer{.due = 2}})).find("due") != std::string::npos);
  CHECK(message(HpetState(0, 0, 0, {SavedTimer{.due = 1}})).find("halted") != std::string::npos);
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  CHECK_FALSE(Restore(target, longer).ok());

  CHECK(target.host.arms == arms);
  CHECK(target.host.disarms == disarms);
  CHECK(target.host.deadline[1] == deadline);
  CHECK(target.host.legacy_changes == 0);
  CHECK(target.lines[23].level);
  CHECK(target.Read64(kStatus) == 0b100);
  CHECK(target.Read64(kConfig) == kEnable);
  CHECK(target.Read64(Comparator(1)) == 5000);
  CHECK((target.Read64(TimerConfig(1)) & kRouteField) == Route(21));
  // Values at their limits are accepted: the reset route 0 outside the cap,
  // a full 32-bit comparator, every status bit.
  Rig limits;
  CHECK(
      Restore(limits, HpetState(kEnable | kLegacy, 0b111, ~0ull,
                                {SavedTimer{.config = kMode32 | kValSet, .comparator = 0xffffffff},
                                 SavedTimer{.config = Route(23) | kLevel, .due = 1},
                                 SavedTimer{.config = Route(0)}}))
          .ok());
  CHECK(limits.Read64(kStatus) == 0b111);
}

}  // namespace
}  // namespace mote
