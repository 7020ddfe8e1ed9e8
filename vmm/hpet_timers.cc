#include "vmm/hpet_timers.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "vmm/base/status_macros.h"

namespace mote {

absl::StatusOr<std::unique_ptr<HpetTimers>> HpetTimers::Create(EventLoop* loop, VmFd* pit) {
  std::unique_ptr<HpetTimers> timers(new HpetTimers(loop, pit));
  for (FileDescriptor& fd : timers->fds_) {
    fd = FileDescriptor(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!fd.ok()) return ErrnoToStatus(errno, "timerfd_create for the HPET");
  }
  return timers;
}

HpetTimers::~HpetTimers() {
  if (!attached_) return;
  for (FileDescriptor& fd : fds_) (void)loop_->Remove(fd.get());
}

absl::Status HpetTimers::Attach(Hpet* hpet) {
  for (int timer = 0; timer < Hpet::kNumTimers; ++timer) {
    int fd = fds_[timer].get();
    MOTE_RETURN_IF_ERROR(loop_->Add(fd, EPOLLIN, [fd, hpet, timer](uint32_t) {
      uint64_t expirations;
      if (read(fd, &expirations, sizeof(expirations)) == sizeof(expirations)) {
        hpet->OnTimerDeadline(timer);
      }
    }));
  }
  attached_ = true;
  return absl::OkStatus();
}

void HpetTimers::SetTimer(int timer, const struct itimerspec& when) {
  if (timer < 0 || timer >= Hpet::kNumTimers) return;
  if (timerfd_settime(fds_[timer].get(), TFD_TIMER_ABSTIME, &when, nullptr) != 0) {
    MOTE_LOG_LIMITED(limiter_, spdlog::level::warn, "hpet: timerfd_settime: {}",
                     std::strerror(errno));
  }
}

void HpetTimers::Arm(int timer, absl::Time deadline) {
  struct itimerspec when {};
  when.it_value = absl::ToTimespec(deadline);
  // An all-zero value would disarm; a deadline that early has passed anyway.
  if (when.it_value.tv_sec <= 0 && when.it_value.tv_nsec == 0) when.it_value.tv_nsec = 1;
  SetTimer(timer, when);
}

void HpetTimers::Disarm(int timer) { SetTimer(timer, itimerspec{}); }

void HpetTimers::OnLegacyReplacement(bool enabled) {
  if (pit_ == nullptr) return;
  if (absl::Status s = pit_->SetPitHpetLegacy(enabled); !s.ok()) {
    MOTE_LOG_LIMITED(limiter_, spdlog::level::warn, "hpet: {}", s.ToString());
  }
}

}  // namespace mote
