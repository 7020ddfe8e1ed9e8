// A snapshot directory (docs/snapshot.md): config.json (the machine, as a
// VM description), state.bin (a StateFile: CPUs and devices) and
// memory.raw (a sparse image of guest RAM). Written under temporary names
// and renamed, so a directory never holds half a snapshot under the final
// names.
// Functions; any thread.
#ifndef MOTE_VMM_SNAPSHOT_SNAPSHOT_DIR_H_
#define MOTE_VMM_SNAPSHOT_SNAPSHOT_DIR_H_

#include <string>

#include "absl/status/statusor.h"
#include "vmm/base/guest_memory.h"
#include "vmm/snapshot/memory_file.h"
#include "vmm/snapshot/state_file.h"
#include "vmm/vm_config.h"

namespace mote {

inline constexpr char kSnapshotConfigFile[] = "config.json";
inline constexpr char kSnapshotStateFile[] = "state.bin";
inline constexpr char kSnapshotMemoryFile[] = "memory.raw";

// The machine part of `config` as a VM description (JSON text): the
// run-time members (console, timeout, sockets, ...) left at their defaults.
std::string MachineConfigJson(const VmConfig& config);

// Creates `dir` if needed (its parent must exist) and writes the three
// files; with `pages`, only those pages of memory (an incremental snapshot).
absl::StatusOr<MemoryFileStats> WriteSnapshotDir(const std::string& dir, const VmConfig& config,
                                                 const StateFile& state, const GuestMemory& mem,
                                                 const PageBitmap* pages = nullptr);

// Removes the three files of a snapshot and the directory (best effort).
void RemoveSnapshotDir(const std::string& dir);

// The state file of the snapshot in `dir`, parsed and checked.
absl::StatusOr<StateFile> ReadSnapshotState(const std::string& dir);

// The configuration a restore from `user.restore` runs with: the
// snapshot's machine, with every member `user` sets to other than its
// default in its place (a disk's new path, a TAP on this host), and the
// run-time members (console, timeout, expect, api_socket, paused, name,
// log level, KVM device) always the user's.
absl::StatusOr<VmConfig> ResolveRestoreConfig(const VmConfig& user);

}  // namespace mote

#endif  // MOTE_VMM_SNAPSHOT_SNAPSHOT_DIR_H_
