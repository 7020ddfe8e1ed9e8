#include "vmm/snapshot/vcpu_state.h"

#include <cpuid.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "vmm/base/kvm_abi.h"
#include "vmm/base/logging.h"
#include "vmm/base/status_macros.h"

namespace mote {
namespace {

constexpr size_t kMaxMsrs = 4096;
constexpr size_t kMaxXsaveBytes = 1 << 20;
constexpr uint32_t kMsrTscDeadline = 0x6e0;  // IA32_TSC_DEADLINE

}  // namespace

absl::StatusOr<VcpuStateShape> QueryVcpuStateShape(const KvmSystem& kvm, const VmFd& vm) {
  VcpuStateShape shape;
  MOTE_ASSIGN_OR_RETURN(shape.msr_indices, kvm.GetMsrIndexList());
  // KVM copies its whole user-ABI XSAVE area, which may be bigger than
  // KVM_CAP_XSAVE2 says (it counts only what guests may use, the area holds
  // every feature the host kernel saves): room for the host CPU's largest,
  // CPUID.(0xD,0):ECX, too.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  __get_cpuid_count(0xd, 0, &eax, &ebx, &ecx, &edx);
  size_t size = std::max<size_t>(
      {sizeof(kvm_abi::Xsave), ecx, static_cast<size_t>(vm.CheckExtension(KVM_CAP_XSAVE2))});
  shape.xsave_size = (size + 63) / 64 * 64;
  return shape;
}

absl::Status SaveVcpu(const VcpuFd& vcpu, const VcpuStateShape& shape, StateWriter& out) {
  MOTE_ASSIGN_OR_RETURN(uint32_t tsc_khz, vcpu.GetTscKhz());
  MOTE_ASSIGN_OR_RETURN(kvm_regs regs, vcpu.GetRegs());
  MOTE_ASSIGN_OR_RETURN(std::vector<uint8_t> xsave, vcpu.GetXsave(shape.xsave_size));
  MOTE_ASSIGN_OR_RETURN(kvm_xcrs xcrs, vcpu.GetXcrs());
  MOTE_ASSIGN_OR_RETURN(kvm_sregs sregs, vcpu.GetSregs());
  MOTE_ASSIGN_OR_RETURN(std::vector<kvm_msr_entry> msrs, vcpu.GetMsrs(shape.msr_indices));
  MOTE_ASSIGN_OR_RETURN(kvm_mp_state mp, vcpu.GetMpState());
  MOTE_ASSIGN_OR_RETURN(kvm_lapic_state lapic, vcpu.GetLapic());
  MOTE_ASSIGN_OR_RETURN(kvm_vcpu_events events, vcpu.GetVcpuEvents());
  MOTE_ASSIGN_OR_RETURN(kvm_debugregs debugregs, vcpu.GetDebugRegs());
  out.U32(tsc_khz);
  out.Struct(regs);
  out.Bytes(xsave);
  out.Struct(xcrs);
  out.Struct(sregs);
  out.U32(static_cast<uint32_t>(msrs.size()));
  for (const kvm_msr_entry& msr : msrs) {
    out.U32(msr.index);
    out.U64(msr.data);
  }
  out.Struct(mp);
  out.Struct(lapic);
  out.Struct(events);
  out.Struct(debugregs);
  return absl::OkStatus();
}

absl::Status RestoreVcpu(VcpuFd& vcpu, StateReader& in) {
  uint32_t tsc_khz = in.U32();
  auto regs = in.Struct<kvm_regs>();
  std::vector<uint8_t> xsave = in.Bytes(kMaxXsaveBytes);
  auto xcrs = in.Struct<kvm_xcrs>();
  auto sregs = in.Struct<kvm_sregs>();
  uint32_t msr_count = in.U32();
  if (msr_count > kMaxMsrs) in.Fail(absl::StrFormat("%d MSRs", msr_count));
  std::vector<kvm_msr_entry> msrs;
  for (uint32_t i = 0; in.ok() && i < msr_count; ++i) {
    kvm_msr_entry& msr = msrs.emplace_back();
    msr.index = in.U32();
    msr.data = in.U64();
  }
  auto mp = in.Struct<kvm_mp_state>();
  auto lapic = in.Struct<kvm_lapic_state>();
  auto events = in.Struct<kvm_vcpu_events>();
  auto debugregs = in.Struct<kvm_debugregs>();
  if (xsave.size() < sizeof(kvm_abi::Xsave)) in.Fail("XSAVE area too small");
  MOTE_RETURN_IF_ERROR(in.status());

  MOTE_ASSIGN_OR_RETURN(uint32_t host_khz, vcpu.GetTscKhz());
  if (tsc_khz != 0 && tsc_khz != host_khz) MOTE_RETURN_IF_ERROR(vcpu.SetTscKhz(tsc_khz));
  MOTE_RETURN_IF_ERROR(vcpu.SetRegs(regs));
  MOTE_RETURN_IF_ERROR(vcpu.SetXsave(xsave));
  MOTE_RETURN_IF_ERROR(vcpu.SetXcrs(xcrs));
  MOTE_RETURN_IF_ERROR(vcpu.SetSregs(sregs));
  // The TSC deadline goes in after the LAPIC: setting the LAPIC into
  // TSC-deadline mode clears the deadline (QEMU orders them the same way).
  std::vector<kvm_msr_entry> deadline;
  std::erase_if(msrs, [&deadline](const kvm_msr_entry& m) {
    if (m.index != kMsrTscDeadline) return false;
    deadline.push_back(m);
    return true;
  });
  // An MSR this KVM refuses to take back is skipped, named in the log:
  // saved lists include read-only and host-specific ones.
  absl::Span<const kvm_msr_entry> rest(msrs);
  while (!rest.empty()) {
    MOTE_ASSIGN_OR_RETURN(size_t set, vcpu.SetMsrsUpTo(rest));
    if (set >= rest.size()) break;
    spdlog::debug("restore vCPU {}: MSR 0x{:x} not taken", vcpu.id(), rest[set].index);
    rest.remove_prefix(set + 1);
  }
  MOTE_RETURN_IF_ERROR(vcpu.SetMpState(mp.mp_state));
  MOTE_RETURN_IF_ERROR(vcpu.SetLapic(lapic));
  if (!deadline.empty()) MOTE_RETURN_IF_ERROR(vcpu.SetMsrs(deadline));
  MOTE_RETURN_IF_ERROR(vcpu.SetVcpuEvents(events));
  debugregs.flags = 0;
  MOTE_RETURN_IF_ERROR(vcpu.SetDebugRegs(debugregs));
  return absl::OkStatus();
}

}  // namespace mote
