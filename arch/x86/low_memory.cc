#include "arch/x86/low_memory.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "arch/x86/reset_vector.h"

namespace mote::x86 {
namespace {

// BootSregs' GDT (null, code, data, TSS) and the empty IDT after it.
constexpr uint64_t kGdtBytes = 4 * 8;
constexpr uint64_t kIdtBytes = 8;
static_assert(kGdtAddr + kGdtBytes <= kIdtAddr);
constexpr uint64_t kPage = 0x1000;

// One movable structure: its usual place and size, and where it went.
struct Movable {
  const char* name;
  uint64_t preferred;
  uint64_t bytes;
  uint64_t* placed;
};

}  // namespace

std::vector<LowRange> FixedLowStructures(EntryMode mode) {
  std::vector<LowRange> out = {{"the boot GDT and IDT", kGdtAddr, kIdtAddr + kIdtBytes}};
  if (Is64Bit(mode)) {
    out.push_back({"the Linux zero page", kZeroPageAddr, kZeroPageAddr + kPage});
    // Only the 64-bit entries are promised a stack (RSP = kBootStackTop),
    // as on Firecracker; PVH and Multiboot kernels bring their own.
    out.push_back({"the boot stack", kBootStackTop & ~(kPage - 1), kPml4Addr});
    out.push_back(
        {"the boot page tables", kPml4Addr, kPdAddr + uint64_t{kBootPageDirectories} * kPage});
  }
  out.push_back({"the EBDA, VGA and BIOS area", kEbdaStart, kAcpiRsdpAddr});
  out.push_back({"the ACPI tables", kAcpiRsdpAddr, kAcpiTablesEnd});
  out.push_back(
      {"the reset vector", kRealModeResetVector, kRealModeResetVector + kResetVectorSize});
  return out;
}

std::optional<LowRange> FindLowCollision(const std::vector<LowRange>& ranges, uint64_t start,
                                         uint64_t end) {
  for (const LowRange& r : ranges) {
    if (start < r.end && r.start < end) return r;
  }
  return std::nullopt;
}

absl::StatusOr<BootInfoPlacement> PlaceBootInfo(const BootInfoNeeds& needs,
                                                const std::vector<LowRange>& segments) {
  BootInfoPlacement placement;
  std::vector<Movable> movables = {
      {needs.mode == EntryMode::kMultiboot32 ? "the Multiboot information" : "the PVH start_info",
       kBootInfoAddr, kBootInfoSize, &placement.boot_info},
      {"the kernel command line", kCmdlineAddr, needs.cmdline_bytes, &placement.cmdline},
  };
  if (needs.module_list_bytes > 0) {
    movables.push_back({"the Multiboot module list", kBootModulesAddr, needs.module_list_bytes,
                        &placement.module_list});
  }
  std::vector<LowRange> taken = FixedLowStructures(needs.mode);
  taken.insert(taken.end(), segments.begin(), segments.end());
  // First every structure that can keep its usual place, so one that moves
  // never takes another's.
  std::vector<Movable> to_move;
  for (const Movable& m : movables) {
    if (FindLowCollision(taken, m.preferred, m.preferred + m.bytes)) {
      to_move.push_back(m);
    } else {
      taken.push_back({m.name, m.preferred, m.preferred + m.bytes});
    }
  }
  for (const Movable& m : to_move) {
    uint64_t addr = kPage;
    while (addr + m.bytes <= kEbdaStart && FindLowCollision(taken, addr, addr + m.bytes)) {
      addr += kPage;
    }
    if (addr + m.bytes > kEbdaStart) {
      LowRange hit = *FindLowCollision(taken, m.preferred, m.preferred + m.bytes);
      return absl::InvalidArgumentError(absl::StrFormat(
          "no room below 0x%x for %s (%d bytes): its place [0x%x, 0x%x) is taken by %s at "
          "[0x%x, 0x%x), and so is every other",
          kEbdaStart, m.name, m.bytes, m.preferred, m.preferred + m.bytes, hit.name, hit.start,
          hit.end));
    }
    *m.placed = addr;
    taken.push_back({m.name, addr, addr + m.bytes});
  }
  return placement;
}

}  // namespace mote::x86
