// AcpiPm1: the fixed-hardware ACPI registers of a full (not hardware-reduced)
// FADT, where QEMU's q35 has them: PM1a control at offset 0 (port 0x604),
// the PM timer at 4 (0x608) and PM1a status/enable at 8/10 (0x60c/0x60e).
//  - PM1a control reads SCI_EN (ACPI mode, always: there is no SMI_CMD) and
//    the last SLP_TYP; SLP_EN with the \_S5 type powers off.
//  - The PM timer is 32 bits wide (FADT TMR_VAL_EXT) at 3.579545 MHz, from
//    an injected Clock (CLOCK_MONOTONIC in a VM); a restored one counts on from
//    the value it had when saved.
//    SLP_EN with the \_S3 type asks the VM to suspend (GuestEvent::kSuspend);
//    Wake() then sets WAK_STS (and what woke it) for the resumed guest.
//  - PM1a status bits are write-one-to-clear. RTC_STS comes from the RTC's
//    alarm (RtcAlarm), WAK_STS and PWRBTN_STS from Wake; the SCI is raised
//    while an enabled status bit is set (the power button itself is the
//    GED's, as in hardware-reduced mode).
// Thread-safety: any thread (internal mutex).
#ifndef MOTE_DEVICES_ACPI_PM1_H_
#define MOTE_DEVICES_ACPI_PM1_H_

#include <cstdint>

#include "absl/time/time.h"
#include "vmm/base/bus.h"
#include "vmm/base/logging.h"
#include "vmm/base/mutex.h"
#include "vmm/base/platform_hooks.h"

namespace mote {

class AcpiPm1 : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 12;
  static constexpr uint64_t kControlOffset = 0, kTimerOffset = 4, kStatusOffset = 8,
                            kEnableOffset = 10;
  static constexpr uint64_t kTimerHz = 3579545;
  static constexpr uint16_t kSciEnabled = 1u << 0;
  static constexpr uint16_t kSleepEnable = 1u << 13;
  static constexpr int kSleepTypeShift = 10;
  static constexpr uint16_t kWakeStatus = 1u << 15;
  static constexpr uint16_t kPowerButtonStatus = 1u << 8;
  static constexpr uint16_t kRtcStatus = 1u << 10;

  static constexpr uint16_t kRtcEnable = 1u << 10;

  // `sci` may be null (no interrupt).
  AcpiPm1(GuestEventSink* events, const Clock* clock, uint8_t s5_sleep_type, uint8_t s3_sleep_type,
          IrqLine* sci = nullptr);

  // The RTC's alarm fired: RTC_STS. Whether RTC_EN lets it wake the system.
  bool RtcAlarm();

  // The system woke from S3: WAK_STS and `why` (kPowerButtonStatus, ...)
  // set in PM1a status.
  void Wake(uint16_t why);

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // The PM timer's value at `now`.
  uint32_t TimerAt(absl::Time now) const;

  // PM1a control, status and enable, and the PM timer's value (it counts on
  // from there after a restore, which also drives the SCI).
  uint32_t state_version() const override { return 1; }
  void SaveState(StateWriter& out) override;
  absl::Status RestoreState(StateReader& in) override;

 private:
  uint32_t TimerAtLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t ReadRegister(uint64_t offset, size_t width) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateSci() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  GuestEventSink* const events_;
  const Clock* const clock_;
  const uint8_t s5_sleep_type_;
  const uint8_t s3_sleep_type_;
  IrqLine* const sci_;
  mutable Mutex mu_;
  // The timer reads timer_base_ plus the ticks since start_ (modulo 2^32).
  absl::Time start_ ABSL_GUARDED_BY(mu_);
  uint32_t timer_base_ ABSL_GUARDED_BY(mu_) = 0;
  uint16_t control_ ABSL_GUARDED_BY(mu_) = kSciEnabled;
  uint16_t status_ ABSL_GUARDED_BY(mu_) = 0;
  uint16_t enable_ ABSL_GUARDED_BY(mu_) = 0;
  RateLimiter limiter_;
};

}  // namespace mote

#endif  // MOTE_DEVICES_ACPI_PM1_H_
