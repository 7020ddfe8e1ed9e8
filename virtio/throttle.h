// Rate limits for a device's I/O: token buckets of bytes and of operations
// per second, each with a burst, per direction (a disk's reads and writes, a
// NIC's receive and transmit) and, for a disk, in total as QEMU has them.
// A request that would overdraw a bucket waits in the device until the
// bucket has refilled; it never fails. A request bigger than a bucket's
// burst is let through once the bucket is full and leaves it in debt, so
// the long-run rate holds whatever the request sizes.
// Thread-safety: none; a device's throttle is used by the thread that holds
// its transport's lock.
#ifndef MOTE_VIRTIO_THROTTLE_H_
#define MOTE_VIRTIO_THROTTLE_H_

#include <cstdint>

namespace mote::virtio {

// One bucket's settings: `rate` per second (0: unlimited) and how much may
// go at once (0: a tenth of a second's worth, as QEMU's default).
struct BucketLimit {
  uint64_t rate = 0;
  uint64_t burst = 0;
  bool operator==(const BucketLimit&) const = default;
};

// The limits of one direction: bytes and operations.
struct IoLimit {
  BucketLimit bytes, ops;
  bool operator==(const IoLimit&) const = default;
};

// A device's limits: `in` is data into the guest (a disk's reads, a NIC's
// receive), `out` data from it (writes, transmit); `total` both together
// (disks only; a request must fit its direction's buckets and these).
struct IoLimits {
  IoLimit total, in, out;
  bool operator==(const IoLimits&) const = default;
};

class TokenBucket {
 public:
  // New settings; the bucket starts full.
  void Set(const BucketLimit& limit, int64_t now_ns);
  // Nanoseconds until `cost` may be taken; 0: now.
  int64_t Wait(uint64_t cost, int64_t now_ns);
  void Take(uint64_t cost) { tokens_ -= static_cast<double>(cost); }
  bool limited() const { return rate_ > 0; }

 private:
  void Refill(int64_t now_ns);

  uint64_t rate_ = 0;
  double capacity_ = 0;
  double tokens_ = 0;  // below 0 after a request bigger than the burst
  int64_t last_ns_ = 0;
};

enum class IoDirection { kIn, kOut };

class Throttle {
 public:
  void Set(const IoLimits& limits, int64_t now_ns);
  const IoLimits& limits() const { return limits_; }
  bool limited() const { return limited_; }
  // Nanoseconds until a request of `bytes` in `direction` may go; 0: it
  // has been charged and goes now.
  int64_t Admit(IoDirection direction, uint64_t bytes, int64_t now_ns);

 private:
  struct Pair {
    TokenBucket bytes, ops;
  };
  IoLimits limits_;
  bool limited_ = false;
  Pair total_, in_, out_;
};

// CLOCK_MONOTONIC in nanoseconds (the vDSO: no system call).
int64_t MonotonicNanos();

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_THROTTLE_H_
