#include "vmm/vm_cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "vmm/base/fd.h"
#include "vmm/base/status_macros.h"

namespace mote {
namespace {

constexpr long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC
constexpr char kVcpuGroup[] = "vcpus";

// Writes `value` to the cgroup file `dir/name` in one write(2), as the
// kernel wants; its refusal comes back naming the file.
absl::Status WriteFile(const std::string& dir, const std::string& name, const std::string& value) {
  std::string path = dir + "/" + name;
  FileDescriptor fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.ok()) return ErrnoToStatus(errno, "cgroup: open " + path);
  if (write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return ErrnoToStatus(errno, absl::StrCat("cgroup: write '", value, "' to ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return ErrnoToStatus(errno, "cgroup: open " + path);
  char buf[4096];
  ssize_t n = read(fd.get(), buf, sizeof(buf));
  if (n < 0) return ErrnoToStatus(errno, "cgroup: read " + path);
  return std::string(absl::StripTrailingAsciiWhitespace(absl::string_view(buf, n)));
}

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "cgroup: mkdir " + path);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<VmCgroup>> VmCgroup::Join(const std::string& given,
                                                         const CgroupLimits& limits) {
  std::string path = given.front() == '/' ? given : "/sys/fs/cgroup/" + given;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  // Its ancestors, from the top, down to its parent.
  std::vector<std::string> ancestors;
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    ancestors.push_back(path.substr(0, slash));
  }
  // The hierarchy's root is the topmost ancestor on a cgroup2 file system.
  size_t root = ancestors.size();
  for (size_t i = 0; i < ancestors.size(); ++i) {
    struct statfs fs;
    if (statfs(ancestors[i].c_str(), &fs) == 0 && fs.f_type == kCgroup2Magic) {
      root = i;
      break;
    }
  }
  if (root == ancestors.size()) {
    return absl::FailedPreconditionError("cgroup: " + path +
                                         " is not in a cgroup v2 hierarchy (mount -t cgroup2)");
  }
  // Each group from the root down hands its children the controllers the
  // limits need; the groups in between are made if missing.
  bool cpu = !limits.cpu_max.empty() || !limits.vcpu_cpu_max.empty();
  bool io = !limits.io_max.empty() || limits.io_weight != 0;
  // Only what is missing is written: a group an agent made and delegated to
  // mote's user has them already, and its ancestors are not that user's.
  for (size_t i = root; i < ancestors.size(); ++i) {
    MOTE_RETURN_IF_ERROR(MakeDir(ancestors[i]));
    MOTE_ASSIGN_OR_RETURN(std::string enabled, ReadFile(ancestors[i] + "/cgroup.subtree_control"));
    std::vector<std::string> have = absl::StrSplit(enabled, ' ');
    for (auto [wanted, controller] :
         {std::pair{cpu, "cpu"}, std::pair{limits.memory_max != 0, "memory"},
          std::pair{io, "io"}}) {
      if (wanted && std::find(have.begin(), have.end(), controller) == have.end()) {
        MOTE_RETURN_IF_ERROR(
            WriteFile(ancestors[i], "cgroup.subtree_control", absl::StrCat("+", controller)));
      }
    }
  }
  MOTE_RETURN_IF_ERROR(MakeDir(path));
  if (!limits.cpu_max.empty()) MOTE_RETURN_IF_ERROR(WriteFile(path, "cpu.max", limits.cpu_max));
  if (limits.memory_max != 0) {
    MOTE_RETURN_IF_ERROR(WriteFile(path, "memory.max", absl::StrCat(limits.memory_max)));
  }
  if (!limits.io_max.empty()) MOTE_RETURN_IF_ERROR(WriteFile(path, "io.max", limits.io_max));
  if (limits.io_weight != 0) {
    MOTE_RETURN_IF_ERROR(WriteFile(path, "io.weight", absl::StrCat(limits.io_weight)));
  }
  bool vcpu_group = !limits.vcpu_cpu_max.empty();
  if (vcpu_group) {
    // A threaded child: threads of one process may sit in different groups
    // only below a threaded domain, and only for threaded controllers (cpu).
    std::string vcpus = path + "/" + kVcpuGroup;
    MOTE_RETURN_IF_ERROR(MakeDir(vcpus));
    MOTE_ASSIGN_OR_RETURN(std::string type, ReadFile(vcpus + "/cgroup.type"));
    if (type != "threaded") MOTE_RETURN_IF_ERROR(WriteFile(vcpus, "cgroup.type", "threaded"));
    MOTE_RETURN_IF_ERROR(WriteFile(path, "cgroup.subtree_control", "+cpu"));
    MOTE_RETURN_IF_ERROR(WriteFile(vcpus, "cpu.max", limits.vcpu_cpu_max));
  }
  // Started in it already (by an agent): moving needs rights over the common
  // ancestor, which a delegated user has not.
  MOTE_ASSIGN_OR_RETURN(std::string own, ReadFile("/proc/self/cgroup"));
  std::string relative = path.substr(ancestors[root].size());  // "/mote/vm1"
  if (own != "0::" + relative) {
    MOTE_RETURN_IF_ERROR(WriteFile(path, "cgroup.procs", absl::StrCat(getpid())));
  }
  return std::unique_ptr<VmCgroup>(new VmCgroup(path, vcpu_group));
}

absl::Status VmCgroup::PlaceVcpus(const std::vector<int>& thread_ids) const {
  if (!vcpu_group_) return absl::OkStatus();
  for (int tid : thread_ids) {
    MOTE_RETURN_IF_ERROR(WriteFile(path_ + "/" + kVcpuGroup, "cgroup.threads", absl::StrCat(tid)));
  }
  return absl::OkStatus();
}

}  // namespace mote
