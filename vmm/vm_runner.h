// VmRunner: one guest's whole life: it owns the event loop and the control
// socket, boots a Vm, boots it again after a reset (the guest's with
// --on-reboot restart, or a control client's system_reset), and turns what
// happens into events (QMP clients and an optional callback). It is also the
// command dispatcher of the QMP socket and of the embedding API: the
// commands are typed methods below, listed for QMP in vmm/qmp_commands.cc.
// Every command runs on the loop thread, where it may pause, resume or end
// the current Vm; other threads get there with Call or OnLoop.
// Thread-safety: Create, Boot and Run from one thread (Run blocks, and is the
// loop thread while it runs); Call from any other thread.
#ifndef MOTE_VMM_VM_RUNNER_H_
#define MOTE_VMM_VM_RUNNER_H_

#include <functional>
#include <future>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "vmm/audit_log.h"
#include "vmm/base/event_loop.h"
#include "vmm/base/mutex.h"
#include "vmm/control_replies.h"
#include "vmm/live_migration.h"
#include "vmm/outcome.h"
#include "vmm/qmp/qmp_server.h"
#include "vmm/vm.h"
#include "vmm/vm_cgroup.h"
#include "vmm/vm_config.h"

namespace mote {

inline constexpr char kMoteVersion[] = "0.1.0";

struct RunOptions {
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

  // Runs one QMP command on the loop thread and waits for its result (the
  // embedding API's raw passthrough). Never from the loop thread (callbacks
  // included); after Run has returned, every command fails.
  qmp::QmpResult Call(const std::string& command, const nlohmann::json& arguments);
  // The same for a typed command: `work` (e.g. calling QueryCounters) runs
  // on the loop thread and its result comes back as it is.
  template <class T>
  absl::StatusOr<T> OnLoop(std::function<absl::StatusOr<T>()> work);

  // The dispatcher: loop thread.
  // Commands that change state are written to the audit log.
  qmp::QmpResult Execute(const std::string& command, const nlohmann::json& arguments,
                         const qmp::Peer& peer) override;

  // The commands, on the loop thread. Those that need a running guest fail
  // with "the guest has shut down" between boots or after the end.
  nlohmann::json QueryVersion() const;
  nlohmann::json QueryName() const;
  control::RunState QueryStatus() const;
  absl::Status Stop();
  absl::Status Cont();
  absl::Status SystemReset();
  absl::Status SystemPowerdown();
  // Wakes a guest suspended to RAM (QEMU's system_wakeup).
  absl::Status SystemWakeup();
  absl::Status Quit();  // also between boots: no boot comes after it
  // QEMU's shapes, for QMP clients only.
  absl::StatusOr<nlohmann::json> QueryCpus() const;
  absl::StatusOr<nlohmann::json> QueryMemorySize() const;
  absl::StatusOr<nlohmann::json> QueryBlock() const;
  absl::StatusOr<nlohmann::json> QueryBlockStats() const;
  absl::StatusOr<control::Counters> QueryCounters() const;
  // block_set_io_throttle (QEMU's arguments; `device` or `id` names the disk).
  absl::Status SetIoThrottle(const nlohmann::json& arguments);
  // Disk `id`'s rate limits from now on (libmote's SetDiskThrottle).
  absl::Status SetDiskThrottle(const std::string& id, const DiskThrottle& throttle);
  // x-mote-set-net-throttle: NIC `index`'s rate limits (the members missing: 0).
  absl::Status SetNetThrottleFromQmp(const nlohmann::json& arguments);
  absl::Status SetNetThrottle(size_t index, const NetThrottle& throttle);
  // QEMU's migrate to "file:DIR": a snapshot of the VM into DIR (a running
  // guest stops for it and runs on), with MIGRATION events.
  // With `incremental` (mote's x-mote-incremental), only the pages written
  // since the VM's last snapshot (Vm::Snapshot).
  absl::Status Migrate(const std::string& uri, bool incremental = false);
  // QEMU's query-migrate: the last migration's status and figures.
  nlohmann::json QueryMigrate() const;
  // QEMU's migrate_cancel and migrate-set-parameters (downtime-limit in
  // ms, max-bandwidth in bytes per second).
  absl::Status MigrateCancel();
  absl::Status MigrateSetParameters(const nlohmann::json& arguments);
  // QEMU's migrate-set-capabilities (mote knows postcopy-ram) and
  // migrate-start-postcopy: the migration under way switches to post-copy.
  absl::Status MigrateSetCapabilities(const nlohmann::json& capabilities);
  absl::Status MigrateStartPostcopy();

 private:
  VmRunner(const VmConfig& config, const RunOptions& options)
      : config_(config), options_(options) {}
  absl::Status BuildVm();
  // --cgroup: joins it with the limits (VmCgroup), before the VM is built.
  absl::Status JoinCgroup();
  void OnVmEvent(const VmEvent& event);
  void Emit(const std::string& name, nlohmann::json data);
  // Lets the loop deliver what is queued (replies, the last events).
  void Flush();
  // Posts `work` for the loop thread unless Run has returned.
  bool PostCall(std::function<void()> work);
  absl::Status RequireVm() const;

  VmConfig config_;
  const RunOptions options_;
  absl::Time launch_time_;                        // Boot's start, for the boot timer
  absl::Time deadline_ = absl::InfiniteFuture();  // --timeout, across reboots
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<qmp::QmpServer> qmp_;
  std::unique_ptr<AuditLog> audit_;   // the state-changing commands' trail
  std::unique_ptr<VmCgroup> cgroup_;  // --cgroup; null: none
  std::unique_ptr<Vm> vm_;            // the current boot; loop thread (or Run's, between boots)
  bool prelaunch_ = false;            // --paused and not yet continued
  // `quit` came: no more boots, even if it came while a reset was under way.
  bool quit_requested_ = false;
  nlohmann::json last_migration_ = nlohmann::json::object();  // query-migrate; loop thread
  MigrationParameters migration_parameters_;
  std::unique_ptr<LiveMigration> migration_;  // the last live migration out; loop thread
  bool postmigrate_ = false;                  // migrated away: stopped for good
  // --incoming: the stream's connection (the first Vm takes it) and where
  // its head was received, until Boot.
  FileDescriptor incoming_fd_;
  std::string incoming_dir_;
  bool postcopy_ram_ = false;  // migrate-set-capabilities

  Mutex calls_mu_;
  bool finished_ ABSL_GUARDED_BY(calls_mu_) = false;  // Run returned: Call fails at once
};

template <class T>
absl::StatusOr<T> VmRunner::OnLoop(std::function<absl::StatusOr<T>()> work) {
  auto result = std::make_shared<std::promise<absl::StatusOr<T>>>();
  std::future<absl::StatusOr<T>> future = result->get_future();
  if (!PostCall([result, work = std::move(work)] { result->set_value(work()); })) {
    return absl::FailedPreconditionError("the VM has ended");
  }
  return future.get();
}

}  // namespace mote

#endif  // MOTE_VMM_VM_RUNNER_H_
