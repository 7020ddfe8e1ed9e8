// libmote: mote's embedding API. One Vm object is one virtual machine on
// /dev/kvm, with threads of its own (one per vCPU, one event loop, one for
// the event callback); several can live in one process. `mote run` is built
// on this API, and the C API (mote/mote.h) is a thin layer over it.
//
//   auto vm = libmote::Vm::Create(config);       // checks the config
//   if (!vm.ok()) die(vm.message());
//   if (auto s = (*vm)->Start(); !s.ok()) ...     // builds and boots it
//   libmote::Outcome end = (*vm)->Wait();         // end.exit_code as `mote run`'s
//
// Commands are QMP's (the control socket's): each runs on the VM's event
// loop, and the call returns once it is done (Pause returns with every vCPU
// stopped).
// Thread-safety: every method may be called from any thread, except that the
// event callback must not call Wait or destroy its Vm.
#ifndef MOTE_INCLUDE_MOTE_VM_H_
#define MOTE_INCLUDE_MOTE_VM_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mote/config.h"
#include "mote/result.h"

namespace libmote {

// mote's version, "0.1.0".
const char* Version();

// The process-wide log level (logs go to stderr): "trace", "debug", "info",
// "warn", "error" or "off".
Status SetLogLevel(const std::string& level);

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread, which every
// thread started after it inherits: what VmOptions::stop_on_signals needs.
// Call it first thing in main().
void BlockStopSignals();

// Something that happened to a VM: a QMP event, with QMP's name and data.
struct Event {
  std::string name;          // STOP, RESUME, RESET, POWERDOWN, SHUTDOWN, GUEST_PANICKED
  std::string data;          // its "data" object as JSON text; "{}" when it has none
  int64_t timestamp_us = 0;  // when it happened: microseconds since the Unix epoch
};

// How a VM ended.
struct Outcome {
  // The SHUTDOWN event's reason: guest-shutdown, guest-reset, guest-panic,
  // host-qmp-quit, host-signal, or mote's own x-mote-debug-exit,
  // x-mote-timeout, x-mote-expect-matched, x-mote-expect-not-met,
  // x-mote-kvm-error, x-mote-host-error.
  std::string reason;
  int exit_code = 2;   // what `mote run` would exit with (README: exit codes)
  uint64_t value = 0;  // the debug-exit value, or the signal number
  std::string detail;  // one line for a person
};

// What the VM's devices and vCPUs have done so far.
struct VcpuCounters {
  unsigned index = 0;
  int thread_id = 0;                      // the host thread running it
  std::map<std::string, uint64_t> exits;  // KVM exits by reason: io, mmio, hlt, ...
};
struct DiskCounters {
  std::string id;
  uint64_t reads = 0, writes = 0, flushes = 0, bytes_read = 0, bytes_written = 0, errors = 0;
  // Times a request waited for the disk's rate limits, and how long its
  // queues rested for them in all.
  uint64_t throttled = 0, throttled_ms = 0;
};
struct NicCounters {
  unsigned index = 0;
  uint64_t tx_frames = 0, tx_bytes = 0, tx_dropped = 0;
  uint64_t rx_frames = 0, rx_bytes = 0, rx_dropped = 0;
  uint64_t throttled = 0, throttled_ms = 0;  // as DiskCounters'
};
struct Counters {
  std::vector<VcpuCounters> vcpus;
  std::vector<DiskCounters> disks;
  std::vector<NicCounters> nics;
};

struct VmOptions {
  // Called for every event, in order, on a thread of the VM's own (never a
  // vCPU's), so it may take its time and call the Vm's commands.
  std::function<void(const Event&)> on_event;
  // SIGINT, SIGTERM and SIGHUP end the VM (reason host-signal, exit code
  // 128 + N), as `mote run` does. Needs BlockStopSignals() first; leave it
  // off where the program handles its own signals.
  bool stop_on_signals = false;
};

class Vm {
 public:
  // Checks `config` (errors name the member) and opens its control socket,
  // if it has one. Nothing is booted yet.
  static Result<std::unique_ptr<Vm>> Create(const VmConfig& config, VmOptions options = {});
  // Ends the VM if it still runs (as Shutdown) and waits for its threads.
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Builds the VM (loads the kernel, opens disks and TAPs, creates the vCPUs)
  // and starts it, or leaves it paused when the config says `paused`. The
  // errors are those of bad input ("cannot open disk ...") or of the host.
  // Once.
  Status Start();

  // QMP stop, cont, system_powerdown (the ACPI power button: a guest that
  // listens shuts down), system_reset (boots the guest again) and quit (ends
  // it now: reason host-qmp-quit).
  Status Pause();
  Status Resume();
  Status PowerDown();
  Status Reset();
  Status Shutdown();

  // Blocks until the VM has ended and every event was delivered. Before
  // Start, or if Start failed: at once, with exit code 2.
  Outcome Wait();
  // The same, or nothing if it is still running after `timeout`.
  std::optional<Outcome> WaitFor(std::chrono::milliseconds timeout);

  // Writes a snapshot into directory `dir` (QMP migrate to "file:DIR"; a
  // running guest is stopped for it and runs on). A new VM starts from it
  // with VmConfig::restore = dir. `incremental`: only the pages written since
  // this VM's last snapshot, which DIR names as its parent (keep it).
  Status Snapshot(const std::string& dir, bool incremental = false);
  // Starts a live migration to another mote waiting with VmConfig::incoming
  // at `uri` ("unix:PATH" or "tcp:IP:PORT"; QMP migrate there) and returns;
  // QueryMigrate follows it. Once it completes, this VM stays stopped.
  Status Migrate(const std::string& uri);
  // QMP block_set_io_throttle: disk `disk_id` ("disk0", or its id=) takes
  // these rate limits from now on; requests held back wait, none fail.
  Status SetDiskThrottle(const std::string& disk_id, const DiskThrottle& throttle);
  // The same for NIC `index` (in --net order; x-mote-set-net-throttle).
  Status SetNetThrottle(unsigned index, const NetThrottle& throttle);
  // QMP query-migrate: the last snapshot's or migration's status and
  // figures, as JSON text.
  Result<std::string> QueryMigrate();

  // QMP query-status's "status": prelaunch, running, paused or shutdown.
  Result<std::string> QueryStatus();
  Result<Counters> GetCounters();
  // Any command of the control socket (README: Control socket), with its
  // arguments as a JSON object; the reply's "return" value as JSON text.
  Result<std::string> Execute(const std::string& command, const std::string& arguments = "{}");

 private:
  struct State;
  explicit Vm(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace libmote

#endif  // MOTE_INCLUDE_MOTE_VM_H_
