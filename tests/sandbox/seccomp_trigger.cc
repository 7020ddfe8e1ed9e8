// Test builds only: linked into `mote-seccomp-trigger` (mote with this file
// added), never into `mote`. With MOTE_TEST_SECCOMP_TRIGGER=KIND in the
// environment (vcpu, event-loop, io-worker, main), a thread of that kind makes a
// call its filter forbids right after installing it; the test expects mote
// to end with the seccomp exit code and a line naming both. Each call is
// harmless where it is allowed (--seccomp off or log): the guest runs on.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "vmm/base/seccomp_filter.h"

namespace mote {
namespace {

void ForbiddenCall(ThreadKind kind) {
  const char* wanted = std::getenv("MOTE_TEST_SECCOMP_TRIGGER");
  if (wanted == nullptr || std::strcmp(wanted, ThreadKindName(kind)) != 0) return;
  switch (kind) {
    case ThreadKind::kVcpu:  // a vCPU never opens a socket
      if (int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); fd >= 0) close(fd);
      break;
    case ThreadKind::kIoWorker:  // nor does a block worker
      if (int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); fd >= 0) close(fd);
      break;
    case ThreadKind::kLoop:
    case ThreadKind::kMain: {  // nor executes a program (this one is not there)
      char* argv[] = {const_cast<char*>("/nonexistent/mote-seccomp-trigger"), nullptr};
      execv(argv[0], argv);
      break;
    }
  }
}

const bool installed = [] {
  SetSeccompTestHook(&ForbiddenCall);
  return true;
}();

}  // namespace
}  // namespace mote
