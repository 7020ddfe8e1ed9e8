// MmioTransport: a virtio device behind the virtio-mmio register file
// (virtio 1.2 section 4.2, version 2 "modern" only). It negotiates features,
// owns the queues, activates and resets the device, and turns queue
// notifications (an eventfd per queue, which the Vm also registers as a KVM
// ioeventfd) into ProcessQueue calls on the event-loop thread. Interrupts go
// out through one eventfd (a KVM irqfd) with InterruptStatus telling why.
// Thread-safety: Read/Write from vCPU threads, notifications on the loop
// thread; one mutex serialises everything that touches the device.
#ifndef MOTE_VIRTIO_MMIO_TRANSPORT_H_
#define MOTE_VIRTIO_MMIO_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "virtio/queue.h"
#include "virtio/virtio_device.h"
#include "vmm/base/bus.h"
#include "vmm/base/event_loop.h"
#include "vmm/base/fd.h"
#include "vmm/base/guest_memory.h"
#include "vmm/base/logging.h"

namespace mote::virtio {

class MmioTransport : public BusDevice, public VirtioInterrupt {
 public:
  static constexpr uint64_t kQueueNotifyOffset = 0x050;
  static constexpr uint8_t kStatusAcknowledge = 1, kStatusDriver = 2, kStatusDriverOk = 4,
                           kStatusFeaturesOk = 8, kStatusNeedsReset = 0x40, kStatusFailed = 0x80;
  static constexpr uint32_t kInterruptUsedBuffer = 1, kInterruptConfigChange = 2;

  // `mem` and `loop` must outlive the transport.
  static absl::StatusOr<std::unique_ptr<MmioTransport>> Create(
      std::shared_ptr<VirtioDevice> device, const GuestMemory* mem, EventLoop* loop);
  ~MmioTransport() override;

  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  void SignalUsedBuffers() override;
  void SignalNeedsReset() override;

  // One eventfd per queue; readable when the driver notified that queue.
  int queue_notify_fd(uint16_t index) const { return notify_fds_[index].get(); }
  size_t num_queues() const { return notify_fds_.size(); }
  // Signalled for every interrupt; register it as a KVM irqfd.
  int interrupt_fd() const { return interrupt_fd_.get(); }
  uint8_t status() const;

 private:
  MmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory* mem, EventLoop* loop,
                FileDescriptor interrupt_fd, std::vector<FileDescriptor> notify_fds);
  uint32_t ReadRegister(uint64_t offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteRegister(uint64_t offset, uint32_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteStatus(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Activate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResetDevice() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Queue* SelectedQueue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnNotify(uint16_t index);
  absl::Status WatchForDevice(int fd, uint32_t events, std::function<void()> on_ready)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RaiseInterrupt(uint32_t reason);

  const std::shared_ptr<VirtioDevice> device_;
  const GuestMemory* const mem_;
  EventLoop* const loop_;
  const FileDescriptor interrupt_fd_;
  const std::vector<FileDescriptor> notify_fds_;
  std::atomic<uint32_t> interrupt_status_{0};
  RateLimiter log_limiter_;

  mutable absl::Mutex mu_;
  std::vector<Queue> queues_ ABSL_GUARDED_BY(mu_);
  uint8_t status_ ABSL_GUARDED_BY(mu_) = 0;
  bool activated_ ABSL_GUARDED_BY(mu_) = false;
  bool watching_ ABSL_GUARDED_BY(mu_) = false;  // notify fds are on the loop
  std::vector<int> device_fds_ ABSL_GUARDED_BY(mu_);  // watched for the device (ctx.watch_fd)
  uint32_t device_features_sel_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t driver_features_sel_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t driver_features_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t queue_sel_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_MMIO_TRANSPORT_H_
