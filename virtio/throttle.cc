#include "virtio/throttle.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

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

int64_t Throttle::Ready(IoDirection direction, int64_t now_ns) {
  if (!limited_) return 0;
  Pair& way = direction == IoDirection::kIn ? in_ : out_;
  // One byte's token: a bucket that the last frame emptied exactly waits too.
  return std::max({way.bytes.Wait(1, now_ns), way.ops.Wait(1, now_ns), total_.bytes.Wait(1, now_ns),
                   total_.ops.Wait(1, now_ns)});
}

void Throttle::Charge(IoDirection direction, uint64_t bytes) {
  if (!limited_) return;
  for (Pair* pair : {direction == IoDirection::kIn ? &in_ : &out_, &total_}) {
    pair->bytes.Take(bytes);
    pair->ops.Take(1);
  }
}

DeviceThrottle::DeviceThrottle(const IoLimits& limits)
    : timer_(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)), limits_(limits) {
  throttle_.Set(limits, MonotonicNanos());
}

absl::Status DeviceThrottle::Watch(
    const std::function<absl::Status(int, uint32_t, std::function<void()>)>& watch_fd,
    std::function<void()> on_ready) {
  TakeUpLimits();
  if (!timer_.ok() || !watch_fd) return absl::OkStatus();
  return watch_fd(timer_.get(), EPOLLIN, std::move(on_ready));
}

void DeviceThrottle::Wake() {
  uint64_t expirations;
  (void)!read(timer_.get(), &expirations, sizeof(expirations));
  TakeUpLimits();
  int64_t now = MonotonicNanos();
  for (auto& since : resting_since_ns_) {
    int64_t was = since.exchange(-1, std::memory_order_relaxed);
    if (was >= 0) rested_ns_.fetch_add(static_cast<uint64_t>(now - was), std::memory_order_relaxed);
  }
}

bool DeviceThrottle::Admit(IoDirection direction, uint64_t bytes) {
  if (!throttle_.limited()) return true;
  int64_t now = MonotonicNanos();
  int64_t wait = throttle_.Admit(direction, bytes, now);
  if (wait == 0 || !timer_.ok()) return true;  // without a timer it could never go on
  Rest(direction, now, wait);
  return false;
}

bool DeviceThrottle::Ready(IoDirection direction) {
  if (!throttle_.limited()) return true;
  int64_t now = MonotonicNanos();
  int64_t wait = throttle_.Ready(direction, now);
  if (wait == 0 || !timer_.ok()) return true;
  Rest(direction, now, wait);
  return false;
}

void DeviceThrottle::Charge(IoDirection direction, uint64_t bytes) {
  throttle_.Charge(direction, bytes);
}

void DeviceThrottle::Rest(IoDirection direction, int64_t now, int64_t wait) {
  throttled_.fetch_add(1, std::memory_order_relaxed);
  auto& since = resting_since_ns_[Index(direction)];
  if (since.load(std::memory_order_relaxed) < 0) since.store(now, std::memory_order_relaxed);
  // Rest at least a few milliseconds: small frames under a byte limit would
  // otherwise wake the loop for each one, and on a slow host those wake-ups
  // cost more than the limit allows. Every bucket holds at least 100 ms of
  // its rate (a burst is a tenth of a second's, or no less than the rate),
  // so nothing earned while resting is lost.
  constexpr int64_t kMinRestNs = 5'000'000;
  Arm(std::max(wait, kMinRestNs));
}

void DeviceThrottle::Arm(int64_t ns) {
  MutexLock lock(&mu_);
  if (changed_) ns = 1;  // new limits wait to be taken up: at once
  itimerspec when{};
  when.it_value.tv_sec = ns / 1'000'000'000;
  when.it_value.tv_nsec = ns % 1'000'000'000;
  // Both directions share the timer: an earlier expiry stays, and the
  // direction that wanted the later one finds it early and rests again.
  itimerspec old{};
  bool armed = timerfd_gettime(timer_.get(), &old) == 0 &&
               (old.it_value.tv_sec != 0 || old.it_value.tv_nsec != 0);
  if (armed && (old.it_value.tv_sec < when.it_value.tv_sec ||
                (old.it_value.tv_sec == when.it_value.tv_sec &&
                 old.it_value.tv_nsec <= when.it_value.tv_nsec))) {
    return;
  }
  timerfd_settime(timer_.get(), 0, &when, nullptr);
}

void DeviceThrottle::SetLimits(const IoLimits& limits) {
  MutexLock lock(&mu_);
  limits_ = limits;
  changed_ = true;
  itimerspec now{};
  now.it_value.tv_nsec = 1;  // Wake takes them up on the loop, at once
  timerfd_settime(timer_.get(), 0, &now, nullptr);
}

IoLimits DeviceThrottle::limits() const {
  MutexLock lock(&mu_);
  return limits_;
}

void DeviceThrottle::TakeUpLimits() {
  MutexLock lock(&mu_);
  if (!changed_) return;
  throttle_.Set(limits_, MonotonicNanos());
  changed_ = false;
}

uint64_t DeviceThrottle::throttled_ns() const {
  uint64_t total = rested_ns_.load(std::memory_order_relaxed);
  int64_t now = MonotonicNanos();
  for (const auto& since : resting_since_ns_) {
    int64_t was = since.load(std::memory_order_relaxed);
    if (was >= 0 && now > was) total += static_cast<uint64_t>(now - was);
  }
  return total;
}

int64_t MonotonicNanos() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace mote::virtio
