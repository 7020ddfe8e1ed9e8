#include "virtio/image_lock.h"

#include <fcntl.h>

#include <cerrno>

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"

namespace mote::virtio {
namespace {

constexpr int kPermBase = 100;    // QEMU's RAW_LOCK_PERM_BASE
constexpr int kSharedBase = 200;  // QEMU's RAW_LOCK_SHARED_BASE
constexpr unsigned kConsistentRead = 1 << 0, kWrite = 1 << 1, kWriteUnchanged = 1 << 2,
                   kResize = 1 << 3;
constexpr int kPermissions = 4;
constexpr const char* kNames[kPermissions] = {"consistent read", "write", "write unchanged",
                                              "resize"};

struct Access {
  unsigned held;       // permissions this user has
  unsigned forbidden;  // permissions no one else may have
};

Access AccessFor(bool writable) {
  if (writable) return {kConsistentRead | kWrite | kWriteUnchanged, kWrite | kResize};
  return {kConsistentRead, kWrite | kResize};
}

int LockByte(int fd, int byte, short type) {
  struct flock lock = {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = byte;
  lock.l_len = 1;
  return fcntl(fd, F_OFD_SETLK, &lock);
}

// Whether another open file description holds a lock on `byte`.
absl::StatusOr<bool> HeldByOther(int fd, int byte) {
  struct flock lock = {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = byte;
  lock.l_len = 1;
  if (fcntl(fd, F_OFD_GETLK, &lock) != 0) return ErrnoToStatus(errno, "F_OFD_GETLK");
  return lock.l_type != F_UNLCK;
}

absl::Status InUse(const std::string& path, const std::string& what) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "disk %s is in use: another process %s (lock=off opens it anyway)", path, what));
}

absl::Status TakeAndCheck(int fd, const std::string& path, const Access& access) {
  // Take first, then check: of two users starting at once, one sees the other.
  for (int bit = 0; bit < kPermissions; ++bit) {
    if ((access.held >> bit & 1) && LockByte(fd, kPermBase + bit, F_RDLCK) != 0) {
      return ErrnoToStatus(errno, "disk " + path + ": lock");
    }
    if ((access.forbidden >> bit & 1) && LockByte(fd, kSharedBase + bit, F_RDLCK) != 0) {
      return ErrnoToStatus(errno, "disk " + path + ": lock");
    }
  }
  for (int bit = 0; bit < kPermissions; ++bit) {
    if (access.held >> bit & 1) {
      MOTE_ASSIGN_OR_RETURN(bool forbidden, HeldByOther(fd, kSharedBase + bit));
      if (forbidden) return InUse(path, absl::StrFormat("forbids \"%s\"", kNames[bit]));
    }
    if (access.forbidden >> bit & 1) {
      MOTE_ASSIGN_OR_RETURN(bool held, HeldByOther(fd, kPermBase + bit));
      if (held) return InUse(path, absl::StrFormat("holds \"%s\"", kNames[bit]));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LockImage(int fd, const std::string& path, bool writable) {
  absl::Status taken = TakeAndCheck(fd, path, AccessFor(writable));
  if (!taken.ok()) (void)UnlockImage(fd, path);
  return taken;
}

absl::Status UnlockImage(int fd, const std::string& path) {
  struct flock lock = {};
  lock.l_type = F_UNLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = kPermBase;
  lock.l_len = kSharedBase + kPermissions - kPermBase;
  if (fcntl(fd, F_OFD_SETLK, &lock) != 0) return ErrnoToStatus(errno, "disk " + path + ": unlock");
  return absl::OkStatus();
}

}  // namespace mote::virtio
