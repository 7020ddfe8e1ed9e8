// CmosRtc: the MC146818 CMOS real-time clock at ports 0x70 (index) and 0x71
// (data). Time and date come from an injected Clock at each read, in BCD or
// binary and 12/24-hour form as register B asks; the other CMOS bytes are
// plain RAM. The alarm (registers 1, 3, 5; 0xc0-0xff matches any value) fires
// when the time registers would read the same bytes, if register B enables
// its interrupt (AIE): register C gets AF and IRQF, IRQ 8 is raised until C
// is read, and the VM hears of it (ACPI RTC_STS, a wake from S3). No
// periodic or update-ended interrupts.
// Thread-safety: any thread (internal mutex).
#ifndef MOTE_DEVICES_CMOS_RTC_H_
#define MOTE_DEVICES_CMOS_RTC_H_

#include <array>
#include <cstdint>
#include <functional>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "vmm/base/bus.h"
#include "vmm/base/mutex.h"
#include "vmm/base/platform_hooks.h"

namespace mote {

// What the alarm needs from the VM; an RTC without it never fires. `arm`
// and `disarm` are called under the RTC's lock and must not call back.
struct RtcAlarmWiring {
  std::function<void(absl::Time)> arm;  // call OnAlarmTimer at this time (replaces an earlier arm)
  std::function<void()> disarm;
  IrqLine* irq = nullptr;          // ISA IRQ 8
  std::function<void()> on_alarm;  // it fired (called without the RTC's lock)
};

class CmosRtc : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 2;
  explicit CmosRtc(const Clock* clock, RtcAlarmWiring alarm = {});

  // The armed time came (the host's timer); fires if the alarm matches now.
  void OnAlarmTimer();

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // The index register and the CMOS RAM (registers A-D, the alarm, the
  // rest). The time is not saved: it follows the Clock, with no offset of
  // its own. A restore re-arms (or disarms) the alarm and drives IRQ 8 as
  // register C says.
  uint32_t state_version() const override { return 1; }
  void SaveState(StateWriter& out) override;
  absl::Status RestoreState(StateReader& in) override;

 private:
  uint8_t ReadRegister(uint8_t reg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t Encode(int value) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Time register `reg` as it reads at `t`.
  uint8_t TimeField(uint8_t reg, absl::CivilSecond t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AlarmMatches(absl::CivilSecond t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Arms the host timer for the next second the alarm matches (within a
  // day), or disarms it when AIE is off.
  void RearmAlarm() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* const clock_;
  const RtcAlarmWiring alarm_;
  Mutex mu_;
  uint8_t index_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint8_t, 128> ram_ ABSL_GUARDED_BY(mu_){};
};

}  // namespace mote

#endif  // MOTE_DEVICES_CMOS_RTC_H_
