#include "arch/x86/low_memory.h"

#include "arch/x86/layout.h"
#include "arch/x86/reset_vector.h"

namespace mote::x86 {
namespace {

// BootSregs' GDT (null, code, data, TSS) and the empty IDT after it.
constexpr uint64_t kGdtBytes = 4 * 8;
constexpr uint64_t kIdtBytes = 8;
static_assert(kGdtAddr + kGdtBytes <= kIdtAddr);

}  // namespace

std::vector<LowRange> LowBootStructures(EntryMode mode, uint64_t cmdline_bytes,
                                        uint64_t module_list_bytes) {
  std::vector<LowRange> out = {{"the boot GDT and IDT", kGdtAddr, kIdtAddr + kIdtBytes}};
  switch (mode) {
    case EntryMode::kMultiboot32:
      out.push_back({"the Multiboot information", kBootInfoAddr, kBootInfoAddr + kBootInfoSize});
      break;
    case EntryMode::kPvh32:
      out.push_back({"the PVH start_info", kBootInfoAddr, kBootInfoAddr + kBootInfoSize});
      break;
    case EntryMode::kElf64:
    case EntryMode::kLinux64:
      out.push_back({"the PVH start_info", kBootInfoAddr, kBootInfoAddr + kBootInfoSize});
      out.push_back({"the Linux zero page", kZeroPageAddr, kZeroPageAddr + 0x1000});
      // Only the 64-bit entries are promised a stack (RSP = kBootStackTop),
      // as on Firecracker; PVH and Multiboot kernels bring their own.
      out.push_back({"the boot stack", kBootStackTop & ~uint64_t{0xfff}, kPml4Addr});
      out.push_back(
          {"the boot page tables", kPml4Addr, kPdAddr + uint64_t{kBootPageDirectories} * 0x1000});
      break;
  }
  out.push_back({"the kernel command line", kCmdlineAddr, kCmdlineAddr + cmdline_bytes});
  if (module_list_bytes > 0) {
    out.push_back(
        {"the Multiboot module list", kBootModulesAddr, kBootModulesAddr + module_list_bytes});
  }
  out.push_back({"the EBDA, VGA and BIOS area", kEbdaStart, kAcpiRsdpAddr});
  out.push_back({"the ACPI tables", kAcpiRsdpAddr, kAcpiTablesEnd});
  out.push_back(
      {"the reset vector", kRealModeResetVector, kRealModeResetVector + kResetVectorSize});
  return out;
}

std::optional<LowRange> FindLowCollision(const std::vector<LowRange>& structures, uint64_t start,
                                         uint64_t end) {
  for (const LowRange& r : structures) {
    if (start < r.end && r.start < end) return r;
  }
  return std::nullopt;
}

}  // namespace mote::x86
