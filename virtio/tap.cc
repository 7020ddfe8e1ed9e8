#include "virtio/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"

namespace mote::virtio {
namespace {

constexpr int kVnetHeaderSize = 12;  // struct virtio_net_hdr_v1

absl::Status Configure(int fd, const std::string& what) {
  int size = kVnetHeaderSize;
  if (ioctl(fd, TUNSETVNETHDRSZ, &size) != 0)
    return ErrnoToStatus(errno, what + ": TUNSETVNETHDRSZ");
  // No offloads until the guest accepts them.
  if (ioctl(fd, TUNSETOFFLOAD, 0) != 0) return ErrnoToStatus(errno, what + ": TUNSETOFFLOAD");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoToStatus(errno, what + ": O_NONBLOCK");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FileDescriptor> OpenTap(const std::string& name) {
  std::string what = "tap " + name;
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(what + ": an interface name has 1 to 15 characters");
  }
  FileDescriptor fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd.ok()) return ErrnoToStatus(errno, what + ": open /dev/net/tun");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    int err = errno;
    if (err == EPERM || err == EBUSY) {
      return ErrnoToStatus(err, what +
                                    " (mote needs CAP_NET_ADMIN, or a TAP this user owns that "
                                    "no other process holds)");
    }
    return ErrnoToStatus(err, what + ": TUNSETIFF");
  }
  MOTE_RETURN_IF_ERROR(Configure(fd.get(), what));
  return fd;
}

absl::StatusOr<FileDescriptor> AdoptTap(int raw_fd) {
  std::string what = absl::StrFormat("tap fd %d", raw_fd);
  ifreq ifr{};
  if (ioctl(raw_fd, TUNGETIFF, &ifr) != 0) {
    return ErrnoToStatus(errno, what + ": not an open TAP device");
  }
  if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_VNET_HDR)) {
    return absl::InvalidArgumentError(what + ": must be a TAP opened with IFF_VNET_HDR");
  }
  FileDescriptor fd(fcntl(raw_fd, F_DUPFD_CLOEXEC, 3));
  if (!fd.ok()) return ErrnoToStatus(errno, what);
  MOTE_RETURN_IF_ERROR(Configure(fd.get(), what));
  return fd;
}

absl::Status SetTapOffload(int fd, unsigned flags) {
  if (ioctl(fd, TUNSETOFFLOAD, flags) != 0) return ErrnoToStatus(errno, "TUNSETOFFLOAD");
  return absl::OkStatus();
}

}  // namespace mote::virtio
