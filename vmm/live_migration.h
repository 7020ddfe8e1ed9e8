// LiveMigration: one outgoing live migration of a running VM to another
// mote (QMP `migrate` to "unix:PATH" or "tcp:HOST:PORT"), pre-copy: all of
// RAM while the guest runs, then passes over the pages written meanwhile
// (KVM's dirty log and the devices' writes) until what is left fits the
// downtime limit at the measured rate, then the VM stops, the last pages and
// the device state go, and the target starts it. On any failure the source
// VM runs on (status `failed`); on success it stays stopped
// (`postmigrate`). Post-copy (StartPostcopy, QEMU's migrate-start-postcopy)
// switches over at once instead: the VM stops, its state goes with the map
// of the pages not yet sent, the target runs it and the pages follow
// (status `postcopy-active`); from the moment the target runs the guest,
// a failure cannot give it back to the source. The pages go out on a
// thread of the migration's own; what stops and saves the VM runs on the
// loop thread.
// Thread-safety: Start, Cancel, Query and the destructor from the loop thread.
#ifndef MOTE_VMM_LIVE_MIGRATION_H_
#define MOTE_VMM_LIVE_MIGRATION_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "vmm/base/event_loop.h"
#include "vmm/base/mutex.h"
#include "vmm/snapshot/migration_stream.h"
#include "vmm/vm.h"

namespace mote {

struct MigrationParameters {
  absl::Duration downtime_limit = absl::Milliseconds(300);  // QEMU's default
  uint64_t max_bandwidth = 0;                               // bytes per second; 0: unlimited
  int max_passes = 30;
};

class LiveMigration {
 public:
  // `on_status` is called on the loop thread with each new status (setup,
  // active, completed, failed, cancelled), for the MIGRATION event.
  LiveMigration(Vm* vm, EventLoop* loop, std::string uri, std::string machine_json,
                MigrationParameters parameters, std::function<void(const std::string&)> on_status);
  ~LiveMigration();  // cancels and waits for the thread

  void Cancel() { cancel_ = true; }
  void StartPostcopy() { postcopy_ = true; }
  bool finished() const;
  bool completed() const;
  // query-migrate's reply.
  nlohmann::json Query() const;

 private:
  void Run();
  absl::Status Migrate();
  // Stops the VM and sends what is left: all of it (pre-copy) or the state
  // and the map of `unsent` pages, which follow as the target runs.
  absl::Status SwitchOver(MigrationSender& sender, PageBitmap unsent);
  // Runs `work` on the loop thread and waits for it; false if cancelled first.
  bool OnLoop(std::function<void()> work);
  void SetStatus(const std::string& status);

  Vm* const vm_;
  EventLoop* const loop_;
  const std::string uri_;
  const std::string machine_json_;
  const MigrationParameters parameters_;
  const std::function<void(const std::string&)> on_status_;
  std::atomic<bool> cancel_{false};
  std::atomic<bool> postcopy_{false};
  absl::Time start_ = absl::Now();

  mutable Mutex mu_;
  std::string status_ ABSL_GUARDED_BY(mu_) = "setup";
  std::string error_ ABSL_GUARDED_BY(mu_);
  uint64_t transferred_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t remaining_ ABSL_GUARDED_BY(mu_) = 0;
  int passes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t downtime_ms_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t total_ms_ ABSL_GUARDED_BY(mu_) = -1;
  std::thread thread_;
};

}  // namespace mote

#endif  // MOTE_VMM_LIVE_MIGRATION_H_
