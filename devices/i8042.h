// I8042: just enough of the PC keyboard controller for guests to find it and
// to pulse the CPU reset line (command 0xfe on port 0x64), the reboot path
// Linux falls back to. No keyboard or mouse is attached.
// Bus layout: one device over ports 0x60..0x64 (offset 0 data, 4 command/status).
// Thread-safety: any thread (internal mutex).
#ifndef MOTE_DEVICES_I8042_H_
#define MOTE_DEVICES_I8042_H_

#include <cstdint>

#include "vmm/base/bus.h"
#include "vmm/base/mutex.h"
#include "vmm/base/platform_hooks.h"

namespace mote {

class I8042 : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 5;  // 0x60..0x64
  explicit I8042(GuestEventSink* events) : events_(events) {}

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // The command byte, the output buffer and a command awaiting its data.
  uint32_t state_version() const override { return 1; }
  void SaveState(StateWriter& out) override;
  absl::Status RestoreState(StateReader& in) override;

 private:
  void Command(uint8_t command) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reply(uint8_t byte) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  GuestEventSink* const events_;
  Mutex mu_;
  uint8_t control_ ABSL_GUARDED_BY(mu_) = 0x30;  // both ports disabled, no interrupts
  uint8_t output_ ABSL_GUARDED_BY(mu_) = 0;
  bool output_full_ ABSL_GUARDED_BY(mu_) = false;
  uint8_t pending_command_ ABSL_GUARDED_BY(mu_) = 0;  // command awaiting a data byte
};

}  // namespace mote

#endif  // MOTE_DEVICES_I8042_H_
