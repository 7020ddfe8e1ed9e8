// A one-glance description of a stopped vCPU for error reports: mode, the
// main registers, and the instruction bytes at RIP (translated through the
// guest's page tables when paging is on). Called on the vCPU's own thread.
#ifndef MOTE_ARCH_X86_VCPU_DUMP_H_
#define MOTE_ARCH_X86_VCPU_DUMP_H_

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <string>

#include "vmm/base/guest_memory.h"
#include "vmm/base/kvm.h"

namespace mote::x86 {

// Guest-virtual to guest-physical through 4-level (or 32-bit non-PAE / PAE)
// page tables; identity when paging is off. nullopt if not mapped.
std::optional<uint64_t> TranslateGuestVirtual(const GuestMemory& mem, const kvm_sregs& sregs,
                                              uint64_t gva);

std::string DescribeVcpu(VcpuFd& vcpu, const GuestMemory& mem);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_VCPU_DUMP_H_
