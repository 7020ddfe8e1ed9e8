#include "vmm/vm_runner.h"

#include <linux/kvm.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "vmm/base/logging.h"
#include "vmm/base/seccomp_filter.h"
#include "vmm/base/status_macros.h"
#include "vmm/device_kinds/virtio_blk.h"
#include "vmm/qmp_commands.h"
#include "vmm/snapshot/migration_stream.h"
#include "vmm/snapshot/snapshot_dir.h"

namespace mote {
namespace {

using nlohmann::json;

qmp::QmpError Error(std::string desc, std::string error_class = "GenericError") {
  return qmp::QmpError{std::move(error_class), std::move(desc)};
}

// KVM exit reasons worth naming in x-mote-query-counters.
constexpr std::pair<uint32_t, const char*> kExitNames[] = {
    {KVM_EXIT_IO, "io"},
    {KVM_EXIT_MMIO, "mmio"},
    {KVM_EXIT_HLT, "hlt"},
    {KVM_EXIT_SHUTDOWN, "shutdown"},
    {KVM_EXIT_SYSTEM_EVENT, "system_event"},
    {KVM_EXIT_INTERNAL_ERROR, "internal_error"},
    {KVM_EXIT_FAIL_ENTRY, "fail_entry"},
    {KVM_EXIT_INTR, "intr"},
    {KVM_EXIT_DIRTY_RING_FULL, "dirty_ring_full"},
};

// --api-socket-group: a number, or a name looked up in /etc/group itself
// (mote is static: no name-service modules); "" leaves the group as it is.
absl::StatusOr<gid_t> SocketGroup(const std::string& group) {
  if (group.empty()) return static_cast<gid_t>(-1);
  uint32_t gid = 0;
  if (absl::SimpleAtoi(group, &gid)) return static_cast<gid_t>(gid);
  std::ifstream in("/etc/group");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ':');
    if (fields.size() >= 3 && fields[0] == group && absl::SimpleAtoi(fields[2], &gid)) {
      return static_cast<gid_t>(gid);
    }
  }
  return absl::InvalidArgumentError("--api-socket-group " + group +
                                    ": no such group in /etc/group");
}

}  // namespace

absl::StatusOr<std::unique_ptr<VmRunner>> VmRunner::Create(const VmConfig& config,
                                                           const RunOptions& options) {
  std::unique_ptr<VmRunner> runner;
  if (!config.incoming.empty()) {
    // The VM comes over the stream: its head (config, machine) into a
    // snapshot directory of its own, from which Vm::Create builds it as for
    // a restore while the rest of the stream comes.
    MOTE_ASSIGN_OR_RETURN(FileDescriptor fd, AcceptMigration(config.incoming));
    const char* tmp = getenv("TMPDIR");
    std::string dir = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/mote-incoming-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) return ErrnoToStatus(errno, "mkdtemp " + dir);
    absl::Status head = ReceiveMigrationHead(fd.get(), dir);
    VmConfig user = config;
    user.incoming.clear();
    user.restore = dir;
    absl::StatusOr<VmConfig> restored =
        head.ok() ? ResolveRestoreConfig(user) : absl::StatusOr<VmConfig>(head);
    if (!restored.ok()) {
      RemoveSnapshotDir(dir);
      return restored.status();
    }
    // Kept, though the VM is built from `dir`: the devices open their host
    // files as a migration's target does (disk locks come with the state).
    restored->incoming = config.incoming;
    runner.reset(new VmRunner(*restored, options));
    runner->incoming_fd_ = std::move(fd);
    runner->incoming_dir_ = dir;
  } else if (config.restore.empty()) {
    runner.reset(new VmRunner(config, options));
  } else {
    // The machine comes from the snapshot (what `config` sets on top of it
    // must match it: Vm::Create checks).
    MOTE_ASSIGN_OR_RETURN(VmConfig restored, ResolveRestoreConfig(config));
    runner.reset(new VmRunner(restored, options));
  }
  MOTE_ASSIGN_OR_RETURN(runner->loop_, EventLoop::Create());
  MOTE_ASSIGN_OR_RETURN(runner->audit_, AuditLog::Open(config.audit_log));
  MOTE_RETURN_IF_ERROR(runner->JoinCgroup());
  if (!config.api_socket.empty()) {
    qmp::QmpServer::Options qmp_options;
    qmp_options.path = config.api_socket;
    qmp_options.mode = config.api_socket_mode;
    MOTE_ASSIGN_OR_RETURN(qmp_options.group, SocketGroup(config.api_socket_group));
    qmp_options.version = {{"qemu", {{"major", 0}, {"minor", 1}, {"micro", 0}}},
                           {"package", std::string("mote ") + kMoteVersion}};
    absl::StatusOr<std::unique_ptr<qmp::QmpServer>> server =
        qmp::QmpServer::Create(runner->loop_.get(), runner.get(), qmp_options);
    if (!server.ok()) {
      return absl::Status(server.status().code(),
                          "--api-socket " + std::string(server.status().message()));
    }
    runner->qmp_ = std::move(*server);
  }
  return runner;
}

absl::Status VmRunner::JoinCgroup() {
  const VmConfig& c = config_;
  CgroupLimits limits{c.cgroup_cpu_max, c.cgroup_memory_max, c.cgroup_io_max, c.cgroup_io_weight,
                      c.cgroup_vcpu_cpu_max};
  if (c.cgroup.empty()) {
    if (!limits.cpu_max.empty() || limits.memory_max != 0 || !limits.io_max.empty() ||
        limits.io_weight != 0 || !limits.vcpu_cpu_max.empty()) {
      return absl::InvalidArgumentError("cgroup limits need --cgroup PATH");
    }
    return absl::OkStatus();
  }
  // Before the guest's memory exists: it is charged to the group.
  MOTE_ASSIGN_OR_RETURN(cgroup_, VmCgroup::Join(c.cgroup, limits));
  if (limits.memory_max != 0 && limits.memory_max < c.memory_bytes) {
    spdlog::warn(
        "cgroup {}: memory.max ({} MiB) is below the guest's RAM ({} MiB): the kernel "
        "ends mote (SIGKILL) once the guest touches more",
        cgroup_->path(), limits.memory_max >> 20, c.memory_bytes >> 20);
  }
  spdlog::info("cgroup: {}{}", cgroup_->path(),
               limits.vcpu_cpu_max.empty() ? "" : ", vCPU threads in vcpus/");
  return absl::OkStatus();
}

VmRunner::~VmRunner() {
  migration_.reset();
  if (!incoming_dir_.empty()) RemoveSnapshotDir(incoming_dir_);
  vm_.reset();
  qmp_.reset();  // before the loop it is registered on
}

absl::Status VmRunner::Boot() {
  launch_time_ = absl::Now();
  if (config_.timeout > 0) deadline_ = launch_time_ + absl::Seconds(config_.timeout);
  absl::Status built = BuildVm();
  if (!incoming_dir_.empty()) {
    // Built (or refused): the head's files may go.
    RemoveSnapshotDir(incoming_dir_);
    incoming_dir_.clear();
  }
  MOTE_RETURN_IF_ERROR(built);
  // The vCPUs go now, on the caller's thread: the first KVM_RUN does not
  // wait for the loop thread to start. What they cause waits for the loop.
  // A restored VM has run before: stopped, it is "paused" (QEMU after an
  // incoming migration without autostart), not "prelaunch".
  prelaunch_ = config_.paused && config_.restore.empty();
  vm_->Start(config_.paused);
  return absl::OkStatus();
}

absl::Status VmRunner::BuildVm() {
  // A restarted guest keeps the original deadline.
  if (config_.timeout > 0) {
    config_.timeout =
        absl::ToDoubleSeconds(std::max(deadline_ - absl::Now(), absl::Milliseconds(1)));
  }
  MOTE_ASSIGN_OR_RETURN(vm_, Vm::Create(
                                 config_, loop_.get(), [this](const VmEvent& e) { OnVmEvent(e); },
                                 launch_time_, std::move(incoming_fd_)));
  if (cgroup_ != nullptr) {
    std::vector<int> vcpu_threads;
    for (uint32_t i = 0; i < config_.cpus; ++i) vcpu_threads.push_back(vm_->VcpuThreadId(i));
    MOTE_RETURN_IF_ERROR(cgroup_->PlaceVcpus(vcpu_threads));
  }
  return absl::OkStatus();
}

VmOutcome VmRunner::Run() {
  VmOutcome outcome;
  // This thread is the loop from here on: its filter goes on before it
  // handles anything the guest caused (the vCPUs have their own already).
  if (absl::Status s = InstallSeccompFilter(ThreadKind::kLoop, SeccompModeOf(config_)); !s.ok()) {
    outcome = {OutcomeKind::kHostError, 0, std::string(s.message())};
    vm_.reset();  // stops and joins the vCPUs
    Flush();
    MutexLock lock(&calls_mu_);
    finished_ = true;
    return outcome;
  }
  while (true) {
    outcome = vm_->Run({.stop_on_signals = options_.stop_on_signals});
    migration_.reset();  // its thread uses the VM
    vm_.reset();         // tear down before the next boot (or the terminal is restored)
    bool again = outcome.kind == OutcomeKind::kHostReset ||
                 (outcome.kind == OutcomeKind::kReset && config_.on_reboot == OnReboot::kRestart);
    if (again && quit_requested_) {  // the reset won the race, but quit still means quit
      outcome = {OutcomeKind::kQuit, 0, "quit requested on the control socket"};
      Emit("SHUTDOWN", {{"guest", false}, {"reason", ShutdownReason(outcome.kind)}});
    }
    if (!again || quit_requested_) break;
    spdlog::info("guest reset: booting again");
    config_.restore.clear();  // a restored guest's reset boots its kernel
    config_.incoming.clear();
    if (absl::Status s = BuildVm(); !s.ok()) {
      outcome = {OutcomeKind::kHostError, 0,
                 "cannot boot again after the reset: " + std::string(s.message())};
      Emit("SHUTDOWN", {{"guest", false}, {"reason", ShutdownReason(outcome.kind)}});
      break;
    }
    prelaunch_ = false;
    vm_->Start(/*paused=*/false);  // a reset guest runs on, as under QEMU
  }
  Flush();
  {
    MutexLock lock(&calls_mu_);
    finished_ = true;
  }
  loop_->RunPosted();  // calls that came in since the loop last ran now fail
  return outcome;
}

bool VmRunner::PostCall(std::function<void()> work) {
  MutexLock lock(&calls_mu_);
  if (finished_) return false;
  loop_->Post(std::move(work));
  return true;
}

qmp::QmpResult VmRunner::Call(const std::string& command, const json& arguments) {
  auto result = std::make_shared<std::promise<qmp::QmpResult>>();
  std::future<qmp::QmpResult> future = result->get_future();
  bool posted = PostCall([this, result, command, arguments] {
    try {
      result->set_value(Execute(command, arguments, qmp::Peer::Self()));
    } catch (const std::exception& e) {  // a bug, not the caller's fault: answer anyway
      result->set_value(Error(std::string("internal error: ") + e.what()));
    }
  });
  if (!posted) return Error("the VM has ended");
  return future.get();
}

void VmRunner::OnVmEvent(const VmEvent& event) {
  if (qmp_ == nullptr && !options_.on_event) return;  // nobody to tell: build no JSON
  switch (event.kind) {
    case VmEvent::Kind::kStop:
      Emit("STOP", nullptr);
      return;
    case VmEvent::Kind::kResume:
      Emit("RESUME", nullptr);
      return;
    case VmEvent::Kind::kSuspend:
      Emit("SUSPEND", nullptr);
      return;
    case VmEvent::Kind::kWakeup:
      Emit("WAKEUP", nullptr);
      return;
    case VmEvent::Kind::kGuestPanicked:
      Emit("GUEST_PANICKED", {{"action", "poweroff"}});
      return;
    case VmEvent::Kind::kShutdown: {
      bool guest = event.outcome == OutcomeKind::kPowerOff ||
                   event.outcome == OutcomeKind::kReset || event.outcome == OutcomeKind::kPanic ||
                   event.outcome == OutcomeKind::kDebugExit;
      json data = {{"guest", guest}, {"reason", ShutdownReason(event.outcome)}};
      bool reboots =
          event.outcome == OutcomeKind::kHostReset ||
          (event.outcome == OutcomeKind::kReset && config_.on_reboot == OnReboot::kRestart);
      Emit(reboots ? "RESET" : "SHUTDOWN", std::move(data));
      return;
    }
  }
}

void VmRunner::Emit(const std::string& name, json data) {
  if (qmp_ != nullptr) qmp_->Emit(name, data);
  if (options_.on_event) options_.on_event(name, data);
}

void VmRunner::Flush() {
  if (qmp_ == nullptr) return;
  // Posted work runs in order: the events and replies queued so far go out
  // before the loop stops again.
  loop_->Post([this] { loop_->Stop(); });
  (void)loop_->Run();
  qmp_->Flush(absl::Milliseconds(200));
}

absl::Status VmRunner::RequireVm() const {
  if (vm_ == nullptr || vm_->ended())
    return absl::FailedPreconditionError("the guest has shut down");
  return absl::OkStatus();
}

json VmRunner::QueryVersion() const {
  return {{"qemu", {{"major", 0}, {"minor", 1}, {"micro", 0}}},
          {"package", std::string("mote ") + kMoteVersion}};
}

json VmRunner::QueryName() const {
  return config_.name.empty() ? json::object() : json{{"name", config_.name}};
}

control::RunState VmRunner::QueryStatus() const {
  bool paused = vm_ != nullptr && vm_->paused();
  std::string status = vm_ == nullptr || vm_->ended() ? "shutdown"
                       : vm_->suspended()             ? "suspended"
                       : !paused                      ? "running"
                       : prelaunch_                   ? "prelaunch"
                       : postmigrate_                 ? "postmigrate"
                                                      : "paused";
  return {status, status == "running"};
}

absl::Status VmRunner::Stop() {
  MOTE_RETURN_IF_ERROR(RequireVm());
  vm_->Pause();
  return absl::OkStatus();
}

absl::Status VmRunner::Cont() {
  MOTE_RETURN_IF_ERROR(RequireVm());
  prelaunch_ = false;
  postmigrate_ = false;
  vm_->Resume();
  return absl::OkStatus();
}

absl::Status VmRunner::SystemReset() {
  MOTE_RETURN_IF_ERROR(RequireVm());
  vm_->RequestEnd({OutcomeKind::kHostReset, 0, "system_reset requested on the control socket"});
  return absl::OkStatus();
}

absl::Status VmRunner::SystemPowerdown() {
  MOTE_RETURN_IF_ERROR(RequireVm());
  vm_->PressPowerButton();
  Emit("POWERDOWN", nullptr);
  return absl::OkStatus();
}

absl::Status VmRunner::SystemWakeup() {
  MOTE_RETURN_IF_ERROR(RequireVm());
  return vm_->Wakeup();
}

absl::Status VmRunner::Migrate(const std::string& uri, bool incremental) {
  MOTE_RETURN_IF_ERROR(RequireVm());
  if (migration_ != nullptr && !migration_->finished()) {
    return absl::FailedPreconditionError("a migration is already under way");
  }
  if (IsMigrationUri(uri)) {
    if (incremental) return absl::InvalidArgumentError("x-mote-incremental is for file: only");
    Emit("MIGRATION", {{"status", "setup"}});
    migration_ =
        std::make_unique<LiveMigration>(vm_.get(), loop_.get(), uri, MachineConfigJson(config_),
                                        migration_parameters_, [this](const std::string& status) {
                                          if (status == "completed") postmigrate_ = true;
                                          Emit("MIGRATION", {{"status", status}});
                                        });
    return absl::OkStatus();
  }
  migration_.reset();
  if (!absl::StartsWith(uri, "file:") || uri.size() == 5) {
    return absl::InvalidArgumentError("migrate: uri '" + uri +
                                      "': mote takes file:DIR, unix:PATH or tcp:IP:PORT");
  }
  std::string dir = uri.substr(5);
  absl::Time start = absl::Now();
  Emit("MIGRATION", {{"status", "setup"}});
  Emit("MIGRATION", {{"status", "active"}});
  absl::StatusOr<MemoryFileStats> stats = vm_->Snapshot(dir, incremental);
  int64_t ms = absl::ToInt64Milliseconds(absl::Now() - start);
  if (!stats.ok()) {
    last_migration_ = {{"status", "failed"}, {"error-desc", std::string(stats.status().message())}};
    Emit("MIGRATION", {{"status", "failed"}});
    return stats.status();
  }
  last_migration_ = {{"status", "completed"},
                     {"total-time", ms},
                     {"downtime", ms},
                     {"ram",
                      {{"transferred", stats->bytes_written},
                       {"total", stats->total_bytes},
                       {"remaining", 0},
                       {"duplicate", (stats->total_bytes - stats->bytes_written) / 4096},
                       {"normal", stats->bytes_written / 4096}}}};
  Emit("MIGRATION", {{"status", "completed"}});
  spdlog::info("snapshot written to {} in {} ms", dir, ms);
  return absl::OkStatus();
}

nlohmann::json VmRunner::QueryMigrate() const {
  return migration_ != nullptr ? migration_->Query() : last_migration_;
}

absl::Status VmRunner::MigrateCancel() {
  if (migration_ != nullptr && migration_->Query()["status"] == "postcopy-active") {
    return absl::FailedPreconditionError(
        "Postcopy is active: the guest runs on the target and cannot come back");
  }
  if (migration_ != nullptr) migration_->Cancel();
  return absl::OkStatus();
}

absl::Status VmRunner::MigrateStartPostcopy() {
  if (migration_ == nullptr || migration_->finished()) {
    return absl::FailedPreconditionError("migrate-start-postcopy: no migration is under way");
  }
  if (!postcopy_ram_) {
    return absl::FailedPreconditionError(
        "Enable postcopy with migrate-set-capabilities before the start of migration");
  }
  migration_->StartPostcopy();
  return absl::OkStatus();
}

absl::Status VmRunner::MigrateSetCapabilities(const nlohmann::json& capabilities) {
  bool postcopy_ram = postcopy_ram_;
  for (const nlohmann::json& c : capabilities) {
    if (!c.is_object() || !c.contains("capability") || !c["capability"].is_string() ||
        !c.contains("state") || !c["state"].is_boolean()) {
      return absl::InvalidArgumentError(
          "capabilities: each is {\"capability\": NAME, \"state\": BOOL}");
    }
    std::string name = c["capability"].get<std::string>();
    if (name != "postcopy-ram") {
      return absl::InvalidArgumentError("capability '" + name + "': mote has only postcopy-ram");
    }
    postcopy_ram = c["state"].get<bool>();
  }
  if (migration_ != nullptr && !migration_->finished()) {
    return absl::FailedPreconditionError("There's a migration process in progress");
  }
  postcopy_ram_ = postcopy_ram;
  return absl::OkStatus();
}

absl::Status VmRunner::MigrateSetParameters(const nlohmann::json& arguments) {
  if (arguments.contains("downtime-limit")) {
    migration_parameters_.downtime_limit =
        absl::Milliseconds(arguments["downtime-limit"].get<uint64_t>());
  }
  if (arguments.contains("max-bandwidth")) {
    migration_parameters_.max_bandwidth = arguments["max-bandwidth"].get<uint64_t>();
  }
  return absl::OkStatus();
}

absl::Status VmRunner::Quit() {
  quit_requested_ = true;  // Run sees it, even between boots
  if (RequireVm().ok()) {
    vm_->RequestEnd({OutcomeKind::kQuit, 0, "quit requested on the control socket"});
  }
  return absl::OkStatus();
}

absl::StatusOr<json> VmRunner::QueryCpus() const {
  MOTE_RETURN_IF_ERROR(RequireVm());
  json cpus = json::array();
  for (size_t i = 0; i < vm_->vcpu_count(); ++i) {
    cpus.push_back({{"cpu-index", i},
                    {"qom-path", absl::StrFormat("/machine/unattached/device[%d]", i)},
                    {"thread-id", vm_->VcpuThreadId(i)},
                    {"props", {{"socket-id", 0}, {"core-id", i}, {"thread-id", 0}}},
                    {"target", "x86_64"}});
  }
  return cpus;
}

absl::StatusOr<json> VmRunner::QueryMemorySize() const {
  MOTE_RETURN_IF_ERROR(RequireVm());
  return json{{"base-memory", config_.memory_bytes}, {"plugged-memory", 0}};
}

absl::StatusOr<json> VmRunner::QueryBlock() const {
  MOTE_RETURN_IF_ERROR(RequireVm());
  json devices = json::array();
  for (const DiskConfig& disk : config_.disks) {
    json inserted = {
        {"file", disk.path},
        {"ro", disk.readonly},
        {"drv", "raw"},
        {"encrypted", false},
        {"cache", {{"writeback", true}, {"direct", disk.cache_none}, {"no-flush", false}}}};
    inserted.update(DiskThrottleJson(disk.throttle));
    devices.push_back({{"device", disk.id},
                       {"qdev", disk.id},
                       {"locked", false},
                       {"removable", false},
                       {"type", "unknown"},
                       {"inserted", inserted}});
  }
  return devices;
}

absl::Status VmRunner::SetIoThrottle(const json& arguments) {
  MOTE_RETURN_IF_ERROR(RequireVm());
  if (arguments.contains("device") == arguments.contains("id")) {
    return absl::InvalidArgumentError("Need exactly one of 'device' and 'id'");
  }
  std::string id = arguments.value("id", arguments.value("device", std::string()));
  MOTE_ASSIGN_OR_RETURN(DiskThrottle throttle, DiskThrottleFromJson(arguments));
  return SetDiskThrottle(id, throttle);
}

absl::Status VmRunner::SetDiskThrottle(const std::string& id, const DiskThrottle& throttle) {
  MOTE_RETURN_IF_ERROR(RequireVm());
  MOTE_RETURN_IF_ERROR(CheckDiskThrottle(throttle));
  MOTE_RETURN_IF_ERROR(vm_->SetDiskThrottle(id, throttle));
  for (DiskConfig& disk : config_.disks) {
    if (disk.id == id) disk.throttle = throttle;  // a rebuilt VM keeps it
  }
  return absl::OkStatus();
}

absl::Status VmRunner::SetNetThrottleFromQmp(const json& arguments) {
  MOTE_ASSIGN_OR_RETURN(NetThrottle throttle, NetThrottleFromJson(arguments));
  return SetNetThrottle(arguments.at("index").get<size_t>(), throttle);
}

absl::Status VmRunner::SetNetThrottle(size_t index, const NetThrottle& throttle) {
  MOTE_RETURN_IF_ERROR(RequireVm());
  MOTE_RETURN_IF_ERROR(CheckNetThrottle(throttle));
  MOTE_RETURN_IF_ERROR(vm_->SetNetThrottle(index, throttle));
  config_.nets[index].throttle = throttle;  // a rebuilt VM keeps it
  return absl::OkStatus();
}

absl::StatusOr<json> VmRunner::QueryBlockStats() const {
  MOTE_RETURN_IF_ERROR(RequireVm());
  json stats = json::array();
  const VirtioDevices& disks = vm_->devices(kVirtioBlk);
  for (size_t i = 0; i < config_.disks.size() && i < disks.size(); ++i) {
    const auto& c = AsBlockDevice(*disks[i]).counters();
    stats.push_back({{"device", config_.disks[i].id},
                     {"qdev", config_.disks[i].id},
                     {"stats",
                      {{"rd_bytes", c.bytes_read},
                       {"wr_bytes", c.bytes_written},
                       {"rd_operations", c.reads},
                       {"wr_operations", c.writes},
                       {"flush_operations", c.flushes},
                       {"failed_rd_operations", 0},
                       {"failed_wr_operations", 0},
                       {"x-mote-errors", c.errors}}}});
  }
  return stats;
}

absl::StatusOr<control::Counters> VmRunner::QueryCounters() const {
  MOTE_RETURN_IF_ERROR(RequireVm());
  control::Counters counters;
  for (size_t i = 0; i < vm_->vcpu_count(); ++i) {
    control::VcpuCounters vcpu{static_cast<uint32_t>(i), vm_->VcpuThreadId(i), {}};
    for (const auto& [reason, name] : kExitNames) {
      vcpu.exits.emplace_back(name, vm_->VcpuExitCount(i, reason));
    }
    counters.vcpus.push_back(std::move(vcpu));
  }
  for (const Vm::DeviceGroup& group : vm_->device_groups()) {
    if (group.kind->report_counters) group.kind->report_counters(config_, group.devices, counters);
  }
  return counters;
}

qmp::QmpResult VmRunner::Execute(const std::string& command, const json& arguments,
                                 const qmp::Peer& peer) {
  const QmpCommand* c = FindQmpCommand(command);
  if (c == nullptr) {
    return Error(absl::StrFormat("The command %s has not been found", command), "CommandNotFound");
  }
  qmp::QmpResult result;
  if (std::optional<qmp::QmpError> bad = CheckArguments(*c, arguments)) {
    result = *bad;
  } else {
    result = c->run(*this, arguments);
  }
  if (c->changes_state) audit_->Record(peer, command, arguments, result);
  return result;
}

}  // namespace mote
