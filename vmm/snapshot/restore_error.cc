#include "vmm/snapshot/restore_error.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"

namespace mote {
namespace {

constexpr char kPayloadUrl[] = "mote/restore-failure";

}  // namespace

absl::Status RestoreError(RestoreFailure why, const std::string& message) {
  absl::Status status = absl::FailedPreconditionError(message);
  status.SetPayload(kPayloadUrl, absl::Cord(std::to_string(static_cast<int>(why))));
  return status;
}

int RestoreExitCode(const absl::Status& status) {
  auto payload = status.GetPayload(kPayloadUrl);
  int code = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &code)) return 0;
  return code;
}

}  // namespace mote
