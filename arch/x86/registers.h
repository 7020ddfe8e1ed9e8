// Initial vCPU state for each entry convention the loaders produce: boot GDT
// and identity page tables in guest memory, segment/control registers, general
// registers, FPU and MSRs. Called on the VM-building thread before vCPUs run.
#ifndef MOTE_ARCH_X86_REGISTERS_H_
#define MOTE_ARCH_X86_REGISTERS_H_

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "arch/x86/kernel_loader.h"
#include "vmm/base/guest_memory.h"
#include "vmm/base/kvm.h"

namespace mote::x86 {

// Writes the boot GDT (and, for 64-bit entries, page tables identity-mapping
// the low 4 GiB with 2 MiB pages) that `boot.mode` needs.
absl::Status WriteBootTables(const GuestMemory& mem, EntryMode mode);

// Segment and control registers for `mode` (pure: for tests and SetupBootVcpu).
kvm_sregs BootSregs(const kvm_sregs& initial, EntryMode mode);
// General registers for `boot` (pure).
kvm_regs BootRegs(const BootSetup& boot);

// The boot vCPU as ACPI S3 resume leaves it for the OS (ACPI 6.3 section
// 7.4.6): real mode, CS:IP = (vector >> 4):(vector & 0xf) from the FACS's
// 16-bit firmware waking vector, paging, long mode and interrupts off.
kvm_sregs WakeSregs(const kvm_sregs& initial, uint32_t waking_vector);
kvm_regs WakeRegs(uint32_t waking_vector);

// Puts the boot vCPU at the kernel's entry point.
absl::Status SetupBootVcpu(VcpuFd& vcpu, const BootSetup& boot);
// FPU and MSR state every vCPU starts with (application processors then wait
// for INIT/SIPI in the in-kernel LAPIC).
absl::Status SetupCommonVcpuState(VcpuFd& vcpu);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_REGISTERS_H_
