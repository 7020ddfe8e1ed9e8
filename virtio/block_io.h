// BlockIo: an asynchronous engine for virtio-blk's file I/O. Operations are
// queued (Read/Write/...), handed over by Submit(), and complete later: the
// completion fd becomes readable and Reap() reports each (tag, result),
// result being the byte count or -errno. A Flush starts only after every
// operation queued before it has completed.
// Two engines: UringIo (io_uring) and ThreadPoolIo (worker threads doing
// plain syscalls, for hosts where io_uring is unavailable).
// Thread-safety: one caller thread at a time (the virtio transport's lock).
#ifndef MOTE_VIRTIO_BLOCK_IO_H_
#define MOTE_VIRTIO_BLOCK_IO_H_

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"

namespace mote::virtio {

class BlockIo {
 public:
  using DoneFn = std::function<void(uint64_t tag, int32_t result)>;
  virtual ~BlockIo() = default;
  // False when the engine is full: Submit and try again, or do it synchronously.
  virtual bool Read(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag) = 0;
  virtual bool Write(const std::vector<iovec>& iov, uint64_t offset, uint64_t tag) = 0;
  virtual bool Flush(uint64_t tag) = 0;
  virtual bool PunchHole(uint64_t offset, uint64_t length, uint64_t tag) = 0;
  virtual absl::Status Submit() = 0;
  virtual int completion_fd() const = 0;
  // Whether Reap would report something, without a system call where the
  // engine can tell (for polling); false when it cannot.
  virtual bool HasCompletions() { return false; }
  virtual void Reap(const DoneFn& done) = 0;
  // Blocks until nothing is in flight, reporting what completes.
  virtual void Drain(const DoneFn& done) = 0;
  virtual unsigned in_flight() const = 0;
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_BLOCK_IO_H_
