#include "vmm/jail.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "virtio/tap.h"
#include "vmm/base/fd.h"
#include "vmm/base/status_macros.h"
#include "vmm/vm_cgroup.h"

namespace mote {
namespace {

namespace fs = std::filesystem;

absl::Status Errno(const std::string& what) { return ErrnoToStatus(errno, "--jail: " + what); }

std::string Absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ignored;
  return fs::absolute(path, ignored).lexically_normal().string();
}

// What the VM reads and writes, by absolute path, so that it finds them
// after pivot_root at the same place.
void MakePathsAbsolute(libmote::VmConfig& config) {
  for (std::string* path : {&config.kernel, &config.initrd, &config.console.path,
                            &config.api_socket, &config.audit_log, &config.restore}) {
    *path = Absolute(*path);
  }
  for (libmote::DiskConfig& disk : config.disks) disk.path = Absolute(disk.path);
  for (libmote::FwCfgConfig& item : config.fw_cfg) item.file = Absolute(item.file);
  if (absl::StartsWith(config.incoming, "unix:")) {
    config.incoming = "unix:" + Absolute(config.incoming.substr(5));
  }
}

// The directories above `path` inside the jail's root, made as needed.
absl::Status MakeParents(const std::string& path) {
  std::error_code error;
  fs::create_directories(fs::path(path).parent_path(), error);
  if (error) return absl::InternalError("--jail: mkdir " + path + ": " + error.message());
  return absl::OkStatus();
}

// `source` bind-mounted at its own path under `root`: read-only, or
// writable; never with set-uid programs or device nodes.
absl::Status Bind(const std::string& root, const std::string& source, bool writable) {
  struct stat st;
  if (stat(source.c_str(), &st) != 0) return Errno(source);
  std::string target = root + source;
  MOTE_RETURN_IF_ERROR(MakeParents(target));
  if (S_ISDIR(st.st_mode)) {
    if (mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir " + target);
  } else {
    FileDescriptor placeholder(open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    if (!placeholder.ok() && errno != EEXIST) return Errno("create " + target);
  }
  if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return Errno("bind " + source);
  }
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | (writable ? 0 : MS_RDONLY);
  if (mount(nullptr, target.c_str(), nullptr, flags, nullptr) != 0) {
    return Errno("remount " + target);
  }
  return absl::OkStatus();
}

// A character device like the host's `host_path`, at `path` under `root`,
// owned by the jail's user (or open to all: /dev/null).
absl::Status MakeNode(const std::string& root, const std::string& host_path,
                      const std::string& path, const JailOptions& options, bool for_all) {
  struct stat st;
  if (stat(host_path.c_str(), &st) != 0) return Errno(host_path);
  std::string target = root + path;
  MOTE_RETURN_IF_ERROR(MakeParents(target));
  if (mknod(target.c_str(), S_IFCHR | (for_all ? 0666 : 0600), st.st_rdev) != 0) {
    return Errno("mknod " + target);
  }
  if (chmod(target.c_str(), for_all ? 0666 : 0600) != 0) return Errno("chmod " + target);
  if (!for_all && chown(target.c_str(), options.uid, options.gid) != 0) {
    return Errno("chown " + target);
  }
  return absl::OkStatus();
}

// The directories the VM makes files in: its control socket, audit log,
// console file and incoming migration socket.
std::vector<std::string> WritableDirs(const libmote::VmConfig& config) {
  std::vector<std::string> dirs;
  for (const std::string& file :
       {config.api_socket, config.audit_log,
        config.console.kind == libmote::ConsoleKind::kFile ? config.console.path : std::string(),
        absl::StartsWith(config.incoming, "unix:") ? config.incoming.substr(5) : std::string()}) {
    if (file.empty()) continue;
    std::string dir = fs::path(file).parent_path().string();
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
  }
  return dirs;
}

// The jail's root at `root`: a small tmpfs, only this namespace sees it,
// with the VM's files, /proc and /dev.
absl::Status BuildRoot(const std::string& root, const libmote::VmConfig& config,
                       const JailOptions& options) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return Errno("make mounts private");
  }
  if (mount("tmpfs", root.c_str(), "tmpfs", MS_NOSUID, "mode=0755,size=1m") != 0) {
    return Errno("mount a tmpfs on " + root);
  }
  for (const std::string& file : {config.kernel, config.initrd, config.restore}) {
    if (!file.empty()) MOTE_RETURN_IF_ERROR(Bind(root, file, /*writable=*/false));
  }
  for (const libmote::DiskConfig& disk : config.disks) {
    MOTE_RETURN_IF_ERROR(Bind(root, disk.path, !disk.readonly));
  }
  for (const libmote::FwCfgConfig& item : config.fw_cfg) {
    if (!item.file.empty()) MOTE_RETURN_IF_ERROR(Bind(root, item.file, /*writable=*/false));
  }
  for (const std::string& dir : WritableDirs(config)) {
    MOTE_RETURN_IF_ERROR(Bind(root, dir, /*writable=*/true));
  }
  MOTE_RETURN_IF_ERROR(MakeNode(root, config.kvm_device, config.kvm_device, options, false));
  MOTE_RETURN_IF_ERROR(MakeNode(root, "/dev/null", "/dev/null", options, true));
  // Made inside only by a VM that asks for them: a TAP (opened before), a
  // post-copy migration's userfaultfd.
  for (const char* optional : {"/dev/net/tun", "/dev/userfaultfd"}) {
    if (access(optional, F_OK) == 0) {
      MOTE_RETURN_IF_ERROR(MakeNode(root, optional, optional, options, false));
    }
  }
  std::string proc = root + "/proc";
  if (mkdir(proc.c_str(), 0555) != 0) return Errno("mkdir " + proc);
  if (mount("proc", proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return Errno("mount /proc");
  }
  return absl::OkStatus();
}

// Into the jail's root for good: the old root is detached, not just hidden,
// and the new one is read-only (what is bound into it keeps its own mode).
absl::Status PivotRoot(const std::string& root) {
  if (chdir(root.c_str()) != 0) return Errno("chdir " + root);
  if (syscall(SYS_pivot_root, ".", ".") != 0) return Errno("pivot_root");
  if (umount2(".", MNT_DETACH) != 0) return Errno("detach the old root");
  if (chdir("/") != 0) return Errno("chdir /");
  if (mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID, nullptr) != 0) {
    return Errno("remount / read-only");
  }
  return absl::OkStatus();
}

absl::Status SetLimits(const JailOptions& options) {
  rlimit files{options.nofile, options.nofile};
  if (setrlimit(RLIMIT_NOFILE, &files) != 0) return Errno("RLIMIT_NOFILE");
  if (options.fsize != 0) {
    // A write past the limit then fails (EFBIG, an I/O error to the guest)
    // instead of killing mote.
    signal(SIGXFSZ, SIG_IGN);
    rlimit size{options.fsize, options.fsize};
    if (setrlimit(RLIMIT_FSIZE, &size) != 0) return Errno("RLIMIT_FSIZE");
  }
  return absl::OkStatus();
}

// Every descriptor but 0, 1, 2 and `keep`.
void CloseInherited(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned first = 3;
  for (int fd : keep) {
    if (fd < static_cast<int>(first)) continue;
    if (static_cast<unsigned>(fd) > first) syscall(SYS_close_range, first, fd - 1, 0);
    first = fd + 1;
  }
  syscall(SYS_close_range, first, ~0u, 0);
}

// The given user and group, no supplementary groups, no capability left
// (nor any to gain: the bounding set is empty and no_new_privs is set).
absl::Status DropPrivileges(const JailOptions& options) {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      return Errno(absl::StrCat("drop capability ", cap));
    }
  }
  if (setgroups(0, nullptr) != 0) return Errno("setgroups");
  if (setresgid(options.gid, options.gid, options.gid) != 0) return Errno("setresgid");
  if (setresuid(options.uid, options.uid, options.uid) != 0) return Errno("setresuid");
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct none[2] = {};
  if (syscall(SYS_capset, &header, none) != 0) return Errno("capset");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Errno("no_new_privs");
  // Changing user made the process undumpable, which hands its /proc files
  // to root; mote reads its own (/proc/self/smaps), as an exec'd one could.
  prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  return absl::OkStatus();
}

// The cgroup and its limits, as Firecracker's jailer sets them: by root,
// before the jail, which has no /sys/fs/cgroup. The VM then leaves cgroups
// alone.
absl::Status JoinCgroup(libmote::VmConfig& config) {
  if (config.cgroup.empty()) return absl::OkStatus();
  CgroupLimits limits{config.cgroup_cpu_max, config.cgroup_memory_max, config.cgroup_io_max,
                      config.cgroup_io_weight, /*vcpu_cpu_max=*/""};
  MOTE_ASSIGN_OR_RETURN(std::unique_ptr<VmCgroup> group, VmCgroup::Join(config.cgroup, limits));
  config.cgroup.clear();
  config.cgroup_cpu_max.clear();
  config.cgroup_memory_max = 0;
  config.cgroup_io_max.clear();
  config.cgroup_io_weight = 0;
  return absl::OkStatus();
}

absl::Status JoinNetns(const std::string& path) {
  FileDescriptor ns(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.ok()) return Errno("--jail-netns " + path);
  if (setns(ns.get(), CLONE_NEWNET) != 0) return Errno("--jail-netns " + path);
  return absl::OkStatus();
}

// The child's part, PID 1 of the new PID namespace.
absl::Status Jail(const JailOptions& options, libmote::VmConfig& config,
                  std::vector<int> keep_fds) {
  if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) != 0) return Errno("unshare");
  MOTE_RETURN_IF_ERROR(JoinCgroup(config));
  if (!options.netns.empty()) MOTE_RETURN_IF_ERROR(JoinNetns(options.netns));
  // TAPs by name need /dev/net/tun and CAP_NET_ADMIN: opened now, handed on.
  for (libmote::NetConfig& net : config.nets) {
    if (net.tap.empty()) {
      keep_fds.push_back(net.fd);
      continue;
    }
    MOTE_ASSIGN_OR_RETURN(FileDescriptor tap, virtio::OpenTap(net.tap));
    net.fd = tap.Release();
    net.tap.clear();
    keep_fds.push_back(net.fd);
  }
  std::string name = config.name.empty() ? "mote" : config.name.substr(0, 64);
  if (sethostname(name.data(), name.size()) != 0) return Errno("sethostname");
  MOTE_RETURN_IF_ERROR(BuildRoot(options.dir, config, options));
  MOTE_RETURN_IF_ERROR(PivotRoot(options.dir));
  MOTE_RETURN_IF_ERROR(SetLimits(options));
  CloseInherited(keep_fds);
  MOTE_RETURN_IF_ERROR(DropPrivileges(options));
  // A parent killed outright takes the VM with it (set only now: changing
  // user clears it).
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  return absl::OkStatus();
}

absl::Status CheckOptions(const JailOptions& options, const libmote::VmConfig& config) {
  if (geteuid() != 0) {
    return absl::PermissionDeniedError("--jail needs root: it makes namespaces and device nodes");
  }
  if (options.uid == 0 || options.gid == 0) {
    return absl::InvalidArgumentError("--jail-uid and --jail-gid must not be root's");
  }
  std::error_code error;
  if (!fs::is_directory(options.dir, error)) {
    return absl::InvalidArgumentError("--jail " + options.dir + ": not a directory");
  }
  if (!config.cgroup_vcpu_cpu_max.empty()) {
    return absl::InvalidArgumentError(
        "--jail with --cgroup-vcpu-cpu-max: the jailed mote cannot move its vCPU threads");
  }
  return absl::OkStatus();
}

// The parent's part: stop signals go on to the child; the child's end is
// the parent's.
int WaitForChild(pid_t child, const sigset_t& signals) {
  while (true) {
    int signal_number = sigwaitinfo(&signals, nullptr);
    if (signal_number > 0 && signal_number != SIGCHLD) kill(child, signal_number);
    int status = 0;
    pid_t done = waitpid(child, &status, WNOHANG);
    if (done == child) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
}

}  // namespace

absl::StatusOr<std::optional<int>> EnterJail(const JailOptions& options, libmote::VmConfig& config,
                                             const std::vector<int>& keep_fds) {
  MOTE_RETURN_IF_ERROR(CheckOptions(options, config));
  MakePathsAbsolute(config);
  JailOptions absolute = options;
  absolute.dir = Absolute(options.dir);
  // Blocked before the fork, so none is lost: the parent waits for them, the
  // child's VM reads the stop signals itself (the same set, blocked too).
  sigset_t signals, before;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&signals, s);
  sigprocmask(SIG_BLOCK, &signals, &before);
  // The child is made in a new PID namespace; the parent's own children
  // (a sanitizer's helper at exit) go back to the parent's, which outlives
  // the child's.
  FileDescriptor own_pid_ns(open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC));
  if (!own_pid_ns.ok()) return Errno("/proc/self/ns/pid");
  if (unshare(CLONE_NEWPID) != 0) return Errno("unshare a PID namespace");
  pid_t child = fork();
  if (child < 0) return Errno("fork");
  if (child > 0) {
    if (setns(own_pid_ns.get(), CLONE_NEWPID) != 0) return Errno("back to mote's PID namespace");
    return std::optional<int>(WaitForChild(child, signals));
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_UNBLOCK, &chld, nullptr);
  MOTE_RETURN_IF_ERROR(Jail(absolute, config, keep_fds));
  return std::optional<int>();
}

}  // namespace mote
