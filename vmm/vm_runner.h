// VmRunner: one guest's whole life: it owns the event loop and the control
// socket, boots a Vm, boots it again after a reset (the guest's with
// --on-reboot restart, or a control client's system_reset), and turns what
// happens into events (QMP clients and an optional callback). It is also the
// command dispatcher of the QMP socket and of the embedding API (Call); every
// command runs on the loop thread (DESIGN.md), where it may pause, resume or
// end the current Vm.
// Thread-safety: Create, Boot and Run from one thread (Run blocks, and is the
// loop thread while it runs); Call from any other thread.
#ifndef MOTE_VMM_VM_RUNNER_H_
#define MOTE_VMM_VM_RUNNER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "vmm/base/event_loop.h"
#include "vmm/base/mutex.h"
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
  bool stop_on_signals = false;  // Vm::RunFlags::stop_on_signals
  // Every event (QMP's name and data), on the thread where it happens, after
  // it was queued for the socket's clients. It must not block.
  std::function<void(const std::string& name, const nlohmann::json& data)> on_event;
};

class VmRunner : public qmp::QmpDispatcher {
 public:
  // Opens the control socket (errors name it); the VM itself is built by Boot.
  static absl::StatusOr<std::unique_ptr<VmRunner>> Create(const VmConfig& config,
                                                          const RunOptions& options);
  ~VmRunner() override;

  // Builds the first boot's VM (kernel, devices, vCPUs). An error means it
  // could not be built: bad input or host trouble, named in the message.
  absl::Status Boot();
  // Runs the booted VM until it ends for good, booting it again after each
  // reset. After a successful Boot; once.
  VmOutcome Run();

  // Runs one command on the loop thread and waits for its result: what the
  // embedding API uses. Never from the loop thread (callbacks included);
  // after Run has returned, every command fails.
  qmp::QmpResult Call(const std::string& command, const nlohmann::json& arguments);

  // The dispatcher: loop thread.
  qmp::QmpResult Execute(const std::string& command, const nlohmann::json& arguments) override;

 private:
  VmRunner(const VmConfig& config, const RunOptions& options) : config_(config), options_(options) {}
  absl::Status BuildVm();
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
  absl::Time deadline_ = absl::InfiniteFuture();  // --timeout, across reboots
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<qmp::QmpServer> qmp_;
  std::unique_ptr<Vm> vm_;  // the current boot; loop thread (or Run's, between boots)
  bool prelaunch_ = false;  // --paused and not yet continued
  // `quit` came: no more boots, even if it came while a reset was under way.
  bool quit_requested_ = false;

  Mutex calls_mu_;
  bool finished_ ABSL_GUARDED_BY(calls_mu_) = false;  // Run returned: Call fails at once
};

}  // namespace mote

#endif  // MOTE_VMM_VM_RUNNER_H_
