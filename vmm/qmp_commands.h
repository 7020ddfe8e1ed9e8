// The QMP command table: every command mote answers is declared here once,
// with its arguments and its handler, a typed method of VmRunner. The socket's
// dispatcher, query-commands and the argument errors all come from it.
// Adding a command: a method on VmRunner (loop thread) and one row here.
// Thread-safety: the table is immutable; handlers run on the loop thread.
#ifndef MOTE_VMM_QMP_COMMANDS_H_
#define MOTE_VMM_QMP_COMMANDS_H_

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "vmm/qmp/qmp_server.h"

namespace mote {

class VmRunner;

struct QmpArgument {
  const char* name;
  nlohmann::json::value_t type;  // string, boolean, number_unsigned, ...
  bool required = true;
};

struct QmpCommand {
  const char* name;
  std::vector<QmpArgument> arguments;
  // Runs with arguments already checked against `arguments`.
  std::function<qmp::QmpResult(VmRunner& runner, const nlohmann::json& arguments)> run;
  // It changes the VM's state (stop, quit, migrate, ...): each call is
  // audited (vmm/audit_log.h), whatever its result.
  bool changes_state = false;
};

// In the order query-commands lists them.
const std::vector<QmpCommand>& QmpCommands();
const QmpCommand* FindQmpCommand(std::string_view name);

// QEMU's argument errors (GenericError, naming the argument): an unexpected
// one, a missing one, one of the wrong type. nullopt: the arguments fit.
std::optional<qmp::QmpError> CheckArguments(const QmpCommand& command,
                                            const nlohmann::json& arguments);

}  // namespace mote

#endif  // MOTE_VMM_QMP_COMMANDS_H_
