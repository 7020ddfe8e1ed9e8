// AuditLog: one line per control-socket command that changes the VM's state
// (stop, cont, quit, system_reset, system_powerdown, migrate, ...), saying
// who asked (the peer's pid, uid and gid, from SO_PEERCRED), what, and what
// came of it, as libvirt's audit trail does. A JSON object per line,
// appended to --audit-log FILE (created 0600); without one, the same line
// goes to mote's log ("audit: {...}") at debug level: an agent that stops
// and resumes a VM thousands of times must not fill stderr unasked.
// Thread-safety: Record from one thread at a time (the loop thread).
#ifndef MOTE_VMM_AUDIT_LOG_H_
#define MOTE_VMM_AUDIT_LOG_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "vmm/base/fd.h"
#include "vmm/qmp/qmp_server.h"

namespace mote {

class AuditLog {
 public:
  // `path` "": to the log. Errors name the file.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path);

  // The line: {"time": "2026-12-07T10:00:00.123Z", "pid": ..., "uid": ...,
  // "gid": ..., "command": ..., "arguments": {...}, "result": "ok"} or
  // "result": {"error": CLASS, "desc": TEXT}.
  static nlohmann::json Line(const qmp::Peer& peer, const std::string& command,
                             const nlohmann::json& arguments, const qmp::QmpResult& result);
  void Record(const qmp::Peer& peer, const std::string& command, const nlohmann::json& arguments,
              const qmp::QmpResult& result);

 private:
  explicit AuditLog(FileDescriptor fd) : fd_(std::move(fd)) {}
  FileDescriptor fd_;  // not ok(): the log
};

}  // namespace mote

#endif  // MOTE_VMM_AUDIT_LOG_H_
