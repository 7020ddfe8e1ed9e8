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

std::vector<uint8_t> Save(CmosRtc& rtc) {
  StateWriter out;
  rtc.SaveState(out);
  return out.Take();
}

absl::Status Restore(CmosRtc& rtc, absl::Span<const uint8_t> bytes) {
  StateReader in(bytes, "cmos-rtc");
  return rtc.RestoreState(in);
}

TEST_CASE("CMOS RTC snapshot: RAM, registers, a fired alarm and the armed one come back",
          "[cmos_rtc][snapshot]") {
  FakeClock clock(At(2026, 12, 6, 22, 15, 30));
  AlarmRecorder host;
  CmosRtc rtc(&clock, host.Wiring());
  CHECK(rtc.state_version() == 1);
  WriteReg(rtc, 0x40, 0xa5);
  WriteReg(rtc, 0x7f, 0x5a);
  WriteReg(rtc, 0x0a, 0x2f);
  WriteReg(rtc, 0x01, 35);  // 22:15:35, binary
  WriteReg(rtc, 0x03, 15);
  WriteReg(rtc, 0x05, 22);
  WriteReg(rtc, 0x0b, 0x02 | 0x04 | 0x20);  // 24-hour, binary, AIE
  clock.now = At(2026, 12, 6, 22, 15, 35);
  rtc.OnAlarmTimer();
  REQUIRE(host.irq.level);
  WriteByte(rtc, 0, 0x40);  // the index is state too
  std::vector<uint8_t> state = Save(rtc);

  // Restored later (the clock has moved on): the time is the clock's, the
  // alarm fired before the save is still pending, the next one is armed.
  clock.now = At(2026, 12, 7, 8, 0, 0);
  AlarmRecorder host2;
  CmosRtc copy(&clock, host2.Wiring());
  REQUIRE(Restore(copy, state).ok());
  CHECK(host2.irq.level);
  REQUIRE(host2.armed.size() == 1);
  CHECK(host2.armed.back() == At(2026, 12, 7, 22, 15, 35));
  CHECK(ReadByte(copy, 0) == 0x40);
  CHECK(ReadByte(copy, 1) == 0xa5);
  CHECK(ReadReg(copy, 0x7f) == 0x5a);
  CHECK(ReadReg(copy, 0x0a) == 0x2f);
  CHECK(ReadReg(copy, 0x0b) == (0x02 | 0x04 | 0x20));
  CHECK(ReadReg(copy, 0x01) == 35);
  CHECK(ReadReg(copy, 0x04) == 8);  // binary hours, from the clock
  CHECK(ReadReg(copy, 0x0c) == 0xa0);
  CHECK_FALSE(host2.irq.level);
  clock.now = At(2026, 12, 7, 22, 15, 35);
  copy.OnAlarmTimer();
  CHECK(host2.fired == 1);

  // With AIE off, a restore disarms and leaves IRQ 8 alone.
  CmosRtc plain(&clock);
  AlarmRecorder host3;
  CmosRtc copy3(&clock, host3.Wiring());
  REQUIRE(Restore(copy3, Save(plain)).ok());
  CHECK(host3.armed.empty());
  CHECK(host3.disarmed == 1);
  CHECK(host3.irq.changes == 0);
}

TEST_CASE("CMOS RTC snapshot: truncated or out-of-range state is refused, the device unchanged",
          "[cmos_rtc][snapshot]") {
  FakeClock clock(At(2026, 12, 6, 22, 15, 30));
  CmosRtc rtc(&clock);
  WriteReg(rtc, 0x40, 0x11);
  std::vector<uint8_t> good = Save(rtc);

  AlarmRecorder host;
  CmosRtc target(&clock, host.Wiring());
  WriteReg(target, 0x40, 0x77);
  WriteByte(target, 0, 0x41);
  for (size_t n = 0; n < good.size(); ++n) {
    CHECK(Restore(target, absl::MakeConstSpan(good.data(), n)).code() ==
          absl::StatusCode::kDataLoss);
  }
  // Index, then the RAM: offset 5 is its first byte.
  auto patched = [&](size_t at, uint8_t value) {
    std::vector<uint8_t> bad = good;
    bad.at(at) = value;
    return bad;
  };
  auto message = [&](const std::vector<uint8_t>& bad) {
    absl::Status s = Restore(target, bad);
    CHECK(s.code() == absl::StatusCode::kDataLoss);
    return std::string(s.message());
  };
  CHECK(message(patched(0, 0x80)).find("index") != std::string::npos);
  CHECK(message(patched(5 + 0x0a, 0xa6)).find("UIP") != std::string::npos);
  CHECK(message(patched(5 + 0x0c, 0x10)).find("register C") != std::string::npos);
  CHECK(message(patched(5 + 0x0d, 0x00)).find("register D") != std::string::npos);
  CHECK(message(patched(5 + 0x00, 0x12)).find("clock register") != std::string::npos);
  StateWriter short_ram;
  short_ram.U8(0);
  short_ram.Bytes(std::vector<uint8_t>(127, 0));
  CHECK(message(short_ram.Take()).find("127 bytes") != std::string::npos);
  CHECK(host.irq.changes == 0);
  CHECK(host.armed.empty());
  CHECK(ReadByte(target, 0) == 0x41);
  CHECK(ReadReg(target, 0x40) == 0x77);
  CHECK(ReadReg(target, 0x0d) == 0x80);
}

}  // namespace
}  // namespace mote
