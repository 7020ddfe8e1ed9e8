#include "vmm/hpet_timers.h"

#include "vmm/base/status_macros.h"

namespace mote {

absl::StatusOr<std::unique_ptr<HpetTimers>> HpetTimers::Create(EventLoop* loop, VmFd* pit) {
  return std::unique_ptr<HpetTimers>(new HpetTimers(loop, pit));
}

absl::Status HpetTimers::Attach(Hpet* hpet) {
  for (int timer = 0; timer < Hpet::kNumTimers; ++timer) {
    MOTE_ASSIGN_OR_RETURN(timers_[timer], LoopTimer::Create(loop_, CLOCK_MONOTONIC, [hpet, timer] {
                            hpet->OnTimerDeadline(timer);
                          }));
  }
  return absl::OkStatus();
}

void HpetTimers::Arm(int timer, absl::Time deadline) {
  if (timer >= 0 && timer < Hpet::kNumTimers && timers_[timer]) timers_[timer]->Arm(deadline);
}

void HpetTimers::Disarm(int timer) {
  if (timer >= 0 && timer < Hpet::kNumTimers && timers_[timer]) timers_[timer]->Disarm();
}

void HpetTimers::OnLegacyReplacement(bool enabled) {
  if (pit_ == nullptr) return;
  if (absl::Status s = pit_->SetPitHpetLegacy(enabled); !s.ok()) {
    MOTE_LOG_LIMITED(limiter_, spdlog::level::warn, "hpet: {}", s.ToString());
  }
}

}  // namespace mote
