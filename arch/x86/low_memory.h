// What mote writes into guest RAM below 1 MiB before a kernel runs, and
// where: the ELF loaders let a kernel's own segments live there too (test
// kernels for real mode link at 0x8000, as under QEMU). Structures at fixed
// places (the GDT, the 64-bit entry's page tables, the BIOS area...) refuse
// a segment over them, naming both ranges; the ones a kernel finds through
// a pointer (boot information, command line, module list) move out of its way.
// Pure functions; safe from any thread.
#ifndef MOTE_ARCH_X86_LOW_MEMORY_H_
#define MOTE_ARCH_X86_LOW_MEMORY_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "arch/x86/kernel_loader.h"
#include "arch/x86/layout.h"

namespace mote::x86 {

// [start, end) of guest-physical memory, and what is there.
struct LowRange {
  const char* name;
  uint64_t start;
  uint64_t end;
};

// What mote writes at fixed places below 1 MiB for a kernel entered in
// `mode`, with the legacy areas (EBDA, VGA and BIOS area; ACPI tables; reset
// vector) that no segment may take either.
std::vector<LowRange> FixedLowStructures(EntryMode mode);

// The first of `ranges` that [start, end) overlaps, if any.
std::optional<LowRange> FindLowCollision(const std::vector<LowRange>& ranges, uint64_t start,
                                         uint64_t end);

// The movable structures a kernel gets, by size in bytes.
struct BootInfoNeeds {
  EntryMode mode;
  uint64_t cmdline_bytes;          // with its NUL
  uint64_t module_list_bytes = 0;  // 0: no Multiboot module list
};

// Where they go: their usual places, or, for each one a kernel segment
// covers, the lowest free pages below the EBDA.
struct BootInfoPlacement {
  uint64_t boot_info = kBootInfoAddr;  // hvm_start_info or Multiboot information page
  uint64_t cmdline = kCmdlineAddr;
  uint64_t module_list = kBootModulesAddr;
};

// Places them clear of `segments` (already checked against the fixed
// structures) and of the fixed structures; an error if one fits nowhere.
absl::StatusOr<BootInfoPlacement> PlaceBootInfo(const BootInfoNeeds& needs,
                                                const std::vector<LowRange>& segments);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_LOW_MEMORY_H_
