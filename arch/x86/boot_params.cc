#include "arch/x86/boot_params.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "arch/x86/layout.h"
#include "vmm/base/status_macros.h"

namespace mote::x86 {

void FillZeroPage(const BootInfo& info, BootParams* params) {
  SetupHeader& hdr = params->hdr;
  hdr.type_of_loader = kLoaderTypeUndefined;
  hdr.loadflags |= kLoadFlagCanUseHeap;
  hdr.heap_end_ptr = kHeapEndPtr;
  hdr.vid_mode = kVidModeNormal;
  hdr.cmd_line_ptr = static_cast<uint32_t>(info.cmdline_addr);
  params->ext_cmd_line_ptr = static_cast<uint32_t>(info.cmdline_addr >> 32);
  hdr.ramdisk_image = static_cast<uint32_t>(info.initrd_addr);
  hdr.ramdisk_size = static_cast<uint32_t>(info.initrd_size);
  params->ext_ramdisk_image = static_cast<uint32_t>(info.initrd_addr >> 32);
  params->ext_ramdisk_size = static_cast<uint32_t>(info.initrd_size >> 32);
  // acpi_rsdp_addr sits outside the setup header, so older kernels would not
  // read it; they find the RSDP by scanning 0xe0000..0xfffff, where it is.
  if (hdr.version >= 0x020e) params->acpi_rsdp_addr = info.acpi_rsdp_addr;

  const std::vector<E820Entry> map = BuildE820(info.ram_bytes);
  const size_t n = std::min(map.size(), kE820MaxEntries);
  std::copy(map.begin(), map.begin() + n, params->e820_table);
  params->e820_entries = static_cast<uint8_t>(n);
}

SetupHeader SyntheticSetupHeader() {
  SetupHeader hdr = {};
  hdr.boot_flag = kBootFlagMagic;
  hdr.header = kHdrSMagic;
  hdr.version = 0x020f;
  hdr.loadflags = kLoadFlagLoadedHigh;
  hdr.kernel_alignment = 0x1000000;
  hdr.cmdline_size = static_cast<uint32_t>(kCmdlineMax - 1);
  return hdr;
}

absl::Status WritePvhStartInfo(const GuestMemory& mem, const BootInfo& info) {
  const std::vector<E820Entry> map = BuildE820(info.ram_bytes);
  const uint64_t memmap_bytes = map.size() * sizeof(HvmMemmapTableEntry);
  if (kPvhMemmapOffset + memmap_bytes > kBootInfoSize) {
    return absl::InternalError(absl::StrFormat(
        "PVH memory map (%d entries) does not fit in the boot info page", map.size()));
  }
  // Built in a local page and written once: the page is ours, and stale
  // bytes from a previous boot must not look like data.
  std::array<uint8_t, kBootInfoSize> page = {};

  HvmStartInfo start = {};
  start.magic = kHvmStartMagic;
  start.version = kHvmStartInfoVersion;
  start.cmdline_paddr = info.cmdline_addr;
  start.rsdp_paddr = info.acpi_rsdp_addr;
  start.memmap_paddr = info.boot_info_addr + kPvhMemmapOffset;
  start.memmap_entries = static_cast<uint32_t>(map.size());
  if (info.initrd_size > 0) {
    start.nr_modules = 1;
    start.modlist_paddr = info.boot_info_addr + kPvhModlistOffset;
    HvmModlistEntry module = {};
    module.paddr = info.initrd_addr;
    module.size = info.initrd_size;
    std::memcpy(page.data() + kPvhModlistOffset, &module, sizeof(module));
  }
  std::memcpy(page.data(), &start, sizeof(start));
  for (size_t i = 0; i < map.size(); ++i) {
    HvmMemmapTableEntry e = {};
    e.addr = map[i].addr;
    e.size = map[i].size;
    e.type = map[i].type;
    std::memcpy(page.data() + kPvhMemmapOffset + i * sizeof(e), &e, sizeof(e));
  }
  static_assert(kPvhModlistOffset >= sizeof(HvmStartInfo));
  static_assert(kPvhMemmapOffset >= kPvhModlistOffset + sizeof(HvmModlistEntry));
  return mem.Write(GuestAddress{info.boot_info_addr}, page);
}

}  // namespace mote::x86
