// The boot-information structures mote hands to kernels, defined here from
// the specifications (no Linux or Xen headers): the Linux zero page
// (struct boot_params with its setup header, Documentation/arch/x86/boot.rst
// and zero-page.rst) and the Xen PVH start-of-day structure
// (xen/include/public/arch-x86/hvm/start_info.h), plus the functions that fill
// them. Pure functions over values and GuestMemory; thread-compatible.
#ifndef MOTE_ARCH_X86_BOOT_PARAMS_H_
#define MOTE_ARCH_X86_BOOT_PARAMS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "arch/x86/layout.h"
#include "arch/x86/memory_map.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {

// ---- Linux boot protocol -------------------------------------------------------
inline constexpr uint32_t kSetupHeaderOffset = 0x1f1;  // in the image and in boot_params
inline constexpr uint32_t kSetupHeaderLimit = 0x290;   // boot_params room for the header
inline constexpr uint32_t kHdrSMagic = 0x53726448;     // "HdrS" at 0x202
inline constexpr uint16_t kBootFlagMagic = 0xaa55;
inline constexpr uint8_t kLoadFlagLoadedHigh = 0x01;
inline constexpr uint8_t kLoadFlagCanUseHeap = 0x80;
inline constexpr uint16_t kXlfKernel64 = 0x01;
inline constexpr uint16_t kXlfCanBeLoadedAbove4G = 0x02;
inline constexpr uint8_t kLoaderTypeUndefined = 0xff;
inline constexpr uint16_t kVidModeNormal = 0xffff;
// Offset of the end of the heap from the start of the real-mode code, minus
// 0x200; 0xfe00 is the classic value. Only the 16-bit setup code uses the
// heap and mote enters at the 64-bit entry point, but CAN_USE_HEAP without a
// sane heap_end_ptr would be a lie.
inline constexpr uint16_t kHeapEndPtr = 0xfe00;
inline constexpr size_t kE820MaxEntries = 128;

struct SetupHeader {
  uint8_t setup_sects;             // 0x1f1
  uint16_t root_flags;             // 0x1f2
  uint32_t syssize;                // 0x1f4
  uint16_t ram_size;               // 0x1f8
  uint16_t vid_mode;               // 0x1fa
  uint16_t root_dev;               // 0x1fc
  uint16_t boot_flag;              // 0x1fe
  uint16_t jump;                   // 0x200
  uint32_t header;                 // 0x202
  uint16_t version;                // 0x206
  uint32_t realmode_swtch;         // 0x208
  uint16_t start_sys_seg;          // 0x20c
  uint16_t kernel_version;         // 0x20e
  uint8_t type_of_loader;          // 0x210
  uint8_t loadflags;               // 0x211
  uint16_t setup_move_size;        // 0x212
  uint32_t code32_start;           // 0x214
  uint32_t ramdisk_image;          // 0x218
  uint32_t ramdisk_size;           // 0x21c
  uint32_t bootsect_kludge;        // 0x220
  uint16_t heap_end_ptr;           // 0x224
  uint8_t ext_loader_ver;          // 0x226
  uint8_t ext_loader_type;         // 0x227
  uint32_t cmd_line_ptr;           // 0x228
  uint32_t initrd_addr_max;        // 0x22c
  uint32_t kernel_alignment;       // 0x230
  uint8_t relocatable_kernel;      // 0x234
  uint8_t min_alignment;           // 0x235
  uint16_t xloadflags;             // 0x236
  uint32_t cmdline_size;           // 0x238
  uint32_t hardware_subarch;       // 0x23c
  uint64_t hardware_subarch_data;  // 0x240
  uint32_t payload_offset;         // 0x248
  uint32_t payload_length;         // 0x24c
  uint64_t setup_data;             // 0x250
  uint64_t pref_address;           // 0x258
  uint32_t init_size;              // 0x260
  uint32_t handover_offset;        // 0x264
  uint32_t kernel_info_offset;     // 0x268
} __attribute__((packed));
static_assert(sizeof(SetupHeader) == 0x26c - kSetupHeaderOffset);

// The zero page. Fields mote never writes are kept as opaque byte arrays.
struct BootParams {
  uint8_t screen_info[0x40];        // 0x000
  uint8_t apm_bios_info[0x14];      // 0x040
  uint8_t pad1[4];                  // 0x054
  uint64_t tboot_addr;              // 0x058
  uint8_t ist_info[0x10];           // 0x060
  uint64_t acpi_rsdp_addr;          // 0x070 (protocol 2.14+)
  uint8_t pad2[8];                  // 0x078
  uint8_t hd0_info[0x10];           // 0x080
  uint8_t hd1_info[0x10];           // 0x090
  uint8_t sys_desc_table[0x10];     // 0x0a0
  uint8_t olpc_ofw_header[0x10];    // 0x0b0
  uint32_t ext_ramdisk_image;       // 0x0c0
  uint32_t ext_ramdisk_size;        // 0x0c4
  uint32_t ext_cmd_line_ptr;        // 0x0c8
  uint8_t pad3[0x70];               // 0x0cc
  uint32_t cc_blob_address;         // 0x13c
  uint8_t edid_info[0x80];          // 0x140
  uint8_t efi_info[0x20];           // 0x1c0
  uint32_t alt_mem_k;               // 0x1e0
  uint32_t scratch;                 // 0x1e4
  uint8_t e820_entries;             // 0x1e8
  uint8_t eddbuf_entries;           // 0x1e9
  uint8_t edd_mbr_sig_buf_entries;  // 0x1ea
  uint8_t kbd_status;               // 0x1eb
  uint8_t secure_boot;              // 0x1ec
  uint8_t pad4[2];                  // 0x1ed
  uint8_t sentinel;                 // 0x1ef (must stay 0: the kernel wipes fields otherwise)
  uint8_t pad5[1];                  // 0x1f0
  SetupHeader hdr;                  // 0x1f1
  uint8_t pad6[kSetupHeaderLimit - 0x26c];  // 0x26c
  uint32_t edd_mbr_sig_buffer[0x10];        // 0x290
  E820Entry e820_table[kE820MaxEntries];    // 0x2d0
  uint8_t pad7[0x30];                       // 0xcd0
  uint8_t eddbuf[0x1ec];                    // 0xd00
  uint8_t pad8[0x114];                      // 0xeec
} __attribute__((packed));
static_assert(sizeof(BootParams) == 4096);
static_assert(offsetof(BootParams, acpi_rsdp_addr) == 0x070);
static_assert(offsetof(BootParams, ext_ramdisk_image) == 0x0c0);
static_assert(offsetof(BootParams, e820_entries) == 0x1e8);
static_assert(offsetof(BootParams, sentinel) == 0x1ef);
static_assert(offsetof(BootParams, hdr) == kSetupHeaderOffset);
static_assert(offsetof(BootParams, e820_table) == 0x2d0);
static_assert(offsetof(BootParams, eddbuf) == 0xd00);

// ---- Xen PVH -------------------------------------------------------------------
inline constexpr uint32_t kHvmStartMagic = 0x336ec578;
inline constexpr uint32_t kHvmStartInfoVersion = 1;  // version 1 adds the memmap

struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;    // version 1+
  uint32_t memmap_entries;  // version 1+
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

struct HvmMemmapTableEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;  // the e820 type values
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapTableEntry) == 24);

// Where the pieces go inside [kBootInfoAddr, kBootInfoAddr + kBootInfoSize).
inline constexpr uint64_t kPvhModlistOffset = 0x40;
inline constexpr uint64_t kPvhMemmapOffset = 0x80;

// ---- Filling them ----------------------------------------------------------------
// What every boot structure tells the kernel, and where the movable ones are
// (low_memory.h moves them out of a low kernel's way).
struct BootInfo {
  uint64_t ram_bytes = 0;
  uint64_t initrd_addr = 0;
  uint64_t initrd_size = 0;     // 0: no initrd
  uint64_t acpi_rsdp_addr = 0;  // 0: none
  uint64_t cmdline_addr = kCmdlineAddr;
  uint64_t boot_info_addr = kBootInfoAddr;  // the hvm_start_info page
};

// Sets the fields a boot loader writes (boot.rst "write" fields, the e820 map,
// acpi_rsdp_addr if hdr.version >= 2.14) on top of the kernel's setup header
// already in params->hdr.
void FillZeroPage(const BootInfo& info, BootParams* params);

// A setup header for a kernel that has none (a plain ELF vmlinux entered at
// startup_64, as Firecracker does): magic, boot flag, protocol 2.15.
SetupHeader SyntheticSetupHeader();

// Writes hvm_start_info, the module list (the initrd, if any) and the memory
// map into the boot-info page at info.boot_info_addr.
absl::Status WritePvhStartInfo(const GuestMemory& mem, const BootInfo& info);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_BOOT_PARAMS_H_
