// libmote's C++ API against a running tiny guest: the typed calls (pause,
// status, counters, resume, shutdown) answer from the VM itself.
//   cpp_api_test KERNEL     (motetest.pvh)
#include <mote/vm.h>

#include <chrono>
#include <cstdio>
#include <set>
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
  Check((*vm)->Shutdown().ok(), "Shutdown");
  auto end = (*vm)->WaitFor(std::chrono::seconds(20));
  Check(end.has_value(), "the VM ends after Shutdown");
  auto after = (*vm)->GetCounters();
  Check(!after.ok(), "GetCounters after the end is an error");
  std::printf("%d failed\n", failures);
  return failures == 0 ? 0 : 1;
}
