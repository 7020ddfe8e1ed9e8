// libmote::VmConfig and its parts: the flag parsers and the JSON loader of
// the monitor do the checking; this file only moves values between the
// public structs and those.
#include "mote/config.h"

#include <exception>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "vmm/api/config_bridge.h"
#include "vmm/base/status_macros.h"

namespace libmote {
namespace {

using nlohmann::json;

Error ErrorOf(const absl::Status& status) { return Error{std::string(status.message())}; }

// Whether the flag text sets `key` itself ("id=" in "path=a,id=x"); the text
// has been parsed already.
bool HasOption(const std::string& text, const std::string& key) {
  absl::StatusOr<mote::KeyValues> items = mote::SplitKeyValues(text);
  if (!items.ok()) return false;
  for (const auto& item : *items) {
    if (item.first == key) return true;
  }
  return false;
}

// From the monitor's config, through its JSON form (every member present).
VmConfig FromInternal(const mote::VmConfig& internal, const mote::VmConfigExtras& extras) {
  json j = mote::VmConfigToJson(internal, extras);
  VmConfig c;
  c.kernel = j["kernel"];
  c.initrd = j["initrd"];
  c.cmdline = j["cmdline"];
  c.cpus = j["cpus"];
  c.memory = j["memory"];
  c.cpu_template = j["cpu_template"];
  c.pit = j["pit"];
  c.console = j["console"];
  c.transport = j["transport"];
  c.rng = j["rng"];
  c.timeout = j.value("timeout", 0.0);
  c.expect = j["expect"];
  c.on_reboot = j["on_reboot"];
  c.kvm_device = j["kvm_device"];
  for (const json& d : j["disks"]) {
    c.disks.push_back(DiskConfig{d["path"], d["readonly"], d["cache"], d["serial"], d["id"],
                                 d["queues"], d["aio"]});
  }
  for (const json& n : j["nets"]) {
    c.nets.push_back(NetConfig{n.value("tap", ""), n.value("fd", -1), n["mac"]});
  }
  c.api_socket = j["api_socket"];
  c.paused = j["paused"];
  c.name = j["name"];
  c.log_level = j.value("log_level", "");
  return c;
}

}  // namespace

Result<DiskConfig> DiskConfig::Parse(const std::string& text) {
  absl::StatusOr<mote::DiskConfig> parsed = mote::ParseDisk(text, 0);
  if (!parsed.ok()) return ErrorOf(parsed.status());
  DiskConfig disk;
  disk.path = parsed->path;
  disk.readonly = parsed->readonly;
  disk.cache = parsed->cache_none ? "none" : "writeback";
  disk.serial = parsed->serial;
  if (HasOption(text, "id")) disk.id = parsed->id;  // else named by its position later
  disk.queues = parsed->queues;
  disk.aio = parsed->aio_threads ? "threads" : "io_uring";
  return disk;
}

std::string DiskConfig::Syntax() { return mote::SectionSyntax(mote::DiskMembers()); }
std::string NetConfig::Syntax() { return mote::SectionSyntax(mote::NetMembers()); }

Result<NetConfig> NetConfig::Parse(const std::string& text) {
  absl::StatusOr<mote::NetConfig> parsed = mote::ParseNet(text, 0);
  if (!parsed.ok()) return ErrorOf(parsed.status());
  NetConfig net;
  net.tap = parsed->tap;
  net.fd = parsed->fd;
  if (HasOption(text, "mac")) net.mac = mote::FormatMac(parsed->mac);  // else one by position later
  return net;
}

Result<VmConfig> VmConfig::FromJson(const std::string& text) {
  mote::VmConfig internal;
  mote::VmConfigExtras extras;
  if (absl::Status s = mote::ApplyVmConfigJson(text, internal, extras); !s.ok()) return ErrorOf(s);
  return FromInternal(internal, extras);
}

Result<VmConfig> VmConfig::FromJsonFile(const std::string& path) {
  mote::VmConfig internal;
  mote::VmConfigExtras extras;
  if (absl::Status s = mote::LoadVmConfigFile(path, internal, extras); !s.ok()) return ErrorOf(s);
  return FromInternal(internal, extras);
}

std::string VmConfig::ToJson() const {
  // Strings a program put here need not be UTF-8; JSON text must be.
  return mote::api::ToJsonObject(*this).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace libmote

namespace mote::api {

nlohmann::json ToJsonObject(const libmote::VmConfig& c) {
  nlohmann::json j = {
      {"initrd", c.initrd},
      {"cmdline", c.cmdline},
      {"cpus", c.cpus},
      {"memory", c.memory},
      {"cpu_template", c.cpu_template},
      {"pit", c.pit},
      {"console", c.console},
      {"transport", c.transport},
      {"rng", c.rng},
      {"expect", c.expect},
      {"on_reboot", c.on_reboot},
      {"kvm_device", c.kvm_device},
      {"api_socket", c.api_socket},
      {"paused", c.paused},
      {"name", c.name},
  };
  if (!c.log_level.empty()) j["log_level"] = c.log_level;
  if (!c.kernel.empty()) j["kernel"] = c.kernel;
  if (c.timeout != 0) j["timeout"] = c.timeout;
  j["disks"] = nlohmann::json::array();
  for (const libmote::DiskConfig& d : c.disks) j["disks"].push_back(DiskToJson(d));
  j["nets"] = nlohmann::json::array();
  for (const libmote::NetConfig& n : c.nets) j["nets"].push_back(NetToJson(n));
  return j;
}

nlohmann::json DiskToJson(const libmote::DiskConfig& d) {
  nlohmann::json disk = {{"path", d.path},     {"readonly", d.readonly}, {"cache", d.cache},
                         {"serial", d.serial}, {"queues", d.queues},     {"aio", d.aio}};
  if (!d.id.empty()) disk["id"] = d.id;
  return disk;
}

nlohmann::json NetToJson(const libmote::NetConfig& n) {
  nlohmann::json net = nlohmann::json::object();
  if (!n.tap.empty()) net["tap"] = n.tap;
  if (n.fd >= 0 || n.tap.empty()) net["fd"] = n.fd;  // neither: the loader says so
  if (!n.mac.empty()) net["mac"] = n.mac;
  return net;
}

absl::StatusOr<InternalConfig> ToInternal(const libmote::VmConfig& config) {
  InternalConfig out;
  std::string text = config.ToJson();
  // No "config: " label: these are the program's values, not a file's.
  MOTE_RETURN_IF_ERROR(ApplyVmConfigJson(text, out.config, out.extras, ""));
  return out;
}

}  // namespace mote::api
