// Multiboot v1 (specification 0.6.96) kernels in ELF32 or ELF64 files:
// finding and checking the header, and the boot information the kernel gets
// in EBX (memory sizes, command line, the initrd as module 0, the e820 map).
// The a.out kludge (header flag bit 16) is rejected: mote loads only the ELF
// program headers. Thread-compatible.
#ifndef MOTE_ARCH_X86_MULTIBOOT_H_
#define MOTE_ARCH_X86_MULTIBOOT_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "arch/x86/elf_loader.h"
#include "arch/x86/kernel_loader.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {

inline constexpr uint32_t kMultibootHeaderMagic = 0x1badb002;
inline constexpr uint32_t kMultibootBootloaderMagic = 0x2badb002;  // in EAX
inline constexpr uint64_t kMultibootSearchBytes = 8192;

// Header flags (bits 0-15 are requirements the loader must meet or refuse).
inline constexpr uint32_t kMultibootPageAlignModules = 1u << 0;
inline constexpr uint32_t kMultibootMemoryInfo = 1u << 1;
inline constexpr uint32_t kMultibootVideoMode = 1u << 2;
inline constexpr uint32_t kMultibootAoutKludge = 1u << 16;

// Info flags.
inline constexpr uint32_t kMultibootInfoMemory = 1u << 0;
inline constexpr uint32_t kMultibootInfoCmdline = 1u << 2;
inline constexpr uint32_t kMultibootInfoMods = 1u << 3;
inline constexpr uint32_t kMultibootInfoMmap = 1u << 6;
inline constexpr uint32_t kMultibootInfoLoaderName = 1u << 9;

struct MultibootInfo {
  uint32_t flags;
  uint32_t mem_lower;  // KiB from 0
  uint32_t mem_upper;  // KiB from 1 MiB
  uint32_t boot_device;
  uint32_t cmdline;
  uint32_t mods_count;
  uint32_t mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length;  // bytes
  uint32_t mmap_addr;
  uint32_t drives_length;
  uint32_t drives_addr;
  uint32_t config_table;
  uint32_t boot_loader_name;
  uint32_t apm_table;
  uint32_t vbe_control_info;
  uint32_t vbe_mode_info;
  uint16_t vbe_mode;
  uint16_t vbe_interface_seg;
  uint16_t vbe_interface_off;
  uint16_t vbe_interface_len;
};
static_assert(sizeof(MultibootInfo) == 88);

struct MultibootModule {
  uint32_t mod_start;
  uint32_t mod_end;  // exclusive
  uint32_t string;
  uint32_t reserved;
};
static_assert(sizeof(MultibootModule) == 16);

// `size` counts the bytes after itself (20), so entries are 24 bytes apart.
struct MultibootMmapEntry {
  uint32_t size;
  uint64_t addr;
  uint64_t len;
  uint32_t type;
} __attribute__((packed));
static_assert(sizeof(MultibootMmapEntry) == 24);

// Layout of the boot-info page and the module area.
inline constexpr uint64_t kMultibootMmapOffset = 0x100;         // from kBootInfoAddr
inline constexpr uint64_t kMultibootLoaderNameOffset = 0x800;   // from kBootInfoAddr
inline constexpr uint64_t kMultibootModuleStringOffset = 0x10;  // from kBootModulesAddr
inline constexpr uint64_t kMultibootModulesSize = 0x1000;       // module list + its string

struct MultibootHeader {
  uint64_t offset = 0;  // in the file
  uint32_t flags = 0;
};

// The first header (4-byte aligned, magic + flags + checksum == 0) wholly in
// `probe`, searched within the first kMultibootSearchBytes.
std::optional<MultibootHeader> FindMultibootHeader(absl::Span<const uint8_t> probe);

// Refuses the a.out kludge and requirement bits (0-15) mote cannot meet.
// Bit 2 (video mode) is accepted and not honoured, as QEMU does: mote has no
// display, and the info flags tell the kernel no video information is present.
absl::Status CheckMultibootHeader(const ImageFile& file, const MultibootHeader& header);

// Loads the ELF segments, initrd (module 0) and command line, and writes the
// info structure at kBootInfoAddr (elsewhere if the kernel is there:
// low_memory.h). Entered in 32-bit protected mode at e_entry with
// EAX = 0x2BADB002, EBX = the info.
absl::StatusOr<BootSetup> LoadMultibootElf(const GuestMemory& mem, const ImageFile& file,
                                           const ElfImage& image, const MultibootHeader& header,
                                           const KernelLoadRequest& req);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_MULTIBOOT_H_
