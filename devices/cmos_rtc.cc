#include "devices/cmos_rtc.h"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace mote {
namespace {

constexpr uint8_t kSeconds = 0x00, kMinutes = 0x02, kHours = 0x04, kWeekday = 0x06,
                  kDayOfMonth = 0x07, kMonth = 0x08, kYear = 0x09, kStatusA = 0x0a, kStatusB = 0x0b,
                  kStatusC = 0x0c, kStatusD = 0x0d, kCentury = 0x32;
constexpr uint8_t kSecondsAlarm = 0x01, kMinutesAlarm = 0x03, kHoursAlarm = 0x05;
constexpr uint8_t kStatusB24Hour = 0x02, kStatusBBinary = 0x04, kStatusBAlarmIrq = 0x20;
constexpr uint8_t kStatusCIrq = 0x80, kStatusCAlarm = 0x20;
constexpr uint8_t kAlarmAnyValue = 0xc0;
constexpr uint8_t kStatusDValidRam = 0x80;
constexpr uint8_t kIndexMask = 0x7f;  // bit 7 of the index port is NMI-disable
constexpr uint8_t kStatusAUpdateInProgress = 0x80;
constexpr size_t kRamSize = 128;

// Registers whose RAM byte is never used: they read the clock and ignore
// writes, so their bytes stay 0.
bool IsClockRegister(uint8_t reg) {
  return reg == kSeconds || reg == kMinutes || reg == kHours || (reg >= kWeekday && reg <= kYear) ||
         reg == kCentury;
}

}  // namespace

CmosRtc::CmosRtc(const Clock* clock, RtcAlarmWiring alarm)
    : clock_(clock), alarm_(std::move(alarm)) {
  ram_[kStatusA] = 0x26;            // 32.768 kHz time base, 1024 Hz rate; UIP never set
  ram_[kStatusB] = kStatusB24Hour;  // BCD, 24-hour: what PC firmware leaves
  ram_[kStatusD] = kStatusDValidRam;
}

uint8_t CmosRtc::Encode(int value) const {
  if (ram_[kStatusB] & kStatusBBinary) return static_cast<uint8_t>(value);
  return static_cast<uint8_t>(((value / 10) << 4) | (value % 10));
}

uint8_t CmosRtc::ReadRegister(uint8_t reg) {
  if (reg > kYear && reg != kCentury) {
    if (reg == kStatusC) {
      uint8_t flags = ram_[kStatusC];
      ram_[kStatusC] = 0;  // reading C clears the interrupt flags, and IRQ 8
      if ((flags & kStatusCIrq) && alarm_.irq != nullptr) alarm_.irq->SetLevel(false);
      return flags;
    }
    return ram_[reg];
  }
  if (reg == kSecondsAlarm || reg == kMinutesAlarm || reg == kHoursAlarm) return ram_[reg];
  return TimeField(reg, absl::ToCivilSecond(clock_->Now(), absl::UTCTimeZone()));
}

bool CmosRtc::AlarmMatches(absl::CivilSecond t) const {
  for (auto [alarm, time] : {std::pair{kSecondsAlarm, kSeconds}, std::pair{kMinutesAlarm, kMinutes},
                             std::pair{kHoursAlarm, kHours}}) {
    if ((ram_[alarm] & kAlarmAnyValue) != kAlarmAnyValue && ram_[alarm] != TimeField(time, t)) {
      return false;
    }
  }
  return true;
}

void CmosRtc::RearmAlarm() {
  if (!alarm_.arm) return;
  if (ram_[kStatusB] & kStatusBAlarmIrq) {
    absl::TimeZone utc = absl::UTCTimeZone();
    absl::CivilSecond now = absl::ToCivilSecond(clock_->Now(), utc);
    // At most a day of seconds: the alarm has no date.
    for (int s = 1; s <= 24 * 60 * 60; ++s) {
      if (AlarmMatches(now + s)) {
        alarm_.arm(absl::FromCivil(now + s, utc));
        return;
      }
    }
  }
  if (alarm_.disarm) alarm_.disarm();
}

void CmosRtc::OnAlarmTimer() {
  bool fired = false;
  {
    MutexLock lock(&mu_);
    if ((ram_[kStatusB] & kStatusBAlarmIrq) &&
        AlarmMatches(absl::ToCivilSecond(clock_->Now(), absl::UTCTimeZone()))) {
      ram_[kStatusC] |= kStatusCIrq | kStatusCAlarm;
      if (alarm_.irq != nullptr) alarm_.irq->SetLevel(true);
      fired = true;
    }
    RearmAlarm();
  }
  if (fired && alarm_.on_alarm) alarm_.on_alarm();
}

uint8_t CmosRtc::TimeField(uint8_t reg, absl::CivilSecond now) const {
  switch (reg) {
    case kSeconds:
      return Encode(now.second());
    case kMinutes:
      return Encode(now.minute());
    case kHours: {
      int hour = now.hour();
      if (ram_[kStatusB] & kStatusB24Hour) return Encode(hour);
      // 12-hour mode: 12, 1..11 with bit 7 set after noon.
      int h12 = hour % 12 == 0 ? 12 : hour % 12;
      return static_cast<uint8_t>(Encode(h12) | (hour >= 12 ? 0x80 : 0));
    }
    case kWeekday:
      // RTC weekdays run 1 (Sunday) .. 7; absl counts Monday as 0.
      return Encode((static_cast<int>(absl::GetWeekday(absl::CivilDay(now))) + 1) % 7 + 1);
    case kDayOfMonth:
      return Encode(now.day());
    case kMonth:
      return Encode(now.month());
    case kYear:
      return Encode(static_cast<int>(now.year() % 100));
    case kCentury:
      return Encode(static_cast<int>(now.year() / 100));
    default:
      return 0;
  }
}

void CmosRtc::Read(uint64_t offset, absl::Span<uint8_t> data) {
  if (data.empty()) return;
  MutexLock lock(&mu_);
  data[0] = offset == 0 ? index_ : ReadRegister(index_);
  for (size_t i = 1; i < data.size(); ++i) data[i] = 0xff;
}

void CmosRtc::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (data.empty()) return;
  MutexLock lock(&mu_);
  if (offset == 0) {
    index_ = data[0] & kIndexMask;
    return;
  }
  uint8_t reg = index_;
  // The clock follows the host; a guest setting the time (hwclock --systohc)
  // is accepted and ignored, like Firecracker's and Cloud Hypervisor's CMOS.
  bool alarm = reg == kSecondsAlarm || reg == kMinutesAlarm || reg == kHoursAlarm;
  if ((reg <= kYear && !alarm) || reg == kCentury || reg == kStatusC || reg == kStatusD) return;
  if (reg == kStatusA) {
    ram_[reg] = data[0] & 0x7f;  // UIP is read-only
    return;
  }
  ram_[reg] = data[0];
  if (reg == kStatusB || alarm) RearmAlarm();
}

void CmosRtc::SaveState(StateWriter& out) {
  MutexLock lock(&mu_);
  out.U8(index_);
  out.Bytes(ram_);
}

absl::Status CmosRtc::RestoreState(StateReader& in) {
  uint8_t index = in.U8();
  std::vector<uint8_t> ram = in.Bytes(in.remaining());
  if (absl::Status s = in.status(); !s.ok()) return s;
  if (index & ~kIndexMask) in.Fail(absl::StrCat("index register 0x", absl::Hex(index), " > 0x7f"));
  if (ram.size() != kRamSize) {
    in.Fail(absl::StrCat("CMOS RAM of ", ram.size(), " bytes, want ", kRamSize));
  } else {
    for (uint8_t reg = 0; reg < ram.size(); ++reg) {
      if (IsClockRegister(reg) && ram[reg] != 0) {
        in.Fail(absl::StrCat("clock register 0x", absl::Hex(reg), " holds 0x", absl::Hex(ram[reg]),
                             " (the time comes from the clock, its byte stays 0)"));
      }
    }
    if (ram[kStatusA] & kStatusAUpdateInProgress) in.Fail("register A has UIP set");
    if (ram[kStatusC] & ~(kStatusCIrq | kStatusCAlarm)) {
      in.Fail(absl::StrCat("register C 0x", absl::Hex(ram[kStatusC]),
                           " has flags this RTC never sets"));
    }
    if (ram[kStatusD] != kStatusDValidRam) {
      in.Fail(absl::StrCat("register D 0x", absl::Hex(ram[kStatusD]), ", want 0x80"));
    }
  }
  if (absl::Status s = in.status(); !s.ok()) return s;

  MutexLock lock(&mu_);
  static_assert(std::tuple_size_v<decltype(ram_)> == kRamSize);
  bool was_asserted = ram_[kStatusC] & kStatusCIrq;
  index_ = index;
  std::copy(ram.begin(), ram.end(), ram_.begin());
  // IRQ 8 is high while IRQF is set; touched only when that changes, as a
  // read of C does (the line may be shared).
  bool asserted = ram_[kStatusC] & kStatusCIrq;
  if (asserted != was_asserted && alarm_.irq != nullptr) alarm_.irq->SetLevel(asserted);
  RearmAlarm();
  return absl::OkStatus();
}

}  // namespace mote
