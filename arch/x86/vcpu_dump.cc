#include "arch/x86/vcpu_dump.h"

#include "absl/strings/str_format.h"

namespace mote::x86 {
namespace {

constexpr uint64_t kPresent = 1, kLargePage = 1ull << 7;
constexpr uint64_t kAddrMask = 0x000ffffffffff000ull;

std::optional<uint64_t> ReadEntry(const GuestMemory& mem, uint64_t addr) {
  absl::StatusOr<uint64_t> e = mem.ReadObj<uint64_t>(GuestAddress{addr});
  if (!e.ok() || !(*e & kPresent)) return std::nullopt;
  return *e;
}

}  // namespace

std::optional<uint64_t> TranslateGuestVirtual(const GuestMemory& mem, const kvm_sregs& sregs,
                                              uint64_t gva) {
  constexpr uint64_t kCr0Pg = 1ull << 31, kCr4Pae = 1ull << 5, kEferLma = 1ull << 10;
  if (!(sregs.cr0 & kCr0Pg)) return gva;
  if (!(sregs.efer & kEferLma)) {
    if (sregs.cr4 & kCr4Pae) return std::nullopt;  // 32-bit PAE: rare at boot; not decoded
    absl::StatusOr<uint32_t> pde =
        mem.ReadObj<uint32_t>(GuestAddress{(sregs.cr3 & 0xfffff000) + ((gva >> 22) & 0x3ff) * 4});
    if (!pde.ok() || !(*pde & kPresent)) return std::nullopt;
    if (*pde & kLargePage) return (*pde & 0xffc00000) | (gva & 0x3fffff);
    absl::StatusOr<uint32_t> pte =
        mem.ReadObj<uint32_t>(GuestAddress{(*pde & 0xfffff000) + ((gva >> 12) & 0x3ff) * 4});
    if (!pte.ok() || !(*pte & kPresent)) return std::nullopt;
    return (*pte & 0xfffff000) | (gva & 0xfff);
  }
  uint64_t table = sregs.cr3 & kAddrMask;
  for (int level = 3; level >= 0; --level) {
    int shift = 12 + 9 * level;
    std::optional<uint64_t> e = ReadEntry(mem, table + ((gva >> shift) & 0x1ff) * 8);
    if (!e) return std::nullopt;
    if (level == 0 || ((level == 1 || level == 2) && (*e & kLargePage))) {
      uint64_t page_mask = (1ull << shift) - 1;
      return (*e & kAddrMask & ~page_mask) | (gva & page_mask);
    }
    table = *e & kAddrMask;
  }
  return std::nullopt;
}

std::string DescribeVcpu(VcpuFd& vcpu, const GuestMemory& mem) {
  absl::StatusOr<kvm_regs> regs = vcpu.GetRegs();
  absl::StatusOr<kvm_sregs> sregs = vcpu.GetSregs();
  if (!regs.ok() || !sregs.ok()) return "(registers unavailable)";
  const kvm_regs& r = *regs;
  const kvm_sregs& s = *sregs;
  std::string out = absl::StrFormat(
      "vCPU %d: rip=0x%x rsp=0x%x rflags=0x%x cs=0x%x (cpl %d, %s) cr0=0x%x cr3=0x%x cr4=0x%x "
      "efer=0x%x\n  rax=0x%x rbx=0x%x rcx=0x%x rdx=0x%x rsi=0x%x rdi=0x%x",
      vcpu.id(), r.rip, r.rsp, r.rflags, s.cs.selector, s.cs.dpl,
      s.cs.l ? "64-bit" : (s.cs.db ? "32-bit" : "16-bit"), s.cr0, s.cr3, s.cr4, s.efer, r.rax,
      r.rbx, r.rcx, r.rdx, r.rsi, r.rdi);
  uint64_t linear = r.rip + (s.cs.l ? 0 : s.cs.base);
  std::optional<uint64_t> gpa = TranslateGuestVirtual(mem, s, linear);
  std::string bytes;
  if (gpa) {
    for (uint64_t i = 0; i < 16; ++i) {
      absl::StatusOr<uint8_t> b = mem.ReadObj<uint8_t>(GuestAddress{*gpa + i});
      if (!b.ok()) break;
      absl::StrAppendFormat(&bytes, " %02x", *b);
    }
  }
  absl::StrAppendFormat(&out, "\n  code at rip:%s", bytes.empty() ? " (not in guest RAM)" : bytes);
  return out;
}

}  // namespace mote::x86
