// libmote's C++ API against a running tiny guest: the typed calls (pause,
// status, counters, resume, snapshot, migrate, shutdown) answer from the VM
// itself; a second VM takes it over in a live migration (VmConfig::incoming),
// and a third, restored from the snapshot (VmConfig::restore), runs on.
//   cpp_api_test KERNEL     (motetest.pvh)
#include <mote/vm.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <thread>

namespace {

int failures = 0;

void Check(bool ok, const char* what, const std::string& detail = "") {
  std::printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what, detail.empty() ? "" : ": ",
              detail.c_str());
  if (!ok) ++failures;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s KERNEL\n", argv[0]);
    return 2;
  }
  libmote::VmConfig config;
  config.kernel = argv[1];
  config.cmdline = "test=clock";  // prints the clock for ever: a guest that keeps running
  config.cpus = 2;
  config.console.kind = libmote::ConsoleKind::kNone;
  auto vm = libmote::Vm::Create(config);
  if (!vm.ok() || !(*vm)->Start().ok()) {
    std::printf("FAIL start: %s\n", vm.ok() ? "Start" : vm.message().c_str());
    return 1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Check((*vm)->Pause().ok(), "Pause");
  auto status = (*vm)->QueryStatus();
  Check(status.ok() && *status == "paused", "QueryStatus after Pause",
        status.ok() ? *status : status.message());

  auto counters = (*vm)->GetCounters();
  Check(counters.ok(), "GetCounters", counters.ok() ? "" : counters.message());
  if (counters.ok()) {
    Check(counters->vcpus.size() == 2, "one counter set per vCPU",
          std::to_string(counters->vcpus.size()));
    std::set<int> threads;
    uint64_t exits = 0;
    for (const auto& v : counters->vcpus) {
      threads.insert(v.thread_id);
      for (const auto& [reason, count] : v.exits) exits += count;
    }
    Check(threads.size() == 2 && threads.count(0) == 0, "each vCPU names its own thread id");
    Check(exits > 0, "the guest has exited to mote", std::to_string(exits));
  }

  Check((*vm)->Resume().ok(), "Resume");
  status = (*vm)->QueryStatus();
  Check(status.ok() && *status == "running", "QueryStatus after Resume",
        status.ok() ? *status : status.message());
  char dir_template[] = "/tmp/mote-cpp-api-XXXXXX";
  std::string snap = std::string(mkdtemp(dir_template)) + "/snap";
  auto saved = (*vm)->Snapshot(snap);
  Check(saved.ok(), "Snapshot", saved.message());
  auto migrated = (*vm)->QueryMigrate();
  Check(migrated.ok() && migrated->find("\"completed\"") != std::string::npos, "QueryMigrate",
        migrated.ok() ? *migrated : migrated.message());
  status = (*vm)->QueryStatus();
  Check(status.ok() && *status == "running", "the guest runs on after a snapshot",
        status.ok() ? *status : status.message());
  auto incremental = (*vm)->Snapshot(snap + "-2", /*incremental=*/true);
  Check(incremental.ok(), "an incremental Snapshot", incremental.message());

  // Live, to a second VM that waits for it (VmConfig::incoming).
  std::string in_path = std::string(dir_template) + "/in.sock";
  std::unique_ptr<libmote::Vm> target;
  std::string target_error;
  std::thread waiting([&] {
    libmote::VmConfig in;
    in.incoming = "unix:" + in_path;
    in.console.kind = libmote::ConsoleKind::kNone;
    auto created = libmote::Vm::Create(in);
    libmote::Status started = created.ok() ? (*created)->Start() : libmote::Status();
    if (created.ok() && started.ok()) target = std::move(*created);
    target_error = created.ok() ? started.message() : created.message();
  });
  for (int i = 0; i < 1000 && access(in_path.c_str(), F_OK) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto moving = (*vm)->Migrate("unix:" + in_path);
  Check(moving.ok(), "Migrate", moving.message());
  std::string progress;
  for (int i = 0; i < 600 && moving.ok(); ++i) {
    auto q = (*vm)->QueryMigrate();
    progress = q.ok() ? *q : q.message();
    if (progress.find("\"completed\"") != std::string::npos ||
        progress.find("\"failed\"") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Check(progress.find("\"completed\"") != std::string::npos, "the migration completes", progress);
  waiting.join();
  Check(target != nullptr, "the target VM has the guest", target_error);
  status = (*vm)->QueryStatus();
  Check(status.ok() && *status == "postmigrate", "the source stays stopped",
        status.ok() ? *status : status.message());
  Check((*vm)->Migrate("file:/tmp/x").ok() == false, "Migrate refuses a file: uri");
  if (target != nullptr) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto moved = target->QueryStatus();
    Check(moved.ok() && *moved == "running", "the migrated guest runs on the target",
          moved.ok() ? *moved : moved.message());
    auto moved_counters = target->GetCounters();
    Check(moved_counters.ok() && moved_counters->vcpus.size() == 2, "with its 2 vCPUs");
    Check(target->Shutdown().ok(), "Shutdown the target");
    Check(target->WaitFor(std::chrono::seconds(20)).has_value(), "the target ends");
  }

  Check((*vm)->Shutdown().ok(), "Shutdown");
  auto end = (*vm)->WaitFor(std::chrono::seconds(20));
  Check(end.has_value(), "the VM ends after Shutdown");
  auto after = (*vm)->GetCounters();
  Check(!after.ok(), "GetCounters after the end is an error");

  // From the incremental snapshot (and its parent), in a VM of its own.
  libmote::VmConfig again;
  again.restore = snap + "-2";
  again.console.kind = libmote::ConsoleKind::kNone;
  again.paused = true;
  auto restored = libmote::Vm::Create(again);
  Check(restored.ok() && (*restored)->Start().ok(), "a VM restored from the snapshot starts",
        restored.ok() ? "" : restored.message());
  if (restored.ok()) {
    auto paused = (*restored)->QueryStatus();
    Check(paused.ok() && *paused == "paused", "restored with paused: paused",
          paused.ok() ? *paused : paused.message());
    auto counters2 = (*restored)->GetCounters();
    Check(counters2.ok() && counters2->vcpus.size() == 2, "the restored VM has the 2 vCPUs");
    Check((*restored)->Resume().ok(), "Resume the restored VM");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto running = (*restored)->QueryStatus();
    Check(running.ok() && *running == "running", "the restored guest runs",
          running.ok() ? *running : running.message());
    Check((*restored)->Shutdown().ok(), "Shutdown the restored VM");
    Check((*restored)->WaitFor(std::chrono::seconds(20)).has_value(), "it ends");
  }
  libmote::VmConfig bad;
  bad.restore = snap + "-missing";
  auto refused = libmote::Vm::Create(bad);
  Check(!refused.ok() || !(*refused)->Start().ok(), "a missing snapshot is refused");
  std::system(("rm -rf " + std::string(dir_template)).c_str());
  std::printf("%d failed\n", failures);
  return failures == 0 ? 0 : 1;
}
