// The real-mode reset vector (F000:FFF0, physical 0xffff0). mote has no
// firmware, but a Linux guest on a hardware-reduced ACPI platform reboots by
// "BIOS" by default (reboot_type EFI, which without EFI falls back to a jump
// to the reset vector in real mode). A few bytes there write the FADT reset
// value to the reset port, so that reboot ends in mote's reset exit as the
// other methods do, instead of running off into zeroed memory.
// Stateless; safe from any thread.
#ifndef MOTE_ARCH_X86_RESET_VECTOR_H_
#define MOTE_ARCH_X86_RESET_VECTOR_H_

#include <cstdint>

#include "absl/status/status.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {

inline constexpr uint64_t kRealModeResetVector = 0xffff0;  // F000:FFF0
inline constexpr uint64_t kResetVectorSize = 16;

// Writes the reset stub at kRealModeResetVector (inside the e820-reserved
// BIOS area, after the ACPI tables).
absl::Status WriteResetVector(const GuestMemory& mem);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_RESET_VECTOR_H_
