// The VM description file of `mote run --config FILE`: one JSON object whose
// members are the `mote run` flags in snake_case (docs/vm-config.md, schema in
// docs/vm-config.schema.json, example in examples/vm.json). Loading checks
// every member with the same parsers the flags use (vmm/vm_config.h), and
// errors name the member by its JSON path ("config: disks[1].cache: ...").
// Pure functions on values, no exceptions escape; any thread.
#ifndef MOTE_VMM_CONFIG_JSON_H_
#define MOTE_VMM_CONFIG_JSON_H_

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "vmm/vm_config.h"

namespace mote {

// The members of a VM description that VmConfig has no field for (yet).
// Named apart from vm_runner.h's RunOptions, which holds the first three.
struct VmConfigExtras {
  std::string api_socket;  // QMP control socket path; empty: none
  bool paused = false;     // vCPUs wait for QMP `cont`
  std::string name;        // what QMP query-name reports
  std::string log_level;   // trace, debug, info, warn, error or off; empty: not set (info)
};

// Parses a VM description (the JSON text of a --config file) on top of what
// `config` and `extras` hold: members that are present replace the field
// (`disks` and `nets` replace the whole list), absent ones leave it alone.
// The result must pass VmConfig::Validate. On error, nothing is changed, and
// the message starts with `label` ("config: disks[1].cache: ...").
absl::Status ApplyVmConfigJson(const std::string& json_text, VmConfig& config,
                               VmConfigExtras& extras, const std::string& label = "config: ");
// As above; the members that belong in VmConfigExtras are checked and dropped.
absl::Status ApplyVmConfigJson(const std::string& json_text, VmConfig& config);

// Reads `path` (at most 1 MiB) and applies it; read errors say
// "cannot read config PATH: ...".
absl::Status LoadVmConfigFile(const std::string& path, VmConfig& config, VmConfigExtras& extras);
absl::Status LoadVmConfigFile(const std::string& path, VmConfig& config);

// The configuration as a VM description (same schema; every member except an
// unset timeout and a NIC's unused tap/fd), for query-style output and round
// trips. Strings are copied as they are: dump() it with
// nlohmann::json::error_handler_t::replace if they may not be UTF-8.
nlohmann::json VmConfigToJson(const VmConfig& config);
nlohmann::json VmConfigToJson(const VmConfig& config, const VmConfigExtras& extras);

}  // namespace mote

#endif  // MOTE_VMM_CONFIG_JSON_H_
