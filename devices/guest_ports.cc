#include "devices/guest_ports.h"

#include <algorithm>

#include "vmm/base/logging.h"

namespace mote {
namespace {

constexpr uint8_t kSleepEnable = 0x20;
// Sleep status (offset 1) has no writable state: nothing ever wakes.
constexpr uint64_t kSleepControl = 0, kResetRegister = 2;

uint64_t LittleEndian(absl::Span<const uint8_t> data) {
  uint64_t value = 0;
  for (size_t i = 0; i < data.size() && i < 8; ++i) value |= uint64_t{data[i]} << (8 * i);
  return value;
}

void FillOnes(absl::Span<uint8_t> data) { std::fill(data.begin(), data.end(), 0xff); }

}  // namespace

void EventPort::Read(uint64_t, absl::Span<uint8_t> data) { FillOnes(data); }

void DebugExit::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  // Only a write at the port's base counts, as with QEMU's device.
  if (offset != 0 || data.empty()) return;
  events_->OnGuestEvent(GuestEvent::kDebugExit, LittleEndian(data));
}

void Pvpanic::Read(uint64_t, absl::Span<uint8_t> data) {
  FillOnes(data);
  if (!data.empty()) data[0] = kPanicked | kCrashLoaded;
}

void Pvpanic::Write(uint64_t, absl::Span<const uint8_t> data) {
  if (data.empty()) return;
  if (data[0] & kPanicked) events_->OnGuestEvent(GuestEvent::kPanic, data[0]);
}

void BootTimer::Write(uint64_t, absl::Span<const uint8_t> data) {
  events_->OnGuestEvent(GuestEvent::kBootDone, LittleEndian(data));
}

void PostCode::Read(uint64_t, absl::Span<uint8_t> data) { FillOnes(data); }

void PostCode::Write(uint64_t, absl::Span<const uint8_t> data) {
  if (data.empty()) return;
  last_code_.store(data[0], std::memory_order_relaxed);
  if (spdlog::should_log(spdlog::level::trace)) spdlog::trace("POST code 0x{:02x}", data[0]);
}

void PostCode::SaveState(StateWriter& out) { out.U8(last_code()); }

absl::Status PostCode::RestoreState(StateReader& in) {
  uint8_t code = in.U8();
  if (absl::Status s = in.status(); !s.ok()) return s;
  last_code_.store(code, std::memory_order_relaxed);
  return absl::OkStatus();
}

void AcpiPm::Read(uint64_t offset, absl::Span<uint8_t> data) {
  FillOnes(data);
  // Sleep status reads as "not waking"; the others as zero.
  if (!data.empty() && offset <= kResetRegister) data[0] = 0;
}

void AcpiPm::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (data.empty()) return;
  uint8_t value = data[0];
  if (offset == kSleepControl) {
    uint8_t sleep_type = (value >> 2) & 0x7;
    if ((value & kSleepEnable) && sleep_type == s5_sleep_type_) {
      events_->OnGuestEvent(GuestEvent::kPowerOff, 0);
    }
    // Other sleep states (S1..S4) are not offered by the DSDT; ignore them.
  } else if (offset == kResetRegister && value == reset_value_) {
    events_->OnGuestEvent(GuestEvent::kReset, 0);
  }
}

}  // namespace mote
