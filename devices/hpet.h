// Hpet: the IA-PC High Precision Event Timer (spec 1.0a), an MMIO device of
// kMmioSize bytes: a 64-bit main counter at kFrequencyHz and kNumTimers
// comparators ("timers"), each one-shot or periodic, 64- or 32-bit, edge or
// level, routed to an IOAPIC pin, or with legacy replacement routing to pins 2
// (timer 0, IRQ 0) and 8 (timer 1, IRQ 8). No FSB (MSI) delivery.
// The counter is derived from an injected Clock, never stepped. The device owns
// no thread: it asks an HpetHost for a callback (OnTimerDeadline) when a
// comparator is due. The Vm owns it, maps it (at 0xfed00000), implements the
// host and gives it the IOAPIC pins' lines.
// Thread-safety: every method may be called from any thread (internal mutex).
// Lock order: the Hpet's mutex first, then whatever IrqLine::SetLevel and the
// HpetHost methods take. They are called with the mutex held, so they must not
// call into the Hpet, nor wait for an OnTimerDeadline running on another
// thread; the host calls OnTimerDeadline with none of its own locks held.
#ifndef MOTE_DEVICES_HPET_H_
#define MOTE_DEVICES_HPET_H_

#include <array>
#include <cstdint>

#include "absl/time/time.h"
#include "vmm/base/bus.h"
#include "vmm/base/logging.h"
#include "vmm/base/mutex.h"
#include "vmm/base/platform_hooks.h"

namespace mote {

// What the HPET needs from the VM besides interrupt lines: one-shot host
// timers, and word of legacy replacement routing.
class HpetHost {
 public:
  virtual ~HpetHost() = default;
  // Calls Hpet::OnTimerDeadline(timer) once, from any thread, when the Hpet's
  // Clock reaches `deadline` (a deadline already past means at once). Replaces
  // an earlier Arm of the same timer.
  virtual void Arm(int timer, absl::Time deadline) = 0;
  // Forgets the deadline of `timer`. A callback already under way may still
  // arrive: the Hpet ignores callbacks that find nothing due.
  virtual void Disarm(int timer) = 0;
  // The guest turned legacy replacement routing on or off. While it is on,
  // the HPET replaces the 8254 PIT's IRQ 0 and the RTC's IRQ 8, so the VM
  // should silence those (KVM_PIT_FLAGS_HPET_LEGACY for KVM's PIT).
  virtual void OnLegacyReplacement(bool enabled) { (void)enabled; }
};

class Hpet : public BusDevice {
 public:
  static constexpr uint64_t kMmioSize = 0x400;
  static constexpr int kNumTimers = 3;
  // 10 ns ticks, as QEMU's HPET.
  static constexpr uint64_t kFrequencyHz = 100'000'000;
  static constexpr uint32_t kClockPeriodFs = 10'000'000;
  static constexpr int kIoapicPins = 24;
  static constexpr int kLegacyTimer0Pin = 2, kLegacyTimer1Pin = 8;
  // The low half of the General Capabilities and ID register: REV_ID 1,
  // NUM_TIM_CAP 2 (3 timers), COUNT_SIZE_CAP, LEG_RT_CAP, vendor 0x8086. The
  // ACPI HPET table repeats it as the Event Timer Block ID.
  static constexpr uint32_t kEventTimerBlockId =
      0x01 | (kNumTimers - 1) << 8 | 1 << 13 | 1 << 15 | 0x8086u << 16;
  // A periodic timer matches at most once per this many ticks (100 us): after
  // a match, a shorter period steps its comparator on by as many periods as
  // it takes, so a guest's tiny period cannot flood the host with callbacks.
  static constexpr uint64_t kMinPeriodicTicks = kFrequencyHz / 10'000;

  // pins[n]: the line of IOAPIC pin n, or null where nothing is wired.
  using IrqPins = std::array<IrqLine*, kIoapicPins>;

  // `route_cap` is every timer's Tn_INT_ROUTE_CAP, the pins a guest may route
  // a timer to; pins without a line are dropped from it. Legacy replacement
  // uses pins 2 and 8 whether or not they are in it. `clock`, `host` and the
  // lines must outlive the device, and the host must make no callback after
  // the device is destroyed.
  Hpet(const Clock* clock, HpetHost* host, const IrqPins& pins, uint32_t route_cap);

  // 4- and 8-byte accesses, naturally aligned; 4 bytes reach either half of a
  // 64-bit register. Other accesses read all-ones and write nothing.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // The host's callback for Arm. Finds what is due (a comparator the counter
  // has reached, per the current registers), interrupts, advances periodic
  // comparators and re-arms. Out-of-range timers and early calls are ignored.
  void OnTimerDeadline(int timer);

  // Back to the power-on state: counter halted at 0, timers off, lines low,
  // host timers disarmed.
  void Reset();

  // Tn_INT_ROUTE_CAP as the guest reads it.
  uint32_t route_cap() const { return route_cap_; }

  // General configuration and interrupt status, the main counter's value
  // (a restored counter counts on from it) and each timer's configuration,
  // comparator, period and whether a match was due and not yet acted on.
  // A restore then does what a register write does: drives the lines, tells
  // the host of legacy routing, and arms the host timers (a due match at
  // once, so its interrupt comes through the host's callback).
  uint32_t state_version() const override { return 1; }
  void SaveState(StateWriter& out) override;
  absl::Status RestoreState(StateReader& in) override;

 private:
  struct Timer {
    uint64_t config = 0;  // the writable bits of Tn_CONFIG; capabilities are added on read
    uint64_t comparator = ~uint64_t{0};
    uint64_t period = 0;                             // the last value written to the comparator
    absl::Time next_match = absl::InfiniteFuture();  // when the counter reaches the comparator
    absl::Time armed = absl::InfiniteFuture();       // the host's deadline for it; future: none
  };

  bool enabled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Time counted since started_, in whole ticks.
  absl::Duration Elapsed(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t ElapsedTicks(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t CounterAt(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // When the counter next arrives at the timer's comparator, from `now`.
  absl::Time NextMatch(const Timer& t, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The IOAPIC pin the timer interrupts, or -1 when it reaches none.
  int PinOf(int timer) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  uint64_t ReadRegister(uint64_t reg, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the bits of `value` selected by `mask` (one half or all of it).
  void WriteRegister(uint64_t reg, uint64_t value, uint64_t mask, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteTimerConfig(int timer, uint64_t value, uint64_t mask)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteComparator(int timer, uint64_t value, uint64_t mask) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Acts on every match due by `now`.
  void Advance(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Match(int timer, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Pulse(int timer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a state change: recomputes matches, drives the lines, re-arms.
  void Settle(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateLines() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SyncHost() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* const clock_;
  HpetHost* const host_;
  const IrqPins pins_;
  const uint32_t route_cap_;
  RateLimiter log_limiter_;

  Mutex mu_;
  uint64_t config_ ABSL_GUARDED_BY(mu_) = 0;  // ENABLE_CNF, LEG_RT_CNF
  uint64_t status_ ABSL_GUARDED_BY(mu_) = 0;  // level-triggered interrupt status
  // The counter is counter_ while halted, counter_ plus the ticks since
  // started_ while enabled (modulo 2^64).
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time started_ ABSL_GUARDED_BY(mu_) = absl::UnixEpoch();
  std::array<Timer, kNumTimers> timers_ ABSL_GUARDED_BY(mu_);
  std::array<bool, kIoapicPins> pin_level_ ABSL_GUARDED_BY(mu_){};
};

}  // namespace mote

#endif  // MOTE_DEVICES_HPET_H_
