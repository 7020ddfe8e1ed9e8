#include "arch/x86/registers.h"

#include <array>

#include "arch/x86/layout.h"
#include "vmm/base/logging.h"
#include "vmm/base/status_macros.h"

namespace mote::x86 {
namespace {

constexpr uint64_t kCr0Pe = 1ull << 0, kCr0Mp = 1ull << 1, kCr0Et = 1ull << 4, kCr0Ne = 1ull << 5,
                   kCr0Wp = 1ull << 16, kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8, kEferLma = 1ull << 10;

// GDT slots: 0 null, 1 code, 2 data, 3 TSS.
constexpr uint16_t kCodeSelector = 0x08, kDataSelector = 0x10, kTssSelector = 0x18;
constexpr uint64_t kGdtCode64 = 0x00af9b000000ffff;  // L=1, present, exec/read, accessed
constexpr uint64_t kGdtCode32 = 0x00cf9b000000ffff;  // D=1, 4 GiB
constexpr uint64_t kGdtData = 0x00cf93000000ffff;    // read/write, 4 GiB
constexpr uint64_t kGdtTss = 0x008f8b000000ffff;     // busy TSS (base 0): VMX insists on a valid TR

constexpr uint64_t kPageTableFlags = 0x03;  // present, writable
constexpr uint64_t kLargePageFlags = 0x83;  // present, writable, 2 MiB page

// A KVM segment from a GDT descriptor, as the CPU would cache it.
kvm_segment SegmentFromDescriptor(uint64_t desc, uint16_t selector) {
  kvm_segment s{};
  s.base = ((desc >> 16) & 0xffffff) | (((desc >> 56) & 0xff) << 24);
  uint32_t limit = (desc & 0xffff) | (((desc >> 48) & 0xf) << 16);
  s.g = (desc >> 55) & 1;
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.selector = selector;
  s.type = (desc >> 40) & 0xf;
  s.s = (desc >> 44) & 1;
  s.dpl = (desc >> 45) & 3;
  s.present = (desc >> 47) & 1;
  s.avl = (desc >> 52) & 1;
  s.l = (desc >> 53) & 1;
  s.db = (desc >> 54) & 1;
  return s;
}

}  // namespace

absl::Status WriteBootTables(const GuestMemory& mem, EntryMode mode) {
  std::array<uint64_t, 4> gdt = {0, Is64Bit(mode) ? kGdtCode64 : kGdtCode32, kGdtData, kGdtTss};
  MOTE_RETURN_IF_ERROR(mem.WriteObj(GuestAddress{kGdtAddr}, gdt));
  MOTE_RETURN_IF_ERROR(mem.WriteObj(GuestAddress{kIdtAddr}, uint64_t{0}));
  if (!Is64Bit(mode)) return absl::OkStatus();

  MOTE_RETURN_IF_ERROR(mem.WriteObj(GuestAddress{kPml4Addr}, kPdptAddr | kPageTableFlags));
  std::array<uint64_t, kBootPageDirectories> pdpt;
  for (int i = 0; i < kBootPageDirectories; ++i) pdpt[i] = (kPdAddr + i * 0x1000) | kPageTableFlags;
  MOTE_RETURN_IF_ERROR(mem.WriteObj(GuestAddress{kPdptAddr}, pdpt));
  MOTE_ASSIGN_OR_RETURN(absl::Span<uint8_t> pd_bytes,
                        mem.GetSlice(GuestAddress{kPdAddr}, kBootPageDirectories * 0x1000));
  auto* pd = reinterpret_cast<uint64_t*>(pd_bytes.data());
  for (uint64_t i = 0; i < kBootPageDirectories * 512; ++i) pd[i] = (i << 21) | kLargePageFlags;
  return absl::OkStatus();
}

kvm_sregs BootSregs(const kvm_sregs& initial, EntryMode mode) {
  kvm_sregs sregs = initial;
  bool long_mode = Is64Bit(mode);
  kvm_segment code = SegmentFromDescriptor(long_mode ? kGdtCode64 : kGdtCode32, kCodeSelector);
  kvm_segment data = SegmentFromDescriptor(kGdtData, kDataSelector);
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = SegmentFromDescriptor(kGdtTss, kTssSelector);
  sregs.gdt.base = kGdtAddr;
  sregs.gdt.limit = 4 * 8 - 1;
  sregs.idt.base = kIdtAddr;
  sregs.idt.limit = 7;
  sregs.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne;
  sregs.cr4 = 0;
  sregs.efer = 0;
  if (long_mode) {
    sregs.cr0 |= kCr0Wp | kCr0Pg;
    sregs.cr3 = kPml4Addr;
    sregs.cr4 = kCr4Pae;
    sregs.efer = kEferLme | kEferLma;
  }
  return sregs;
}

kvm_sregs WakeSregs(const kvm_sregs& initial, uint32_t waking_vector) {
  kvm_sregs sregs = initial;
  auto real_mode = [](uint16_t selector, uint8_t type) {
    kvm_segment s{};
    s.selector = selector;
    s.base = uint64_t{selector} << 4;
    s.limit = 0xffff;
    s.type = type;
    s.present = 1;
    s.s = 1;
    return s;
  };
  sregs.cs = real_mode(static_cast<uint16_t>(waking_vector >> 4), 0xb);      // code, read, accessed
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = real_mode(0, 0x3);  // data, accessed
  sregs.tr = real_mode(0, 0xb);
  sregs.tr.s = 0;  // a busy TSS, as after reset
  sregs.ldt = real_mode(0, 0x2);
  sregs.ldt.s = 0;
  sregs.gdt.base = 0;
  sregs.gdt.limit = 0xffff;
  sregs.idt.base = 0;
  sregs.idt.limit = 0x3ff;
  sregs.cr0 = kCr0Et;
  sregs.cr2 = sregs.cr3 = sregs.cr4 = 0;
  sregs.efer = 0;
  return sregs;
}

kvm_regs WakeRegs(uint32_t waking_vector) {
  kvm_regs regs{};
  regs.rflags = 0x2;
  regs.rip = waking_vector & 0xf;
  return regs;
}

kvm_regs BootRegs(const BootSetup& boot) {
  kvm_regs regs{};
  regs.rflags = 0x2;  // reserved bit 1; interrupts off
  regs.rip = boot.entry;
  regs.rsi = boot.rsi;
  regs.rbx = boot.rbx;
  regs.rax = boot.rax;
  regs.rdi = boot.rdi;
  regs.rsp = regs.rbp = kBootStackTop;
  return regs;
}

absl::Status SetupBootVcpu(VcpuFd& vcpu, const BootSetup& boot) {
  MOTE_ASSIGN_OR_RETURN(kvm_sregs initial, vcpu.GetSregs());
  MOTE_RETURN_IF_ERROR(vcpu.SetSregs(BootSregs(initial, boot.mode)));
  return vcpu.SetRegs(BootRegs(boot));
}

absl::Status SetupCommonVcpuState(VcpuFd& vcpu) {
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;     // x87 default control word
  fpu.mxcsr = 0x1f80;  // all SSE exceptions masked
  MOTE_RETURN_IF_ERROR(vcpu.SetFpu(fpu));

  constexpr uint32_t kMsrMiscEnable = 0x1a0, kMsrMtrrDefType = 0x2ff;
  // Fast strings on (firmware leaves it so); MTRRs enabled with write-back default,
  // without which a guest would run with caching disabled.
  std::vector<kvm_msr_entry> msrs = {
      {kMsrMiscEnable, 0, 1},
      {kMsrMtrrDefType, 0, (1u << 11) | 6},
  };
  if (absl::Status s = vcpu.SetMsrs(msrs); !s.ok()) {
    // Some nested hosts refuse an MSR; the guest can still boot without it.
    spdlog::debug("{} (continuing)", s.ToString());
  }
  return absl::OkStatus();
}

}  // namespace mote::x86
