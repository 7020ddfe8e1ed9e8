// TransportCore: what every virtio transport does the same way (virtio 1.2
// sections 2 and 3): device status and its reset, feature negotiation through
// 32-bit select/value windows, queue set-up for the selected queue, and
// activation with its notification eventfds on the event loop. A transport
// (virtio-mmio, virtio-pci) maps its own register layout onto these calls and
// decides how interrupts reach the guest.
// Thread-safety: not thread-safe by itself. Every call must hold the owning
// transport's mutex, which the core also takes itself when the event loop
// delivers a queue notification or a device's watched fd.
#ifndef MOTE_VIRTIO_TRANSPORT_CORE_H_
#define MOTE_VIRTIO_TRANSPORT_CORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "virtio/queue.h"
#include "virtio/virtio_device.h"
#include "vmm/base/event_loop.h"
#include "vmm/base/fd.h"
#include "vmm/base/guest_memory.h"
#include "vmm/base/logging.h"
#include "vmm/base/mutex.h"
#include "vmm/base/state_stream.h"

namespace mote::virtio {

inline constexpr uint8_t kStatusAcknowledge = 1, kStatusDriver = 2, kStatusDriverOk = 4,
                         kStatusFeaturesOk = 8, kStatusNeedsReset = 0x40, kStatusFailed = 0x80;

// A non-blocking eventfd, and a write of 1 to one (a saturated counter is
// already signalled, so EAGAIN is fine).
absl::StatusOr<FileDescriptor> NewEventFd();
void SignalEventFd(int fd);

class TransportCore {
 public:
  // `mu` is the owning transport's lock; `interrupt` is how the device's
  // signals reach the transport. Both outlive the core, as do `mem` and `loop`.
  static absl::StatusOr<std::unique_ptr<TransportCore>> Create(std::string name,
                                                               std::shared_ptr<VirtioDevice> device,
                                                               const GuestMemory* mem,
                                                               EventLoop* loop, Mutex* mu,
                                                               VirtioInterrupt* interrupt);
  ~TransportCore();

  const std::string& name() const { return name_; }
  VirtioDevice& device() const { return *device_; }
  RateLimiter& log_limiter() { return log_limiter_; }

  // ---- Status (2.1) ----
  uint8_t status() const { return status_; }
  // Writing 0 resets the device; setting DRIVER_OK after FEATURES_OK
  // activates it. Returns true when the write was a reset.
  bool WriteStatus(uint8_t value);
  void SetNeedsReset() { status_ |= kStatusNeedsReset; }
  bool activated() const { return activated_; }
  // Deactivates the device and forgets every setting, as a status write of 0.
  void Reset();

  // ---- Features (2.2): 32-bit windows chosen by the select registers ----
  uint32_t device_features_sel() const { return device_features_sel_; }
  void set_device_features_sel(uint32_t v) { device_features_sel_ = v; }
  uint32_t driver_features_sel() const { return driver_features_sel_; }
  void set_driver_features_sel(uint32_t v) { driver_features_sel_ = v; }
  uint32_t DeviceFeaturesWindow() const;
  uint32_t DriverFeaturesWindow() const;
  // Ignored after FEATURES_OK, and for windows above bit 63.
  void WriteDriverFeaturesWindow(uint32_t value);

  // ---- Queues ----
  size_t num_queues() const { return queues_.size(); }
  uint32_t queue_sel() const { return queue_sel_; }
  void set_queue_sel(uint32_t v) { queue_sel_ = v; }
  // The selected queue, or null when it does not exist.
  const Queue* SelectedQueue() const;
  // The selected queue for changing its layout: null while the queue is
  // ready or the device runs (a driver must disable or reset before it
  // moves a queue), so a ready queue always has the layout QueueReady
  // checked.
  Queue* SelectedQueueForSetup();
  // Enables (after checking the layout fits guest memory) or disables the
  // selected queue.
  void SetSelectedQueueReady(bool ready);
  // The driver's notification for queue `index`; the fd is readable after a
  // notification (register it as a KVM ioeventfd so no vCPU exit is needed).
  int queue_notify_fd(uint16_t index) const { return notify_fds_[index].get(); }
  // A notification that reached mote as a register write (no ioeventfd).
  void Notify(uint32_t index);

  // ---- Snapshot ----
  // Completes the device's requests in flight (VirtioDevice::Quiesce), then
  // writes status, features, the select registers, every queue and whether
  // the device was activated. The vCPUs are stopped.
  void SaveState(StateWriter& out);
  // Resets, then takes the saved state: every value is checked first (the
  // driver's features a subset of the device's once FEATURES_OK is set, the
  // same number of queues, each queue's layout). A device that ran and was
  // not in DEVICE_NEEDS_RESET is activated again, as when the driver set
  // DRIVER_OK, and every queue is notified once so work the driver queued
  // meanwhile is seen. An error leaves the core reset.
  absl::Status RestoreState(StateReader& in);

 private:
  TransportCore(std::string name, std::shared_ptr<VirtioDevice> device, const GuestMemory* mem,
                EventLoop* loop, Mutex* mu, VirtioInterrupt* interrupt,
                std::vector<FileDescriptor> notify_fds);
  void Activate();
  absl::Status WatchForDevice(int fd, uint32_t events, std::function<void()> on_ready);
  void OnNotify(uint16_t index);

  const std::string name_;
  const std::shared_ptr<VirtioDevice> device_;
  const GuestMemory* const mem_;
  EventLoop* const loop_;
  Mutex* const mu_;
  VirtioInterrupt* const interrupt_;
  const std::vector<FileDescriptor> notify_fds_;
  RateLimiter log_limiter_;

  std::vector<Queue> queues_;
  uint8_t status_ = 0;
  bool activated_ = false;
  bool watching_ = false;                 // notify fds are on the loop
  std::vector<int> device_fds_;           // watched for the device (ctx.watch_fd)
  std::vector<uint64_t> device_pollers_;  // the device's (ctx.add_poller)
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_TRANSPORT_CORE_H_
