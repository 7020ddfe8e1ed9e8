// CmosRtc: the MC146818 CMOS real-time clock at ports 0x70 (index) and 0x71
// (data). Time and date come from an injected Clock at each read, in BCD or
// binary and 12/24-hour form as register B asks; the other CMOS bytes are
// plain RAM. No alarm or periodic interrupts (no guest of ours needs them).
// Thread-safety: any thread (internal mutex).
#ifndef MOTE_DEVICES_CMOS_RTC_H_
#define MOTE_DEVICES_CMOS_RTC_H_

#include <array>
#include <cstdint>

#include "vmm/base/bus.h"
#include "vmm/base/mutex.h"
#include "vmm/base/platform_hooks.h"

namespace mote {

class CmosRtc : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 2;
  explicit CmosRtc(const Clock* clock);

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

 private:
  uint8_t ReadRegister(uint8_t reg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t Encode(int value) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* const clock_;
  Mutex mu_;
  uint8_t index_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint8_t, 128> ram_ ABSL_GUARDED_BY(mu_){};
};

}  // namespace mote

#endif  // MOTE_DEVICES_CMOS_RTC_H_
