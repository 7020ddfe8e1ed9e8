#include "arch/x86/multiboot.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "arch/x86/layout.h"
#include "arch/x86/memory_map.h"
#include "vmm/base/status_macros.h"

namespace mote::x86 {
namespace {

constexpr char kLoaderName[] = "mote";
constexpr uint32_t kSupportedRequirements =
    kMultibootPageAlignModules | kMultibootMemoryInfo | kMultibootVideoMode;
constexpr uint64_t k4GiB = 1ull << 32;

// The module string is the initrd's path, as GRUB passes a module's command line.
absl::Status CheckModuleString(const KernelLoadRequest& req) {
  if (kMultibootModuleStringOffset + req.initrd_path.size() + 1 > kMultibootModulesSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "initrd path %s is too long for the Multiboot module string (%d bytes at most)",
        req.initrd_path, kMultibootModulesSize - kMultibootModuleStringOffset - 1));
  }
  return absl::OkStatus();
}

// Writes the module list (one module: the initrd) and its string.
absl::Status WriteModules(const GuestMemory& mem, const KernelLoadRequest& req,
                          const InitrdPlacement& initrd, uint64_t addr) {
  const std::string& name = req.initrd_path;  // length checked by CheckModuleString
  std::array<uint8_t, kMultibootModulesSize> area = {};
  MultibootModule module = {};
  module.mod_start = static_cast<uint32_t>(initrd.addr);
  module.mod_end = static_cast<uint32_t>(initrd.addr + initrd.size);
  module.string = static_cast<uint32_t>(addr + kMultibootModuleStringOffset);
  std::memcpy(area.data(), &module, sizeof(module));
  std::memcpy(area.data() + kMultibootModuleStringOffset, name.data(), name.size());
  return mem.Write(GuestAddress{addr}, area);
}

absl::Status WriteInfo(const GuestMemory& mem, const KernelLoadRequest& req,
                       const InitrdPlacement& initrd, const BootInfoPlacement& at) {
  const std::vector<E820Entry> map = BuildE820(req.ram_bytes);
  static_assert(kMultibootMmapOffset >= sizeof(MultibootInfo));
  if (kMultibootMmapOffset + map.size() * sizeof(MultibootMmapEntry) > kMultibootLoaderNameOffset) {
    return absl::InternalError("Multiboot memory map does not fit in the boot info page");
  }
  std::array<uint8_t, kBootInfoSize> page = {};
  MultibootInfo info = {};
  info.flags =
      kMultibootInfoMemory | kMultibootInfoCmdline | kMultibootInfoMmap | kMultibootInfoLoaderName;
  // Conventional memory ends at the EBDA; upper memory runs from 1 MiB to the
  // first hole, which in mote is the end of low RAM.
  info.mem_lower = static_cast<uint32_t>(std::min(req.ram_bytes, kEbdaStart) / 1024);
  const uint64_t low_end = LowRamEnd(req.ram_bytes);
  info.mem_upper = static_cast<uint32_t>(low_end > kLowMemEnd ? (low_end - kLowMemEnd) / 1024 : 0);
  info.cmdline = static_cast<uint32_t>(at.cmdline);
  if (initrd.size > 0) {
    info.flags |= kMultibootInfoMods;
    info.mods_count = 1;
    info.mods_addr = static_cast<uint32_t>(at.module_list);
  }
  for (size_t i = 0; i < map.size(); ++i) {
    const MultibootMmapEntry e{sizeof(MultibootMmapEntry) - sizeof(uint32_t), map[i].addr,
                               map[i].size, map[i].type};
    std::memcpy(page.data() + kMultibootMmapOffset + i * sizeof(e), &e, sizeof(e));
  }
  info.mmap_addr = static_cast<uint32_t>(at.boot_info + kMultibootMmapOffset);
  info.mmap_length = static_cast<uint32_t>(map.size() * sizeof(MultibootMmapEntry));
  info.boot_loader_name = static_cast<uint32_t>(at.boot_info + kMultibootLoaderNameOffset);
  std::memcpy(page.data() + kMultibootLoaderNameOffset, kLoaderName, sizeof(kLoaderName));
  std::memcpy(page.data(), &info, sizeof(info));
  return mem.Write(GuestAddress{at.boot_info}, page);
}

}  // namespace

std::optional<MultibootHeader> FindMultibootHeader(absl::Span<const uint8_t> probe) {
  const uint64_t limit = std::min<uint64_t>(probe.size(), kMultibootSearchBytes);
  for (uint64_t off = 0; off + 12 <= limit; off += 4) {
    uint32_t word[3];  // magic, flags, checksum
    std::memcpy(word, probe.data() + off, sizeof(word));
    if (word[0] == kMultibootHeaderMagic &&
        static_cast<uint32_t>(word[0] + word[1] + word[2]) == 0) {
      return MultibootHeader{off, word[1]};
    }
  }
  return std::nullopt;
}

absl::Status CheckMultibootHeader(const ImageFile& file, const MultibootHeader& header) {
  if ((header.flags & kMultibootAoutKludge) != 0) {
    return file.Error(absl::StatusCode::kInvalidArgument,
                      absl::StrFormat("Multiboot header at 0x%x uses the a.out kludge (flag bit "
                                      "16), which mote does not support; link the kernel as ELF "
                                      "and clear that flag",
                                      header.offset));
  }
  const uint32_t unsupported = header.flags & 0xffff & ~kSupportedRequirements;
  if (unsupported != 0) {
    return file.Error(absl::StatusCode::kInvalidArgument,
                      absl::StrFormat("Multiboot header requires features mote does not "
                                      "provide (flags 0x%x)",
                                      unsupported));
  }
  return absl::OkStatus();
}

absl::StatusOr<BootSetup> LoadMultibootElf(const GuestMemory& mem, const ImageFile& file,
                                           const ElfImage& image, const MultibootHeader& header,
                                           const KernelLoadRequest& req) {
  MOTE_RETURN_IF_ERROR(CheckMultibootHeader(file, header));
  MOTE_RETURN_IF_ERROR(CheckModuleString(req));
  // Multiboot enters in 32-bit protected mode without paging; e_entry is
  // taken as the physical entry point, as for ELF32 kernels under GRUB.
  if (image.entry >= k4GiB) {
    return file.Error(absl::StatusCode::kInvalidArgument,
                      absl::StrFormat("Multiboot entry point 0x%x is above 4 GiB", image.entry));
  }
  const uint64_t module_list = req.initrd_path.empty() ? 0 : kMultibootModulesSize;
  MOTE_ASSIGN_OR_RETURN(
      LoadedSegments loaded,
      LoadElfSegments(mem, file, image, image.entry,
                      {EntryMode::kMultiboot32, req.cmdline.size() + 1, module_list}));
  const BootInfoPlacement& at = loaded.placement;
  // Module addresses are 32-bit: keep the initrd below the hole (and 4 GiB).
  const uint64_t limit = std::min(LowRamEnd(req.ram_bytes), kMmioHoleStart);
  MOTE_ASSIGN_OR_RETURN(InitrdPlacement initrd, LoadInitrd(mem, req, limit, loaded.low_end));
  if (initrd.size > 0) MOTE_RETURN_IF_ERROR(WriteModules(mem, req, initrd, at.module_list));
  MOTE_RETURN_IF_ERROR(WriteInfo(mem, req, initrd, at));
  MOTE_RETURN_IF_ERROR(WriteCmdline(mem, at.cmdline, req.cmdline));

  BootSetup setup;
  setup.mode = EntryMode::kMultiboot32;
  setup.entry = image.entry;
  setup.rax = kMultibootBootloaderMagic;
  setup.rbx = at.boot_info;
  setup.kernel_end = loaded.end;
  setup.format_name = image.is_64bit ? "ELF64 Multiboot" : "ELF32 Multiboot";
  return setup;
}

}  // namespace mote::x86
