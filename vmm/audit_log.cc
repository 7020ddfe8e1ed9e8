#include "vmm/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "vmm/base/logging.h"
#include "vmm/base/status_macros.h"

namespace mote {

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  if (path.empty()) return std::unique_ptr<AuditLog>(new AuditLog(FileDescriptor()));
  FileDescriptor fd(
      ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.ok()) return ErrnoToStatus(errno, "--audit-log " + path);
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(fd)));
}

nlohmann::json AuditLog::Line(const qmp::Peer& peer, const std::string& command,
                              const nlohmann::json& arguments, const qmp::QmpResult& result) {
  nlohmann::json outcome = "ok";
  if (const auto* error = std::get_if<qmp::QmpError>(&result)) {
    outcome = {{"error", error->error_class}, {"desc", error->desc}};
  }
  return {{"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone())},
          {"pid", peer.pid},
          {"uid", peer.uid},
          {"gid", peer.gid},
          {"command", command},
          {"arguments", arguments},
          {"result", outcome}};
}

void AuditLog::Record(const qmp::Peer& peer, const std::string& command,
                      const nlohmann::json& arguments, const qmp::QmpResult& result) {
  std::string text = Line(peer, command, arguments, result)
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (!fd_.ok()) {
    spdlog::debug("audit: {}", text);
    return;
  }
  text += '\n';
  // One write with O_APPEND: lines from several motes sharing a file do not mix.
  if (::write(fd_.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    static RateLimiter limiter;
    MOTE_LOG_LIMITED(limiter, spdlog::level::warn, "audit log: write failed: {}",
                     std::strerror(errno));
  }
}

}  // namespace mote
