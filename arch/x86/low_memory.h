// What mote writes into guest RAM below 1 MiB before a kernel runs, by entry
// mode: the ELF loaders let a kernel's own segments live there too (test
// kernels for real mode link at 0x8000, as under QEMU) wherever they collide
// with none of it, and name both ranges when they do.
// Pure functions; safe from any thread.
#ifndef MOTE_ARCH_X86_LOW_MEMORY_H_
#define MOTE_ARCH_X86_LOW_MEMORY_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "arch/x86/kernel_loader.h"

namespace mote::x86 {

// [start, end) of guest-physical memory, and what mote keeps there.
struct LowRange {
  const char* name;
  uint64_t start;
  uint64_t end;
};

// The structures below 1 MiB for a kernel entered in `mode` with a command
// line of `cmdline_bytes` (its NUL included) and a Multiboot module list of
// `module_list_bytes` (0: none), plus the legacy areas (EBDA, VGA and BIOS
// area; ACPI tables; reset vector) that no segment may take either.
std::vector<LowRange> LowBootStructures(EntryMode mode, uint64_t cmdline_bytes,
                                        uint64_t module_list_bytes);

// The first of `structures` that [start, end) overlaps, if any.
std::optional<LowRange> FindLowCollision(const std::vector<LowRange>& structures, uint64_t start,
                                         uint64_t end);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_LOW_MEMORY_H_
