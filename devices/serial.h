// Serial16550: a 16550A UART as seen by a guest driver (Linux 8250, the tiny
// kernels). Transmitted bytes go to a ByteSink at once; received bytes are
// queued by the event loop with EnqueueInput. Interrupts use one IrqLine.
// Thread-safety: all methods may be called from any thread (internal mutex).
#ifndef MOTE_DEVICES_SERIAL_H_
#define MOTE_DEVICES_SERIAL_H_

#include <cstdint>
#include <deque>

#include "vmm/base/bus.h"
#include "vmm/base/mutex.h"
#include "vmm/base/platform_hooks.h"

namespace mote {

class Serial16550 : public BusDevice {
 public:
  static constexpr uint64_t kRegisterCount = 8;
  static constexpr size_t kInputCapacity = 1024;

  // `out` and `irq` must outlive the device; `irq` may be null (polled use).
  Serial16550(ByteSink* out, IrqLine* irq) : out_(out), irq_(irq) {}

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // Queues host input for the guest; returns how many bytes fit.
  size_t EnqueueInput(absl::Span<const uint8_t> bytes);
  size_t InputRoom();

  // Registers, the pending THR-empty interrupt and the queued input; the
  // IRQ line is driven to match after a restore.
  uint32_t state_version() const override { return 1; }
  void SaveState(StateWriter& out) override;
  absl::Status RestoreState(StateReader& in) override;

 private:
  uint8_t ReadRegister(uint64_t reg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteRegister(uint64_t reg, uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t InterruptId() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Recomputes the interrupt line after any state change.
  void UpdateIrq() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ByteSink* const out_;
  IrqLine* const irq_;
  Mutex mu_;
  std::deque<uint8_t> rx_ ABSL_GUARDED_BY(mu_);
  uint8_t ier_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t lcr_ ABSL_GUARDED_BY(mu_) = 0x03;  // 8N1
  uint8_t mcr_ ABSL_GUARDED_BY(mu_) = 0x08;  // OUT2
  uint8_t fcr_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t scr_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t dll_ ABSL_GUARDED_BY(mu_) = 0x0c;  // 9600 baud
  uint8_t dlm_ ABSL_GUARDED_BY(mu_) = 0;
  bool thr_empty_pending_ ABSL_GUARDED_BY(mu_) = false;  // THRE interrupt not yet acknowledged
  bool irq_level_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace mote

#endif  // MOTE_DEVICES_SERIAL_H_
