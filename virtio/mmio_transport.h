// MmioTransport: a virtio device behind the virtio-mmio register file
// (virtio 1.2 section 4.2, version 2 "modern" only). The register file maps
// onto TransportCore (status, features, queues, notifications, shared with
// virtio-pci). Interrupts go out through one eventfd (a KVM irqfd) with
// InterruptStatus telling why.
// Thread-safety: Read/Write from vCPU threads, notifications on the loop
// thread; one mutex serialises everything that touches the device.
#ifndef MOTE_VIRTIO_MMIO_TRANSPORT_H_
#define MOTE_VIRTIO_MMIO_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "virtio/transport_core.h"
#include "virtio/virtio_device.h"
#include "vmm/base/bus.h"
#include "vmm/base/event_loop.h"
#include "vmm/base/fd.h"
#include "vmm/base/guest_memory.h"
#include "vmm/base/logging.h"
#include "vmm/base/mutex.h"

namespace mote::virtio {

class MmioTransport : public BusDevice, public VirtioInterrupt {
 public:
  static constexpr uint64_t kQueueNotifyOffset = 0x050;
  static constexpr uint32_t kInterruptUsedBuffer = 1, kInterruptConfigChange = 2;

  // `mem` and `loop` must outlive the transport.
  static absl::StatusOr<std::unique_ptr<MmioTransport>> Create(std::shared_ptr<VirtioDevice> device,
                                                               const GuestMemory* mem,
                                                               EventLoop* loop);
  ~MmioTransport() override = default;

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // Snapshot (version 1): InterruptStatus, then the core (TransportCore).
  // Restoring re-raises the irqfd while InterruptStatus is non-zero: the
  // guest may not have seen the interrupt before the state was saved.
  uint32_t state_version() const override { return 1; }
  void SaveState(StateWriter& out) override;
  absl::Status RestoreState(StateReader& in) override;

  // Called by the device with mu_ held.
  void SignalUsedBuffers(uint16_t queue) override;
  void SignalNeedsReset() override;

  // One eventfd per queue; readable when the driver notified that queue.
  int queue_notify_fd(uint16_t index) const;
  size_t num_queues() const;
  // Signalled for every interrupt; register it as a KVM irqfd.
  int interrupt_fd() const { return interrupt_fd_.get(); }
  uint8_t status() const;

 private:
  explicit MmioTransport(FileDescriptor interrupt_fd) : interrupt_fd_(std::move(interrupt_fd)) {}
  uint32_t ReadRegister(uint64_t offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteRegister(uint64_t offset, uint32_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RaiseInterrupt(uint32_t reason);

  const FileDescriptor interrupt_fd_;
  std::atomic<uint32_t> interrupt_status_{0};
  // Declared before core_: the core takes it while it is destroyed.
  mutable Mutex mu_;
  std::unique_ptr<TransportCore> core_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_MMIO_TRANSPORT_H_
