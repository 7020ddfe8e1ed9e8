// UringIo: the BlockIo engine on io_uring. Completions are announced on an
// eventfd registered with the ring; a flush is ordered after every operation
// submitted before it with IOSQE_IO_DRAIN.
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
#include "virtio/block_io.h"
#include "vmm/base/fd.h"

namespace mote::virtio {

class UringIo : public BlockIo {
 public:
  // `file_fd` stays owned by the caller and must outlive this object.
  // Fails where io_uring is unavailable (old kernel, seccomp, sysctl).
  static absl::StatusOr<std::unique_ptr<UringIo>> Create(int file_fd, unsigned depth);
  ~UringIo() override;

  bool Read(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag) override;
  bool Write(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag) override;
  bool Flush(uint64_t tag) override;
  bool PunchHole(uint64_t offset, uint64_t length, uint64_t tag) override;
  absl::Status Submit() override;
  int completion_fd() const override { return event_fd_.get(); }
  void Reap(const DoneFn& done) override;
  bool HasCompletions() override { return io_uring_cq_ready(&ring_) > 0; }
  void Drain(const DoneFn& done) override;
  unsigned in_flight() const override { return in_flight_; }

 private:
  UringIo(int file_fd, FileDescriptor event_fd)
      : file_fd_(file_fd), event_fd_(std::move(event_fd)) {}
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
