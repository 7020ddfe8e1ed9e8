// The VM description file of `mote run --config FILE`: one JSON object whose
// members are the `mote run` flags in snake_case (docs/vm-config.md, schema in
// docs/vm-config.schema.json, example in examples/vm.json). Loading checks
// every member through the member table the flags use (vmm/vm_config.h), and
// errors name the member by its JSON path ("config: disks[1].cache: ...").
// Pure functions on values, no exceptions escape; any thread.
#ifndef MOTE_VMM_CONFIG_JSON_H_
#define MOTE_VMM_CONFIG_JSON_H_

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "vmm/vm_config.h"

namespace mote {

// Parses a VM description (the JSON text of a --config file) on top of what
// `config` holds: members that are present replace the field (`disks` and
// `nets` replace the whole list), absent ones leave it alone. On error,
// nothing is changed, and the message starts with `label` ("config:
// disks[1].cache: ...").
absl::Status ApplyVmConfigJson(const std::string& json_text, VmConfig& config,
                               const std::string& label = "config: ");

// One member set from its JSON value ("memory", "2G"), after checking it
// alone, as in a description of only it and a kernel; errors name it.
absl::Status ApplyVmConfigMember(const std::string& name, const nlohmann::ordered_json& value,
                                 VmConfig& config);

// Reads `path` (at most 1 MiB) and applies it; read errors say
// "cannot read config PATH: ...".
absl::Status LoadVmConfigFile(const std::string& path, VmConfig& config);

// The configuration as a VM description (same schema; every member except
// those whose empty value means the default: timeout 0, a disk's unset id, a
// NIC's unset MAC and unused tap or fd, an unset kernel or log level). Strings
// are copied as they are: dump() it with nlohmann::json::error_handler_t::replace
// if they may not be UTF-8.
nlohmann::json VmConfigToJson(const VmConfig& config);

// Checks a whole configuration, however it was filled (the C++ API fills the
// struct directly), by the members' own rules: errors name the member as a
// description would ("cpus: expected an integer from 1 to 254").
absl::Status ValidateConfig(const VmConfig& config);

}  // namespace mote

#endif  // MOTE_VMM_CONFIG_JSON_H_
