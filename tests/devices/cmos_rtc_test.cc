#include "devices/cmos_rtc.h"

#include <catch2/catch.hpp>
#include <vector>

#include "tests/support/fakes.h"

namespace mote {
namespace {

using testing::FakeClock;
using testing::ReadByte;
using testing::WriteByte;

uint8_t ReadReg(CmosRtc& rtc, uint8_t reg) {
  WriteByte(rtc, 0, reg);
  return ReadByte(rtc, 1);
}

absl::Time At(int y, int mo, int d, int h, int mi, int s) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

TEST_CASE("CMOS RTC reports the clock's time in BCD, 24-hour by default", "[cmos_rtc]") {
  FakeClock clock(At(2026, 11, 22, 17, 45, 9));  // a Sunday
  CmosRtc rtc(&clock);
  CHECK(ReadReg(rtc, 0x00) == 0x09);
  CHECK(ReadReg(rtc, 0x02) == 0x45);
  CHECK(ReadReg(rtc, 0x04) == 0x17);
  CHECK(ReadReg(rtc, 0x06) == 0x01);  // Sunday = 1
  CHECK(ReadReg(rtc, 0x07) == 0x22);
  CHECK(ReadReg(rtc, 0x08) == 0x11);
  CHECK(ReadReg(rtc, 0x09) == 0x26);
  CHECK(ReadReg(rtc, 0x32) == 0x20);
  CHECK((ReadReg(rtc, 0x0a) & 0x80) == 0);  // never "update in progress"
  CHECK(ReadReg(rtc, 0x0d) == 0x80);        // valid RAM and time
}

TEST_CASE("CMOS RTC follows register B: binary and 12-hour modes", "[cmos_rtc]") {
  FakeClock clock(At(2026, 1, 5, 13, 7, 59));  // a Monday
  CmosRtc rtc(&clock);
  WriteByte(rtc, 0, 0x0b);
  WriteByte(rtc, 1, 0x04);  // binary, 12-hour
  CHECK(ReadReg(rtc, 0x00) == 59);
  CHECK(ReadReg(rtc, 0x04) == (0x80 | 1));  // 1 PM
  CHECK(ReadReg(rtc, 0x06) == 2);           // Monday
  clock.now = At(2026, 1, 5, 0, 30, 0);
  CHECK(ReadReg(rtc, 0x04) == 12);  // midnight is 12 AM
}

TEST_CASE("CMOS RTC: time tracks the clock; writes to time are ignored, RAM is kept",
          "[cmos_rtc]") {
  FakeClock clock(At(2026, 11, 22, 5, 0, 0));
  CmosRtc rtc(&clock);
  WriteByte(rtc, 0, 0x00);
  WriteByte(rtc, 1, 0x33);
  CHECK(ReadReg(rtc, 0x00) == 0x00);
  clock.now += absl::Seconds(12);
  CHECK(ReadReg(rtc, 0x00) == 0x12);
  WriteByte(rtc, 0, 0x40);
  WriteByte(rtc, 1, 0xa5);
  CHECK(ReadReg(rtc, 0x40) == 0xa5);
  // Bit 7 of the index port is NMI-disable, not part of the index.
  WriteByte(rtc, 0, 0x80 | 0x40);
  CHECK(ReadByte(rtc, 1) == 0xa5);
  uint8_t wide[2] = {0, 0};
  rtc.Read(1, absl::Span<uint8_t>(wide, 2));
  CHECK(wide[1] == 0xff);
}

// The alarm's host side, recorded: what was armed, the IRQ 8 line, and
// the hook that tells ACPI.
struct AlarmRecorder {
  std::vector<absl::Time> armed;
  int disarmed = 0;
  int fired = 0;
  testing::FakeIrqLine irq;
  RtcAlarmWiring Wiring() {
    return {.arm = [this](absl::Time t) { armed.push_back(t); },
            .disarm = [this] { ++disarmed; },
            .irq = &irq,
            .on_alarm = [this] { ++fired; }};
  }
};

void WriteReg(CmosRtc& rtc, uint8_t reg, uint8_t value) {
  WriteByte(rtc, 0, reg);
  WriteByte(rtc, 1, value);
}

TEST_CASE("CMOS RTC alarm: armed for the matching second, fires, IRQ 8 until C is read",
          "[cmos_rtc]") {
  FakeClock clock(At(2026, 12, 6, 22, 15, 30));
  AlarmRecorder host;
  CmosRtc rtc(&clock, host.Wiring());
  WriteReg(rtc, 0x01, 0x35);  // 22:15:35, BCD
  WriteReg(rtc, 0x03, 0x15);
  WriteReg(rtc, 0x05, 0x22);
  CHECK(host.armed.empty());         // AIE still off
  WriteReg(rtc, 0x0b, 0x02 | 0x20);  // 24-hour, BCD, AIE
  REQUIRE(!host.armed.empty());
  CHECK(host.armed.back() == At(2026, 12, 6, 22, 15, 35));
  // Early: nothing fires, the timer is armed again for the same second.
  clock.now = At(2026, 12, 6, 22, 15, 34);
  rtc.OnAlarmTimer();
  CHECK(host.fired == 0);
  CHECK(host.armed.back() == At(2026, 12, 6, 22, 15, 35));
  clock.now = At(2026, 12, 6, 22, 15, 35);
  rtc.OnAlarmTimer();
  CHECK(host.fired == 1);
  CHECK(host.irq.level);
  CHECK(host.armed.back() == At(2026, 12, 7, 22, 15, 35));  // the same time tomorrow
  CHECK(ReadReg(rtc, 0x0c) == 0xa0);                        // IRQF | AF
  CHECK_FALSE(host.irq.level);
  CHECK(ReadReg(rtc, 0x0c) == 0x00);  // read clears
  // Don't-care bytes (0xc0-0xff): every second.
  WriteReg(rtc, 0x01, 0xff);
  WriteReg(rtc, 0x03, 0xff);
  WriteReg(rtc, 0x05, 0xff);
  CHECK(host.armed.back() == At(2026, 12, 6, 22, 15, 36));
  // AIE off: disarmed.
  int disarmed = host.disarmed;
  WriteReg(rtc, 0x0b, 0x02);
  CHECK(host.disarmed == disarmed + 1);
  rtc.OnAlarmTimer();
  CHECK(host.fired == 1);
}

TEST_CASE("CMOS RTC alarm: an hour no clock reads never arms", "[cmos_rtc]") {
  FakeClock clock(At(2026, 12, 6, 22, 15, 30));
  AlarmRecorder host;
  CmosRtc rtc(&clock, host.Wiring());
  WriteReg(rtc, 0x05, 0x99);  // no such BCD hour
  WriteReg(rtc, 0x0b, 0x02 | 0x20);
  CHECK(host.armed.empty());
  CHECK(host.disarmed >= 1);
}

}  // namespace
}  // namespace mote
