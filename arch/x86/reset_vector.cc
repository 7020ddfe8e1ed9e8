#include "arch/x86/reset_vector.h"

#include <array>

#include "arch/x86/layout.h"

namespace mote::x86 {

static_assert(kAcpiTablesEnd <= kRealModeResetVector, "the ACPI tables must end before the stub");
static_assert(kRealModeResetVector + kResetVectorSize == kLowMemEnd);

absl::Status WriteResetVector(const GuestMemory& mem) {
  // 16-bit real-mode code.
  constexpr std::array<uint8_t, kResetVectorSize> kStub = {
      0xfa,  // cli
      0xb0,
      kAcpiResetValue,  // mov al, reset value
      0xba,
      kAcpiResetPort & 0xff,
      kAcpiResetPort >> 8,  // mov dx, reset port
      0xee,                 // out dx, al
      0xf4,                 // hlt (not reached: mote ends the VM)
      0xeb,
      0xfd,  // jmp back to hlt
      0,
      0,
      0,
      0,
      0,
      0,
  };
  return mem.WriteObj(GuestAddress{kRealModeResetVector}, kStub);
}

}  // namespace mote::x86
