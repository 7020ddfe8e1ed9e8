// UringIo: asynchronous file I/O through io_uring for virtio-blk. Operations
// are queued with Read/Write/Flush/..., sent to the kernel by Submit(), and
// their completions are announced on an eventfd that the event loop watches;
// Reap() then hands each (tag, result) to the caller. A flush is ordered
// after every operation submitted before it (IOSQE_IO_DRAIN).
// Thread-safety: one thread at a time (the virtio transport's lock).
#ifndef MOTE_VIRTIO_URING_IO_H_
#define MOTE_VIRTIO_URING_IO_H_

#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/base/fd.h"

namespace mote::virtio {

class UringIo {
 public:
  // `file_fd` stays owned by the caller and must outlive this object.
  // Fails where io_uring is unavailable (old kernel, seccomp, sysctl).
  static absl::StatusOr<std::unique_ptr<UringIo>> Create(int file_fd, unsigned depth);
  ~UringIo();

  // Queue one operation; false when the submission queue is full (Submit and
  // retry later). `tag` comes back with the completion.
  bool Read(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag);
  bool Write(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag);
  bool Flush(uint64_t tag);
  bool PunchHole(uint64_t offset, uint64_t length, uint64_t tag);
  bool ZeroRange(uint64_t offset, uint64_t length, uint64_t tag);
  absl::Status Submit();

  // Readable when completions may be waiting.
  int completion_fd() const { return event_fd_.get(); }
  // Calls done(tag, result) for every completion (result: bytes or -errno).
  void Reap(const std::function<void(uint64_t tag, int32_t result)>& done);
  // Waits until nothing is in flight, passing completions to `done`.
  void Drain(const std::function<void(uint64_t tag, int32_t result)>& done);
  unsigned in_flight() const { return in_flight_; }

 private:
  UringIo(int file_fd, FileDescriptor event_fd) : file_fd_(file_fd), event_fd_(std::move(event_fd)) {}
  io_uring_sqe* NextSqe(uint64_t tag);

  io_uring ring_{};
  const int file_fd_;
  FileDescriptor event_fd_;
  // iovec arrays must stay valid until the kernel has read them (at submit).
  std::vector<std::vector<iovec>> pending_iovs_;
  unsigned in_flight_ = 0;  // submitted or queued, not yet reaped
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_URING_IO_H_
