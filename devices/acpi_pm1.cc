#include "devices/acpi_pm1.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace mote {
namespace {

// The status bits anything here sets: Wake's (WAK_STS and why it woke) and
// RtcAlarm's.
constexpr uint16_t kKnownStatus =
    AcpiPm1::kWakeStatus | AcpiPm1::kPowerButtonStatus | AcpiPm1::kRtcStatus;

}  // namespace

AcpiPm1::AcpiPm1(GuestEventSink* events, const Clock* clock, uint8_t s5_sleep_type,
                 uint8_t s3_sleep_type, IrqLine* sci)
    : events_(events),
      clock_(clock),
      s5_sleep_type_(s5_sleep_type),
      s3_sleep_type_(s3_sleep_type),
      sci_(sci),
      start_(clock->Now()) {}

void AcpiPm1::Wake(uint16_t why) {
  MutexLock lock(&mu_);
  status_ |= kWakeStatus | why;
  UpdateSci();
}

bool AcpiPm1::RtcAlarm() {
  MutexLock lock(&mu_);
  status_ |= kRtcStatus;
  UpdateSci();
  return (enable_ & kRtcEnable) != 0;
}

void AcpiPm1::UpdateSci() {
  // The enable bits sit where their status bits do (PWRBTN 8, RTC 10).
  if (sci_ != nullptr) sci_->SetLevel((status_ & enable_ & (kPowerButtonStatus | kRtcStatus)) != 0);
}

uint32_t AcpiPm1::TimerAt(absl::Time now) const {
  MutexLock lock(&mu_);
  return TimerAtLocked(now);
}

uint32_t AcpiPm1::TimerAtLocked(absl::Time now) const {
  // Whole seconds and the rest apart, so the product never overflows.
  int64_t ns = absl::ToInt64Nanoseconds(now - start_);
  if (ns < 0) ns = 0;
  uint64_t ticks = static_cast<uint64_t>(ns / 1000000000) * kTimerHz +
                   static_cast<uint64_t>(ns % 1000000000) * kTimerHz / 1000000000;
  return static_cast<uint32_t>(timer_base_ + ticks);
}

uint64_t AcpiPm1::ReadRegister(uint64_t offset, size_t width) {
  // Each register read whole from its first byte; a read at another offset
  // sees the register's bytes from there on. The timer is read once: its
  // bytes from two instants would tear (0x12ff then 0x1300 reads 0x13ff, and
  // the next read goes back, which makes Linux refuse the PM timer).
  const uint32_t timer = TimerAtLocked(clock_->Now());
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i) {
    uint64_t at = offset + i;
    uint8_t byte = 0xff;
    if (at < kTimerOffset) {
      byte = static_cast<uint8_t>(control_ >> (8 * (at - kControlOffset)));
      if (at >= kControlOffset + 2) byte = 0;
    } else if (at < kStatusOffset) {
      byte = static_cast<uint8_t>(timer >> (8 * (at - kTimerOffset)));
    } else if (at < kEnableOffset) {
      byte = static_cast<uint8_t>(status_ >> (8 * (at - kStatusOffset)));
    } else if (at < kPortCount) {
      byte = static_cast<uint8_t>(enable_ >> (8 * (at - kEnableOffset)));
    }
    value |= uint64_t{byte} << (8 * i);
  }
  return value;
}

void AcpiPm1::Read(uint64_t offset, absl::Span<uint8_t> data) {
  MutexLock lock(&mu_);
  uint64_t value = ReadRegister(offset, data.size());
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(value >> (8 * i));
}

void AcpiPm1::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  uint16_t value = 0;
  for (size_t i = 0; i < std::min<size_t>(data.size(), 2); ++i)
    value |= uint16_t{data[i]} << (8 * i);
  bool power_off = false, suspend = false;
  {
    MutexLock lock(&mu_);
    if (offset == kControlOffset && data.size() >= 2) {
      // SCI_EN stays set; SLP_EN is write-only.
      control_ = static_cast<uint16_t>((value & ~kSleepEnable) | kSciEnabled);
      if (value & kSleepEnable) {
        int type = (value >> kSleepTypeShift) & 7;
        if (type == s5_sleep_type_) {
          power_off = true;
        } else if (type == s3_sleep_type_) {
          suspend = true;
        } else {
          MOTE_LOG_LIMITED(limiter_, spdlog::level::warn,
                           "ACPI: the guest asked for sleep type {}, which mote does not offer",
                           type);
        }
      }
    } else if (offset == kStatusOffset && data.size() >= 2) {
      status_ = static_cast<uint16_t>(status_ & ~value);
      UpdateSci();
    } else if (offset == kEnableOffset && data.size() >= 2) {
      enable_ = value;
      UpdateSci();
    } else {
      MOTE_LOG_LIMITED(limiter_, spdlog::level::debug,
                       "ACPI PM1: {}-byte write at offset {} ignored", data.size(), offset);
    }
  }
  if (power_off) events_->OnGuestEvent(GuestEvent::kPowerOff, 0);
  if (suspend) events_->OnGuestEvent(GuestEvent::kSuspend, s3_sleep_type_);
}

void AcpiPm1::SaveState(StateWriter& out) {
  MutexLock lock(&mu_);
  out.U16(control_);
  out.U16(status_);
  out.U16(enable_);
  out.U32(TimerAtLocked(clock_->Now()));
}

absl::Status AcpiPm1::RestoreState(StateReader& in) {
  uint16_t control = in.U16();
  uint16_t status = in.U16();
  uint16_t enable = in.U16();
  uint32_t timer = in.U32();
  if (absl::Status s = in.status(); !s.ok()) return s;
  if (!(control & kSciEnabled) || (control & kSleepEnable)) {
    in.Fail(absl::StrCat("PM1a control 0x", absl::Hex(control),
                         ": SCI_EN must be set and SLP_EN clear"));
  }
  if (status & ~kKnownStatus) {
    in.Fail(absl::StrCat("PM1a status 0x", absl::Hex(status), " has bits nothing sets"));
  }
  if (absl::Status s = in.status(); !s.ok()) return s;

  MutexLock lock(&mu_);
  control_ = control;
  status_ = status;
  enable_ = enable;
  start_ = clock_->Now();
  timer_base_ = timer;
  UpdateSci();
  return absl::OkStatus();
}

}  // namespace mote
