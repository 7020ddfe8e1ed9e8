#include "devices/acpi_pm1.h"

#include <catch2/catch.hpp>

#include "tests/support/fakes.h"

namespace mote {
namespace {

using testing::EventRecorder;
using testing::FakeClock;

uint64_t ReadAt(AcpiPm1& pm, uint64_t offset, size_t width) {
  uint8_t bytes[8] = {};
  pm.Read(offset, absl::MakeSpan(bytes, width));
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= uint64_t{bytes[i]} << (8 * i);
  return v;
}

void WriteAt(AcpiPm1& pm, uint64_t offset, uint64_t value, size_t width) {
  uint8_t bytes[8];
  for (size_t i = 0; i < width; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
  pm.Write(offset, absl::MakeConstSpan(bytes, width));
}

TEST_CASE("ACPI PM timer: 3.579545 MHz, 32 bits, from the clock", "[acpi_pm1]") {
  EventRecorder events;
  FakeClock clock(absl::FromUnixSeconds(1000));
  AcpiPm1 pm(&events, &clock, 5, 1);
  CHECK(ReadAt(pm, AcpiPm1::kTimerOffset, 4) == 0);
  clock.now += absl::Seconds(1);
  CHECK(ReadAt(pm, AcpiPm1::kTimerOffset, 4) == 3579545);
  clock.now += absl::Milliseconds(1);
  CHECK(ReadAt(pm, AcpiPm1::kTimerOffset, 4) == 3579545 + 3579);
  // It wraps at 2^32: after 1199.9 s.
  clock.now = absl::FromUnixSeconds(1000) + absl::Seconds(1200);
  CHECK(ReadAt(pm, AcpiPm1::kTimerOffset, 4) == (uint64_t{3579545} * 1200) % (uint64_t{1} << 32));
  // A clock that goes back reads 0, not garbage.
  clock.now = absl::FromUnixSeconds(0);
  CHECK(ReadAt(pm, AcpiPm1::kTimerOffset, 4) == 0);
}

// A clock that moves on by `step` each time it is read, as the host's does
// between two reads on a loaded machine.
class TickingClock : public Clock {
 public:
  TickingClock(absl::Time start, absl::Duration step) : next_(start), step_(step) {}
  absl::Time Now() const override {
    absl::Time now = next_;
    next_ += step_;
    return now;
  }

 private:
  mutable absl::Time next_;
  const absl::Duration step_;
};

TEST_CASE("ACPI PM timer: a 4-byte read is one instant, never torn across bytes", "[acpi_pm1]") {
  EventRecorder events;
  // 100 us a read: 358 ticks, more than a byte's worth.
  TickingClock clock(absl::FromUnixSeconds(1000), absl::Microseconds(100));
  AcpiPm1 pm(&events, &clock, 5, 1);
  uint64_t last = ReadAt(pm, AcpiPm1::kTimerOffset, 4);
  for (int i = 0; i < 2000; ++i) {
    uint64_t now = ReadAt(pm, AcpiPm1::kTimerOffset, 4);
    INFO("read " << i << ": " << last << " then " << now);
    REQUIRE(now > last);
    REQUIRE(now - last < 2 * 358 + 2);  // one read's worth of clock, give or take
    last = now;
  }
}

TEST_CASE("ACPI PM1a control: SCI_EN always, S5 with SLP_EN powers off", "[acpi_pm1]") {
  EventRecorder events;
  FakeClock clock(absl::FromUnixSeconds(0));
  AcpiPm1 pm(&events, &clock, 5, 1);
  CHECK(ReadAt(pm, AcpiPm1::kControlOffset, 2) == AcpiPm1::kSciEnabled);
  // SLP_TYP without SLP_EN: stored, nothing happens.
  WriteAt(pm, AcpiPm1::kControlOffset, 5 << 10, 2);
  CHECK(events.events.empty());
  CHECK(ReadAt(pm, AcpiPm1::kControlOffset, 2) == ((5u << 10) | AcpiPm1::kSciEnabled));
  // A sleep type mote does not offer (S1 here): logged, nothing happens.
  WriteAt(pm, AcpiPm1::kControlOffset, (2 << 10) | AcpiPm1::kSleepEnable, 2);
  CHECK(events.events.empty());
  WriteAt(pm, AcpiPm1::kControlOffset, (5 << 10) | AcpiPm1::kSleepEnable, 2);
  REQUIRE(events.events.size() == 1);
  CHECK(events.events[0].first == GuestEvent::kPowerOff);
  // SLP_EN reads back 0.
  CHECK((ReadAt(pm, AcpiPm1::kControlOffset, 2) & AcpiPm1::kSleepEnable) == 0);
}

TEST_CASE("ACPI S3: the \\_S3 type with SLP_EN asks to suspend; Wake sets WAK_STS", "[acpi_pm1]") {
  EventRecorder events;
  FakeClock clock(absl::FromUnixSeconds(0));
  AcpiPm1 pm(&events, &clock, 5, 1);
  WriteAt(pm, AcpiPm1::kControlOffset, (1 << 10) | AcpiPm1::kSleepEnable, 2);
  REQUIRE(events.events.size() == 1);
  CHECK(events.events[0] == std::pair{GuestEvent::kSuspend, uint64_t{1}});
  CHECK(ReadAt(pm, AcpiPm1::kStatusOffset, 2) == 0);
  pm.Wake(AcpiPm1::kPowerButtonStatus);
  CHECK(ReadAt(pm, AcpiPm1::kStatusOffset, 2) ==
        (AcpiPm1::kWakeStatus | AcpiPm1::kPowerButtonStatus));
  // The OS clears WAK_STS by writing it back.
  WriteAt(pm, AcpiPm1::kStatusOffset, AcpiPm1::kWakeStatus, 2);
  CHECK(ReadAt(pm, AcpiPm1::kStatusOffset, 2) == AcpiPm1::kPowerButtonStatus);
}

TEST_CASE("ACPI PM1a status is write-one-to-clear; enable reads back", "[acpi_pm1]") {
  EventRecorder events;
  FakeClock clock(absl::FromUnixSeconds(0));
  AcpiPm1 pm(&events, &clock, 5, 1);
  CHECK(ReadAt(pm, AcpiPm1::kStatusOffset, 2) == 0);
  WriteAt(pm, AcpiPm1::kEnableOffset, 0x0121, 2);
  CHECK(ReadAt(pm, AcpiPm1::kEnableOffset, 2) == 0x0121);
  // Status and enable as one 32-bit read, as the PM1a event block.
  CHECK(ReadAt(pm, AcpiPm1::kStatusOffset, 4) == 0x01210000);
  WriteAt(pm, AcpiPm1::kStatusOffset, 0xffff, 2);
  CHECK(ReadAt(pm, AcpiPm1::kStatusOffset, 2) == 0);
  // Garbage widths and offsets do nothing and read what is there.
  WriteAt(pm, 3, 0xff, 1);
  WriteAt(pm, AcpiPm1::kTimerOffset, 0xffffffff, 4);
  CHECK(events.events.empty());
  CHECK(ReadAt(pm, 2, 2) == 0);
}

std::vector<uint8_t> Save(AcpiPm1& pm) {
  StateWriter out;
  pm.SaveState(out);
  return out.Take();
}

absl::Status Restore(AcpiPm1& pm, absl::Span<const uint8_t> bytes) {
  StateReader in(bytes, "acpi-pm1");
  return pm.RestoreState(in);
}

TEST_CASE("ACPI PM1 snapshot: registers come back, the PM timer counts on from its value",
          "[acpi_pm1][snapshot]") {
  EventRecorder events;
  FakeClock clock(absl::FromUnixSeconds(1000));
  testing::FakeIrqLine sci;
  AcpiPm1 pm(&events, &clock, 5, 1, &sci);
  CHECK(pm.state_version() == 1);
  WriteAt(pm, AcpiPm1::kControlOffset, 5 << 10, 2);
  WriteAt(pm, AcpiPm1::kEnableOffset, AcpiPm1::kRtcEnable | 0x0001, 2);
  CHECK(pm.RtcAlarm());
  REQUIRE(sci.level);
  clock.now += absl::Seconds(2) + absl::Milliseconds(5);
  uint64_t timer = ReadAt(pm, AcpiPm1::kTimerOffset, 4);
  CHECK(timer == 2 * 3579545 + 17897);
  std::vector<uint8_t> state = Save(pm);

  // Another process, whose monotonic clock is elsewhere entirely.
  FakeClock clock2(absl::FromUnixSeconds(77));
  testing::FakeIrqLine sci2;
  AcpiPm1 copy(&events, &clock2, 5, 1, &sci2);
  clock2.now += absl::Seconds(30);
  REQUIRE(Restore(copy, state).ok());
  CHECK(sci2.level);
  CHECK(ReadAt(copy, AcpiPm1::kTimerOffset, 4) == timer);
  clock2.now += absl::Seconds(1);
  CHECK(ReadAt(copy, AcpiPm1::kTimerOffset, 4) == timer + 3579545);
  CHECK(copy.TimerAt(clock2.now) == timer + 3579545);
  CHECK(ReadAt(copy, AcpiPm1::kControlOffset, 2) == ((5u << 10) | AcpiPm1::kSciEnabled));
  CHECK(ReadAt(copy, AcpiPm1::kStatusOffset, 2) == AcpiPm1::kRtcStatus);
  CHECK(ReadAt(copy, AcpiPm1::kEnableOffset, 2) == (AcpiPm1::kRtcEnable | 0x0001));
  WriteAt(copy, AcpiPm1::kStatusOffset, AcpiPm1::kRtcStatus, 2);
  CHECK_FALSE(sci2.level);
  CHECK(events.events.empty());

  // Near the top, the restored timer wraps at 2^32 as the original would.
  StateWriter w;
  w.U16(AcpiPm1::kSciEnabled);
  w.U16(0);
  w.U16(0);
  w.U32(0xffffff00);
  std::vector<uint8_t> high = w.Take();
  REQUIRE(Restore(copy, high).ok());
  CHECK_FALSE(sci2.level);
  clock2.now += absl::Microseconds(100);  // 357 ticks
  CHECK(ReadAt(copy, AcpiPm1::kTimerOffset, 4) == 357 - 0x100);
}

TEST_CASE("ACPI PM1 snapshot: truncated or out-of-range state is refused, the device unchanged",
          "[acpi_pm1][snapshot]") {
  EventRecorder events;
  FakeClock clock(absl::FromUnixSeconds(1000));
  AcpiPm1 pm(&events, &clock, 5, 1);
  clock.now += absl::Seconds(100);
  std::vector<uint8_t> good = Save(pm);
  REQUIRE(good.size() == 10);  // control, status, enable, timer

  FakeClock clock2(absl::FromUnixSeconds(0));
  testing::FakeIrqLine sci;
  AcpiPm1 target(&events, &clock2, 5, 1, &sci);
  WriteAt(target, AcpiPm1::kEnableOffset, 0x0400, 2);
  clock2.now += absl::Seconds(1);
  int sci_changes = sci.changes;
  for (size_t n = 0; n < good.size(); ++n) {
    CHECK(Restore(target, absl::MakeConstSpan(good.data(), n)).code() ==
          absl::StatusCode::kDataLoss);
  }
  auto with = [&](size_t at, uint16_t value) {
    std::vector<uint8_t> bad = good;
    bad[at] = static_cast<uint8_t>(value);
    bad[at + 1] = static_cast<uint8_t>(value >> 8);
    return bad;
  };
  absl::Status s = Restore(target, with(0, 0));  // SCI_EN clear
  CHECK(std::string(s.message()).find("control") != std::string::npos);
  s = Restore(target, with(0, AcpiPm1::kSciEnabled | AcpiPm1::kSleepEnable));
  CHECK(std::string(s.message()).find("SLP_EN") != std::string::npos);
  s = Restore(target, with(2, 0x0001));
  CHECK(s.code() == absl::StatusCode::kDataLoss);
  CHECK(std::string(s.message()).find("status") != std::string::npos);
  CHECK(ReadAt(target, AcpiPm1::kEnableOffset, 2) == 0x0400);
  CHECK(ReadAt(target, AcpiPm1::kTimerOffset, 4) == 3579545);
  CHECK(sci.changes == sci_changes);
}

}  // namespace
}  // namespace mote
