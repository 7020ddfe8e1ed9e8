// Loader for Linux bzImage kernels through the 64-bit boot protocol
// (Documentation/arch/x86/boot.rst): the protected-mode kernel goes to
// kKernelLoadAddr, the zero page to kZeroPageAddr, and the vCPU starts in long
// mode at the 64-bit entry point with RSI = zero page. Thread-compatible.
#ifndef MOTE_ARCH_X86_BZIMAGE_LOADER_H_
#define MOTE_ARCH_X86_BZIMAGE_LOADER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "arch/x86/kernel_loader.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {

inline constexpr uint16_t kMinBootProtocol = 0x0206;    // cmdline_size exists
inline constexpr uint16_t kBootProtocol64Bit = 0x020c;  // xloadflags, 64-bit entry
inline constexpr uint64_t kEntry64Offset = 0x200;       // from the load address

// True if `probe` (the file's first bytes) has "HdrS" at 0x202.
bool HasBzImageMagic(absl::Span<const uint8_t> probe);

// Loads the bzImage in `kernel`, req's initrd and command line; see LoadKernel.
absl::StatusOr<BootSetup> LoadBzImage(const GuestMemory& mem, const ImageFile& kernel,
                                      const KernelLoadRequest& req);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_BZIMAGE_LOADER_H_
