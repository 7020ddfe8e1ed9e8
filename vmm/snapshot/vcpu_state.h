// The state of one vCPU in a snapshot: registers, special and debug
// registers, the XSAVE area and XCRs, the MSRs KVM can save, the LAPIC, the
// MP state, pending events and the TSC frequency. Read and written through
// KVM with the vCPU stopped outside KVM_RUN (Vcpu::Pause completes a
// pending I/O exit first, so the registers hold its result).
// Pure functions over a VcpuFd; the caller owns the thread question.
#ifndef MOTE_VMM_SNAPSHOT_VCPU_STATE_H_
#define MOTE_VMM_SNAPSHOT_VCPU_STATE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "vmm/base/kvm.h"
#include "vmm/base/state_stream.h"

namespace mote {

inline constexpr uint32_t kVcpuStateVersion = 1;

// What KVM offers to save on this host.
struct VcpuStateShape {
  std::vector<uint32_t> msr_indices;  // KVM_GET_MSR_INDEX_LIST
  size_t xsave_size = 0;              // KVM_CAP_XSAVE2, or 4096
};
absl::StatusOr<VcpuStateShape> QueryVcpuStateShape(const KvmSystem& kvm, const VmFd& vm);

absl::Status SaveVcpu(const VcpuFd& vcpu, const VcpuStateShape& shape, StateWriter& out);
// Puts the saved state into `vcpu` (whose CPUID is already set), in the
// order KVM needs: TSC frequency, registers, XSAVE, XCRs, special registers,
// MSRs, MP state, LAPIC, the TSC deadline MSR, events, debug registers.
absl::Status RestoreVcpu(VcpuFd& vcpu, StateReader& in);

}  // namespace mote

#endif  // MOTE_VMM_SNAPSHOT_VCPU_STATE_H_
