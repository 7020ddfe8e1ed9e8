// Where mote's start-up went, for `mote run --timings`: the moment of each
// phase of the first boot, from the kernel's record of the process start to
// mote's exit. Off unless Enable was called; a Mark then costs one relaxed
// load, so the marks stay in the code of every build.
// Thread-safety: Mark from any thread (the first mark of a phase stays);
// Enable before the VM is built, Table and ToJson after it has ended.
#ifndef MOTE_VMM_STARTUP_TIMINGS_H_
#define MOTE_VMM_STARTUP_TIMINGS_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"

namespace mote::startup {

enum class Phase : int {
  kProcessStart,      // the kernel's record (/proc/self/stat), to the clock tick
  kMain,              // mote's main() entered
  kConfigParsed,      // flags and --config read
  kKernelLoaded,      // kernel, initrd and boot tables in guest memory
  kVmCreated,         // the KVM VM and its in-kernel irqchip
  kMemoryRegistered,  // guest RAM in KVM's memory slots
  kVcpusCreated,      // devices and vCPUs ready
  kFirstKvmRun,       // a vCPU thread calls KVM_RUN for the first time
  kBootTimer,         // the guest wrote the boot-timer port
  kFirstConsoleByte,  // the guest's first byte on the console
  kExit,              // mote returns from main()
  kCount,
};

// The CLOCK_MONOTONIC time in nanoseconds.
int64_t MonotonicNs();

// Turns the marks on; `main_ns` is when main() began.
void Enable(int64_t main_ns);

extern std::atomic<bool> g_enabled;
void Record(Phase phase);
inline void Mark(Phase phase) {
  if (g_enabled.load(std::memory_order_relaxed)) Record(phase);
}

// A table of the phases reached, in the order they happened: ms from process
// start, and the step from the phase before. For stderr.
std::string Table();
// {"clock": "CLOCK_MONOTONIC", "tick_ms": 10, "phases": [{"phase", "ms",
// "monotonic_ns"}, ...]}: the phases reached, in the order they happened.
nlohmann::json ToJson();

}  // namespace mote::startup

#endif  // MOTE_VMM_STARTUP_TIMINGS_H_
