// The guest-physical memory map mote presents on x86: which ranges are RAM
// (what the Vm hands to GuestMemory::Create) and the e820 table every loader
// gives the kernel (Linux zero page, PVH memmap, Multiboot mmap).
// Pure functions of the RAM size; safe from any thread.
#ifndef MOTE_ARCH_X86_MEMORY_MAP_H_
#define MOTE_ARCH_X86_MEMORY_MAP_H_

#include <cstdint>
#include <vector>

#include "vmm/base/guest_memory.h"

namespace mote::x86 {

inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

// One e820 entry exactly as the BIOS interface and boot_params lay it out.
// Packed: copy fields to locals before binding references (Catch2's REQUIRE
// binds references, which packed fields do not allow).
struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
} __attribute__((packed));
static_assert(sizeof(E820Entry) == 20);

// End (exclusive) of the RAM below the MMIO hole: min(ram_bytes, kMmioHoleStart).
uint64_t LowRamEnd(uint64_t ram_bytes);
// RAM remapped above 4 GiB: the part of ram_bytes that does not fit below the hole.
uint64_t HighRamSize(uint64_t ram_bytes);

// [0, LowRamEnd) and, if RAM exceeds the hole start, [4 GiB, 4 GiB + rest).
// ram_bytes should be a multiple of the page size (GuestMemory checks).
std::vector<MemoryRegionSpec> RamRegions(uint64_t ram_bytes);

// In address order: RAM [0, kEbdaStart), reserved [kEbdaStart, 0xa0000),
// reserved [0xe0000, 1 MiB) (ACPI tables, BIOS area), RAM [1 MiB, LowRamEnd),
// reserved PCI ECAM, RAM above 4 GiB. RAM entries are clipped to ram_bytes and
// left out when empty. The VGA window 0xa0000..0xdffff is not listed at all.
std::vector<E820Entry> BuildE820(uint64_t ram_bytes);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_MEMORY_MAP_H_
