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

}  // namespace
}  // namespace mote
