// Between libmote's public VmConfig (std types, the JSON description's
// member names) and the monitor's own VmConfig. The public one goes through
// the JSON loader (vmm/config_json.h), so a program, a file and the flags are
// checked by one piece of code and errors name the member the same way.
// Pure functions; any thread.
#ifndef MOTE_VMM_API_CONFIG_BRIDGE_H_
#define MOTE_VMM_API_CONFIG_BRIDGE_H_

#include "absl/status/statusor.h"
#include "mote/config.h"
#include "nlohmann/json.hpp"
#include "vmm/config_json.h"
#include "vmm/vm_config.h"

namespace mote::api {

struct InternalConfig {
  VmConfig config;
  VmConfigExtras extras;
};

// Checks `config`; errors name the member ("disks[0].cache: ...").
absl::StatusOr<InternalConfig> ToInternal(const libmote::VmConfig& config);

// The public description as a JSON object (libmote::VmConfig::ToJson), and
// one disk or NIC as an item of its "disks" or "nets".
nlohmann::json ToJsonObject(const libmote::VmConfig& config);
nlohmann::json DiskToJson(const libmote::DiskConfig& disk);
nlohmann::json NetToJson(const libmote::NetConfig& net);

}  // namespace mote::api

#endif  // MOTE_VMM_API_CONFIG_BRIDGE_H_
