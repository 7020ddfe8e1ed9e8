// CPUID for each vCPU: KVM's supported set with the VM's CPU model applied
// (template, feature switches, vendor, brand) and the hypervisor bit set,
// KVM's paravirt leaves kept, then this vCPU's APIC ID and the VM's topology
// filled in. Pure functions over CpuidEntries; any thread.
#ifndef MOTE_ARCH_X86_CPUID_H_
#define MOTE_ARCH_X86_CPUID_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "arch/x86/cpu_model.h"
#include "vmm/base/kvm.h"

namespace mote::x86 {

// The brand string (CPUID 0x80000002-4) of the minimal template, and of the
// host template where the host's own cannot be read.
inline constexpr char kMinimalBrandString[] = "mote virtual x86-64 CPU";

// The host CPU's brand string, leading blanks dropped ("" if it has none).
std::string HostBrandString();

// The CPUID every vCPU of a VM starts from: `supported` (KVM's) with `model`
// applied. The brand string is the model's, else the host's (where KVM left
// it empty) or, with the minimal template, kMinimalBrandString.
// `tsc_deadline`: KVM's LAPIC offers the TSC-deadline timer
// (KVM_CAP_TSC_DEADLINE_TIMER), which KVM does not report in its supported
// CPUID; Linux on hardware-reduced ACPI runs on the LAPIC timer. Errors: a
// feature switch KVM cannot honour or that breaks a dependency.
absl::StatusOr<CpuidEntries> ModelCpuid(const CpuidEntries& supported, const CpuModel& model,
                                        bool tsc_deadline = false);

// The CPUID table for vCPU `vcpu_id` (also its APIC ID) of `num_vcpus`, each a
// single-threaded core of one package, from the VM's ModelCpuid table.
CpuidEntries VcpuCpuid(const CpuidEntries& model_cpuid, uint32_t vcpu_id, uint32_t num_vcpus);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_CPUID_H_
