#include "vmm/loop_timer.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/base/status_macros.h"

namespace mote {

absl::StatusOr<std::unique_ptr<LoopTimer>> LoopTimer::Create(EventLoop* loop, clockid_t clock,
                                                             std::function<void()> on_fire) {
  FileDescriptor fd(timerfd_create(clock, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd.ok()) return ErrnoToStatus(errno, "timerfd_create");
  int raw = fd.get();
  std::unique_ptr<LoopTimer> timer(new LoopTimer(loop, std::move(fd)));
  MOTE_RETURN_IF_ERROR(loop->Add(raw, EPOLLIN, [raw, on_fire = std::move(on_fire)](uint32_t) {
    uint64_t expirations;
    if (read(raw, &expirations, sizeof(expirations)) == sizeof(expirations)) on_fire();
  }));
  return timer;
}

LoopTimer::~LoopTimer() { (void)loop_->Remove(fd_.get()); }

void LoopTimer::Set(const struct itimerspec& when) {
  if (timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &when, nullptr) != 0) {
    MOTE_LOG_LIMITED(limiter_, spdlog::level::warn, "timerfd_settime: {}", std::strerror(errno));
  }
}

void LoopTimer::Arm(absl::Time deadline) {
  struct itimerspec when {};
  when.it_value = absl::ToTimespec(deadline);
  // An all-zero value would disarm; a deadline that early has passed anyway.
  if (when.it_value.tv_sec <= 0 && when.it_value.tv_nsec == 0) when.it_value.tv_nsec = 1;
  Set(when);
}

void LoopTimer::Disarm() { Set(itimerspec{}); }

}  // namespace mote
