#include "vmm/config_json.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "arch/x86/cpuid.h"
#include "vmm/base/fd.h"
#include "vmm/base/logging.h"
#include "vmm/base/status_macros.h"

namespace mote {
namespace {

// Kept in document order, so the first bad member reported is the first one
// in the file.
using Json = nlohmann::ordered_json;

constexpr int64_t kMaxCpus = 254;           // as VmConfig::Validate
constexpr double kMaxTimeoutSeconds = 1e9;  // as the --timeout flag
constexpr size_t kMaxFileBytes = 1 << 20;

// What a description fills in; copied back only if all of it is good.
struct Target {
  VmConfig config;
  VmConfigExtras extras;
};

// Messages name the member by its JSON path; ApplyVmConfigJson puts the
// caller's label in front.
absl::Status FieldError(const std::string& path, const std::string& message) {
  return absl::InvalidArgumentError(path + ": " + message);
}

// Members tables are small arrays of structs with a `name`.
template <typename T>
const T* FindMember(absl::Span<const T> members, const std::string& name) {
  for (const T& member : members) {
    if (name == member.name) return &member;
  }
  return nullptr;
}

template <typename T>
absl::Status UnknownMember(const std::string& path, absl::Span<const T> members) {
  std::vector<std::string> names;
  for (const T& member : members) names.push_back(member.name);
  return FieldError(path, "unknown member (expected one of: " + absl::StrJoin(names, ", ") + ")");
}

// A JSON Schema "integer": any number without a fractional part.
std::optional<int64_t> AsInteger(const Json& value) {
  if (value.is_number_unsigned()) {
    uint64_t n = value.get<uint64_t>();
    if (n > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(n);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (std::trunc(d) == d && std::fabs(d) < 0x1p53) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

absl::Status GetString(const Json& value, const std::string& path, std::string& out) {
  if (!value.is_string()) return FieldError(path, "expected a string");
  out = value.get<std::string>();
  return absl::OkStatus();
}

absl::Status GetNonEmptyString(const Json& value, const std::string& path, std::string& out) {
  if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
    return FieldError(path, "expected a non-empty string");
  }
  out = value.get<std::string>();
  return absl::OkStatus();
}

absl::Status GetBool(const Json& value, const std::string& path, bool& out) {
  if (!value.is_boolean()) return FieldError(path, "expected true or false");
  out = value.get<bool>();
  return absl::OkStatus();
}

// A string member read by the flag's own parser; its message follows the path.
template <typename T>
absl::Status GetParsed(const Json& value, const std::string& path,
                       absl::StatusOr<T> (*parse)(const std::string&), T& out) {
  if (!value.is_string()) return FieldError(path, "expected a string");
  absl::StatusOr<T> parsed = parse(value.get<std::string>());
  if (!parsed.ok()) return FieldError(path, std::string(parsed.status().message()));
  out = *std::move(parsed);
  return absl::OkStatus();
}

absl::Status GetCpus(const Json& value, const std::string& path, uint32_t& out) {
  std::optional<int64_t> cpus = AsInteger(value);
  if (!cpus || *cpus < 1 || *cpus > kMaxCpus) {
    return FieldError(path, absl::StrFormat("expected an integer from 1 to %d", kMaxCpus));
  }
  out = static_cast<uint32_t>(*cpus);
  return absl::OkStatus();
}

// "512M", "2G,hugepages=on", ... or an integer number of MiB, as --memory
// takes them.
absl::Status GetMemory(const Json& value, const std::string& path, VmConfig& out) {
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (std::optional<int64_t> mib = AsInteger(value)) {
    text = std::to_string(*mib);
  } else {
    return FieldError(path, "expected a size such as \"512M\" or \"2G\", or an integer of MiB");
  }
  absl::StatusOr<MemoryOption> memory = ParseMemory(text);
  if (!memory.ok()) return FieldError(path, std::string(memory.status().message()));
  if (memory->bytes < kMinMemoryBytes) {
    return FieldError(path, absl::StrFormat("'%s' is too small: mote needs at least %d MiB", text,
                                            kMinMemoryBytes >> 20));
  }
  out.memory_bytes = memory->bytes;
  out.hugepages = memory->hugepages;
  return absl::OkStatus();
}

absl::Status GetCpuTemplate(const Json& value, const std::string& path, std::string& out) {
  MOTE_RETURN_IF_ERROR(GetString(value, path, out));
  absl::Status valid = x86::ParseCpuTemplate(out).status();
  if (!valid.ok()) return FieldError(path, std::string(valid.message()));
  return absl::OkStatus();
}

absl::Status GetTimeout(const Json& value, const std::string& path,
                        std::optional<absl::Duration>& out) {
  if (!value.is_number() || !(value.get<double>() > 0) ||
      value.get<double>() > kMaxTimeoutSeconds) {
    return FieldError(path, "expected a number of seconds, more than 0 and at most 1e9");
  }
  out = absl::Seconds(value.get<double>());
  return absl::OkStatus();
}

absl::Status GetLogLevel(const Json& value, const std::string& path, std::string& out) {
  if (value.is_string()) {
    for (const char* level : kLogLevels) {
      if (value.get_ref<const std::string&>() == level) {
        out = level;
        return absl::OkStatus();
      }
    }
  }
  return FieldError(path, "expected one of: " + absl::StrJoin(kLogLevels, ", "));
}

// disks[] and nets[] items: each member set from its JSON value through the
// section's table (vm_config.h), as the flags set them from text.
absl::Status GetDisks(const Json& value, const std::string& path, std::vector<DiskConfig>& out) {
  if (!value.is_array()) return FieldError(path, "expected an array of disk objects");
  std::vector<DiskConfig> disks;
  for (size_t i = 0; i < value.size(); ++i) {
    std::string disk_path = absl::StrFormat("%s[%d]", path, i);
    DiskConfig disk = DefaultDisk(i);
    MOTE_RETURN_IF_ERROR(ApplyJsonObject("--disk", value[i], disk_path, DiskMembers(), disk));
    if (!value[i].contains("path")) return FieldError(disk_path + ".path", "missing (required)");
    disks.push_back(std::move(disk));
  }
  out = std::move(disks);
  return absl::OkStatus();
}

absl::Status GetNets(const Json& value, const std::string& path, std::vector<NetConfig>& out) {
  if (!value.is_array()) return FieldError(path, "expected an array of NIC objects");
  std::vector<NetConfig> nets;
  for (size_t i = 0; i < value.size(); ++i) {
    std::string net_path = absl::StrFormat("%s[%d]", path, i);
    NetConfig net = DefaultNet(i);
    MOTE_RETURN_IF_ERROR(ApplyJsonObject("--net", value[i], net_path, NetMembers(), net));
    if (!value[i].contains("tap") && !value[i].contains("fd")) {
      return FieldError(net_path, "expected a tap or an fd member");
    }
    if (absl::Status s = CheckNetBackend(net); !s.ok()) {
      return FieldError(net_path, std::string(s.message()));
    }
    nets.push_back(std::move(net));
  }
  out = std::move(nets);
  return absl::OkStatus();
}

struct Member {
  const char* name;
  absl::Status (*apply)(const Json& value, const std::string& path, Target& t);
};

// Every top-level member; keep docs/vm-config.schema.json and docs/vm-config.md
// in step (config_json_test checks the names against the schema).
constexpr Member kVmMembers[] = {
    {"kernel", [](const Json& v, const std::string& p,
                  Target& t) { return GetNonEmptyString(v, p, t.config.kernel); }},
    {"initrd", [](const Json& v, const std::string& p,
                  Target& t) { return GetString(v, p, t.config.initrd); }},
    {"cmdline", [](const Json& v, const std::string& p,
                   Target& t) { return GetString(v, p, t.config.cmdline); }},
    {"cpus",
     [](const Json& v, const std::string& p, Target& t) { return GetCpus(v, p, t.config.cpus); }},
    {"memory",
     [](const Json& v, const std::string& p, Target& t) { return GetMemory(v, p, t.config); }},
    {"cpu_template", [](const Json& v, const std::string& p,
                        Target& t) { return GetCpuTemplate(v, p, t.config.cpu_template); }},
    {"pit", [](const Json& v, const std::string& p,
               Target& t) { return GetParsed(v, p, &ParsePitMode, t.config.pit); }},
    {"console", [](const Json& v, const std::string& p,
                   Target& t) { return GetParsed(v, p, &ParseConsole, t.config.console); }},
    {"transport", [](const Json& v, const std::string& p,
                     Target& t) { return GetParsed(v, p, &ParseTransport, t.config.transport); }},
    {"rng",
     [](const Json& v, const std::string& p, Target& t) { return GetBool(v, p, t.config.rng); }},
    {"timeout", [](const Json& v, const std::string& p,
                   Target& t) { return GetTimeout(v, p, t.config.timeout); }},
    {"expect", [](const Json& v, const std::string& p,
                  Target& t) { return GetString(v, p, t.config.expect); }},
    {"on_reboot", [](const Json& v, const std::string& p,
                     Target& t) { return GetParsed(v, p, &ParseOnReboot, t.config.on_reboot); }},
    {"kvm_device", [](const Json& v, const std::string& p,
                      Target& t) { return GetNonEmptyString(v, p, t.config.kvm_path); }},
    {"disks",
     [](const Json& v, const std::string& p, Target& t) { return GetDisks(v, p, t.config.disks); }},
    {"nets",
     [](const Json& v, const std::string& p, Target& t) { return GetNets(v, p, t.config.nets); }},
    {"api_socket", [](const Json& v, const std::string& p,
                      Target& t) { return GetString(v, p, t.extras.api_socket); }},
    {"paused",
     [](const Json& v, const std::string& p, Target& t) { return GetBool(v, p, t.extras.paused); }},
    {"name",
     [](const Json& v, const std::string& p, Target& t) { return GetString(v, p, t.extras.name); }},
    {"log_level", [](const Json& v, const std::string& p,
                     Target& t) { return GetLogLevel(v, p, t.extras.log_level); }},
};

absl::Status ApplyRoot(const Json& root, Target& t) {
  if (!root.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  if (!root.contains("kernel")) return FieldError("kernel", "missing (required)");
  for (const auto& member : root.items()) {
    const Member* known = FindMember(absl::MakeConstSpan(kVmMembers), member.key());
    if (known == nullptr) return UnknownMember(member.key(), absl::MakeConstSpan(kVmMembers));
    MOTE_RETURN_IF_ERROR(known->apply(member.value(), member.key(), t));
  }
  // What no single member shows: duplicate disk ids, a bad regex.
  return t.config.Validate();
}

absl::StatusOr<Json> ParseJson(const std::string& text) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error ..."
    std::string what = e.what();
    size_t at = what.find(" at line ");
    return absl::InvalidArgumentError(at == std::string::npos ? what : what.substr(at + 4));
  }
}

absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  std::string context = "cannot read config " + path;
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return ErrnoToStatus(errno, context);
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, context);
    if (n == 0) return text;
    if (text.size() + static_cast<size_t>(n) > kMaxFileBytes) {
      return absl::InvalidArgumentError(context + ": larger than 1 MiB");
    }
    text.append(buffer, static_cast<size_t>(n));
  }
}

const char* PitModeName(PitMode pit) {
  switch (pit) {
    case PitMode::kOn:
      return "on";
    case PitMode::kOff:
      return "off";
    case PitMode::kAuto:
      break;
  }
  return "auto";
}

std::string ConsoleText(const ConsoleConfig& console) {
  switch (console.kind) {
    case ConsoleKind::kNone:
      return "none";
    case ConsoleKind::kFile:
      return "file:" + console.path;
    case ConsoleKind::kStdio:
      break;
  }
  return "stdio";
}

// The largest unit that divides the size exactly.
std::string MemoryText(uint64_t bytes) {
  if (bytes % (1ull << 30) == 0) return absl::StrFormat("%dG", bytes >> 30);
  if (bytes % (1ull << 20) == 0) return absl::StrFormat("%dM", bytes >> 20);
  return absl::StrFormat("%dK", bytes >> 10);
}

}  // namespace

absl::Status ApplyVmConfigJson(const std::string& json_text, VmConfig& config,
                               VmConfigExtras& extras, const std::string& label) {
  absl::Status status;
  try {
    Target target{config, extras};
    absl::StatusOr<Json> root = ParseJson(json_text);
    status = root.ok() ? ApplyRoot(*root, target) : root.status();
    if (status.ok()) {
      config = std::move(target.config);
      extras = std::move(target.extras);
      return status;
    }
  } catch (const nlohmann::json::exception& e) {  // not expected: every type is checked first
    status = absl::InvalidArgumentError(e.what());
  }
  return absl::Status(status.code(), label + std::string(status.message()));
}

absl::Status ApplyVmConfigJson(const std::string& json_text, VmConfig& config) {
  VmConfigExtras dropped;
  return ApplyVmConfigJson(json_text, config, dropped);
}

absl::Status LoadVmConfigFile(const std::string& path, VmConfig& config, VmConfigExtras& extras) {
  MOTE_ASSIGN_OR_RETURN(std::string text, ReadConfigFile(path));
  return ApplyVmConfigJson(text, config, extras);
}

absl::Status LoadVmConfigFile(const std::string& path, VmConfig& config) {
  VmConfigExtras dropped;
  return LoadVmConfigFile(path, config, dropped);
}

nlohmann::json VmConfigToJson(const VmConfig& config) {
  nlohmann::json j = {
      {"kernel", config.kernel},
      {"initrd", config.initrd},
      {"cmdline", config.cmdline},
      {"cpus", config.cpus},
      {"memory", MemoryText(config.memory_bytes) + (config.hugepages ? ",hugepages=on" : "")},
      {"cpu_template", config.cpu_template},
      {"pit", PitModeName(config.pit)},
      {"console", ConsoleText(config.console)},
      {"transport", config.transport == VirtioTransport::kMmio ? "mmio" : "pci"},
      {"rng", config.rng},
      {"expect", config.expect},
      {"on_reboot", config.on_reboot == OnReboot::kRestart ? "restart" : "exit"},
      {"kvm_device", config.kvm_path},
  };
  if (config.timeout.has_value()) j["timeout"] = absl::ToDoubleSeconds(*config.timeout);
  nlohmann::json disks = nlohmann::json::array();
  for (const DiskConfig& disk : config.disks) disks.push_back(SectionToJson(disk, DiskMembers()));
  j["disks"] = std::move(disks);
  nlohmann::json nets = nlohmann::json::array();
  for (const NetConfig& net : config.nets) nets.push_back(SectionToJson(net, NetMembers()));
  j["nets"] = std::move(nets);
  return j;
}

nlohmann::json VmConfigToJson(const VmConfig& config, const VmConfigExtras& extras) {
  nlohmann::json j = VmConfigToJson(config);
  j["api_socket"] = extras.api_socket;
  j["paused"] = extras.paused;
  j["name"] = extras.name;
  if (!extras.log_level.empty()) j["log_level"] = extras.log_level;
  return j;
}

}  // namespace mote
