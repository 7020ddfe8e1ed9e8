// Small write-mostly platform ports that turn a guest write into a
// GuestEvent: DebugExit (QEMU isa-debug-exit), Pvpanic (QEMU pvpanic ISA),
// BootTimer ("boot done" marker) and AcpiPm (hardware-reduced ACPI sleep
// control/status and reset registers); and PostCode (port 0x80), which
// raises no event. Unused reads return all-ones.
// All of them can be saved (snapshots): the event ports have no state, so
// theirs is empty; PostCode's is its last code.
// Thread-safety: stateless apart from the sink; any thread.
#ifndef MOTE_DEVICES_GUEST_PORTS_H_
#define MOTE_DEVICES_GUEST_PORTS_H_

#include <atomic>
#include <cstdint>

#include "vmm/base/bus.h"
#include "vmm/base/platform_hooks.h"

namespace mote {

// What the three event ports share: a sink, and reads of all-ones unless a
// port says otherwise. Each port only says what a write means.
class EventPort : public BusDevice {
 public:
  explicit EventPort(GuestEventSink* events) : events_(events) {}
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;

  // No state: an empty record, which a restore checks is empty.
  uint32_t state_version() const override { return 1; }
  void SaveState(StateWriter& out) override { (void)out; }
  absl::Status RestoreState(StateReader& in) override { return in.status(); }

 protected:
  GuestEventSink* const events_;
};

// A write of v (1, 2 or 4 bytes, little-endian) asks mote to exit with (v << 1) | 1.
class DebugExit final : public EventPort {
 public:
  static constexpr uint64_t kPortCount = 4;
  using EventPort::EventPort;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;
};

// Reads report the supported events; writing bit 0 means "guest panicked",
// bit 1 "crash kernel loaded" (logged only).
class Pvpanic final : public EventPort {
 public:
  static constexpr uint64_t kPortCount = 1;
  static constexpr uint8_t kPanicked = 0x01, kCrashLoaded = 0x02;
  using EventPort::EventPort;
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;
};

// Any write marks the end of the guest's boot.
class BootTimer final : public EventPort {
 public:
  static constexpr uint64_t kPortCount = 1;
  using EventPort::EventPort;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;
};

// Port 0x80, where firmware and test kernels write POST codes (and old
// Linux its I/O delay): as QEMU's ioport80, reads give 0xff and writes do
// nothing else; the last code is kept for whoever asks, and logged at trace.
class PostCode final : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 1;
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;
  uint8_t last_code() const { return last_code_.load(std::memory_order_relaxed); }

  // The last code.
  uint32_t state_version() const override { return 1; }
  void SaveState(StateWriter& out) override;
  absl::Status RestoreState(StateReader& in) override;

 private:
  std::atomic<uint8_t> last_code_{0};
};

// Offsets: 0 sleep control (SLP_TYP in bits 2..4, SLP_EN bit 5), 1 sleep
// status, 2 reset register. S5 is power-off; the FADT's reset value resets.
class AcpiPm final : public EventPort {
 public:
  static constexpr uint64_t kPortCount = 3;
  AcpiPm(GuestEventSink* events, uint8_t s5_sleep_type, uint8_t reset_value)
      : EventPort(events), s5_sleep_type_(s5_sleep_type), reset_value_(reset_value) {}
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

 private:
  const uint8_t s5_sleep_type_;
  const uint8_t reset_value_;
};

}  // namespace mote

#endif  // MOTE_DEVICES_GUEST_PORTS_H_
