// Rate limits for a device's I/O: token buckets of bytes and of operations
// per second, each with a burst, per direction (a disk's reads and writes, a
// NIC's receive and transmit) and, for a disk, in total as QEMU has them.
// A request that would overdraw a bucket waits in the device until the
// bucket has refilled; it never fails. A request bigger than a bucket's
// burst is let through once the bucket is full and leaves it in debt, so
// the long-run rate holds whatever the request sizes.
// DeviceThrottle is what a device holds: the buckets, a timer for when a
// resting direction may go on, and the limits' changes from other threads.
// Thread-safety: TokenBucket and Throttle none; DeviceThrottle's SetLimits
// and limits() from any thread, the rest by the thread that holds the
// device's transport lock.
#ifndef MOTE_VIRTIO_THROTTLE_H_
#define MOTE_VIRTIO_THROTTLE_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "vmm/base/fd.h"
#include "vmm/base/mutex.h"

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
  // Nanoseconds until `direction` holds a byte's and an operation's token;
  // Charge then takes `bytes` and the operation.
  int64_t Ready(IoDirection direction, int64_t now_ns);
  void Charge(IoDirection direction, uint64_t bytes);

 private:
  struct Pair {
    TokenBucket bytes, ops;
  };
  IoLimits limits_;
  bool limited_ = false;
  Pair total_, in_, out_;
};

// A device's throttle: directions rest while their limits hold them back,
// and a timerfd (watched on the event loop) says when they may look again.
class DeviceThrottle {
 public:
  explicit DeviceThrottle(const IoLimits& limits);

  // Has the event loop call `on_ready` (the device's retry, with the
  // transport's lock held) when a resting direction may go on or new
  // limits arrived; at each activation. Takes up limits set meanwhile.
  absl::Status Watch(
      const std::function<absl::Status(int, uint32_t, std::function<void()>)>& watch_fd,
      std::function<void()> on_ready);
  // Ends every rest (the device was reset, or the timer fired); the timer's
  // callback calls it first, then retries.
  void Wake();

  bool limited() const { return throttle_.limited(); }
  bool resting(IoDirection direction) const {
    return resting_since_ns_[Index(direction)].load(std::memory_order_relaxed) >= 0;
  }
  bool resting() const { return resting(IoDirection::kIn) || resting(IoDirection::kOut); }
  // A request of `bytes` in `direction` may go now (it is charged), or the
  // direction rests until the timer fires (false).
  bool Admit(IoDirection direction, uint64_t bytes);
  // For what is measured only once taken (a received frame): whether
  // `direction` may take one now (its buckets hold no debt), else it rests;
  // then Charge with what it took.
  bool Ready(IoDirection direction);
  void Charge(IoDirection direction, uint64_t bytes);

  void SetLimits(const IoLimits& limits);
  IoLimits limits() const;

  // Requests that had to wait; any thread.
  uint64_t throttled() const { return throttled_.load(std::memory_order_relaxed); }
  uint64_t throttled_ns() const;  // time spent resting, per direction summed; any thread

 private:
  static int Index(IoDirection d) { return d == IoDirection::kIn ? 0 : 1; }
  void Rest(IoDirection direction, int64_t now, int64_t wait);
  void Arm(int64_t ns);
  void TakeUpLimits();

  Throttle throttle_;
  FileDescriptor timer_;
  // Atomic for the counters' readers; written only with the transport's lock.
  std::atomic<int64_t> resting_since_ns_[2] = {-1, -1};
  std::atomic<uint64_t> throttled_ = 0;
  std::atomic<uint64_t> rested_ns_ = 0;
  // Also held around arming the timer, so a SetLimits' "at once" is never
  // overwritten by a longer wait armed at the same moment.
  mutable Mutex mu_;
  IoLimits limits_ ABSL_GUARDED_BY(mu_);
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
};

// CLOCK_MONOTONIC in nanoseconds (the vDSO: no system call).
int64_t MonotonicNanos();

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_THROTTLE_H_
