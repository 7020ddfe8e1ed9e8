#include "virtio/throttle.h"

#include <time.h>

#include <algorithm>
#include <cmath>

namespace mote::virtio {

void TokenBucket::Set(const BucketLimit& limit, int64_t now_ns) {
  rate_ = limit.rate;
  capacity_ =
      static_cast<double>(limit.burst != 0 ? limit.burst : std::max<uint64_t>(rate_ / 10, 1));
  tokens_ = capacity_;
  last_ns_ = now_ns;
}

void TokenBucket::Refill(int64_t now_ns) {
  if (now_ns <= last_ns_) return;
  double earned = static_cast<double>(rate_) * static_cast<double>(now_ns - last_ns_) / 1e9;
  tokens_ = std::min(capacity_, tokens_ + earned);
  last_ns_ = now_ns;
}

int64_t TokenBucket::Wait(uint64_t cost, int64_t now_ns) {
  if (rate_ == 0) return 0;
  Refill(now_ns);
  // A request bigger than the burst waits for a full bucket, not for ever.
  double needed = std::min(static_cast<double>(cost), capacity_);
  if (tokens_ >= needed) return 0;
  return std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil((needed - tokens_) * 1e9 / static_cast<double>(rate_))));
}

void Throttle::Set(const IoLimits& limits, int64_t now_ns) {
  limits_ = limits;
  limited_ = false;
  auto set = [&](Pair& pair, const IoLimit& limit) {
    pair.bytes.Set(limit.bytes, now_ns);
    pair.ops.Set(limit.ops, now_ns);
    limited_ = limited_ || pair.bytes.limited() || pair.ops.limited();
  };
  set(total_, limits.total);
  set(in_, limits.in);
  set(out_, limits.out);
}

int64_t Throttle::Admit(IoDirection direction, uint64_t bytes, int64_t now_ns) {
  if (!limited_) return 0;
  Pair& way = direction == IoDirection::kIn ? in_ : out_;
  int64_t wait = std::max({way.bytes.Wait(bytes, now_ns), way.ops.Wait(1, now_ns),
                           total_.bytes.Wait(bytes, now_ns), total_.ops.Wait(1, now_ns)});
  if (wait > 0) return wait;
  for (Pair* pair : {&way, &total_}) {
    pair->bytes.Take(bytes);
    pair->ops.Take(1);
  }
  return 0;
}

int64_t MonotonicNanos() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace mote::virtio
