#include "vmm/vcpu_exit.h"

#include "absl/strings/str_format.h"

namespace mote {
namespace {

void PortIo(kvm_run& run, const Bus& bus) {
  auto* base = reinterpret_cast<uint8_t*>(&run) + run.io.data_offset;
  // String I/O (rep ins/outs) arrives as `count` back-to-back accesses.
  for (uint32_t i = 0; i < run.io.count; ++i) {
    absl::Span<uint8_t> data(base + i * run.io.size, run.io.size);
    if (run.io.direction == KVM_EXIT_IO_OUT) {
      bus.Write(run.io.port, data);
    } else {
      bus.Read(run.io.port, data);
    }
  }
}

void MmioAccess(kvm_run& run, const Bus& bus) {
  absl::Span<uint8_t> data(run.mmio.data, run.mmio.len);
  if (run.mmio.is_write) {
    bus.Write(run.mmio.phys_addr, data);
  } else {
    bus.Read(run.mmio.phys_addr, data);
  }
}

std::optional<VmOutcome> SystemEvent(const kvm_run& run) {
  switch (run.system_event.type) {
    case KVM_SYSTEM_EVENT_SHUTDOWN:
      return VmOutcome{OutcomeKind::kPowerOff, 0, "guest shut down (KVM system event)"};
    case KVM_SYSTEM_EVENT_RESET:
      return VmOutcome{OutcomeKind::kReset, 0, "guest reset (KVM system event)"};
    case KVM_SYSTEM_EVENT_CRASH:
      return VmOutcome{OutcomeKind::kPanic, 0, "guest crashed (KVM system event)"};
    default:
      return std::nullopt;
  }
}

}  // namespace

std::optional<VmOutcome> DispatchExit(kvm_run& run, int vcpu_id, const Bus& pio_bus,
                                      const Bus& mmio_bus,
                                      absl::FunctionRef<std::string()> describe_vcpu) {
  switch (run.exit_reason) {
    case KVM_EXIT_IO:
      PortIo(run, pio_bus);
      return std::nullopt;
    case KVM_EXIT_MMIO:
      MmioAccess(run, mmio_bus);
      return std::nullopt;
    case KVM_EXIT_HLT:
      // Only seen without an in-kernel LAPIC, which mote always creates.
      return std::nullopt;
    case KVM_EXIT_SYSTEM_EVENT:
      return SystemEvent(run);
    case KVM_EXIT_SHUTDOWN:
      return VmOutcome{OutcomeKind::kReset, 0,
                       absl::StrFormat("guest triple fault on vCPU %d (treated as a reset)\n%s",
                                       vcpu_id, describe_vcpu())};
    case KVM_EXIT_INTERNAL_ERROR: {
      const char* what = run.internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                             ? "the host could not emulate a guest instruction"
                             : "KVM internal error";
      return VmOutcome{OutcomeKind::kKvmError, 0,
                       absl::StrFormat("%s (KVM_EXIT_INTERNAL_ERROR suberror %d)\n%s", what,
                                       run.internal.suberror, describe_vcpu())};
    }
    case KVM_EXIT_FAIL_ENTRY:
      return VmOutcome{
          OutcomeKind::kKvmError, 0,
          absl::StrFormat("KVM could not enter the guest (hardware reason 0x%x)\n%s",
                          run.fail_entry.hardware_entry_failure_reason, describe_vcpu())};
    default:
      return VmOutcome{OutcomeKind::kKvmError, 0,
                       absl::StrFormat("unexpected KVM exit reason %d on vCPU %d\n%s",
                                       run.exit_reason, vcpu_id, describe_vcpu())};
  }
}

}  // namespace mote
