// ELF kernels: header and program-header parsing (ELF32 and ELF64, x86 only),
// loading PT_LOAD segments at their physical addresses, the Xen PVH entry note,
// and the two ELF entry conventions that need no other header: PVH (32-bit
// protected mode, EBX = hvm_start_info) and plain x86-64 ELF (long mode at
// e_entry). Multiboot ELFs reuse the parsing and loading (multiboot.h).
// Thread-compatible.
#ifndef MOTE_ARCH_X86_ELF_LOADER_H_
#define MOTE_ARCH_X86_ELF_LOADER_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "arch/x86/kernel_loader.h"
#include "arch/x86/layout.h"
#include "arch/x86/low_memory.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {

inline constexpr uint32_t kXenElfNotePhys32Entry = 18;  // XEN_ELFNOTE_PHYS32_ENTRY

struct ElfSegment {
  uint64_t file_offset = 0;
  uint64_t file_size = 0;
  uint64_t mem_size = 0;
  uint64_t paddr = 0;
  uint64_t align = 0;
};

struct ElfImage {
  bool is_64bit = false;
  uint16_t machine = 0;           // EM_X86_64 (64-bit) or EM_386 (32-bit), checked
  uint64_t entry = 0;             // e_entry
  std::vector<ElfSegment> loads;  // PT_LOAD with p_memsz > 0, in file order
  std::vector<ElfSegment> notes;  // PT_NOTE
};

// True if `probe` starts with "\x7fELF".
bool HasElfMagic(absl::Span<const uint8_t> probe);

// Parses and checks the ELF and program headers: class, little-endian,
// ET_EXEC, machine, program header table inside the file, and every segment's
// file range inside the file.
absl::StatusOr<ElfImage> ParseElf(const ImageFile& file);

// The XEN_ELFNOTE_PHYS32_ENTRY value from the PT_NOTE segments, nullopt if
// there is none; an error if a note segment is malformed.
absl::StatusOr<std::optional<uint32_t>> FindPvhEntry(const ImageFile& file, const ElfImage& image);

struct LoadedSegments {
  uint64_t end = 0;  // exclusive end of the highest segment
  // The same over segments below the MMIO hole, and at least 1 MiB: the
  // initrd's floor, which stays above 1 MiB for a kernel that lives below.
  uint64_t low_end = kLowMemEnd;
  BootInfoPlacement placement;  // where the boot information goes, clear of the segments
};

// Checks the segments (inside guest RAM, clear of what mote writes at fixed
// places below 1 MiB for needs.mode (low_memory.h), no overlaps, `entry`
// inside one of them), places the boot information clear of them, then
// copies them to guest memory and zeroes each one's bss part.
absl::StatusOr<LoadedSegments> LoadElfSegments(const GuestMemory& mem, const ImageFile& file,
                                               const ElfImage& image, uint64_t entry,
                                               const BootInfoNeeds& needs);

// PVH: loads the segments, initrd, command line and hvm_start_info at
// kBootInfoAddr (or the page low_memory.h finds, if the kernel is there);
// entered in 32-bit protected mode at `entry` with EBX = it.
absl::StatusOr<BootSetup> LoadPvhElf(const GuestMemory& mem, const ImageFile& file,
                                     const ElfImage& image, uint32_t entry,
                                     const KernelLoadRequest& req);

// A plain x86-64 ELF: entered in long mode at e_entry with RDI = the same
// hvm_start_info as PVH, and RSI = a zero page (so a Linux vmlinux without
// PVH support boots through startup_64, as on Firecracker).
absl::StatusOr<BootSetup> LoadPlainElf64(const GuestMemory& mem, const ImageFile& file,
                                         const ElfImage& image, const KernelLoadRequest& req);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_ELF_LOADER_H_
