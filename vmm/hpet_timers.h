// HpetTimers: what the HPET (devices/hpet.h) needs from the VM. Each
// comparator's deadline is a LoopTimer on CLOCK_MONOTONIC,
// the clock the HPET counts with (MonotonicClock, platform_hooks.h); and while legacy
// replacement gives IRQ 0 to HPET timer 0, KVM's PIT is told to stay quiet.
// Only a VM with --hpet on has one.
// Thread-safety: Arm, Disarm and OnLegacyReplacement from any thread (the
// HPET calls them under its lock; they take none). The deadline callbacks run
// on the event-loop thread.
#ifndef MOTE_VMM_HPET_TIMERS_H_
#define MOTE_VMM_HPET_TIMERS_H_

#include <array>
#include <memory>

#include "absl/status/statusor.h"
#include "devices/hpet.h"
#include "vmm/base/event_loop.h"
#include "vmm/base/kvm.h"
#include "vmm/base/logging.h"
#include "vmm/base/platform_hooks.h"
#include "vmm/loop_timer.h"

namespace mote {

class HpetTimers : public HpetHost {
 public:
  // `pit`: the VM whose in-kernel PIT legacy replacement silences; null
  // when the VM has no PIT.
  static absl::StatusOr<std::unique_ptr<HpetTimers>> Create(EventLoop* loop, VmFd* pit);

  // The device the deadlines are for; before the guest runs.
  absl::Status Attach(Hpet* hpet);

  void Arm(int timer, absl::Time deadline) override;
  void Disarm(int timer) override;
  void OnLegacyReplacement(bool enabled) override;

 private:
  HpetTimers(EventLoop* loop, VmFd* pit) : loop_(loop), pit_(pit) {}

  EventLoop* const loop_;
  VmFd* const pit_;
  std::array<std::unique_ptr<LoopTimer>, Hpet::kNumTimers> timers_;  // made by Attach
  RateLimiter limiter_;
};

}  // namespace mote

#endif  // MOTE_VMM_HPET_TIMERS_H_
