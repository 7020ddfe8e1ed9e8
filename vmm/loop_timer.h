// LoopTimer: a one-shot timerfd on the event loop, at an absolute time of
// its clock (CLOCK_MONOTONIC for device timers, CLOCK_REALTIME for the RTC's
// wall-clock alarm); `on_fire` runs on the loop thread.
// Thread-safety: Arm and Disarm from any thread.
#ifndef MOTE_VMM_LOOP_TIMER_H_
#define MOTE_VMM_LOOP_TIMER_H_

#include <time.h>

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vmm/base/event_loop.h"
#include "vmm/base/fd.h"
#include "vmm/base/logging.h"

namespace mote {

class LoopTimer {
 public:
  static absl::StatusOr<std::unique_ptr<LoopTimer>> Create(EventLoop* loop, clockid_t clock,
                                                           std::function<void()> on_fire);
  ~LoopTimer();

  // Fires once at `deadline` (at once if it has passed); replaces an earlier Arm.
  void Arm(absl::Time deadline);
  void Disarm();

 private:
  LoopTimer(EventLoop* loop, FileDescriptor fd) : loop_(loop), fd_(std::move(fd)) {}
  void Set(const struct itimerspec& when);

  EventLoop* const loop_;
  FileDescriptor fd_;
  RateLimiter limiter_;
};

}  // namespace mote

#endif  // MOTE_VMM_LOOP_TIMER_H_
