// libmote::VmConfig's own functions: each goes through the monitor's member
// tables (vmm/vm_config.h) and JSON reader (vmm/config_json.h), so a
// program, a file and the flags are checked by one piece of code and errors
// name the member the same way.
#include "mote/config.h"

#include "vmm/config_json.h"
#include "vmm/vm_config.h"

namespace libmote {
namespace {

Error ErrorOf(const absl::Status& status) { return Error{std::string(status.message())}; }

template <typename T>
Result<T> ResultOf(absl::StatusOr<T> parsed) {
  if (!parsed.ok()) return ErrorOf(parsed.status());
  return *std::move(parsed);
}

}  // namespace

Result<DiskConfig> DiskConfig::Parse(const std::string& text) {
  return ResultOf(mote::ParseDisk(text));
}

Result<NetConfig> NetConfig::Parse(const std::string& text) {
  return ResultOf(mote::ParseNet(text));
}

std::string DiskConfig::Syntax() { return mote::SectionSyntax(mote::DiskMembers()); }
std::string NetConfig::Syntax() { return mote::SectionSyntax(mote::NetMembers()); }

Result<VmConfig> VmConfig::FromJson(const std::string& text) {
  VmConfig config;
  if (absl::Status s = mote::ApplyVmConfigJson(text, config); !s.ok()) return ErrorOf(s);
  return config;
}

Result<VmConfig> VmConfig::FromJsonFile(const std::string& path) {
  VmConfig config;
  if (absl::Status s = mote::LoadVmConfigFile(path, config); !s.ok()) return ErrorOf(s);
  return config;
}

Status VmConfig::SetMember(const std::string& name, const std::string& json_value) {
  nlohmann::ordered_json value = nlohmann::ordered_json::parse(json_value, nullptr, false);
  if (value.is_discarded()) return Error{name + ": not JSON"};
  if (absl::Status s = mote::ApplyVmConfigMember(name, value, *this); !s.ok()) return ErrorOf(s);
  return Status();
}

std::string VmConfig::ToJson() const {
  // Strings a program put here need not be UTF-8; JSON text must be.
  return mote::VmConfigToJson(*this).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace libmote
