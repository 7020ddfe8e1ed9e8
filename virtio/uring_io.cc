#include "virtio/uring_io.h"

#include <linux/falloc.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "vmm/base/status_macros.h"

namespace mote::virtio {

absl::StatusOr<std::unique_ptr<UringIo>> UringIo::Create(int file_fd, unsigned depth) {
  FileDescriptor event_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!event_fd.ok()) return ErrnoToStatus(errno, "eventfd");
  std::unique_ptr<UringIo> io(new UringIo(file_fd, std::move(event_fd)));
  if (int err = io_uring_queue_init(depth, &io->ring_, 0); err < 0) {
    io->ring_.ring_fd = -1;
    return ErrnoToStatus(-err, "io_uring_queue_init");
  }
  if (int err = io_uring_register_eventfd(&io->ring_, io->event_fd_.get()); err < 0) {
    return ErrnoToStatus(-err, "io_uring_register_eventfd");
  }
  return io;
}

UringIo::~UringIo() {
  if (ring_.ring_fd < 0) return;
  Drain([](uint64_t, int32_t) {});
  io_uring_queue_exit(&ring_);
}

io_uring_sqe* UringIo::NextSqe(uint64_t tag) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) return nullptr;
  io_uring_sqe_set_data64(sqe, tag);
  ++in_flight_;
  return sqe;
}

bool UringIo::Read(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag) {
  io_uring_sqe* sqe = NextSqe(tag);
  if (sqe == nullptr) return false;
  pending_iovs_.push_back(iov);
  io_uring_prep_readv(sqe, file_fd_, pending_iovs_.back().data(), pending_iovs_.back().size(),
                      offset);
  return true;
}

bool UringIo::Write(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag) {
  io_uring_sqe* sqe = NextSqe(tag);
  if (sqe == nullptr) return false;
  pending_iovs_.push_back(iov);
  io_uring_prep_writev(sqe, file_fd_, pending_iovs_.back().data(), pending_iovs_.back().size(),
                       offset);
  return true;
}

bool UringIo::Flush(uint64_t tag) {
  io_uring_sqe* sqe = NextSqe(tag);
  if (sqe == nullptr) return false;
  io_uring_prep_fsync(sqe, file_fd_, IORING_FSYNC_DATASYNC);
  // Only after every earlier write has completed: that is what the guest flushes.
  sqe->flags |= IOSQE_IO_DRAIN;
  return true;
}

bool UringIo::PunchHole(uint64_t offset, uint64_t length, uint64_t tag) {
  io_uring_sqe* sqe = NextSqe(tag);
  if (sqe == nullptr) return false;
  io_uring_prep_fallocate(sqe, file_fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset,
                          length);
  return true;
}

absl::Status UringIo::Submit() {
  int ret = io_uring_submit(&ring_);
  // The kernel has copied the iovec arrays of everything it accepted.
  pending_iovs_.clear();
  if (ret < 0) return ErrnoToStatus(-ret, "io_uring_submit");
  return absl::OkStatus();
}

void UringIo::Reap(const DoneFn& done) {
  uint64_t count;
  (void)!::read(event_fd_.get(), &count, sizeof(count));
  io_uring_cqe* cqe;
  while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
    uint64_t tag = io_uring_cqe_get_data64(cqe);
    int32_t res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    --in_flight_;
    done(tag, res);
  }
}

void UringIo::Drain(const DoneFn& done) {
  if (!pending_iovs_.empty()) (void)Submit();
  while (in_flight_ > 0) {
    io_uring_cqe* cqe;
    int err = io_uring_wait_cqe(&ring_, &cqe);
    if (err == -EINTR) continue;
    if (err < 0) return;  // the ring is broken; nothing more will complete
    uint64_t tag = io_uring_cqe_get_data64(cqe);
    int32_t res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    --in_flight_;
    done(tag, res);
  }
}

}  // namespace mote::virtio
