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

// `path` as the kernel finds it: absolute, its symbolic links resolved.
std::string Absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ignored;
  fs::path absolute = fs::absolute(path, ignored);
  fs::path canonical = fs::weakly_canonical(absolute, ignored);
  return (canonical.empty() ? absolute.lexically_normal() : canonical).string();
}

// True if `path` is `dir` or below it.
bool IsWithin(const std::string& path, const std::string& dir) {
  return path == dir || dir == "/" || absl::StartsWith(path, dir + "/");
}

// What the VM reads and writes, by absolute path, so that it finds them
// after pivot_root at the same place.
void MakePathsAbsolute(libmote::VmConfig& config) {
  for (std::string* path :
       {&config.kernel, &config.initrd, &config.console.path, &config.api_socket, &config.audit_log,
        &config.restore, &config.kvm_device}) {
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

// `source` (absolute) bind-mounted at its own path under `root`: read-only,
// or writable; never with programs to run or set-uid, nor device nodes but
// a disk that is one.
absl::Status Bind(const std::string& root, const std::string& source, bool writable) {
  struct stat st;
  if (stat(source.c_str(), &st) != 0) return Errno(source);
  std::string target = root + source;
  MOTE_RETURN_IF_ERROR(MakeParents(target));
  if (S_ISDIR(st.st_mode)) {
    if (mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir " + target);
  } else {
    FileDescriptor placeholder(open(target.c_str(), O_CREAT | O_RDONLY | O_CLOEXEC, 0600));
    if (!placeholder.ok()) return Errno("create " + target);
  }
  if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return Errno("bind " + source);
  }
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC |
                        (S_ISBLK(st.st_mode) ? 0 : MS_NODEV) | (writable ? 0 : MS_RDONLY);
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
  if (!S_ISCHR(st.st_mode)) {
    return absl::InvalidArgumentError("--jail: " + host_path + " is not a character device");
  }
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

// What the jail binds from the host: the VM's files (read-only, or writable
// for a disk it writes) and the directories it makes files in. Each once.
struct Binds {
  std::vector<std::string> dirs;
  std::vector<std::pair<std::string, bool>> files;  // path, writable
};

Binds BindsOf(const libmote::VmConfig& config) {
  Binds binds;
  binds.dirs = WritableDirs(config);
  auto add = [&binds](const std::string& path, bool writable) {
    if (path.empty()) return;
    for (auto& [bound, rw] : binds.files) {
      if (bound == path) {
        rw = rw || writable;
        return;
      }
    }
    binds.files.emplace_back(path, writable);
  };
  for (const std::string& file : {config.kernel, config.initrd, config.restore}) add(file, false);
  for (const libmote::DiskConfig& disk : config.disks) add(disk.path, !disk.readonly);
  for (const libmote::FwCfgConfig& item : config.fw_cfg) add(item.file, false);
  return binds;
}

// The jail's root at `root`: a small tmpfs, only this namespace sees it,
// with the VM's files, /proc and /dev.
absl::Status BuildRoot(const std::string& root, const libmote::VmConfig& config,
                       const JailOptions& options) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return Errno("make mounts private");
  }
  if (mount("tmpfs", root.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m") != 0) {
    return Errno("mount a tmpfs on " + root);
  }
  // The directories first: a file bound later into one of them stays
  // read-only, where the directory's bind would have covered it.
  Binds binds = BindsOf(config);
  for (const std::string& dir : binds.dirs) MOTE_RETURN_IF_ERROR(Bind(root, dir, true));
  for (const auto& [file, writable] : binds.files) {
    MOTE_RETURN_IF_ERROR(Bind(root, file, writable));
  }
  MOTE_RETURN_IF_ERROR(MakeNode(root, config.kvm_device, config.kvm_device, options, false));
  MOTE_RETURN_IF_ERROR(MakeNode(root, "/dev/null", "/dev/null", options, true));
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

// Closes [first, last]: close_range, or one by one on a kernel without it.
void CloseRange(unsigned first, unsigned last) {
  if (syscall(SYS_close_range, first, last, 0) == 0) return;
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  unsigned end = std::min<rlim_t>(last, files.rlim_cur == RLIM_INFINITY ? 65535 : files.rlim_cur);
  for (unsigned fd = first; fd <= end; ++fd) close(static_cast<int>(fd));
}

// Every descriptor but 0, 1, 2 and `keep`.
void CloseInherited(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned first = 3;
  for (int fd : keep) {
    if (fd < static_cast<int>(first)) continue;
    if (static_cast<unsigned>(fd) > first) CloseRange(first, fd - 1);
    first = fd + 1;
  }
  CloseRange(first, ~0u);
}

// The given user and group, no supplementary groups, no capability left
// (nor any to gain: the bounding set is empty and no_new_privs is set).
absl::Status DropPrivileges(const JailOptions& options) {
  for (int cap = 0; cap < 64; ++cap) {  // past this build's CAP_LAST_CAP too: EINVAL
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
  // Changing user left the process undumpable: no other process of that
  // user may trace it or read its memory, and it leaves no core with the
  // guest's RAM. (Its own /proc/self stays readable to it.)
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
  // Its own session: no controlling terminal, so it cannot push input into
  // the shell that started mote (TIOCSTI); the parent passes signals on.
  if (setsid() < 0) return Errno("setsid");
  umask(022);  // the jail's directories and nodes as they are meant, whatever the host's
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

// Nothing bound may hold the jail's root or lie inside it: the root's
// tmpfs would hide it, or the bind would expose the root's own mount.
absl::Status CheckPaths(const std::string& root, const libmote::VmConfig& config) {
  if (root == "/") return absl::InvalidArgumentError("--jail /: the jail needs a directory");
  Binds binds = BindsOf(config);
  std::vector<std::string> paths = binds.dirs;
  for (const auto& file : binds.files) paths.push_back(file.first);
  paths.push_back(config.kvm_device);
  for (const std::string& path : paths) {
    if (IsWithin(path, root) || IsWithin(root, path)) {
      return absl::InvalidArgumentError("--jail " + root + ": " + path +
                                        " would be bound in or over it; keep the VM's files and "
                                        "its socket's directory apart from the jail");
    }
  }
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
  if (!config.incoming.empty()) {
    return absl::InvalidArgumentError("--jail with --incoming: not yet (it needs a writable /tmp)");
  }
  if (!config.api_socket_group.empty()) {
    return absl::InvalidArgumentError(
        "--jail with --api-socket-group: the jailed user cannot give the socket another group; "
        "give its directory that group instead");
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
  MOTE_RETURN_IF_ERROR(CheckPaths(absolute.dir, config));
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
    if (setns(own_pid_ns.get(), CLONE_NEWPID) != 0) {
      absl::Status error = Errno("back to mote's PID namespace");
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
      return error;
    }
    return std::optional<int>(WaitForChild(child, signals));
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);  // again once the user has changed
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_UNBLOCK, &chld, nullptr);
  MOTE_RETURN_IF_ERROR(Jail(absolute, config, keep_fds));
  return std::optional<int>();
}

}  // namespace mote
