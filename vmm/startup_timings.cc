#include "vmm/startup_timings.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_format.h"

namespace mote::startup {

std::atomic<bool> g_enabled{false};

namespace {

constexpr int kPhases = static_cast<int>(Phase::kCount);
constexpr std::array<const char*, kPhases> kNames = {
    "process_start",      "main",          "config_parsed",
    "kernel_loaded",      "vm_created",    "memory_registered",
    "vcpus_created",      "first_kvm_run", "boot_timer",
    "first_console_byte", "exit"};
constexpr std::array<const char*, kPhases> kLabels = {"process start (kernel's record)",
                                                      "main() entered",
                                                      "configuration parsed",
                                                      "kernel and initrd loaded",
                                                      "KVM VM and irqchip created",
                                                      "guest memory registered",
                                                      "devices and vCPUs created",
                                                      "first KVM_RUN",
                                                      "guest wrote the boot timer",
                                                      "first console byte",
                                                      "exit"};

std::array<std::atomic<int64_t>, kPhases> g_marks{};  // 0: not reached

int64_t ClockNs(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// The process's start in CLOCK_MONOTONIC: /proc/self/stat's field 22 is
// CLOCK_BOOTTIME in clock ticks; the two clocks differ by time suspended.
int64_t KernelProcessStartNs() {
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  for (int i = 3; i < 22 && fields >> field; ++i) {
  }
  unsigned long long ticks = 0;
  if (!(fields >> ticks)) return 0;
  int64_t boot_ns = static_cast<int64_t>(ticks) * (1'000'000'000 / sysconf(_SC_CLK_TCK));
  return boot_ns - (ClockNs(CLOCK_BOOTTIME) - ClockNs(CLOCK_MONOTONIC));
}

struct Reached {
  int phase;
  int64_t ns;
};

std::vector<Reached> ReachedPhases() {
  if (g_marks[0].load() == 0) {
    int64_t zero = 0;
    g_marks[0].compare_exchange_strong(zero, KernelProcessStartNs());
  }
  std::vector<Reached> out;
  for (int p = 0; p < kPhases; ++p) {
    if (int64_t ns = g_marks[p].load(); ns != 0) out.push_back({p, ns});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Reached& a, const Reached& b) { return a.ns < b.ns; });
  return out;
}

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

// The clock tick the kernel keeps a process's start to.
long TickMs() { return 1000 / sysconf(_SC_CLK_TCK); }

}  // namespace

int64_t MonotonicNs() { return ClockNs(CLOCK_MONOTONIC); }

void Enable(int64_t main_ns) {
  g_marks[static_cast<int>(Phase::kMain)].store(main_ns);
  g_enabled.store(true);
}

void Record(Phase phase) {
  int64_t zero = 0;
  g_marks[static_cast<int>(phase)].compare_exchange_strong(zero, MonotonicNs());
}

std::string Table() {
  std::vector<Reached> reached = ReachedPhases();
  std::string out = absl::StrFormat(
      "mote start-up, ms from process start (the kernel keeps that to the clock tick, %d ms:\n"
      "figures from it may read up to a tick late; the steps are exact)\n",
      TickMs());
  int64_t start = reached.empty() ? 0 : reached.front().ns;
  int64_t before = start;
  for (const Reached& r : reached) {
    absl::StrAppendFormat(&out, "  %9.3f  %+9.3f  %s\n", Ms(r.ns - start), Ms(r.ns - before),
                          kLabels[r.phase]);
    before = r.ns;
  }
  return out;
}

nlohmann::json ToJson() {
  std::vector<Reached> reached = ReachedPhases();
  int64_t start = reached.empty() ? 0 : reached.front().ns;
  nlohmann::json phases = nlohmann::json::array();
  for (const Reached& r : reached) {
    phases.push_back(
        {{"phase", kNames[r.phase]}, {"ms", Ms(r.ns - start)}, {"monotonic_ns", r.ns}});
  }
  return {{"clock", "CLOCK_MONOTONIC"}, {"tick_ms", TickMs()}, {"phases", std::move(phases)}};
}

}  // namespace mote::startup
