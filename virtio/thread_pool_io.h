// ThreadPoolIo: the BlockIo engine for hosts without io_uring. A few worker
// threads (started on first use) run preadv/pwritev/fdatasync/fallocate on
// the file and post completions to an eventfd. A flush waits until every
// operation queued before it has finished, and holds back those after it.
// Thread-safety: the BlockIo methods from one thread at a time; the workers
// synchronise through mu_, a std::mutex rather than mote::Mutex because the
// workers wait on condition variables.
#ifndef MOTE_VIRTIO_THREAD_POOL_IO_H_
#define MOTE_VIRTIO_THREAD_POOL_IO_H_

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "virtio/block_io.h"
#include "vmm/base/fd.h"
#include "vmm/base/seccomp_filter.h"

namespace mote::virtio {

class ThreadPoolIo : public BlockIo {
 public:
  static constexpr int kWorkers = 4;
  // `file_fd` stays owned by the caller and must outlive this object.
  // The workers install the I/O-worker seccomp filter in `seccomp` mode.
  static absl::StatusOr<std::unique_ptr<ThreadPoolIo>> Create(
      int file_fd, SeccompMode seccomp = SeccompMode::kOff);
  ~ThreadPoolIo() override;

  bool Read(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag) override;
  bool Write(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag) override;
  bool Flush(uint64_t tag) override;
  bool PunchHole(uint64_t offset, uint64_t length, uint64_t tag) override;
  absl::Status Submit() override;
  int completion_fd() const override { return event_fd_.get(); }
  void Reap(const DoneFn& done) override;
  void Drain(const DoneFn& done) override;
  unsigned in_flight() const override;

 private:
  enum class Kind { kRead, kWrite, kFlush, kPunchHole };
  struct Op {
    Kind kind;
    std::vector<iovec> iov;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint64_t tag = 0;
  };
  ThreadPoolIo(int file_fd, FileDescriptor event_fd, SeccompMode seccomp)
      : file_fd_(file_fd), event_fd_(std::move(event_fd)), seccomp_(seccomp) {}
  void Queue(Op op);
  void Worker();
  int32_t Execute(const Op& op) const;
  // A worker may take the next op: not a flush while others run, nothing
  // while a flush runs. Called with mu_ held.
  bool CanStart() const;

  const int file_fd_;
  FileDescriptor event_fd_;
  const SeccompMode seccomp_;
  std::vector<std::thread> workers_;  // started by the first Submit
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // workers: something may be startable
  std::condition_variable done_cv_;  // Drain: something completed
  // All guarded by mu_:
  std::deque<Op> queued_;
  std::deque<std::pair<uint64_t, int32_t>> completed_;
  int running_ = 0;
  bool flush_running_ = false;
  unsigned in_flight_ = 0;
  bool stopping_ = false;
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_THREAD_POOL_IO_H_
