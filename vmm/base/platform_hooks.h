// The small interfaces through which devices reach the rest of the VM
// without knowing it: an interrupt line, a clock, a byte sink, and the sink for
// guest-initiated platform events (power-off, reset, panic, debug exit, boot
// done). The Vm implements them; tests pass fakes.
// Thread-safety: implementations must accept calls from any vCPU thread.
#ifndef MOTE_VMM_BASE_PLATFORM_HOOKS_H_
#define MOTE_VMM_BASE_PLATFORM_HOOKS_H_

#include <time.h>

#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace mote {

// One interrupt line, level semantics: true while the device asserts it.
class IrqLine {
 public:
  virtual ~IrqLine() = default;
  virtual void SetLevel(bool asserted) = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class SystemClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

// CLOCK_MONOTONIC as absl::Time: never steps when the host's wall clock
// does (the timers' clock: HPET, ACPI PM timer).
class MonotonicClock : public Clock {
 public:
  absl::Time Now() const override {
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return absl::TimeFromTimespec(ts);
  }
};

// Where a device's output bytes go (the console for the UART).
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void Write(absl::Span<const uint8_t> bytes) = 0;
};

enum class GuestEvent {
  kPowerOff,   // ACPI S5
  kReset,      // ACPI reset register, i8042 reset line, triple fault
  kPanic,      // pvpanic
  kDebugExit,  // isa-debug-exit port: value is what the guest wrote
  kBootDone,   // boot-timer port
  kSuspend,    // ACPI S3 (--acpi full): value is the sleep type
};

class GuestEventSink {
 public:
  virtual ~GuestEventSink() = default;
  virtual void OnGuestEvent(GuestEvent event, uint64_t value) = 0;
};

}  // namespace mote

#endif  // MOTE_VMM_BASE_PLATFORM_HOOKS_H_
