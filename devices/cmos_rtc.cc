#include "devices/cmos_rtc.h"

#include "absl/time/time.h"

namespace mote {
namespace {

constexpr uint8_t kSeconds = 0x00, kMinutes = 0x02, kHours = 0x04, kWeekday = 0x06,
                  kDayOfMonth = 0x07, kMonth = 0x08, kYear = 0x09, kStatusA = 0x0a, kStatusB = 0x0b,
                  kStatusC = 0x0c, kStatusD = 0x0d, kCentury = 0x32;
constexpr uint8_t kStatusB24Hour = 0x02, kStatusBBinary = 0x04;
constexpr uint8_t kStatusDValidRam = 0x80;
constexpr uint8_t kIndexMask = 0x7f;  // bit 7 of the index port is NMI-disable

}  // namespace

CmosRtc::CmosRtc(const Clock* clock) : clock_(clock) {
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
      ram_[kStatusC] = 0;  // reading C clears the interrupt flags
      return flags;
    }
    return ram_[reg];
  }
  absl::TimeZone utc = absl::UTCTimeZone();
  absl::CivilSecond now = absl::ToCivilSecond(clock_->Now(), utc);
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
      return ram_[reg];  // alarm registers 1, 3, 5
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
  if (reg <= kYear || reg == kCentury || reg == kStatusC || reg == kStatusD) return;
  if (reg == kStatusA) {
    ram_[reg] = data[0] & 0x7f;  // UIP is read-only
    return;
  }
  ram_[reg] = data[0];
}

}  // namespace mote
