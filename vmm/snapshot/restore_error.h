// Why a snapshot could not be restored (or a migration stream not taken),
// carried on an absl::Status so that `mote run` can exit with a code of its
// own for each (README: "Exit codes"). Pure functions; any thread.
#ifndef MOTE_VMM_SNAPSHOT_RESTORE_ERROR_H_
#define MOTE_VMM_SNAPSHOT_RESTORE_ERROR_H_

#include <string>

#include "absl/status/status.h"

namespace mote {

// The values are the process exit codes (even, as mote's own codes are).
enum class RestoreFailure {
  kUnreadable = 20,   // no snapshot there, or a file cannot be read
  kCorrupt = 22,      // truncated, bad checksum, bad section
  kNewerFormat = 24,  // written by a newer mote
  kCpuid = 26,        // the guest's CPUID is more than this host's KVM gives
  kLayout = 28,       // vCPUs, memory size or devices differ from the snapshot
  kMemoryFile = 30,   // the memory file is missing or of the wrong size
};

absl::Status RestoreError(RestoreFailure why, const std::string& message);
// The exit code a restore error asks for; 0 for any other status.
int RestoreExitCode(const absl::Status& status);

}  // namespace mote

#endif  // MOTE_VMM_SNAPSHOT_RESTORE_ERROR_H_
