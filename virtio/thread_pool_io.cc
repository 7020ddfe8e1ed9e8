#include "virtio/thread_pool_io.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "spdlog/spdlog.h"
#include "vmm/base/status_macros.h"

namespace mote::virtio {

absl::StatusOr<std::unique_ptr<ThreadPoolIo>> ThreadPoolIo::Create(int file_fd,
                                                                   SeccompMode seccomp) {
  FileDescriptor event_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!event_fd.ok()) return ErrnoToStatus(errno, "eventfd");
  return std::unique_ptr<ThreadPoolIo>(new ThreadPoolIo(file_fd, std::move(event_fd), seccomp));
}

ThreadPoolIo::~ThreadPoolIo() {
  Drain([](uint64_t, int32_t) {});
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPoolIo::Queue(Op op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_.push_back(std::move(op));
    ++in_flight_;
  }
  work_cv_.notify_one();
}

bool ThreadPoolIo::Read(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag) {
  Queue({Kind::kRead, iov, offset, 0, tag});
  return true;
}

bool ThreadPoolIo::Write(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag) {
  Queue({Kind::kWrite, iov, offset, 0, tag});
  return true;
}

bool ThreadPoolIo::Flush(uint64_t tag) {
  Queue({Kind::kFlush, {}, 0, 0, tag});
  return true;
}

bool ThreadPoolIo::PunchHole(uint64_t offset, uint64_t length, uint64_t tag) {
  Queue({Kind::kPunchHole, {}, offset, length, tag});
  return true;
}

absl::Status ThreadPoolIo::Submit() {
  // Threads only for VMs that actually do I/O, and only once.
  while (workers_.size() < kWorkers) workers_.emplace_back([this] { Worker(); });
  return absl::OkStatus();
}

unsigned ThreadPoolIo::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

bool ThreadPoolIo::CanStart() const {
  if (queued_.empty() || flush_running_) return false;
  return queued_.front().kind != Kind::kFlush || running_ == 0;
}

void ThreadPoolIo::Worker() {
  pthread_setname_np(pthread_self(), "mote-io");
  if (absl::Status s = InstallSeccompFilter(ThreadKind::kIoWorker, seccomp_); !s.ok()) {
    // The loop and the vCPUs are filtered already, so this cannot happen on
    // a kernel without seccomp; never run a worker unfiltered.
    spdlog::error("virtio-blk worker: {}", s.ToString());
    _exit(kSeccompExitCode);
  }
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait(lock, [this] { return stopping_ || CanStart(); });
    if (!CanStart()) return;  // stopping, and nothing left that can run
    Op op = std::move(queued_.front());
    queued_.pop_front();
    ++running_;
    if (op.kind == Kind::kFlush) flush_running_ = true;
    lock.unlock();
    int32_t result = Execute(op);
    lock.lock();
    --running_;
    if (op.kind == Kind::kFlush) flush_running_ = false;
    completed_.emplace_back(op.tag, result);
    uint64_t one = 1;
    (void)!::write(event_fd_.get(), &one, sizeof(one));
    // A flush waiting for the others, or the ops held behind a flush, may go now.
    work_cv_.notify_all();
    done_cv_.notify_all();
  }
}

int32_t ThreadPoolIo::Execute(const Op& op) const {
  switch (op.kind) {
    case Kind::kRead:
    case Kind::kWrite: {
      // Whole transfers or an error: a short count is retried from where it stopped.
      std::vector<iovec> iov = op.iov;
      size_t first = 0;
      uint64_t offset = op.offset;
      int64_t total = 0;
      while (first < iov.size()) {
        int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
        ssize_t n = op.kind == Kind::kRead ? preadv(file_fd_, &iov[first], count, offset)
                                           : pwritev(file_fd_, &iov[first], count, offset);
        if (n < 0) {
          if (errno == EINTR) continue;
          return -errno;
        }
        if (n == 0) return -EIO;  // end of file inside the disk: it shrank
        total += n;
        offset += static_cast<uint64_t>(n);
        for (size_t left = static_cast<size_t>(n); left > 0 && first < iov.size();) {
          size_t step = std::min(left, iov[first].iov_len);
          iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + step;
          iov[first].iov_len -= step;
          left -= step;
          if (iov[first].iov_len == 0) ++first;
        }
        while (first < iov.size() && iov[first].iov_len == 0) ++first;
      }
      return static_cast<int32_t>(total);
    }
    case Kind::kFlush:
      return fdatasync(file_fd_) == 0 ? 0 : -errno;
    case Kind::kPunchHole:
      return fallocate(file_fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                       static_cast<off_t>(op.offset), static_cast<off_t>(op.length)) == 0
                 ? 0
                 : -errno;
  }
  return -EINVAL;
}

void ThreadPoolIo::Reap(const DoneFn& done) {
  uint64_t count;
  (void)!::read(event_fd_.get(), &count, sizeof(count));
  std::deque<std::pair<uint64_t, int32_t>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(completed_);
    in_flight_ -= batch.size();
  }
  for (const auto& [tag, result] : batch) done(tag, result);
}

void ThreadPoolIo::Drain(const DoneFn& done) {
  if (in_flight() == 0) return;
  (void)Submit();  // queued work needs workers to finish
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [this] { return !completed_.empty() || in_flight_ == 0; });
      if (in_flight_ == 0) return;
    }
    Reap(done);
  }
}

}  // namespace mote::virtio
