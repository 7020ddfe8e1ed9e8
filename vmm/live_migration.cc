#include "vmm/live_migration.h"

#include <pthread.h>

#include <bit>
#include <future>
#include <mutex>

#include "absl/time/clock.h"
#include "vmm/base/logging.h"
#include "vmm/base/status_macros.h"

namespace mote {
namespace {

constexpr uint64_t kPage = 4096;
constexpr int kTargetAnswerMs = 60000;

uint64_t CountPages(const PageBitmap& pages) {
  uint64_t n = 0;
  for (uint64_t w : pages) n += std::popcount(w);
  return n;
}

}  // namespace

LiveMigration::LiveMigration(Vm* vm, EventLoop* loop, std::string uri, std::string machine_json,
                             MigrationParameters parameters,
                             std::function<void(const std::string&)> on_status)
    : vm_(vm),
      loop_(loop),
      uri_(std::move(uri)),
      machine_json_(std::move(machine_json)),
      parameters_(parameters),
      on_status_(std::move(on_status)) {
  thread_ = std::thread([this] { Run(); });
}

LiveMigration::~LiveMigration() {
  cancel_ = true;
  if (thread_.joinable()) thread_.join();
}

bool LiveMigration::finished() const {
  MutexLock lock(&mu_);
  return status_ == "completed" || status_ == "failed" || status_ == "cancelled";
}

bool LiveMigration::completed() const {
  MutexLock lock(&mu_);
  return status_ == "completed";
}

nlohmann::json LiveMigration::Query() const {
  MutexLock lock(&mu_);
  nlohmann::json reply = {
      {"status", status_},
      {"total-time", total_ms_ >= 0 ? total_ms_ : absl::ToInt64Milliseconds(absl::Now() - start_)},
      {"ram",
       {{"transferred", transferred_},
        {"remaining", remaining_},
        {"total", vm_->memory().TotalSize()},
        {"dirty-sync-count", passes_}}}};
  if (downtime_ms_ >= 0) reply["downtime"] = downtime_ms_;
  if (!error_.empty()) reply["error-desc"] = error_;
  return reply;
}

void LiveMigration::SetStatus(const std::string& status) {
  {
    MutexLock lock(&mu_);
    status_ = status;
  }
  // By value: the loop may run it after this migration is gone.
  loop_->Post([on_status = on_status_, status] { on_status(status); });
}

bool LiveMigration::OnLoop(std::function<void()> work) {
  // The loop runs `work` unless this thread gave up on it first: a closure
  // left queued when the migration is cancelled (the VM ending) must not
  // touch the VM or this thread's stack once they are gone.
  struct Call {
    std::mutex mu;
    bool started = false, abandoned = false;
    std::promise<void> done;
  };
  auto call = std::make_shared<Call>();
  std::future<void> finished = call->done.get_future();
  loop_->Post([work = std::move(work), call] {
    {
      std::lock_guard lock(call->mu);
      if (call->abandoned) return;
      call->started = true;
    }
    work();
    call->done.set_value();
  });
  while (finished.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (!cancel_) continue;
    std::lock_guard lock(call->mu);
    if (!call->started) {
      call->abandoned = true;
      return false;
    }
  }
  return true;
}

void LiveMigration::Run() {
  // Started by the loop: it runs the loop's seccomp filter.
  pthread_setname_np(pthread_self(), "mote-migrate");
  absl::Status s = Migrate();
  {
    MutexLock lock(&mu_);
    total_ms_ = absl::ToInt64Milliseconds(absl::Now() - start_);
    if (!s.ok()) error_ = std::string(s.message());
  }
  if (s.ok()) {
    // The runner hears it (and stays stopped: postmigrate) before
    // query-migrate can say completed.
    OnLoop([this] { on_status_("completed"); });
    MutexLock lock(&mu_);
    status_ = "completed";
    spdlog::info("migrated to {}", uri_);
    return;
  }
  spdlog::warn("migration to {} failed: {}", uri_, std::string(s.message()));
  SetStatus(cancel_ ? "cancelled" : "failed");
}

absl::Status LiveMigration::Migrate() {
  MOTE_ASSIGN_OR_RETURN(FileDescriptor fd, ConnectMigration(uri_));
  MigrationSender sender(std::move(fd), &cancel_);
  absl::Status started;
  std::vector<uint8_t> machine;
  if (!OnLoop([&] {
        machine = vm_->SaveMachineStateFile();
        started = vm_->StartDirtyLogging();
        if (started.ok()) started = vm_->TakeDirtyPages().status();  // from now on
      })) {
    return absl::CancelledError("migration cancelled");
  }
  MOTE_RETURN_IF_ERROR(started);
  MOTE_RETURN_IF_ERROR(sender.SendHead(machine_json_, machine));
  SetStatus("active");
  const GuestMemory& mem = vm_->memory();
  // Pass 1: all of RAM; then the pages written meanwhile, until the rest
  // fits the downtime limit at the rate the last pass went.
  absl::Time pass_start = absl::Now();
  uint64_t before = sender.bytes_sent();
  const uint64_t total_pages = mem.TotalSize() / kPage;
  PageBitmap pass_pages;  // the last pass's pages; empty: all
  uint64_t stopped_at = total_pages;
  MOTE_RETURN_IF_ERROR(
      sender.SendPages(mem, nullptr, cancel_, parameters_.max_bandwidth, &postcopy_, &stopped_at));
  PageBitmap unsent;  // written during the last pass, left for the stop
  for (int pass = 1;; ++pass) {
    double seconds = std::max(absl::ToDoubleSeconds(absl::Now() - pass_start), 1e-6);
    double rate = (sender.bytes_sent() - before) / seconds;
    MOTE_ASSIGN_OR_RETURN(PageBitmap dirty, vm_->TakeDirtyPages());
    if (stopped_at < total_pages) {
      // Post-copy came mid-pass: the rest of the pass is unsent too.
      for (uint64_t p = stopped_at; p < total_pages; ++p) {
        if (pass_pages.empty() || (pass_pages[p / 64] >> (p % 64) & 1)) {
          dirty[p / 64] |= uint64_t{1} << (p % 64);
        }
      }
    }
    uint64_t remaining = CountPages(dirty) * kPage;
    {
      MutexLock lock(&mu_);
      passes_ = pass;
      transferred_ = sender.bytes_sent();
      remaining_ = remaining;
    }
    if (postcopy_ || remaining <= rate * absl::ToDoubleSeconds(parameters_.downtime_limit) ||
        pass >= parameters_.max_passes) {
      unsent = std::move(dirty);
      break;
    }
    pass_start = absl::Now();
    before = sender.bytes_sent();
    pass_pages = dirty;
    MOTE_RETURN_IF_ERROR(sender.SendPages(mem, &pass_pages, cancel_, parameters_.max_bandwidth,
                                          &postcopy_, &stopped_at));
  }
  return SwitchOver(sender, std::move(unsent));
}

absl::Status LiveMigration::SwitchOver(MigrationSender& sender, PageBitmap unsent) {
  const bool postcopy = postcopy_;
  absl::Time stopped_at = absl::Now();
  bool we_paused = false;
  absl::StatusOr<std::vector<uint8_t>> state = absl::UnknownError("not saved");
  absl::StatusOr<PageBitmap> last = absl::UnknownError("not taken");
  if (!OnLoop([&] {
        we_paused = !vm_->paused();
        vm_->Pause();
        state = vm_->SaveStateFile();
        last = vm_->TakeDirtyPages();
        // The target takes the disk images' locks when the state comes.
        if (absl::Status unlocked = vm_->SetDeviceLocks(false); state.ok() && !unlocked.ok()) {
          state = unlocked;
        }
      })) {
    return absl::CancelledError("migration cancelled");
  }
  bool target_runs = false;
  auto record_downtime = [&] {
    MutexLock lock(&mu_);
    downtime_ms_ = absl::ToInt64Milliseconds(absl::Now() - stopped_at);
  };
  absl::Status sent = [&]() -> absl::Status {
    MOTE_RETURN_IF_ERROR(state.status());
    MOTE_RETURN_IF_ERROR(last.status());
    for (size_t i = 0; i < unsent.size() && i < last->size(); ++i) (*last)[i] |= unsent[i];
    if (postcopy) {
      MOTE_RETURN_IF_ERROR(sender.SendState(*state));
      MOTE_RETURN_IF_ERROR(sender.SendPostcopy(*last));
      SetStatus("postcopy-active");
      return sender.ServePostcopy(
          vm_->memory(), std::move(*last), cancel_,
          [&] {
            target_runs = true;
            record_downtime();
          },
          kTargetAnswerMs, parameters_.max_bandwidth);
    }
    std::atomic<bool> never{false};
    MOTE_RETURN_IF_ERROR(sender.SendPages(vm_->memory(), &*last, never, 0));
    MOTE_RETURN_IF_ERROR(sender.SendState(*state));
    MOTE_RETURN_IF_ERROR(sender.SendEnd());
    return sender.WaitForTarget(kTargetAnswerMs);
  }();
  if (!postcopy) record_downtime();
  {
    MutexLock lock(&mu_);
    transferred_ = sender.bytes_sent();
    remaining_ = 0;
  }
  if (!sent.ok() && target_runs) {
    // Too late to take the guest back: the target has run it.
    return absl::Status(sent.code(), std::string(sent.message()) +
                                         " (post-copy: the guest ran on the target, which lacks "
                                         "pages only this VM had; it is lost)");
  }
  if (!sent.ok()) {
    // The guest stays here: the target does not have it.
    OnLoop([this, we_paused] {
      absl::Status relocked = vm_->SetDeviceLocks(true);
      if (!relocked.ok()) {
        spdlog::error("migration failed, and the disks' locks could not be taken again: {}",
                      std::string(relocked.message()));
      }
      if (we_paused) vm_->Resume();
    });
  }
  return sent;
}

}  // namespace mote
