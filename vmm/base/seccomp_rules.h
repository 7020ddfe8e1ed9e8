// The allowlists of the seccomp filters, one per thread kind
// (vmm/base/seccomp_filter.h), as libseccomp rules. They are turned into BPF
// when mote is built (seccomp_bpf_gen writes seccomp_bpf.h), not when a
// thread starts: libseccomp takes about a millisecond per list, and a vCPU
// installs its filter before its first KVM_RUN.
#ifndef MOTE_VMM_BASE_SECCOMP_RULES_H_
#define MOTE_VMM_BASE_SECCOMP_RULES_H_

#include <seccomp.h>

#include "absl/status/status.h"
#include "vmm/base/seccomp_filter.h"

// Sanitizer builds also allow their runtime's own calls.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MOTE_SANITIZER_RUNTIME 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MOTE_SANITIZER_RUNTIME 1
#endif
#endif

namespace mote {

// Adds `kind`'s allowlist (kMain's is the loop's) to `ctx`, whose default
// action is what a call outside it gets.
absl::Status AddSeccompRules(scmp_filter_ctx ctx, ThreadKind kind);

}  // namespace mote

#endif  // MOTE_VMM_BASE_SECCOMP_RULES_H_
