#include "vmm/config_json.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <regex>
#include <utility>

#include "vmm/base/fd.h"
#include "vmm/base/status_macros.h"
#include "vmm/device_kinds/device_kind.h"

namespace mote {
namespace {

// Kept in document order, so the first bad member reported is the first one
// in the file.
using Json = nlohmann::ordered_json;

constexpr size_t kMaxFileBytes = 1 << 20;

// What no single member shows: two disks with one id (once the unnamed ones
// are named by position), a bad regex.
absl::Status CheckWhole(const VmConfig& config) {
  VmConfig named = config;
  FillDefaultNames(named);
  MOTE_RETURN_IF_ERROR(ValidateDevices(named));
  if (!config.expect.empty()) {
    try {
      std::regex re(config.expect);
    } catch (const std::regex_error& e) {
      return absl::InvalidArgumentError("--expect '" + config.expect +
                                        "' is not a valid regex: " + e.what());
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyMember(const SectionMember<VmConfig>& member, const Json& value,
                         VmConfig& config) {
  if (member.set_json != nullptr) return member.set_json(value, member.name, config);
  MOTE_ASSIGN_OR_RETURN(std::string text,
                        JsonMemberText(value, member.type, member.name, member.expected));
  if (absl::Status s = member.set(text, config); !s.ok()) {
    return JsonMemberError(member.name, std::string(s.message()));
  }
  return absl::OkStatus();
}

absl::Status ApplyRoot(const Json& root, VmConfig& config) {
  if (!root.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  if (!root.contains("kernel") && !root.contains("restore") && !root.contains("incoming")) {
    return JsonMemberError("kernel", "missing (required)");
  }
  for (const auto& item : root.items()) {
    const SectionMember<VmConfig>* member = FindSectionMember(VmMembers(), item.key());
    if (member == nullptr) {
      return JsonMemberError(item.key(),
                             "unknown member (expected one of: " + MemberNames(VmMembers()) + ")");
    }
    MOTE_RETURN_IF_ERROR(ApplyMember(*member, item.value(), config));
  }
  return CheckWhole(config);
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

}  // namespace

absl::Status ApplyVmConfigJson(const std::string& json_text, VmConfig& config,
                               const std::string& label) {
  absl::Status status;
  try {
    VmConfig target = config;  // copied back only if all of it is good
    absl::StatusOr<Json> root = ParseJson(json_text);
    status = root.ok() ? ApplyRoot(*root, target) : root.status();
    if (status.ok()) {
      config = std::move(target);
      return status;
    }
  } catch (const nlohmann::json::exception& e) {  // not expected: every type is checked first
    status = absl::InvalidArgumentError(e.what());
  }
  return absl::Status(status.code(), label + std::string(status.message()));
}

absl::Status ApplyVmConfigMember(const std::string& name, const Json& value, VmConfig& config) {
  try {
    Json alone = {{"kernel", "-"}};  // a description needs a kernel; any name does
    alone[name] = value;
    VmConfig probe;
    MOTE_RETURN_IF_ERROR(ApplyRoot(alone, probe));
    return ApplyMember(*FindSectionMember(VmMembers(), name), value, config);
  } catch (const nlohmann::json::exception& e) {  // not expected: every type is checked first
    return absl::InvalidArgumentError(e.what());
  }
}

absl::Status LoadVmConfigFile(const std::string& path, VmConfig& config) {
  MOTE_ASSIGN_OR_RETURN(std::string text, ReadConfigFile(path));
  return ApplyVmConfigJson(text, config);
}

nlohmann::json VmConfigToJson(const VmConfig& config) { return SectionToJson(config, VmMembers()); }

absl::Status ValidateConfig(const VmConfig& config) {
  // The text form would round a size to whole KiB.
  if (config.memory_bytes % 4096 != 0) {
    return absl::InvalidArgumentError("memory: not a multiple of 4 KiB");
  }
  // Written out and read back, every member passes its own row's checks
  // (as JSON values: no text to print and parse).
  try {
    VmConfig copy;
    return ApplyRoot(Json(VmConfigToJson(config)), copy);
  } catch (const nlohmann::json::exception& e) {  // not expected: every type is checked first
    return absl::InvalidArgumentError(e.what());
  }
}

}  // namespace mote
