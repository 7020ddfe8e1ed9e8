#include "vmm/base/fd.h"

#include <unistd.h>

#include <cerrno>

namespace mote {

void FileDescriptor::Reset(int fd) {
  if (fd_ >= 0) {
    int saved_errno = errno;
    // Never retry close() on EINTR: on Linux the descriptor is gone already.
    ::close(fd_);
    errno = saved_errno;
  }
  fd_ = fd;
}

}  // namespace mote
