// VmRunner: one guest's whole life in a mote process: it owns the event loop
// and the control socket, boots a Vm, boots it again after a reset (the
// guest's with --on-reboot restart, or a control client's system_reset), and
// turns what happens into QMP events. It is also the QMP command dispatcher;
// every command runs on the loop thread (DESIGN.md), where it may pause,
// resume or end the current Vm.
// Thread-safety: Create and Run from one thread; Run blocks until the guest
// is gone for good.
#ifndef MOTE_VMM_VM_RUNNER_H_
#define MOTE_VMM_VM_RUNNER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "vmm/base/event_loop.h"
#include "vmm/outcome.h"
#include "vmm/qmp/qmp_server.h"
#include "vmm/vm.h"
#include "vmm/vm_config.h"

namespace mote {

inline constexpr char kMoteVersion[] = "0.1.0";

struct RunOptions {
  std::string api_socket;  // QMP control socket path; empty: none
  bool paused = false;     // vCPUs wait for `cont` (QMP status "prelaunch")
  std::string name;        // what query-name reports
};

class VmRunner : public qmp::QmpDispatcher {
 public:
  // Opens the control socket (errors name it); the VM itself is built by Run.
  static absl::StatusOr<std::unique_ptr<VmRunner>> Create(const VmConfig& config,
                                                          const RunOptions& options);
  ~VmRunner() override;

  // Builds and runs the VM until it ends for good. An error means the VM
  // could not be built (bad input or host trouble), reported by the caller.
  absl::StatusOr<VmOutcome> Run();

  qmp::QmpResult Execute(const std::string& command, const nlohmann::json& arguments) override;

 private:
  VmRunner(const VmConfig& config, const RunOptions& options) : config_(config), options_(options) {}
  void OnVmEvent(const VmEvent& event);
  void Emit(const std::string& name, nlohmann::json data);
  // Lets the loop deliver what is queued (replies, the last events).
  void Flush();
  nlohmann::json QueryStatus() const;
  nlohmann::json QueryCpus() const;
  nlohmann::json QueryBlock() const;
  nlohmann::json QueryBlockStats() const;
  nlohmann::json QueryCounters() const;

  VmConfig config_;
  const RunOptions options_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<qmp::QmpServer> qmp_;
  std::unique_ptr<Vm> vm_;  // the current boot; loop thread (or Run's, between boots)
  bool prelaunch_ = false;  // --paused and not yet continued
};

}  // namespace mote

#endif  // MOTE_VMM_VM_RUNNER_H_
