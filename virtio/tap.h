// Tap: a TAP network interface opened for virtio-net, with the virtio-net
// header in front of every frame (IFF_VNET_HDR, 12-byte header as in virtio
// 1.x) and non-blocking reads and writes.
// Thread-safety: the fd is used by one thread at a time (the event loop).
#ifndef MOTE_VIRTIO_TAP_H_
#define MOTE_VIRTIO_TAP_H_

#include <string>

#include "absl/status/statusor.h"
#include "vmm/base/fd.h"

namespace mote::virtio {

// Attaches to the TAP interface `name` (created if it does not exist and
// mote may create it). Errors say what is missing: /dev/net/tun, permission.
absl::StatusOr<FileDescriptor> OpenTap(const std::string& name);
// Takes an inherited TAP fd (--net fd=N) and sets it up the same way.
absl::StatusOr<FileDescriptor> AdoptTap(int fd);
// Offloads the TAP may hand to the guest (TUNSETOFFLOAD: TUN_F_CSUM, _TSO4, ...).
absl::Status SetTapOffload(int fd, unsigned flags);

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_TAP_H_
