#include "devices/i8042.h"

#include <catch2/catch.hpp>

#include "tests/support/fakes.h"

namespace mote {
namespace {

using testing::EventRecorder;
using testing::ReadByte;
using testing::WriteByte;

constexpr uint64_t kData = 0, kCommand = 4;

TEST_CASE("i8042: command 0xfe pulses the reset line", "[i8042]") {
  EventRecorder events;
  I8042 kbd(&events);
  WriteByte(kbd, kCommand, 0xfe);
  REQUIRE(events.events.size() == 1);
  CHECK(events.events[0].first == GuestEvent::kReset);
}

TEST_CASE("i8042: writing output port bit 0 low also resets", "[i8042]") {
  EventRecorder events;
  I8042 kbd(&events);
  WriteByte(kbd, kCommand, 0xd1);
  WriteByte(kbd, kData, 0xfe);
  REQUIRE(events.events.size() == 1);
  CHECK(events.events[0].first == GuestEvent::kReset);
}

TEST_CASE("i8042: self test, control byte and status", "[i8042]") {
  EventRecorder events;
  I8042 kbd(&events);
  CHECK((ReadByte(kbd, kCommand) & 0x01) == 0);
  WriteByte(kbd, kCommand, 0xaa);
  CHECK((ReadByte(kbd, kCommand) & 0x01) == 1);
  CHECK(ReadByte(kbd, kData) == 0x55);
  CHECK((ReadByte(kbd, kCommand) & 0x01) == 0);
  WriteByte(kbd, kCommand, 0x60);
  WriteByte(kbd, kData, 0x47);
  WriteByte(kbd, kCommand, 0x20);
  CHECK(ReadByte(kbd, kData) == 0x47);
  WriteByte(kbd, 2, 0xfe);      // between the ports: ignored
  WriteByte(kbd, kData, 0x00);  // data with no pending command: ignored
  CHECK(events.events.empty());
}

}  // namespace
}  // namespace mote
