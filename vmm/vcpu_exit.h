// DispatchExit: what mote does with one KVM exit, as a function of the
// kvm_run page alone, so unit tests can drive it with crafted exits. Port and
// MMIO accesses go to the buses; a triple fault, a system event or a fatal
// KVM exit becomes the outcome that ends the VM.
// Thread-safety: runs on the vCPU thread that owns `run`; the buses are
// thread-safe.
#ifndef MOTE_VMM_VCPU_EXIT_H_
#define MOTE_VMM_VCPU_EXIT_H_

#include <linux/kvm.h>

#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "vmm/base/bus.h"
#include "vmm/outcome.h"

namespace mote {

// Handles the exit in `run` (KVM_RUN returned 0). nullopt: run the vCPU
// again; otherwise the outcome that ends the VM. `describe_vcpu` gives the
// register dump that fatal outcomes carry; it is called only for them.
std::optional<VmOutcome> DispatchExit(kvm_run& run, int vcpu_id, const Bus& pio_bus,
                                      const Bus& mmio_bus,
                                      absl::FunctionRef<std::string()> describe_vcpu);

}  // namespace mote

#endif  // MOTE_VMM_VCPU_EXIT_H_
