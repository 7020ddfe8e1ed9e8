#include "vmm/snapshot/snapshot_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include "absl/strings/str_format.h"
#include "vmm/base/fd.h"
#include "vmm/base/status_macros.h"
#include "vmm/config_json.h"
#include "vmm/snapshot/restore_error.h"

namespace mote {
namespace {

absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp";
  FileDescriptor fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.ok()) return ErrnoToStatus(errno, "create " + tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoToStatus(n < 0 ? errno : EIO, "write " + tmp);
    done += n;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) return ErrnoToStatus(errno, "rename " + tmp);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return RestoreError(RestoreFailure::kUnreadable,
                        absl::StrFormat("snapshot: cannot read %s: %s", path,
                                        std::strerror(errno ? errno : ENOENT)));
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Members that belong to this run, not to the machine a snapshot holds.
const std::set<std::string>& RunTimeMembers() {
  static const std::set<std::string> names = {
      "console",       "timeout",          "expect",
      "api_socket",    "paused",           "name",
      "log_level",     "kvm_device",       "restore",
      "incoming",      "dirty_ring",       "audit_log",
      "seccomp",       "api_socket_mode",  "api_socket_group",
      "cgroup",        "cgroup_cpu_max",   "cgroup_memory_max",
      "cgroup_io_max", "cgroup_io_weight", "cgroup_vcpu_cpu_max"};
  return names;
}

}  // namespace

std::string MachineConfigJson(const VmConfig& config) {
  // The run-time members as their defaults: a restore takes its own.
  VmConfig machine = config;
  VmConfig defaults;
  machine.console = defaults.console;
  machine.timeout = defaults.timeout;
  machine.expect = defaults.expect;
  machine.api_socket = defaults.api_socket;
  machine.paused = defaults.paused;
  machine.name = defaults.name;
  machine.log_level = defaults.log_level;
  machine.kvm_device = defaults.kvm_device;
  machine.dirty_ring = defaults.dirty_ring;
  machine.audit_log = defaults.audit_log;
  machine.restore = defaults.restore;
  machine.incoming = defaults.incoming;
  return VmConfigToJson(machine).dump(2) + "\n";
}

absl::StatusOr<MemoryFileStats> WriteSnapshotDir(const std::string& dir, const VmConfig& config,
                                                 const StateFile& state, const GuestMemory& mem,
                                                 const PageBitmap* pages) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "snapshot directory " + dir);
  }
  MOTE_RETURN_IF_ERROR(
      WriteFileAtomically(dir + "/" + kSnapshotConfigFile, MachineConfigJson(config)));
  std::string memory_tmp = dir + "/" + kSnapshotMemoryFile + ".tmp";
  MOTE_ASSIGN_OR_RETURN(MemoryFileStats stats, WriteMemoryFile(mem, memory_tmp, pages));
  std::string memory_path = dir + "/" + kSnapshotMemoryFile;
  if (rename(memory_tmp.c_str(), memory_path.c_str()) != 0) {
    return ErrnoToStatus(errno, "rename " + memory_tmp);
  }
  std::vector<uint8_t> encoded = state.Encode();
  // The state file last: its presence means the snapshot is whole.
  MOTE_RETURN_IF_ERROR(WriteFileAtomically(dir + "/" + kSnapshotStateFile,
                                           std::string(encoded.begin(), encoded.end())));
  return stats;
}

void RemoveSnapshotDir(const std::string& dir) {
  for (const char* name : {kSnapshotConfigFile, kSnapshotStateFile, kSnapshotMemoryFile}) {
    unlink((dir + "/" + name).c_str());
  }
  rmdir(dir.c_str());
}

absl::StatusOr<StateFile> ReadSnapshotState(const std::string& dir) {
  MOTE_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(dir + "/" + kSnapshotStateFile));
  return StateFile::Parse(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

absl::StatusOr<VmConfig> ResolveRestoreConfig(const VmConfig& user) {
  MOTE_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(user.restore + "/" + kSnapshotConfigFile));
  VmConfig snapshot;
  if (absl::Status s = ApplyVmConfigJson(text, snapshot, "snapshot config.json: "); !s.ok()) {
    return RestoreError(RestoreFailure::kCorrupt, std::string(s.message()));
  }
  nlohmann::json mine = VmConfigToJson(user);
  nlohmann::json defaults = VmConfigToJson(VmConfig{});
  nlohmann::json merged = VmConfigToJson(snapshot);
  for (auto& [name, value] : mine.items()) {
    bool set = !defaults.contains(name) || defaults[name] != value;
    if (set || RunTimeMembers().count(name)) merged[name] = value;
  }
  for (const std::string& name : RunTimeMembers()) {
    if (!mine.contains(name)) merged.erase(name);
  }
  VmConfig resolved;
  MOTE_RETURN_IF_ERROR(ApplyVmConfigJson(merged.dump(), resolved, "restore: "));
  FillDefaultNames(resolved);
  return resolved;
}

}  // namespace mote
