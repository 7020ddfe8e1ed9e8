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

std::vector<uint8_t> Save(I8042& kbd) {
  StateWriter out;
  kbd.SaveState(out);
  return out.Take();
}

absl::Status Restore(I8042& kbd, absl::Span<const uint8_t> bytes) {
  StateReader in(bytes, "i8042");
  return kbd.RestoreState(in);
}

TEST_CASE("i8042 snapshot: command byte, output buffer and a pending command come back",
          "[i8042][snapshot]") {
  EventRecorder events;
  I8042 kbd(&events);
  CHECK(kbd.state_version() == 1);
  WriteByte(kbd, kCommand, 0x60);
  WriteByte(kbd, kData, 0x47);
  WriteByte(kbd, kCommand, 0xaa);  // output buffer: 0x55
  WriteByte(kbd, kCommand, 0xd1);  // awaits the output port byte
  std::vector<uint8_t> state = Save(kbd);

  EventRecorder events2;
  I8042 copy(&events2);
  REQUIRE(Restore(copy, state).ok());
  CHECK((ReadByte(copy, kCommand) & 0x01) == 1);
  WriteByte(copy, kData, 0xfe);  // the pending 0xd1's data: reset line low
  REQUIRE(events2.events.size() == 1);
  CHECK(events2.events[0].first == GuestEvent::kReset);
  CHECK(ReadByte(copy, kData) == 0x55);
  CHECK((ReadByte(copy, kCommand) & 0x01) == 0);
  WriteByte(copy, kCommand, 0x20);
  CHECK(ReadByte(copy, kData) == 0x47);
  CHECK(events.events.empty());
}

TEST_CASE("i8042 snapshot: truncated or out-of-range state is refused, the device unchanged",
          "[i8042][snapshot]") {
  EventRecorder events;
  I8042 kbd(&events);
  std::vector<uint8_t> good = Save(kbd);
  REQUIRE(good.size() == 4);  // control, output, output full, pending command

  I8042 target(&events);
  WriteByte(target, kCommand, 0x60);
  WriteByte(target, kData, 0x12);
  WriteByte(target, kCommand, 0xaa);
  for (size_t n = 0; n < good.size(); ++n) {
    CHECK(Restore(target, absl::MakeConstSpan(good.data(), n)).code() ==
          absl::StatusCode::kDataLoss);
  }
  std::vector<uint8_t> bad = good;
  bad[2] = 2;
  CHECK(Restore(target, bad).code() == absl::StatusCode::kDataLoss);
  bad = good;
  bad[3] = 0xfe;  // takes no data byte
  absl::Status s = Restore(target, bad);
  CHECK(s.code() == absl::StatusCode::kDataLoss);
  CHECK(std::string(s.message()).find("pending command") != std::string::npos);
  bad = good;
  bad.push_back(0);
  CHECK_FALSE(Restore(target, bad).ok());
  CHECK((ReadByte(target, kCommand) & 0x01) == 1);
  CHECK(ReadByte(target, kData) == 0x55);
  WriteByte(target, kCommand, 0x20);
  CHECK(ReadByte(target, kData) == 0x12);
  CHECK(events.events.empty());
}

}  // namespace
}  // namespace mote
