// The jail of `mote run --jail DIR`, in the manner of Firecracker's jailer:
// the VM runs in a child that is PID 1 of new PID, mount, IPC and UTS
// namespaces (and, if asked, in a given network namespace), whose root is a
// tmpfs at DIR holding only the VM's files (bind-mounted at their own paths,
// read-only where the VM only reads them), /proc of its own and the device
// nodes it needs; it runs as the given uid and gid with no capabilities,
// no_new_privs, resource limits and no inherited descriptor. The parent
// stays outside, forwards stop signals and exits with the child's code.
// The jail is the command line's: an embedder of libmote jails its own
// process as it sees fit.
#ifndef MOTE_VMM_JAIL_H_
#define MOTE_VMM_JAIL_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mote/config.h"

namespace mote {

struct JailOptions {
  std::string dir;         // an existing empty directory: the jail's root is mounted there
  uid_t uid = 65534;       // nobody
  gid_t gid = 65534;       // nogroup
  std::string netns;       // a network namespace to join (/var/run/netns/NAME); "": mote's
  uint64_t nofile = 2048;  // RLIMIT_NOFILE, as Firecracker's jailer sets it
  uint64_t fsize = 0;      // RLIMIT_FSIZE in bytes; 0: unlimited
};

// Builds the jail for `config` and forks. In the parent it returns the
// child's exit code once the child has ended (128 + N if a signal N ended
// it). In the child, jailed, it returns nullopt: carry on with `config`,
// whose paths are now absolute and whose TAPs are open descriptors
// (fd=N), since the jail has no way to make them. `keep_fds` stay open in
// the child besides 0, 1 and 2. Errors are the command line's to print.
absl::StatusOr<std::optional<int>> EnterJail(const JailOptions& options, libmote::VmConfig& config,
                                             const std::vector<int>& keep_fds);

}  // namespace mote

#endif  // MOTE_VMM_JAIL_H_
