#include "vmm/base/seccomp_filter.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>

#include "absl/base/internal/sysinfo.h"
#include "absl/strings/str_cat.h"
#include "vmm/base/seccomp_bpf.h"
#include "vmm/base/seccomp_rules.h"

namespace mote {
namespace {

std::atomic<SeccompTestHook> test_hook{nullptr};

// The kind whose filter this thread runs, for the SIGSYS handler.
thread_local const char* thread_kind_name = nullptr;

// Where a trapped thread resumes, outside signal context (libseccomp's
// name lookup allocates, which a signal handler must not): one line, in one
// write so two threads trapping at once do not interleave, then the end.
[[noreturn]] void ReportForbiddenCall(long call) {
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, static_cast<int>(call));
  std::string line = absl::StrCat(
      "mote: error: seccomp: the ", thread_kind_name != nullptr ? thread_kind_name : "unknown",
      " thread made a system call its filter forbids: ", name != nullptr ? name : "?", " (", call,
      "); ending\n");
  (void)!::write(2, line.data(), line.size());
  _exit(kSeccompExitCode);
}

// SIGSYS: the thread leaves the handler into ReportForbiddenCall(the call's
// number) instead of going back after the call, on its own stack below the
// red zone, aligned as just after a call instruction.
void OnForbiddenCall(int, siginfo_t* info, void* context) {
  auto* uc = static_cast<ucontext_t*>(context);
  greg_t* regs = uc->uc_mcontext.gregs;
  regs[REG_RDI] = info->si_syscall;
  regs[REG_RSP] = ((regs[REG_RSP] - 512) & ~greg_t{15}) - 8;
  regs[REG_RIP] = reinterpret_cast<greg_t>(&ReportForbiddenCall);
}

// Once per process, before the first filter: the handler, and what the C
// library and Abseil read from files the first time a thread needs it, so
// no filtered thread has to open them (glibc's /etc/localtime for spdlog's
// time stamps, the CPU count behind absl::Mutex's spinning).
void PrepareProcess() {
  static std::once_flag once;
  std::call_once(once, [] {
    tzset();
    (void)absl::base_internal::NumCPUs();
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = OnForbiddenCall;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSYS, &sa, nullptr);
  });
}

// The BPF made from `kind`'s rules when mote was built (seccomp_bpf.h).
template <size_t N>
sock_fprog Fprog(const sock_filter (&program)[N]) {
  return {static_cast<unsigned short>(N), const_cast<sock_filter*>(program)};
}

sock_fprog Program(ThreadKind kind, SeccompMode mode) {
  bool on = mode == SeccompMode::kOn;
  switch (kind) {
    case ThreadKind::kVcpu:
      return on ? Fprog(seccomp_bpf::kVcpuOn) : Fprog(seccomp_bpf::kVcpuLog);
    case ThreadKind::kIoWorker:
      return on ? Fprog(seccomp_bpf::kIoWorkerOn) : Fprog(seccomp_bpf::kIoWorkerLog);
    case ThreadKind::kLoop:
    case ThreadKind::kMain:
      break;
  }
  return on ? Fprog(seccomp_bpf::kLoopOn) : Fprog(seccomp_bpf::kLoopLog);
}

}  // namespace

absl::StatusOr<SeccompMode> ParseSeccompMode(const std::string& text) {
  if (text == "on") return SeccompMode::kOn;
  if (text == "off") return SeccompMode::kOff;
  if (text == "log") return SeccompMode::kLog;
  return absl::InvalidArgumentError("expected on, off or log");
}

const char* ThreadKindName(ThreadKind kind) {
  switch (kind) {
    case ThreadKind::kVcpu:
      return "vcpu";
    case ThreadKind::kIoWorker:
      return "io-worker";
    case ThreadKind::kMain:
      return "main";
    case ThreadKind::kLoop:
      break;
  }
  return "event-loop";
}

absl::Status InstallSeccompFilter(ThreadKind kind, SeccompMode mode) {
  if (mode == SeccompMode::kOff) return absl::OkStatus();
  PrepareProcess();
  sock_fprog program = Program(kind, mode);
  thread_kind_name = ThreadKindName(kind);  // also if an inherited filter traps the load
  // Only this thread (no TSYNC): each kind installs its own. no_new_privs
  // first, as the kernel requires of a process without CAP_SYS_ADMIN.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("seccomp: cannot install the ", ThreadKindName(kind),
                     " filter (does this kernel have seccomp filters?): ", std::strerror(errno)));
  }
  if (SeccompTestHook hook = test_hook.load(); hook != nullptr) hook(kind);
  return absl::OkStatus();
}

void SetSeccompTestHook(SeccompTestHook hook) { test_hook.store(hook); }

bool SeccompAllowsSanitizerCalls() {
#ifdef MOTE_SANITIZER_RUNTIME
  return true;
#else
  return false;
#endif
}

}  // namespace mote
