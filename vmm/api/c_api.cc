// The C API (mote/mote.h) over libmote's C++ one. Every entry point catches
// everything, so no exception reaches C; errors go to a per-thread string.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "mote/mote.h"
#include "mote/vm.h"
#include "nlohmann/json.hpp"
#include "vmm/vm_config.h"

using nlohmann::json;

// The handles: the one VM description type, and a VM with the strings
// mote_vm_end_* hand out.
struct mote_config {
  libmote::VmConfig config;
};

struct mote_vm {
  std::unique_ptr<libmote::Vm> vm;
  mote_event_fn on_event = nullptr;
  void* opaque = nullptr;
  libmote::Outcome outcome;
};

namespace {

thread_local std::string last_error;

int Fail(const std::string& message) {
  last_error = message;
  return -1;
}

template <typename T>
T* FailNull(const std::string& message) {
  last_error = message;
  return nullptr;
}

char* CopyOut(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out != nullptr) std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Runs `body`, turning any exception into an error (C cannot take one).
template <typename Body, typename R>
R Guard(R on_error, Body body) {
  try {
    return body();
  } catch (const std::exception& e) {
    last_error = std::string("libmote: ") + e.what();
  } catch (...) {
    last_error = "libmote: unexpected error";
  }
  return on_error;
}

// Sets `member` after checking it alone, so the error names it at once.
int SetMember(mote_config* config, const char* member, const json& value) {
  if (config == nullptr || member == nullptr) return Fail("mote_config_set: null argument");
  libmote::Status s = config->config.SetMember(member, Dump(value));
  return s.ok() ? 0 : Fail(s.message());
}

int Command(mote_vm* vm, libmote::Status (libmote::Vm::*command)()) {
  if (vm == nullptr) return Fail("null mote_vm");
  return Guard(-1, [&] {
    libmote::Status s = (vm->vm.get()->*command)();
    return s.ok() ? 0 : Fail(s.message());
  });
}

mote_config* NewConfig(libmote::Result<libmote::VmConfig> parsed) {
  if (!parsed.ok()) return FailNull<mote_config>(parsed.message());
  return new mote_config{*std::move(parsed)};
}

}  // namespace

extern "C" {

const char* mote_version(void) { return libmote::Version(); }

const char* mote_last_error(void) { return last_error.c_str(); }

void mote_free(void* p) { std::free(p); }

int mote_set_log_level(const char* level) {
  if (level == nullptr) return Fail("mote_set_log_level: null level");
  return Guard(-1, [&] {
    libmote::Status s = libmote::SetLogLevel(level);
    return s.ok() ? 0 : Fail(s.message());
  });
}

mote_config* mote_config_new(void) {
  return Guard<>(static_cast<mote_config*>(nullptr), [] { return new mote_config; });
}

mote_config* mote_config_from_json(const char* text) {
  if (text == nullptr) return FailNull<mote_config>("mote_config_from_json: null text");
  return Guard(static_cast<mote_config*>(nullptr),
               [&] { return NewConfig(libmote::VmConfig::FromJson(text)); });
}

mote_config* mote_config_from_file(const char* path) {
  if (path == nullptr) return FailNull<mote_config>("mote_config_from_file: null path");
  return Guard(static_cast<mote_config*>(nullptr),
               [&] { return NewConfig(libmote::VmConfig::FromJsonFile(path)); });
}

void mote_config_free(mote_config* config) { delete config; }

int mote_config_set_string(mote_config* config, const char* member, const char* value) {
  if (value == nullptr) return Fail("mote_config_set_string: null value");
  return Guard(-1, [&] { return SetMember(config, member, std::string(value)); });
}

int mote_config_set_int(mote_config* config, const char* member, long long value) {
  return Guard(-1, [&] { return SetMember(config, member, value); });
}

int mote_config_set_bool(mote_config* config, const char* member, int value) {
  return Guard(-1, [&] { return SetMember(config, member, value != 0); });
}

int mote_config_set_json(mote_config* config, const char* member, const char* json_value) {
  if (json_value == nullptr) return Fail("mote_config_set_json: null value");
  return Guard(-1, [&] {
    json value = json::parse(json_value, nullptr, false);
    if (value.is_discarded()) return Fail(std::string(member ? member : "?") + ": not JSON");
    return SetMember(config, member, value);
  });
}

int mote_config_add_disk(mote_config* config, const char* spec) {
  if (config == nullptr || spec == nullptr) return Fail("mote_config_add_disk: null argument");
  return Guard(-1, [&] {
    libmote::Result<libmote::DiskConfig> disk = libmote::DiskConfig::Parse(spec);
    if (!disk.ok()) return Fail(disk.message());
    config->config.disks.push_back(*disk);
    return 0;
  });
}

int mote_config_add_net(mote_config* config, const char* spec) {
  if (config == nullptr || spec == nullptr) return Fail("mote_config_add_net: null argument");
  return Guard(-1, [&] {
    libmote::Result<libmote::NetConfig> net = libmote::NetConfig::Parse(spec);
    if (!net.ok()) return Fail(net.message());
    config->config.nets.push_back(*net);
    return 0;
  });
}

char* mote_config_to_json(const mote_config* config) {
  if (config == nullptr) return FailNull<char>("mote_config_to_json: null config");
  return Guard(static_cast<char*>(nullptr), [&] { return CopyOut(config->config.ToJson()); });
}

mote_vm* mote_vm_create(const mote_config* config, mote_event_fn on_event, void* opaque) {
  if (config == nullptr) return FailNull<mote_vm>("mote_vm_create: null config");
  return Guard(static_cast<mote_vm*>(nullptr), [&]() -> mote_vm* {
    auto handle = std::make_unique<mote_vm>();
    handle->on_event = on_event;
    handle->opaque = opaque;
    libmote::VmOptions options;
    if (on_event != nullptr) {
      mote_vm* raw = handle.get();
      options.on_event = [raw](const libmote::Event& e) {
        raw->on_event(raw->opaque, e.name.c_str(), e.data.c_str(), e.timestamp_us);
      };
    }
    libmote::Result<std::unique_ptr<libmote::Vm>> vm = libmote::Vm::Create(config->config, options);
    if (!vm.ok()) return FailNull<mote_vm>(vm.message());
    handle->vm = std::move(*vm);
    return handle.release();
  });
}

int mote_vm_start(mote_vm* vm) { return Command(vm, &libmote::Vm::Start); }
int mote_vm_pause(mote_vm* vm) { return Command(vm, &libmote::Vm::Pause); }
int mote_vm_resume(mote_vm* vm) { return Command(vm, &libmote::Vm::Resume); }
int mote_vm_powerdown(mote_vm* vm) { return Command(vm, &libmote::Vm::PowerDown); }
int mote_vm_reset(mote_vm* vm) { return Command(vm, &libmote::Vm::Reset); }
int mote_vm_shutdown(mote_vm* vm) { return Command(vm, &libmote::Vm::Shutdown); }

int mote_vm_wait(mote_vm* vm) {
  if (vm == nullptr) return Fail("null mote_vm");
  return Guard(-1, [&] {
    vm->outcome = vm->vm->Wait();
    return vm->outcome.exit_code;
  });
}

int mote_vm_wait_timeout(mote_vm* vm, int timeout_ms) {
  if (vm == nullptr) return Fail("null mote_vm");
  return Guard(-1, [&] {
    std::optional<libmote::Outcome> outcome =
        vm->vm->WaitFor(std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms));
    if (!outcome.has_value()) return Fail("still running");
    vm->outcome = *std::move(outcome);
    return vm->outcome.exit_code;
  });
}

const char* mote_vm_end_reason(mote_vm* vm) { return vm ? vm->outcome.reason.c_str() : ""; }
const char* mote_vm_end_detail(mote_vm* vm) { return vm ? vm->outcome.detail.c_str() : ""; }

char* mote_vm_status(mote_vm* vm) {
  if (vm == nullptr) return FailNull<char>("null mote_vm");
  return Guard(static_cast<char*>(nullptr), [&] {
    libmote::Result<std::string> status = vm->vm->QueryStatus();
    return status.ok() ? CopyOut(*status) : FailNull<char>(status.message());
  });
}

char* mote_vm_execute(mote_vm* vm, const char* command, const char* arguments_json) {
  if (vm == nullptr || command == nullptr) return FailNull<char>("mote_vm_execute: null argument");
  return Guard(static_cast<char*>(nullptr), [&] {
    libmote::Result<std::string> reply =
        vm->vm->Execute(command, arguments_json ? arguments_json : "{}");
    return reply.ok() ? CopyOut(*reply) : FailNull<char>(reply.message());
  });
}

int mote_vm_snapshot(mote_vm* vm, const char* dir, int incremental) {
  if (vm == nullptr || dir == nullptr) return Fail("null argument");
  return Guard(-1, [&] {
    libmote::Status s = vm->vm->Snapshot(dir, incremental != 0);
    return s.ok() ? 0 : Fail(s.message());
  });
}

int mote_vm_migrate(mote_vm* vm, const char* uri) {
  if (vm == nullptr || uri == nullptr) return Fail("null argument");
  return Guard(-1, [&] {
    libmote::Status s = vm->vm->Migrate(uri);
    return s.ok() ? 0 : Fail(s.message());
  });
}

int mote_vm_set_disk_throttle(mote_vm* vm, const char* disk_id, const char* limits) {
  if (vm == nullptr || disk_id == nullptr || limits == nullptr) return Fail("null argument");
  return Guard(-1, [&] {
    absl::StatusOr<libmote::DiskThrottle> throttle = mote::ParseDiskThrottle(limits);
    if (!throttle.ok()) return Fail(std::string(throttle.status().message()));
    libmote::Status s = vm->vm->SetDiskThrottle(disk_id, *throttle);
    return s.ok() ? 0 : Fail(s.message());
  });
}

int mote_vm_set_net_throttle(mote_vm* vm, unsigned index, const char* limits) {
  if (vm == nullptr || limits == nullptr) return Fail("null argument");
  return Guard(-1, [&] {
    absl::StatusOr<libmote::NetThrottle> throttle = mote::ParseNetThrottle(limits);
    if (!throttle.ok()) return Fail(std::string(throttle.status().message()));
    libmote::Status s = vm->vm->SetNetThrottle(index, *throttle);
    return s.ok() ? 0 : Fail(s.message());
  });
}

char* mote_vm_query_migrate(mote_vm* vm) { return mote_vm_execute(vm, "query-migrate", nullptr); }

char* mote_vm_counters(mote_vm* vm) {
  return mote_vm_execute(vm, "x-mote-query-counters", nullptr);
}

void mote_vm_destroy(mote_vm* vm) {
  try {
    delete vm;
  } catch (...) {  // a destructor that throws would end the program: swallow it
  }
}

}  // extern "C"
