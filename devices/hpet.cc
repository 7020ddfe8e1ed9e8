#include "devices/hpet.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

namespace mote {
namespace {

// Register offsets (the spec's register overview); timer n's block is at kTimerBase + n *
// kTimerStride.
constexpr uint64_t kCapabilitiesReg = 0x000, kConfigReg = 0x010, kStatusReg = 0x020,
                   kCounterReg = 0x0f0;
constexpr uint64_t kTimerBase = 0x100, kTimerStride = 0x20;
constexpr uint64_t kTimerConfigReg = 0x00, kComparatorReg = 0x08;  // then 0x10: FSB route

// General Configuration.
constexpr uint64_t kEnableCnf = 1 << 0, kLegacyRouteCnf = 1 << 1;

// Timer n Configuration and Capabilities.
constexpr uint64_t kLevelCnf = 1 << 1, kIntEnableCnf = 1 << 2, kPeriodicCnf = 1 << 3,
                   kPeriodicCap = 1 << 4, kSize64Cap = 1 << 5, kValSetCnf = 1 << 6,
                   kMode32Cnf = 1 << 8;
constexpr int kRouteShift = 9;
constexpr uint64_t kRouteMask = uint64_t{0x1f} << kRouteShift;
// FSB_EN_CNF (bit 14) stays 0 and FSB_INT_DEL_CAP (bit 15) reads 0: no FSB delivery.
constexpr uint64_t kTimerWritable =
    kLevelCnf | kIntEnableCnf | kPeriodicCnf | kValSetCnf | kMode32Cnf | kRouteMask;
// Every timer may be periodic (QEMU's choice; the spec asks it of timer 0 at least).
constexpr uint64_t kTimerCaps = kPeriodicCap | kSize64Cap;

constexpr uint64_t kCapabilities =
    uint64_t{Hpet::kClockPeriodFs} << 32 | uint64_t{Hpet::kEventTimerBlockId};

constexpr uint64_t kLow32 = 0xffffffff;
constexpr uint64_t kTickNs = 1'000'000'000 / Hpet::kFrequencyHz;
static_assert(kTickNs * Hpet::kFrequencyHz == 1'000'000'000, "whole-nanosecond ticks");
static_assert(uint64_t{Hpet::kClockPeriodFs} == kTickNs * 1'000'000, "period in femtoseconds");
constexpr absl::Duration kTick = absl::Nanoseconds(kTickNs);

// The duration of `ticks` (up to 2^64 - 1 of them) without int64 overflow.
absl::Duration TicksToDuration(uint64_t ticks) {
  return absl::Seconds(static_cast<int64_t>(ticks / Hpet::kFrequencyHz)) +
         absl::Nanoseconds(static_cast<int64_t>(ticks % Hpet::kFrequencyHz * kTickNs));
}

// The bits a timer compares: all 64, or the low 32 in 32-bit mode.
uint64_t WidthMask(uint64_t config) { return (config & kMode32Cnf) ? kLow32 : ~uint64_t{0}; }

}  // namespace

Hpet::Hpet(const Clock* clock, HpetHost* host, const IrqPins& pins, uint32_t route_cap)
    : clock_(clock), host_(host), pins_(pins), route_cap_([&] {
        uint32_t wired = 0;
        for (int pin = 0; pin < kIoapicPins; ++pin) {
          if (pins[pin] != nullptr) wired |= uint32_t{1} << pin;
        }
        return route_cap & wired;
      }()) {}

bool Hpet::enabled() const { return config_ & kEnableCnf; }

absl::Duration Hpet::Elapsed(absl::Time now) const {
  absl::Duration elapsed = now - started_;
  return elapsed > absl::ZeroDuration() ? absl::Trunc(elapsed, kTick) : absl::ZeroDuration();
}

uint64_t Hpet::ElapsedTicks(absl::Time now) const {
  // Whole seconds first: the count wraps at 2^64 as the counter does, rather
  // than saturating as one int64 division of nanoseconds would.
  absl::Duration rest;
  uint64_t seconds =
      static_cast<uint64_t>(absl::IDivDuration(Elapsed(now), absl::Seconds(1), &rest));
  return seconds * kFrequencyHz + static_cast<uint64_t>(absl::IDivDuration(rest, kTick, &rest));
}

uint64_t Hpet::CounterAt(absl::Time now) const {
  return enabled() ? counter_ + ElapsedTicks(now) : counter_;
}

absl::Time Hpet::NextMatch(const Timer& t, absl::Time now) const {
  if (!enabled()) return absl::InfiniteFuture();
  uint64_t mask = WidthMask(t.config);
  uint64_t delta = (t.comparator - CounterAt(now)) & mask;
  // The counter has to arrive at the comparator: one equal to it now (just
  // matched, or written so) matches next after a full wrap.
  if (delta == 0) delta = mask == kLow32 ? kLow32 + 1 : mask;
  // A 64-bit comparator behind the counter matches only after the counter
  // wraps, millennia away: never, for us.
  if (mask != kLow32 && delta >= uint64_t{1} << 63) return absl::InfiniteFuture();
  // From the start of the current tick, so recomputing it later gives the same time.
  return started_ + Elapsed(now) + TicksToDuration(delta);
}

int Hpet::PinOf(int timer) const {
  if ((config_ & kLegacyRouteCnf) && timer < 2) {
    return timer == 0 ? kLegacyTimer0Pin : kLegacyTimer1Pin;
  }
  int route = static_cast<int>((timers_[timer].config & kRouteMask) >> kRouteShift);
  // Only the reset value can be outside the cap: writes of others are refused.
  return (route_cap_ >> route) & 1 ? route : -1;
}

void Hpet::Read(uint64_t offset, absl::Span<uint8_t> data) {
  size_t width = data.size();
  if ((width != 4 && width != 8) || offset % width != 0 || offset >= kMmioSize) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                     "hpet: {}-byte read at 0x{:x} (4 or 8 bytes, aligned)", width, offset);
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  uint64_t value;
  {
    MutexLock lock(&mu_);
    absl::Time now = clock_->Now();
    Advance(now);
    value = ReadRegister(offset & ~uint64_t{7}, now) >> (8 * (offset & 4));
    Settle(now);
  }
  for (size_t i = 0; i < width; ++i) data[i] = static_cast<uint8_t>(value >> (8 * i));
}

void Hpet::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  size_t width = data.size();
  if ((width != 4 && width != 8) || offset % width != 0 || offset >= kMmioSize) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                     "hpet: ignoring a {}-byte write at 0x{:x} (4 or 8 bytes, aligned)", width,
                     offset);
    return;
  }
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i) value |= uint64_t{data[i]} << (8 * i);
  int shift = static_cast<int>(8 * (offset & 4));
  uint64_t mask = width == 8 ? ~uint64_t{0} : kLow32 << shift;
  MutexLock lock(&mu_);
  absl::Time now = clock_->Now();
  Advance(now);
  WriteRegister(offset & ~uint64_t{7}, value << shift, mask, now);
  Settle(now);
}

void Hpet::OnTimerDeadline(int timer) {
  if (timer < 0 || timer >= kNumTimers) return;
  MutexLock lock(&mu_);
  timers_[timer].armed = absl::InfiniteFuture();  // the host's shot is spent
  absl::Time now = clock_->Now();
  Advance(now);
  Settle(now);
}

void Hpet::Reset() {
  MutexLock lock(&mu_);
  bool legacy = config_ & kLegacyRouteCnf;
  config_ = 0;
  status_ = 0;
  counter_ = 0;
  for (Timer& t : timers_) {
    absl::Time armed = t.armed;
    t = Timer();
    t.armed = armed;  // SyncHost disarms it
  }
  Settle(clock_->Now());
  if (legacy) host_->OnLegacyReplacement(false);
}

void Hpet::SaveState(StateWriter& out) {
  MutexLock lock(&mu_);
  absl::Time now = clock_->Now();
  out.U8(kNumTimers);
  out.U64(config_);
  out.U64(status_);
  out.U64(CounterAt(now));
  for (const Timer& t : timers_) {
    out.U64(t.config);
    out.U64(t.comparator);
    out.U64(t.period);
    // A match whose time came with no access or callback since: acted on
    // after the restore, as it would have been at the next one.
    out.Bool(t.next_match <= now);
  }
}

absl::Status Hpet::RestoreState(StateReader& in) {
  struct SavedTimer {
    uint64_t config, comparator, period;
    uint8_t due;
  };
  uint8_t num_timers = in.U8();
  uint64_t config = in.U64();
  uint64_t status = in.U64();
  uint64_t counter = in.U64();
  if (in.ok() && num_timers != kNumTimers) {
    // The rest has another layout: say why rather than how long it is.
    in.Fail(absl::StrCat(num_timers, " timers saved, this HPET has ", kNumTimers));
  }
  std::array<SavedTimer, kNumTimers> saved{};
  for (SavedTimer& t : saved) {
    t.config = in.U64();
    t.comparator = in.U64();
    t.period = in.U64();
    t.due = in.U8();
  }
  if (absl::Status s = in.status(); !s.ok()) return s;
  if (config & ~(kEnableCnf | kLegacyRouteCnf)) {
    in.Fail(absl::StrCat("general configuration 0x", absl::Hex(config), " has reserved bits set"));
  }
  if (status >> kNumTimers) {
    in.Fail(absl::StrCat("interrupt status 0x", absl::Hex(status), " has bits of no timer"));
  }
  for (int i = 0; i < kNumTimers; ++i) {
    const SavedTimer& t = saved[i];
    std::string timer = absl::StrCat("timer ", i, " ");
    if (t.config & ~kTimerWritable) {
      in.Fail(absl::StrCat(timer, "configuration 0x", absl::Hex(t.config),
                           " has bits that are not writable"));
    }
    uint32_t route = static_cast<uint32_t>((t.config & kRouteMask) >> kRouteShift);
    // Only the reset value may lie outside the cap (writes of others are refused).
    if (route != 0 && !((route_cap_ >> route) & 1)) {
      in.Fail(absl::StrCat(timer, "routed to pin ", route, ", outside the route cap 0x",
                           absl::Hex(route_cap_)));
    }
    if ((t.config & kMode32Cnf) && ((t.comparator | t.period) >> 32) != 0) {
      in.Fail(absl::StrCat(timer, "is 32-bit but its comparator 0x", absl::Hex(t.comparator),
                           " or period 0x", absl::Hex(t.period), " is not"));
    }
    if (t.due > 1) in.Fail(absl::StrCat(timer, "due flag ", t.due, " is not 0 or 1"));
    if (t.due && !(config & kEnableCnf)) {
      in.Fail(absl::StrCat(timer, "due with the counter halted"));
    }
  }
  if (absl::Status s = in.status(); !s.ok()) return s;

  MutexLock lock(&mu_);
  absl::Time now = clock_->Now();
  bool legacy_changed = (config ^ config_) & kLegacyRouteCnf;
  config_ = config;
  status_ = status;
  counter_ = counter;
  started_ = now;
  for (int i = 0; i < kNumTimers; ++i) {
    Timer& t = timers_[i];
    t.config = saved[i].config;
    t.comparator = saved[i].comparator;
    t.period = saved[i].period;
    // t.armed is what the host holds for this device: SyncHost brings it in line.
  }
  if (legacy_changed) host_->OnLegacyReplacement(config & kLegacyRouteCnf);
  // Settle, but a due match keeps a time already come, so the host calls
  // back at once and the callback's Advance acts on it.
  for (int i = 0; i < kNumTimers; ++i) {
    timers_[i].next_match = saved[i].due ? now : NextMatch(timers_[i], now);
  }
  UpdateLines();
  SyncHost();
  return absl::OkStatus();
}

uint64_t Hpet::ReadRegister(uint64_t reg, absl::Time now) {
  if (reg >= kTimerBase && reg < kTimerBase + kNumTimers * kTimerStride) {
    const Timer& t = timers_[(reg - kTimerBase) / kTimerStride];
    switch ((reg - kTimerBase) % kTimerStride) {
      case kTimerConfigReg:
        return t.config | kTimerCaps | uint64_t{route_cap_} << 32;
      case kComparatorReg:
        return t.comparator;
      default:
        return 0;  // FSB route (no FSB delivery) and reserved
    }
  }
  switch (reg) {
    case kCapabilitiesReg:
      return kCapabilities;
    case kConfigReg:
      return config_;
    case kStatusReg:
      return status_;
    case kCounterReg:
      return CounterAt(now);
    default:
      return 0;  // reserved
  }
}

void Hpet::WriteRegister(uint64_t reg, uint64_t value, uint64_t mask, absl::Time now) {
  if (reg >= kTimerBase && reg < kTimerBase + kNumTimers * kTimerStride) {
    int timer = static_cast<int>((reg - kTimerBase) / kTimerStride);
    switch ((reg - kTimerBase) % kTimerStride) {
      case kTimerConfigReg:
        WriteTimerConfig(timer, value, mask);
        break;
      case kComparatorReg:
        WriteComparator(timer, value, mask);
        break;
      default:
        break;  // FSB route and reserved
    }
    return;
  }
  switch (reg) {
    case kConfigReg: {
      uint64_t next = ((config_ & ~mask) | (value & mask)) & (kEnableCnf | kLegacyRouteCnf);
      if ((next ^ config_) & kEnableCnf) {
        if (next & kEnableCnf) {
          started_ = now;
        } else {
          counter_ = CounterAt(now);
        }
      }
      bool legacy_changed = (next ^ config_) & kLegacyRouteCnf;
      config_ = next;
      if (legacy_changed) host_->OnLegacyReplacement(next & kLegacyRouteCnf);
      break;
    }
    case kStatusReg:
      // Write 1 to clear; a level interrupt stays asserted until then.
      status_ &= ~(value & mask);
      break;
    case kCounterReg:
      // The spec asks for writes only while halted; a running counter takes
      // them too, as hardware does, and restarts from the value written.
      counter_ = (CounterAt(now) & ~mask) | (value & mask);
      started_ = now;
      break;
    default:
      break;  // capabilities and reserved registers are read-only
  }
}

void Hpet::WriteTimerConfig(int timer, uint64_t value, uint64_t mask) {
  Timer& t = timers_[timer];
  uint64_t next = ((t.config & ~mask) | (value & mask)) & kTimerWritable;
  uint32_t route = static_cast<uint32_t>((next & kRouteMask) >> kRouteShift);
  if ((next & kRouteMask) != (t.config & kRouteMask) && !((route_cap_ >> route) & 1)) {
    // Software is to write only routes the cap offers and may check by
    // reading back: an unsupported one is not taken, the old route stays.
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                     "hpet: timer {} cannot route to pin {} (cap 0x{:x}); keeping its route", timer,
                     route, route_cap_);
    next = (next & ~kRouteMask) | (t.config & kRouteMask);
  }
  t.config = next;
  if (next & kMode32Cnf) {
    t.comparator &= kLow32;
    t.period &= kLow32;
  }
}

void Hpet::WriteComparator(int timer, uint64_t value, uint64_t mask) {
  Timer& t = timers_[timer];
  mask &= WidthMask(t.config);  // a 32-bit timer ignores the upper half
  if (mask == 0) return;
  // Periodic mode: a write sets the period (the value added at each match);
  // the comparator itself only with Tn_VAL_SET_CNF, which then clears.
  if (!(t.config & kPeriodicCnf) || (t.config & kValSetCnf)) {
    t.comparator = (t.comparator & ~mask) | (value & mask);
  }
  t.period = (t.period & ~mask) | (value & mask);
  t.config &= ~kValSetCnf;
}

void Hpet::Advance(absl::Time now) {
  for (int i = 0; i < kNumTimers; ++i) {
    if (timers_[i].next_match <= now) Match(i, now);
  }
}

void Hpet::Match(int timer, absl::Time now) {
  Timer& t = timers_[timer];
  uint64_t mask = WidthMask(t.config);
  uint64_t period = t.period & mask;
  if ((t.config & kPeriodicCnf) && period != 0) {
    // Step past the counter in one go: however many periods went by (a
    // stalled host), one interrupt, and the comparator lands in (counter,
    // counter + period], as it would have stepping one by one. A period
    // under kMinPeriodicTicks steps past counter + kMinPeriodicTicks - 1.
    uint64_t base = CounterAt(now) + (period < kMinPeriodicTicks ? kMinPeriodicTicks - 1 : 0);
    uint64_t since_match = (base - t.comparator) & mask;
    t.comparator = (base + (period - since_match % period)) & mask;
  }
  // A periodic timer of period 0 keeps its comparator, like a one-shot one.
  t.next_match = NextMatch(t, now);
  if (t.config & kLevelCnf) {
    // Set even with the interrupt disabled (the spec, Tn_INT_ENB_CNF); UpdateLines
    // drives the line.
    status_ |= uint64_t{1} << timer;
  } else if (t.config & kIntEnableCnf) {
    Pulse(timer);
  }
}

void Hpet::Pulse(int timer) {
  int pin = PinOf(timer);
  // A pin held high by a level-triggered timer has no edge to give.
  if (pin < 0 || pins_[pin] == nullptr || pin_level_[pin]) return;
  pins_[pin]->SetLevel(true);
  pins_[pin]->SetLevel(false);
}

void Hpet::Settle(absl::Time now) {
  for (Timer& t : timers_) t.next_match = NextMatch(t, now);
  UpdateLines();
  SyncHost();
}

void Hpet::UpdateLines() {
  std::array<bool, kIoapicPins> want{};
  if (enabled()) {
    for (int i = 0; i < kNumTimers; ++i) {
      const Timer& t = timers_[i];
      bool asserted = (t.config & kLevelCnf) && (t.config & kIntEnableCnf) && ((status_ >> i) & 1);
      int pin = PinOf(i);
      if (asserted && pin >= 0) want[pin] = true;
    }
  }
  for (int pin = 0; pin < kIoapicPins; ++pin) {
    if (want[pin] == pin_level_[pin] || pins_[pin] == nullptr) continue;
    pin_level_[pin] = want[pin];
    pins_[pin]->SetLevel(want[pin]);
  }
}

void Hpet::SyncHost() {
  for (int i = 0; i < kNumTimers; ++i) {
    Timer& t = timers_[i];
    // Only an enabled interrupt needs a callback on time; the rest of a match
    // (a status bit, a periodic comparator) is caught up at the next access.
    absl::Time want = (t.config & kIntEnableCnf) ? t.next_match : absl::InfiniteFuture();
    if (want == t.armed) continue;
    t.armed = want;
    if (want == absl::InfiniteFuture()) {
      host_->Disarm(i);
    } else {
      host_->Arm(i, want);
    }
  }
}

}  // namespace mote
