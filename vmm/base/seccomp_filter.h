// seccomp filters per thread kind (Firecracker's model): each of mote's
// threads installs, on itself, the smallest allowlist of system calls its
// kind needs (vmm/base/seccomp_rules.cc, made into BPF when mote is built),
// before it handles anything the guest controls. A call outside
// the list traps: a SIGSYS handler names the thread kind and the call on
// stderr and ends the process with exit code 14. In log mode nothing is
// denied; the kernel's audit log records what would have been (for working
// on the lists). A thread a filtered thread creates inherits its filter, so
// each list of a thread the loop starts is a subset of the loop's.
// Thread-safety: Install from the thread to filter, any thread.
#ifndef MOTE_VMM_BASE_SECCOMP_FILTER_H_
#define MOTE_VMM_BASE_SECCOMP_FILTER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mote {

enum class SeccompMode { kOff, kOn, kLog };

enum class ThreadKind {
  kLoop,      // the event loop: control socket, device back ends, (re)building VMs, migration
  kVcpu,      // KVM_RUN and the device exits it dispatches
  kIoWorker,  // virtio-blk's worker threads (hosts without io_uring)
  kMain,      // `mote run`'s first thread, which waits for the VM's end: the loop's list
};

inline constexpr int kSeccompExitCode = 14;

absl::StatusOr<SeccompMode> ParseSeccompMode(const std::string& text);  // on|off|log
const char* ThreadKindName(ThreadKind kind);

// Installs `kind`'s filter on the calling thread (nothing for kOff). Fails
// where the kernel has no seccomp filters.
absl::Status InstallSeccompFilter(ThreadKind kind, SeccompMode mode);

// Whether this build's filters also allow its sanitizer runtime's own calls
// (reports; LeakSanitizer clones a tracer at exit): sanitizer builds only.
bool SeccompAllowsSanitizerCalls();

// Test builds only: called on a thread right after its filter is in place,
// to make a call the filter forbids (tests/sandbox/seccomp_trigger.cc).
using SeccompTestHook = void (*)(ThreadKind kind);
void SetSeccompTestHook(SeccompTestHook hook);

}  // namespace mote

#endif  // MOTE_VMM_BASE_SECCOMP_FILTER_H_
