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
#include <thread>

#include "absl/time/clock.h"
#include "vmm/api/config_bridge.h"
#include "vmm/base/logging.h"
#include "vmm/outcome.h"
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

uint64_t U64(const json& object, const char* member) { return object.value(member, uint64_t{0}); }

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
    Event event{name, data.is_null() ? "{}" : data.dump(-1, ' ', false, json::error_handler_t::replace),
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

  Result<json> Call(const std::string& command, const json& arguments) {
    {
      std::lock_guard lock(mu);
      if (!ran) {
        return Error{phase == Phase::kCreated ? "the VM has not been started" : "the VM did not start"};
      }
    }
    mote::qmp::QmpResult result = runner->Call(command, arguments);
    if (auto* error = std::get_if<mote::qmp::QmpError>(&result)) return Error{error->desc};
    return std::get<json>(std::move(result));
  }
};

Vm::Vm(std::unique_ptr<State> state) : state_(std::move(state)) {}

Result<std::unique_ptr<Vm>> Vm::Create(const VmConfig& config, VmOptions options) {
  try {
    absl::StatusOr<mote::api::InternalConfig> internal = mote::api::ToInternal(config);
    if (!internal.ok()) return Error{std::string(internal.status().message())};
    if (internal->extras.log_level.empty()) {
      mote::EnsureLogging();
    } else {
      mote::InitLogging(internal->extras.log_level);
    }
    auto state = std::make_unique<State>();
    State* raw = state.get();
    mote::RunOptions run;
    run.api_socket = internal->extras.api_socket;
    run.paused = internal->extras.paused;
    run.name = internal->extras.name;
    run.stop_on_signals = options.stop_on_signals;
    if (options.on_event) {
      state->on_event = std::move(options.on_event);
      run.on_event = [raw](const std::string& name, const json& data) { raw->Queue(name, data); };
    }
    absl::StatusOr<std::unique_ptr<mote::VmRunner>> runner =
        mote::VmRunner::Create(internal->config, run);
    if (!runner.ok()) return Error{std::string(runner.status().message())};
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
    return Error{std::string(booted.message())};
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

namespace {

Status StatusOf(const Result<json>& result) {
  return result.ok() ? Status() : Status(Error{result.message()});
}

}  // namespace

Status Vm::Pause() { return StatusOf(state_->Call("stop", json::object())); }
Status Vm::Resume() { return StatusOf(state_->Call("cont", json::object())); }
Status Vm::PowerDown() { return StatusOf(state_->Call("system_powerdown", json::object())); }
Status Vm::Reset() { return StatusOf(state_->Call("system_reset", json::object())); }
Status Vm::Shutdown() { return StatusOf(state_->Call("quit", json::object())); }

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

Result<std::string> Vm::QueryStatus() {
  Result<json> reply = state_->Call("query-status", json::object());
  if (!reply.ok()) return Error{reply.message()};
  return reply->value("status", std::string("unknown"));
}

Result<Counters> Vm::GetCounters() {
  Result<json> reply = state_->Call("x-mote-query-counters", json::object());
  if (!reply.ok()) return Error{reply.message()};
  Counters counters;
  for (const json& v : reply->value("vcpus", json::array())) {
    VcpuCounters vcpu;
    vcpu.index = v.value("cpu-index", 0u);
    vcpu.thread_id = v.value("thread-id", 0);
    for (const auto& [reason, count] : v.value("exits", json::object()).items()) {
      vcpu.exits[reason] = count.get<uint64_t>();
    }
    counters.vcpus.push_back(std::move(vcpu));
  }
  for (const json& d : reply->value("disks", json::array())) {
    counters.disks.push_back(DiskCounters{d.value("id", ""), U64(d, "reads"), U64(d, "writes"),
                                          U64(d, "flushes"), U64(d, "bytes-read"),
                                          U64(d, "bytes-written"), U64(d, "errors")});
  }
  for (const json& n : reply->value("nics", json::array())) {
    counters.nics.push_back(NicCounters{n.value("index", 0u), U64(n, "tx-frames"),
                                        U64(n, "tx-bytes"), U64(n, "tx-dropped"),
                                        U64(n, "rx-frames"), U64(n, "rx-bytes"),
                                        U64(n, "rx-dropped")});
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
