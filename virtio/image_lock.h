// Disk image locks, byte for byte as QEMU takes them (block/file-posix.c),
// so mote, QEMU and qemu-img see each other's: open file description locks
// (F_OFD_SETLK, released when the file is closed, not tied to a process)
// on single bytes of the image. For each permission a user holds it
// read-locks byte 100 + the permission's bit, and for each permission it
// does not let others hold, byte 200 + the bit. A user conflicts with the
// holders when it needs a permission another forbids, or forbids one
// another holds. The permissions (QEMU's): consistent read (bit 0), write
// (1), write unchanged (2), resize (3).
// A reader holds consistent read and forbids write and resize; a writer
// holds consistent read, write and write unchanged and forbids write and
// resize: two writers conflict, and a reader conflicts with a writer; two
// readers do not.
// Thread-safety: functions on an fd; callers serialise calls on one fd.
#ifndef MOTE_VIRTIO_IMAGE_LOCK_H_
#define MOTE_VIRTIO_IMAGE_LOCK_H_

#include <string>

#include "absl/status/status.h"

namespace mote::virtio {

// Takes the locks of a reader (`writable` false) or a writer on `fd`, the
// image `path`. FAILED_PRECONDITION naming the image and the permission when
// another user's locks conflict (and then holds none).
absl::Status LockImage(int fd, const std::string& path, bool writable);
// Lets every lock on `fd` go.
absl::Status UnlockImage(int fd, const std::string& path);

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_IMAGE_LOCK_H_
