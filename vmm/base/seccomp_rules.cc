#include "vmm/base/seccomp_rules.h"

#include <linux/if_tun.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "vmm/base/kvm_abi.h"

namespace mote {
namespace {

// What every thread of mote does: memory, locks, signals, time, reads and
// writes on descriptors it was given (eventfds, the console, logs), ending.
constexpr int kEveryThread[] = {
    SCMP_SYS(read),           SCMP_SYS(write),           SCMP_SYS(readv),
    SCMP_SYS(writev),         SCMP_SYS(close),           SCMP_SYS(futex),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),    SCMP_SYS(sigaltstack),
    SCMP_SYS(mmap),           SCMP_SYS(munmap),          SCMP_SYS(mprotect),
    SCMP_SYS(madvise),        SCMP_SYS(mremap),          SCMP_SYS(brk),
    SCMP_SYS(exit),           SCMP_SYS(exit_group),      SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),   SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
    SCMP_SYS(gettimeofday),   SCMP_SYS(gettid),          SCMP_SYS(getpid),
    SCMP_SYS(tgkill),         SCMP_SYS(sched_yield),     SCMP_SYS(restart_syscall),
    SCMP_SYS(getrandom),      SCMP_SYS(fstat),           SCMP_SYS(newfstatat),
    SCMP_SYS(rt_sigaction),  // abort() resets SIGABRT's handler: its report, not a trap
};

// A vCPU thread also arms device timers (HPET, the RTC alarm), and starts
// a virtio device when its driver does: notifications, the disk's io_uring
// (set up there, drained at a reset).
constexpr int kVcpuThread[] = {
    SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime),   SCMP_SYS(timerfd_gettime),
    SCMP_SYS(eventfd2),       SCMP_SYS(epoll_ctl),         SCMP_SYS(io_uring_setup),
    SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
};

// The KVM ioctls a vCPU thread makes: running, its own registers (a reset
// or an S3 wake-up sets them, a failure dumps them), interrupt lines and
// routes, notifications, the PIT (HPET legacy mode) and the dirty ring. Not
// creating VMs or vCPUs, nor changing memory slots or CPUID.
const unsigned long kVcpuKvmIoctls[] = {
    KVM_RUN,
    KVM_CHECK_EXTENSION,
    KVM_IRQ_LINE,
    KVM_IRQ_LINE_STATUS,
    KVM_SIGNAL_MSI,
    kvm_abi::kSetGsiRouting,
    KVM_IOEVENTFD,
    KVM_IRQFD,
    KVM_RESET_DIRTY_RINGS,
    KVM_GET_PIT2,
    KVM_SET_PIT2,
    KVM_GET_CLOCK,
    KVM_GET_IRQCHIP,
    KVM_SET_IRQCHIP,
    KVM_GET_TSC_KHZ,
    KVM_GET_REGS,
    KVM_SET_REGS,
    KVM_GET_SREGS,
    KVM_SET_SREGS,
    KVM_GET_FPU,
    KVM_SET_FPU,
    kvm_abi::kGetMsrs,
    kvm_abi::kSetMsrs,
    KVM_GET_LAPIC,
    KVM_SET_LAPIC,
    KVM_GET_MP_STATE,
    KVM_SET_MP_STATE,
    KVM_GET_VCPU_EVENTS,
    KVM_SET_VCPU_EVENTS,
    KVM_GET_DEBUGREGS,
    KVM_SET_DEBUGREGS,
    kvm_abi::kGetXsave,
    kvm_abi::kGetXsave2,
    kvm_abi::kSetXsave,
    KVM_GET_XCRS,
    KVM_SET_XCRS,
    TUNSETOFFLOAD,  // the offloads virtio-net's driver accepted, on its TAP
};

// A block worker reads and writes the image and posts to an eventfd.
constexpr int kIoWorkerThread[] = {
    SCMP_SYS(pread64), SCMP_SYS(pwrite64),  SCMP_SYS(preadv),    SCMP_SYS(pwritev),
    SCMP_SYS(fsync),   SCMP_SYS(fdatasync), SCMP_SYS(fallocate),
};

// The loop builds a VM again after a reset (files, KVM, memory, a TAP,
// threads), serves the control socket, writes snapshots and migrates. It
// never executes a program, forks, traces, mounts, loads modules or BPF,
// changes its credentials or reads another process's memory.
constexpr int kLoopThread[] = {
    SCMP_SYS(open),
    SCMP_SYS(openat),
    SCMP_SYS(stat),
    SCMP_SYS(lstat),
    SCMP_SYS(statx),
    SCMP_SYS(access),
    SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2),
    SCMP_SYS(lseek),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(fallocate),
    SCMP_SYS(ftruncate),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(mkdir),
    SCMP_SYS(mkdirat),
    SCMP_SYS(rename),
    SCMP_SYS(renameat),
    SCMP_SYS(renameat2),
    SCMP_SYS(unlink),
    SCMP_SYS(unlinkat),
    SCMP_SYS(rmdir),
    SCMP_SYS(readlink),
    SCMP_SYS(readlinkat),
    SCMP_SYS(link),
    SCMP_SYS(linkat),
    SCMP_SYS(getcwd),
    SCMP_SYS(statfs),
    SCMP_SYS(fstatfs),
    SCMP_SYS(getdents64),
    SCMP_SYS(fcntl),
    SCMP_SYS(flock),
    SCMP_SYS(fchmod),
    SCMP_SYS(umask),
    SCMP_SYS(dup),
    SCMP_SYS(dup2),
    SCMP_SYS(dup3),
    SCMP_SYS(pipe2),
    SCMP_SYS(eventfd2),
    SCMP_SYS(memfd_create),
    SCMP_SYS(userfaultfd),
    SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(timerfd_create),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_gettime),
    SCMP_SYS(signalfd4),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigtimedwait),
    SCMP_SYS(kill),
    SCMP_SYS(bind),
    SCMP_SYS(listen),
    SCMP_SYS(accept),
    SCMP_SYS(accept4),
    SCMP_SYS(connect),
    SCMP_SYS(getsockopt),
    SCMP_SYS(setsockopt),
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendto),
    SCMP_SYS(recvfrom),
    SCMP_SYS(shutdown),
    SCMP_SYS(socketpair),
    SCMP_SYS(io_uring_setup),
    SCMP_SYS(io_uring_enter),
    SCMP_SYS(io_uring_register),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid),
    SCMP_SYS(getgid),
    SCMP_SYS(getegid),
    SCMP_SYS(uname),
    SCMP_SYS(sysinfo),
    SCMP_SYS(prlimit64),
    SCMP_SYS(getrlimit),
    SCMP_SYS(wait4),
};

// ioctl request types the loop uses: KVM, terminals and TAPs ('T'), block
// device sizes (0x12), userfaultfd (0xaa).
constexpr unsigned long kLoopIoctlTypes[] = {KVMIO, 'T', 0x12, 0xaa};

// Sanitizer runtimes (ASan, LSan, UBSan, TSan) make calls of their own: at
// a report, and LeakSanitizer at exit (it clones a tracer that ptraces the
// threads). Test builds only.
#ifdef MOTE_SANITIZER_RUNTIME
constexpr int kSanitizerRuntime[] = {
    SCMP_SYS(open),
    SCMP_SYS(openat),
    SCMP_SYS(readlink),
    SCMP_SYS(readlinkat),
    SCMP_SYS(getdents),  // LeakSanitizer lists threads with the old call
    SCMP_SYS(getdents64),
    SCMP_SYS(lseek),
    SCMP_SYS(prctl),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(clone),
    SCMP_SYS(ptrace),
    SCMP_SYS(wait4),
    SCMP_SYS(waitid),
    SCMP_SYS(kill),
    SCMP_SYS(getppid),
    SCMP_SYS(uname),
    SCMP_SYS(pipe2),
    SCMP_SYS(dup2),
    SCMP_SYS(dup3),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(getrlimit),
    SCMP_SYS(prlimit64),
    SCMP_SYS(sysinfo),
    SCMP_SYS(stat),
    SCMP_SYS(access),
    SCMP_SYS(arch_prctl),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(getuid),
    SCMP_SYS(fcntl),
    SCMP_SYS(pread64),
};
#endif

// libseccomp's result for a rule; a rule already there (two lists name one
// call) is not an error.
absl::Status Checked(int rc, int nr) {
  if (rc == 0 || rc == -EEXIST) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("seccomp: a rule for system call ", nr, " was refused: ", std::strerror(-rc)));
}

absl::Status Add(scmp_filter_ctx ctx, int nr) {
  return Checked(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0), nr);
}

template <size_t N>
absl::Status AddAll(scmp_filter_ctx ctx, const int (&list)[N]) {
  for (int nr : list) {
    if (absl::Status s = Add(ctx, nr); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AddSeccompRules(scmp_filter_ctx ctx, ThreadKind kind) {
  if (absl::Status s = AddAll(ctx, kEveryThread); !s.ok()) return s;
  // A thread started by a filtered one adds its own filter (which can only
  // take calls away), after naming itself and setting no_new_privs.
  if (absl::Status s = Add(ctx, SCMP_SYS(seccomp)); !s.ok()) return s;
  for (scmp_datum_t option : {PR_SET_NO_NEW_PRIVS, PR_SET_NAME, PR_GET_NAME}) {
    if (absl::Status s = Checked(
            seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, option)),
            SCMP_SYS(prctl));
        !s.ok()) {
      return s;
    }
  }
#ifdef MOTE_SANITIZER_RUNTIME
  if (absl::Status s = AddAll(ctx, kSanitizerRuntime); !s.ok()) return s;
#endif
  absl::Status rules;
  auto check = [&rules](int rc, int nr) { rules.Update(Checked(rc, nr)); };
  switch (kind) {
    case ThreadKind::kVcpu:
      if (absl::Status s = AddAll(ctx, kVcpuThread); !s.ok()) return s;
      for (unsigned long request : kVcpuKvmIoctls) {
        check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                               SCMP_A1(SCMP_CMP_EQ, request)),
              SCMP_SYS(ioctl));
      }
      break;
    case ThreadKind::kIoWorker:
      if (absl::Status s = AddAll(ctx, kIoWorkerThread); !s.ok()) return s;
      break;
    case ThreadKind::kLoop:
    case ThreadKind::kMain:
      if (absl::Status s = AddAll(ctx, kLoopThread); !s.ok()) return s;
      if (absl::Status s = AddAll(ctx, kIoWorkerThread); !s.ok()) return s;
      if (absl::Status s = AddAll(ctx, kVcpuThread); !s.ok()) return s;
      for (unsigned long type : kLoopIoctlTypes) {
        check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                               SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, type << 8)),
              SCMP_SYS(ioctl));
      }
      // Threads only: a clone without CLONE_THREAD would be a new process.
      // glibc tries clone3 first, whose flags a filter cannot see: ENOSYS
      // makes it fall back to clone.
      check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)),
            SCMP_SYS(clone));
      // Stream sockets for the control socket and migration: Unix, IPv4,
      // IPv6 (the type's low bits; SOCK_CLOEXEC and SOCK_NONBLOCK above).
      for (int domain : {AF_UNIX, AF_INET, AF_INET6}) {
        check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                               SCMP_A0(SCMP_CMP_EQ, static_cast<uint64_t>(domain)),
                               SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM)),
              SCMP_SYS(socket));
      }
      break;
  }
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), SCMP_SYS(clone3));
  return rules;
}

}  // namespace mote
