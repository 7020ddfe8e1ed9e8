// The seccomp filters, installed in a forked child: what each thread kind
// may call runs, what it may not ends the process with exit code 14 and a
// line naming the thread kind and the call.
#include "vmm/base/seccomp_filter.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <functional>
#include <string>

namespace mote {
namespace {

struct Ended {
  int status = -1;  // exit code, or -1 when killed by a signal
  std::string stderr_text;
};

// Runs `body` in a child with `kind`'s filter in `mode`, handing it a pipe
// made before the filter (as mote's threads get their descriptors); the
// child exits 0 unless the filter ends it.
Ended RunFiltered(ThreadKind kind, SeccompMode mode,
                  const std::function<void(int read_fd, int write_fd)>& body) {
  int out[2], p[2];
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  REQUIRE(pipe2(p, O_CLOEXEC) == 0);
  std::fflush(nullptr);  // or the child's exit writes what is buffered once more
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(out[1], 2);
    absl::Status s = InstallSeccompFilter(kind, mode);
    if (!s.ok()) _exit(3);
    body(p[0], p[1]);
    _exit(0);
  }
  close(p[0]);
  close(p[1]);
  close(out[1]);
  Ended ended;
  char buf[512];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) ended.stderr_text.append(buf, n);
  close(out[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  ended.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ended;
}

// Exits 7 if a call that should have been allowed failed as seccomp would
// make it fail (ENOSYS) or did not happen.
void MustWork(bool ok) {
  if (!ok) _exit(7);
}

TEST_CASE("seccomp: modes parse", "[seccomp]") {
  CHECK(ParseSeccompMode("on").value() == SeccompMode::kOn);
  CHECK(ParseSeccompMode("off").value() == SeccompMode::kOff);
  CHECK(ParseSeccompMode("log").value() == SeccompMode::kLog);
  CHECK_FALSE(ParseSeccompMode("yes").ok());
}

TEST_CASE("seccomp: a vCPU thread runs KVM ioctls but opens no socket", "[seccomp]") {
  // KVM_RUN on a pipe passes the filter and fails in the kernel (ENOTTY).
  Ended allowed = RunFiltered(ThreadKind::kVcpu, SeccompMode::kOn, [](int r, int w) {
    MustWork(ioctl(r, KVM_RUN, 0) == -1 && errno == ENOTTY);
    MustWork(write(w, "x", 1) == 1);
  });
  CHECK(allowed.status == 0);
  CHECK(allowed.stderr_text.empty());

  Ended socket_call = RunFiltered(ThreadKind::kVcpu, SeccompMode::kOn,
                                  [](int, int) { (void)socket(AF_INET, SOCK_STREAM, 0); });
  CHECK(socket_call.status == kSeccompExitCode);
  CHECK_THAT(socket_call.stderr_text,
             Catch::Contains("seccomp: the vcpu thread made a system call its filter forbids: "
                             "socket (41)"));

  // Making a VM is the loop's business, not a vCPU's.
  Ended create_vm = RunFiltered(ThreadKind::kVcpu, SeccompMode::kOn,
                                [](int r, int) { (void)ioctl(r, KVM_CREATE_VM, 0); });
  CHECK(create_vm.status == kSeccompExitCode);
  CHECK_THAT(create_vm.stderr_text, Catch::Contains("vcpu thread") && Catch::Contains("ioctl"));
}

TEST_CASE("seccomp: the event loop opens files and sockets but executes nothing", "[seccomp]") {
  Ended allowed = RunFiltered(ThreadKind::kLoop, SeccompMode::kOn, [](int, int) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    MustWork(fd >= 0);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    MustWork(s >= 0);
    MustWork(ioctl(fd, KVM_CHECK_EXTENSION, 0) == -1 && errno == ENOTTY);
  });
  CHECK(allowed.status == 0);

  Ended exec = RunFiltered(ThreadKind::kLoop, SeccompMode::kOn, [](int, int) {
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    execv("/bin/true", argv);
  });
  CHECK(exec.status == kSeccompExitCode);
  CHECK_THAT(exec.stderr_text,
             Catch::Contains("the event-loop thread") && Catch::Contains("forbids: execve (59)"));

  // Netlink (routes, interfaces) is not among its socket families, nor
  // are raw IP sockets among its socket types.
  Ended netlink = RunFiltered(ThreadKind::kLoop, SeccompMode::kOn,
                              [](int, int) { (void)socket(AF_NETLINK, SOCK_RAW, 0); });
  CHECK(netlink.status == kSeccompExitCode);
  Ended raw = RunFiltered(ThreadKind::kLoop, SeccompMode::kOn,
                          [](int, int) { (void)socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 1); });
  CHECK(raw.status == kSeccompExitCode);
  Ended tcp = RunFiltered(ThreadKind::kLoop, SeccompMode::kOn, [](int, int) {
    MustWork(socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) >= 0);
  });
  CHECK(tcp.status == 0);

  // A new thread, yes (glibc's clone3 is told ENOSYS and falls back to
  // clone with CLONE_THREAD); a new process, no (but LeakSanitizer's
  // tracer is one).
  if (!SeccompAllowsSanitizerCalls()) {
    Ended fork_call = RunFiltered(ThreadKind::kLoop, SeccompMode::kOn, [](int, int) {
      if (fork() == 0) _exit(0);
    });
    CHECK(fork_call.status == kSeccompExitCode);
  }
}

TEST_CASE("seccomp: an I/O worker reads and writes but opens nothing new", "[seccomp]") {
  Ended allowed = RunFiltered(ThreadKind::kIoWorker, SeccompMode::kOn, [](int, int w) {
    char c = 'x';
    MustWork(write(w, &c, 1) == 1);
    MustWork(fdatasync(w) == -1 && errno == EINVAL);
  });
  CHECK(allowed.status == 0);
  Ended socket_call = RunFiltered(ThreadKind::kIoWorker, SeccompMode::kOn,
                                  [](int, int) { (void)socket(AF_UNIX, SOCK_STREAM, 0); });
  CHECK(socket_call.status == kSeccompExitCode);
  CHECK_THAT(socket_call.stderr_text, Catch::Contains("the io-worker thread"));
}

TEST_CASE("seccomp: log mode allows what it would deny; off installs nothing", "[seccomp]") {
  for (SeccompMode mode : {SeccompMode::kLog, SeccompMode::kOff}) {
    Ended ended = RunFiltered(ThreadKind::kVcpu, mode,
                              [](int, int) { MustWork(socket(AF_UNIX, SOCK_STREAM, 0) >= 0); });
    CHECK(ended.status == 0);
    CHECK(ended.stderr_text.empty());
  }
}

}  // namespace
}  // namespace mote
