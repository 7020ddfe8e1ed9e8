#include "vmm/qmp_commands.h"

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "vmm/vm_config.h"
#include "vmm/vm_runner.h"

namespace mote {
namespace {

using nlohmann::json;

qmp::QmpResult Reply(const absl::Status& status) {
  if (!status.ok()) return qmp::QmpError{"GenericError", std::string(status.message())};
  return json::object();
}

template <class T>
qmp::QmpResult Reply(absl::StatusOr<T> result) {
  if (!result.ok()) return Reply(result.status());
  return json(*std::move(result));
}

// A row for a handler that takes no arguments.
template <class Handler>
QmpCommand Row(const char* name, Handler handler) {
  return {name, {}, [handler](VmRunner& runner, const json&) { return Reply(handler(runner)); }};
}

// `first`, then each rate limit (vmm/vm_config.h). QEMU requires a disk's
// rates and leaves their bursts (*_max) optional.
std::vector<QmpArgument> RateArguments(std::vector<QmpArgument> first,
                                       const std::vector<const char*>& names, bool rates_required) {
  for (const char* name : names) {
    first.push_back(
        {name, json::value_t::number_unsigned, rates_required && !absl::EndsWith(name, "_max")});
  }
  return first;
}

// A row whose command changes the VM's state: audited.
QmpCommand Audited(QmpCommand row) {
  row.changes_state = true;
  return row;
}

const char* TypeName(json::value_t type) {
  switch (type) {
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    case json::value_t::object:
      return "object";
    case json::value_t::array:
      return "array";
    default:
      return "null";
  }
}

bool HasType(const json& value, json::value_t type) {
  switch (type) {
    case json::value_t::number_unsigned:  // parsed text gives unsigned, C++ literals signed
      return value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0);
    case json::value_t::number_integer:
      return value.is_number_integer();
    case json::value_t::number_float:
      return value.is_number();
    default:
      return value.type() == type;
  }
}

}  // namespace

const std::vector<QmpCommand>& QmpCommands() {
  static const std::vector<QmpCommand> commands = {
      // The server answers it during negotiation; listed, and harmless after.
      Row("qmp_capabilities", [](VmRunner&) { return absl::StatusOr<json>(json::object()); }),
      Row("query-version", [](VmRunner& r) { return absl::StatusOr<json>(r.QueryVersion()); }),
      Row("query-name", [](VmRunner& r) { return absl::StatusOr<json>(r.QueryName()); }),
      Row("query-status",
          [](VmRunner& r) { return absl::StatusOr<control::RunState>(r.QueryStatus()); }),
      Row("query-commands",
          [](VmRunner&) {
            json list = json::array();
            for (const QmpCommand& c : QmpCommands()) list.push_back({{"name", c.name}});
            return absl::StatusOr<json>(list);
          }),
      Audited(Row("stop", [](VmRunner& r) { return r.Stop(); })),
      Audited(Row("cont", [](VmRunner& r) { return r.Cont(); })),
      Audited(Row("system_reset", [](VmRunner& r) { return r.SystemReset(); })),
      Audited(Row("system_powerdown", [](VmRunner& r) { return r.SystemPowerdown(); })),
      Audited(Row("system_wakeup", [](VmRunner& r) { return r.SystemWakeup(); })),
      Audited(Row("quit", [](VmRunner& r) { return r.Quit(); })),
      Row("query-cpus-fast", [](VmRunner& r) { return r.QueryCpus(); }),
      Row("query-memory-size-summary", [](VmRunner& r) { return r.QueryMemorySize(); }),
      Row("query-block", [](VmRunner& r) { return r.QueryBlock(); }),
      Row("query-blockstats", [](VmRunner& r) { return r.QueryBlockStats(); }),
      {"migrate",
       {{"uri", json::value_t::string},
        {"x-mote-incremental", json::value_t::boolean, /*required=*/false}},
       [](VmRunner& r, const json& args) {
         return Reply(
             r.Migrate(args.at("uri").get<std::string>(), args.value("x-mote-incremental", false)));
       },
       /*changes_state=*/true},
      Row("query-migrate", [](VmRunner& r) { return absl::StatusOr<json>(r.QueryMigrate()); }),
      Audited(Row("migrate_cancel", [](VmRunner& r) { return r.MigrateCancel(); })),
      Audited(Row("migrate-start-postcopy", [](VmRunner& r) { return r.MigrateStartPostcopy(); })),
      {"migrate-set-capabilities",
       {{"capabilities", json::value_t::array}},
       [](VmRunner& r, const json& args) {
         return Reply(r.MigrateSetCapabilities(args.at("capabilities")));
       },
       /*changes_state=*/true},
      {"migrate-set-parameters",
       {{"downtime-limit", json::value_t::number_unsigned, /*required=*/false},
        {"max-bandwidth", json::value_t::number_unsigned, /*required=*/false}},
       [](VmRunner& r, const json& args) { return Reply(r.MigrateSetParameters(args)); },
       /*changes_state=*/true},
      {"block_set_io_throttle",
       RateArguments(
           {{"device", json::value_t::string, false}, {"id", json::value_t::string, false}},
           DiskThrottleNames(), /*rates_required=*/true),
       [](VmRunner& r, const json& args) { return Reply(r.SetIoThrottle(args)); },
       /*changes_state=*/true},
      // mote's own (README: Control socket).
      {"x-mote-set-net-throttle",
       RateArguments({{"index", json::value_t::number_unsigned}}, NetThrottleNames(),
                     /*rates_required=*/false),
       [](VmRunner& r, const json& args) { return Reply(r.SetNetThrottleFromQmp(args)); },
       /*changes_state=*/true},
      Row("x-mote-query-counters", [](VmRunner& r) { return r.QueryCounters(); }),
  };
  return commands;
}

const QmpCommand* FindQmpCommand(std::string_view name) {
  for (const QmpCommand& c : QmpCommands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

std::optional<qmp::QmpError> CheckArguments(const QmpCommand& command, const json& arguments) {
  auto error = [](std::string desc) { return qmp::QmpError{"GenericError", std::move(desc)}; };
  for (const auto& [key, value] : arguments.items()) {
    const QmpArgument* declared = nullptr;
    for (const QmpArgument& a : command.arguments) {
      if (key == a.name) declared = &a;
    }
    if (declared == nullptr) return error(absl::StrFormat("Parameter '%s' is unexpected", key));
    if (!HasType(value, declared->type)) {
      return error(absl::StrFormat("Invalid parameter type for '%s', expected: %s", key,
                                   TypeName(declared->type)));
    }
  }
  for (const QmpArgument& a : command.arguments) {
    if (a.required && !arguments.contains(a.name)) {
      return error(absl::StrFormat("Parameter '%s' is missing", a.name));
    }
  }
  return std::nullopt;
}

}  // namespace mote
