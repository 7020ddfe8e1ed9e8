// CPUID for each vCPU: KVM's supported set, with this vCPU's APIC ID and the
// VM's topology filled in, the hypervisor bit set, KVM's paravirt leaves kept,
// and a CPU template applied. Pure functions over CpuidEntries; any thread.
#ifndef MOTE_ARCH_X86_CPUID_H_
#define MOTE_ARCH_X86_CPUID_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "vmm/base/kvm.h"

namespace mote::x86 {

enum class CpuTemplate {
  kHost,     // everything KVM supports on this host
  kMinimal,  // a portable baseline: no cx16, xsave/xsaves, AVX-class features
};

// The brand string (CPUID 0x80000002-4) of the minimal template, and of the
// host template where the host's own cannot be read.
inline constexpr char kMinimalBrandString[] = "mote virtual x86-64 CPU";

// The host CPU's brand string, leading blanks dropped ("" if it has none).
std::string HostBrandString();

absl::StatusOr<CpuTemplate> ParseCpuTemplate(const std::string& name);
std::string CpuTemplateName(CpuTemplate t);

// The CPUID table for vCPU `vcpu_id` (also its APIC ID) of `num_vcpus`, each a
// single-threaded core of one package. The brand string is the host's (where
// KVM left it empty) or, with the minimal template, kMinimalBrandString. `tsc_deadline`: KVM's
// LAPIC offers the TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER), which KVM does not report in
// its supported CPUID; Linux on hardware-reduced ACPI runs on the LAPIC timer.
CpuidEntries VcpuCpuid(const CpuidEntries& supported, uint32_t vcpu_id, uint32_t num_vcpus,
                       CpuTemplate cpu_template, bool tsc_deadline = false);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_CPUID_H_
