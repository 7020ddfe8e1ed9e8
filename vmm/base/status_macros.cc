#include "vmm/base/status_macros.h"

#include <cerrno>
#include <cstring>

namespace mote {

absl::Status ErrnoToStatus(int err, const std::string& context) {
  std::string message = context + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EINVAL:
    case E2BIG:
      return absl::InvalidArgumentError(message);
    case EEXIST:
    case EBUSY:
      return absl::AlreadyExistsError(message);
    case ENOMEM:
    case ENOSPC:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace mote
