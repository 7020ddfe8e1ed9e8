// Early-return helpers for absl::Status / absl::StatusOr, which this Debian
// Abseil (20220623) does not provide, and ErrnoToStatus for syscall failures.
// Header only; thread-compatible.
#ifndef MOTE_VMM_BASE_STATUS_MACROS_H_
#define MOTE_VMM_BASE_STATUS_MACROS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MOTE_STATUS_CONCAT_INNER_(a, b) a##b
#define MOTE_STATUS_CONCAT_(a, b) MOTE_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define MOTE_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status mote_status_ = (expr);        \
    if (!mote_status_.ok()) return mote_status_; \
  } while (0)

// `lhs = value of expr` (an absl::StatusOr<T>), or returns its status.
#define MOTE_ASSIGN_OR_RETURN(lhs, expr) \
  MOTE_ASSIGN_OR_RETURN_IMPL_(MOTE_STATUS_CONCAT_(mote_statusor_, __LINE__), lhs, expr)
#define MOTE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

namespace mote {

// Maps an errno value to a Status whose message is "context: strerror(err)".
absl::Status ErrnoToStatus(int err, const std::string& context);

}  // namespace mote

#endif  // MOTE_VMM_BASE_STATUS_MACROS_H_
