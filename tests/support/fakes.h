// Fakes for device tests: an IRQ line that records its level, a byte sink
// that collects output, a settable clock, and a recorder of guest events.
#ifndef MOTE_TESTS_SUPPORT_FAKES_H_
#define MOTE_TESTS_SUPPORT_FAKES_H_

#include <string>
#include <utility>
#include <vector>

#include "vmm/base/bus.h"
#include "vmm/base/platform_hooks.h"

namespace mote::testing {

class FakeIrqLine : public IrqLine {
 public:
  void SetLevel(bool asserted) override {
    level = asserted;
    ++changes;
  }
  bool level = false;
  int changes = 0;
};

class StringSink : public ByteSink {
 public:
  void Write(absl::Span<const uint8_t> bytes) override { text.append(bytes.begin(), bytes.end()); }
  std::string text;
};

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time now) : now(now) {}
  absl::Time Now() const override { return now; }
  absl::Time now;
};

class EventRecorder : public GuestEventSink {
 public:
  void OnGuestEvent(GuestEvent event, uint64_t value) override {
    events.emplace_back(event, value);
  }
  std::vector<std::pair<GuestEvent, uint64_t>> events;
};

// Byte-wide register access helpers for BusDevice tests.
inline uint8_t ReadByte(BusDevice& dev, uint64_t offset) {
  uint8_t v = 0;
  dev.Read(offset, absl::Span<uint8_t>(&v, 1));
  return v;
}
inline void WriteByte(BusDevice& dev, uint64_t offset, uint8_t v) {
  dev.Write(offset, absl::Span<const uint8_t>(&v, 1));
}

}  // namespace mote::testing

#endif  // MOTE_TESTS_SUPPORT_FAKES_H_
