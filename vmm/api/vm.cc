// libmote::Vm over the monitor's VmRunner: Start boots on the caller's
// thread (so errors come back from Start), then the runner's loop runs on a
// thread of its own; commands go through VmRunner::Call to that loop, and
// events are handed to the callback on a third thread, so a callback can
// never stall the loop or a vCPU.
#include "mote/vm.h"

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/time/clock.h"
#include "vmm/base/logging.h"
#include "vmm/base/status_macros.h"
#include "vmm/config_json.h"
#include "vmm/outcome.h"
#include "vmm/snapshot/restore_error.h"
#include "vmm/vm.h"
#include "vmm/vm_runner.h"

namespace libmote {
namespace {

using nlohmann::json;

Outcome OutcomeOf(const mote::VmOutcome& o) {
  return Outcome{mote::ShutdownReason(o.kind), mote::ExitCodeFor(o), o.value, o.detail};
}

Outcome NotRun(const std::string& why) {
  return OutcomeOf({mote::OutcomeKind::kHostError, 0, why});
}

}  // namespace

const char* Version() { return mote::kMoteVersion; }

Status SetLogLevel(const std::string& level) {
  for (const char* known : mote::kLogLevels) {
    if (level == known) {
      mote::InitLogging(level);
      return Status();
    }
  }
  return Error{"log level '" + level + "': expected trace, debug, info, warn, error or off"};
}

void BlockStopSignals() {
  sigset_t signals = mote::Vm::StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

struct Vm::State {
  enum class Phase { kCreated, kRunning, kEnded };

  std::unique_ptr<mote::VmRunner> runner;
  std::function<void(const Event&)> on_event;
  std::thread runner_thread;
  std::thread event_thread;

  std::mutex mu;  // guards what follows; never held across a callback or a Call
  std::condition_variable changed;
  Phase phase = Phase::kCreated;
  bool ran = false;  // the runner's loop ran (so Call cannot wait forever)
  Outcome outcome;
  std::deque<Event> events;
  bool events_done = true;  // the last event was handed to on_event (or there is none)

  void Queue(const std::string& name, const json& data) {
    Event event{name,
                data.is_null() ? "{}" : data.dump(-1, ' ', false, json::error_handler_t::replace),
                absl::ToUnixMicros(absl::Now())};
    std::lock_guard lock(mu);
    events.push_back(std::move(event));
    changed.notify_all();
  }

  void DeliverEvents() {
    std::unique_lock lock(mu);
    while (true) {
      changed.wait(lock, [this] { return !events.empty() || phase == Phase::kEnded; });
      if (events.empty()) break;  // ended, and all delivered
      Event event = std::move(events.front());
      events.pop_front();
      lock.unlock();
      try {
        on_event(event);
      } catch (...) {  // the program's exception must not end mote's thread
        spdlog::warn("libmote: the event callback threw on {}", event.name);
      }
      lock.lock();
    }
    events_done = true;
    changed.notify_all();
  }

  bool Finished(bool on_event_thread) const {
    return phase == Phase::kEnded && (events_done || on_event_thread);
  }

  // Why a command cannot run yet, if it cannot.
  std::optional<Error> NotRunning() {
    std::lock_guard lock(mu);
    if (ran) return std::nullopt;
    return Error{phase == Phase::kCreated ? "the VM has not been started" : "the VM did not start"};
  }

  // A QMP command by name, JSON in and out: Vm::Execute's passthrough.
  Result<json> Call(const std::string& command, const json& arguments) {
    if (std::optional<Error> e = NotRunning()) return *e;
    mote::qmp::QmpResult result = runner->Call(command, arguments);
    if (auto* error = std::get_if<mote::qmp::QmpError>(&result)) return Error{error->desc};
    return std::get<json>(std::move(result));
  }

  // A typed command: `handler` is a VmRunner method, run on its loop thread.
  template <class T>
  Result<T> Typed(std::function<absl::StatusOr<T>(mote::VmRunner&)> handler) {
    if (std::optional<Error> e = NotRunning()) return *e;
    mote::VmRunner* r = runner.get();
    absl::StatusOr<T> result = r->OnLoop<T>([r, handler] { return handler(*r); });
    if (!result.ok()) return Error{std::string(result.status().message())};
    return *std::move(result);
  }

  Status Command(absl::Status (mote::VmRunner::*method)()) {
    Result<bool> done = Typed<bool>([method](mote::VmRunner& r) -> absl::StatusOr<bool> {
      MOTE_RETURN_IF_ERROR((r.*method)());
      return true;
    });
    return done.ok() ? Status() : Status(Error{done.message()});
  }
};

Vm::Vm(std::unique_ptr<State> state) : state_(std::move(state)) {}

Result<std::unique_ptr<Vm>> Vm::Create(const VmConfig& config, VmOptions options) {
  try {
    // No "config: " label: these are the program's values, not a file's.
    if (absl::Status s = mote::ValidateConfig(config); !s.ok()) {
      return Error{std::string(s.message())};
    }
    if (config.log_level.empty()) {
      mote::EnsureLogging();
    } else {
      mote::InitLogging(config.log_level);
    }
    auto state = std::make_unique<State>();
    State* raw = state.get();
    mote::RunOptions run;
    run.stop_on_signals = options.stop_on_signals;
    if (options.on_event) {
      state->on_event = std::move(options.on_event);
      run.on_event = [raw](const std::string& name, const json& data) { raw->Queue(name, data); };
    }
    absl::StatusOr<std::unique_ptr<mote::VmRunner>> runner = mote::VmRunner::Create(config, run);
    if (!runner.ok()) {
      return Error{std::string(runner.status().message()), mote::RestoreExitCode(runner.status())};
    }
    state->runner = std::move(*runner);
    return std::unique_ptr<Vm>(new Vm(std::move(state)));
  } catch (const std::exception& e) {
    return Error{std::string("cannot create the VM: ") + e.what()};
  }
}

Vm::~Vm() {
  bool running;
  {
    std::lock_guard lock(state_->mu);
    running = state_->phase == State::Phase::kRunning;
  }
  if (running) (void)Shutdown();
  if (state_->runner_thread.joinable()) state_->runner_thread.join();
  if (state_->event_thread.joinable()) state_->event_thread.join();
}

Status Vm::Start() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mu);
    if (s.phase != State::Phase::kCreated) return Error{"the VM was already started"};
  }
  absl::Status booted = s.runner->Boot();
  std::lock_guard lock(s.mu);
  if (!booted.ok()) {
    s.phase = State::Phase::kEnded;
    s.outcome = NotRun(std::string(booted.message()));
    return Error{std::string(booted.message()), mote::RestoreExitCode(booted)};
  }
  s.phase = State::Phase::kRunning;
  s.ran = true;
  if (s.on_event) {
    s.events_done = false;
    s.event_thread = std::thread([&s] { s.DeliverEvents(); });
  }
  s.runner_thread = std::thread([&s] {
    Outcome outcome = OutcomeOf(s.runner->Run());
    std::lock_guard lock(s.mu);
    s.outcome = std::move(outcome);
    s.phase = State::Phase::kEnded;
    s.changed.notify_all();
  });
  return Status();
}

Status Vm::Pause() { return state_->Command(&mote::VmRunner::Stop); }
Status Vm::Resume() { return state_->Command(&mote::VmRunner::Cont); }
Status Vm::PowerDown() { return state_->Command(&mote::VmRunner::SystemPowerdown); }
Status Vm::Reset() { return state_->Command(&mote::VmRunner::SystemReset); }
Status Vm::Shutdown() { return state_->Command(&mote::VmRunner::Quit); }

Outcome Vm::Wait() {
  State& s = *state_;
  std::unique_lock lock(s.mu);
  if (s.phase == State::Phase::kCreated) return NotRun("the VM was never started");
  bool on_event_thread = std::this_thread::get_id() == s.event_thread.get_id();
  s.changed.wait(lock, [&] { return s.Finished(on_event_thread); });
  return s.outcome;
}

std::optional<Outcome> Vm::WaitFor(std::chrono::milliseconds timeout) {
  State& s = *state_;
  std::unique_lock lock(s.mu);
  if (s.phase == State::Phase::kCreated) return NotRun("the VM was never started");
  bool on_event_thread = std::this_thread::get_id() == s.event_thread.get_id();
  if (!s.changed.wait_for(lock, timeout, [&] { return s.Finished(on_event_thread); })) {
    return std::nullopt;
  }
  return s.outcome;
}

Status Vm::Snapshot(const std::string& dir, bool incremental) {
  Result<bool> done =
      state_->Typed<bool>([&dir, incremental](mote::VmRunner& r) -> absl::StatusOr<bool> {
        MOTE_RETURN_IF_ERROR(r.Migrate("file:" + dir, incremental));
        return true;
      });
  return done.ok() ? Status() : Status(Error{done.message()});
}

Status Vm::Migrate(const std::string& uri) {
  if (uri.rfind("unix:", 0) != 0 && uri.rfind("tcp:", 0) != 0) {
    return Status(Error{"Migrate: want unix:PATH or tcp:IP:PORT (Snapshot writes a directory)"});
  }
  Result<bool> started = state_->Typed<bool>([&uri](mote::VmRunner& r) -> absl::StatusOr<bool> {
    MOTE_RETURN_IF_ERROR(r.Migrate(uri));
    return true;
  });
  return started.ok() ? Status() : Status(Error{started.message()});
}

Result<std::string> Vm::QueryMigrate() { return Execute("query-migrate"); }

Status Vm::SetNetThrottle(unsigned index, const NetThrottle& throttle) {
  Result<bool> done =
      state_->Typed<bool>([index, &throttle](mote::VmRunner& r) -> absl::StatusOr<bool> {
        MOTE_RETURN_IF_ERROR(r.SetNetThrottle(index, throttle));
        return true;
      });
  return done.ok() ? Status() : Status(Error{done.message()});
}

Status Vm::SetDiskThrottle(const std::string& disk_id, const DiskThrottle& throttle) {
  Result<bool> done =
      state_->Typed<bool>([&disk_id, &throttle](mote::VmRunner& r) -> absl::StatusOr<bool> {
        MOTE_RETURN_IF_ERROR(r.SetDiskThrottle(disk_id, throttle));
        return true;
      });
  return done.ok() ? Status() : Status(Error{done.message()});
}

Result<std::string> Vm::QueryStatus() {
  Result<mote::control::RunState> state = state_->Typed<mote::control::RunState>(
      [](mote::VmRunner& r) { return absl::StatusOr<mote::control::RunState>(r.QueryStatus()); });
  if (!state.ok()) return Error{state.message()};
  return state->status;
}

Result<Counters> Vm::GetCounters() {
  Result<mote::control::Counters> got =
      state_->Typed<mote::control::Counters>([](mote::VmRunner& r) { return r.QueryCounters(); });
  if (!got.ok()) return Error{got.message()};
  Counters counters;
  for (const auto& v : got->vcpus) {
    counters.vcpus.push_back(VcpuCounters{v.index, v.thread_id, {v.exits.begin(), v.exits.end()}});
  }
  for (const auto& d : got->disks) {
    counters.disks.push_back(DiskCounters{d.id, d.reads, d.writes, d.flushes, d.bytes_read,
                                          d.bytes_written, d.errors, d.throttled, d.throttled_ms});
  }
  for (const auto& n : got->nics) {
    counters.nics.push_back(NicCounters{n.index, n.tx_frames, n.tx_bytes, n.tx_dropped, n.rx_frames,
                                        n.rx_bytes, n.rx_dropped, n.throttled, n.throttled_ms});
  }
  return counters;
}

Result<std::string> Vm::Execute(const std::string& command, const std::string& arguments) {
  json args;
  try {
    args = arguments.empty() ? json::object() : json::parse(arguments);
  } catch (const json::parse_error& e) {
    return Error{std::string("arguments are not JSON: ") + e.what()};
  }
  if (!args.is_object()) return Error{"arguments must be a JSON object"};
  if (command == "qmp_capabilities") return std::string("{}");  // nothing to negotiate here
  Result<json> reply = state_->Call(command, args);
  if (!reply.ok()) return Error{reply.message()};
  return reply->dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace libmote
