#include "devices/guest_ports.h"

#include <catch2/catch.hpp>
#include <initializer_list>
#include <vector>

#include "tests/support/fakes.h"

namespace mote {
namespace {

using testing::EventRecorder;
using testing::ReadByte;
using testing::WriteByte;

TEST_CASE("DebugExit reports the value written at its base, any width", "[guest_ports]") {
  EventRecorder events;
  DebugExit port(&events);
  uint8_t v32[4] = {0x2a, 0, 0, 0};
  port.Write(0, absl::Span<const uint8_t>(v32, 4));
  WriteByte(port, 0, 3);
  WriteByte(port, 2, 9);  // not at the base: ignored
  REQUIRE(events.events.size() == 2);
  CHECK(events.events[0] == std::make_pair(GuestEvent::kDebugExit, uint64_t{0x2a}));
  CHECK(events.events[1] == std::make_pair(GuestEvent::kDebugExit, uint64_t{3}));
  CHECK(ReadByte(port, 0) == 0xff);
}

TEST_CASE("Pvpanic advertises its events and reports a panic", "[guest_ports]") {
  EventRecorder events;
  Pvpanic port(&events);
  CHECK(ReadByte(port, 0) == 0x03);
  WriteByte(port, 0, Pvpanic::kCrashLoaded);  // not a panic
  CHECK(events.events.empty());
  WriteByte(port, 0, Pvpanic::kPanicked);
  REQUIRE(events.events.size() == 1);
  CHECK(events.events[0].first == GuestEvent::kPanic);
}

TEST_CASE("BootTimer marks boot done on any write", "[guest_ports]") {
  EventRecorder events;
  BootTimer port(&events);
  WriteByte(port, 0, 123);
  REQUIRE(events.events.size() == 1);
  CHECK(events.events[0].first == GuestEvent::kBootDone);
}

TEST_CASE("PostCode keeps the last code and reads 0xff, as QEMU's ioport80", "[guest_ports]") {
  PostCode post;
  uint8_t byte = 0;
  post.Read(0, absl::MakeSpan(&byte, 1));
  CHECK(byte == 0xff);
  const uint8_t codes[] = {0x12, 0xab};
  post.Write(0, absl::MakeConstSpan(&codes[0], 1));
  post.Write(0, absl::MakeConstSpan(&codes[1], 1));
  CHECK(post.last_code() == 0xab);
  post.Read(0, absl::MakeSpan(&byte, 1));
  CHECK(byte == 0xff);
}

TEST_CASE("AcpiPm: S5 with SLP_EN powers off; the reset value resets", "[guest_ports]") {
  EventRecorder events;
  AcpiPm pm(&events, 5, 1);
  WriteByte(pm, 0, 5 << 2);           // SLP_TYP without SLP_EN: nothing
  WriteByte(pm, 0, (3 << 2) | 0x20);  // S3 is not offered: nothing
  CHECK(events.events.empty());
  WriteByte(pm, 0, (5 << 2) | 0x20);
  WriteByte(pm, 2, 0x02);  // wrong reset value: nothing
  WriteByte(pm, 2, 0x01);
  REQUIRE(events.events.size() == 2);
  CHECK(events.events[0].first == GuestEvent::kPowerOff);
  CHECK(events.events[1].first == GuestEvent::kReset);
  CHECK(ReadByte(pm, 1) == 0);
}

std::vector<uint8_t> Save(BusDevice& dev) {
  StateWriter out;
  dev.SaveState(out);
  return out.Take();
}

absl::Status Restore(BusDevice& dev, absl::Span<const uint8_t> bytes) {
  StateReader in(bytes, "port");
  return dev.RestoreState(in);
}

TEST_CASE("Guest ports snapshot: the event ports save nothing, PostCode its last code",
          "[guest_ports][snapshot]") {
  EventRecorder events;
  DebugExit debug_exit(&events);
  Pvpanic pvpanic(&events);
  BootTimer boot_timer(&events);
  AcpiPm acpi_pm(&events, 5, 1);
  for (BusDevice* port :
       std::initializer_list<BusDevice*>{&debug_exit, &pvpanic, &boot_timer, &acpi_pm}) {
    CHECK(port->state_version() == 1);
    std::vector<uint8_t> state = Save(*port);
    CHECK(state.empty());
    CHECK(Restore(*port, state).ok());
    // Bytes where there should be none: another layout, refused.
    std::vector<uint8_t> extra = {0};
    CHECK(Restore(*port, extra).code() == absl::StatusCode::kDataLoss);
  }
  CHECK(ReadByte(pvpanic, 0) == 0x03);
  CHECK(events.events.empty());

  PostCode post;
  CHECK(post.state_version() == 1);
  WriteByte(post, 0, 0x3c);
  std::vector<uint8_t> state = Save(post);
  PostCode copy;
  REQUIRE(Restore(copy, state).ok());
  CHECK(copy.last_code() == 0x3c);
  CHECK(ReadByte(copy, 0) == 0xff);
}

TEST_CASE("Guest ports snapshot: truncated or overlong PostCode state is refused, unchanged",
          "[guest_ports][snapshot]") {
  PostCode post;
  WriteByte(post, 0, 0x99);
  std::vector<uint8_t> empty;
  CHECK(Restore(post, empty).code() == absl::StatusCode::kDataLoss);
  std::vector<uint8_t> two = {0x11, 0x22};
  CHECK(Restore(post, two).code() == absl::StatusCode::kDataLoss);
  CHECK(post.last_code() == 0x99);
}

}  // namespace
}  // namespace mote
