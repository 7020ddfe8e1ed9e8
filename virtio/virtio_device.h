// VirtioDevice: what a virtio device means, apart from how it is reached.
// A transport (virtio-pci or virtio-mmio) owns the register file, feature
// negotiation and the queues; it calls Activate once the driver sets
// DRIVER_OK and Reset when the driver (or mote) resets the device. A device
// never knows which transport carries it.
// Threading: the transport calls Activate, Reset, ReadConfig, WriteConfig and
// ProcessQueue with its own lock held, so a device's state is only ever
// touched by one thread at a time: a vCPU thread for register accesses, the
// event-loop thread for ProcessQueue (after the driver's queue notify).
// DeviceType, AvailableFeatures and QueueMaxSizes are constant.
#ifndef MOTE_VIRTIO_VIRTIO_DEVICE_H_
#define MOTE_VIRTIO_VIRTIO_DEVICE_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "virtio/queue.h"
#include "vmm/base/guest_memory.h"

namespace mote::virtio {

inline constexpr uint64_t kFeatureVersion1 = 1ull << 32;      // VIRTIO_F_VERSION_1
inline constexpr uint64_t kFeatureRingEventIdx = 1ull << 29;  // VIRTIO_F_RING_EVENT_IDX
inline constexpr uint64_t kFeatureRingIndirect = 1ull << 28;  // VIRTIO_F_RING_INDIRECT_DESC

inline constexpr uint32_t kDeviceTypeNet = 1;
inline constexpr uint32_t kDeviceTypeBlock = 2;
inline constexpr uint32_t kDeviceTypeRng = 4;

// How a device tells the driver something happened; implemented by transports.
class VirtioInterrupt {
 public:
  virtual ~VirtioInterrupt() = default;
  // Queue `queue` has new used buffers (the transport picks the interrupt:
  // virtio-pci has an MSI-X vector per queue).
  virtual void SignalUsedBuffers(uint16_t queue) = 0;
  // Sets DEVICE_NEEDS_RESET and raises a configuration-change interrupt.
  virtual void SignalNeedsReset() = 0;
};

struct ActivationContext {
  const GuestMemory* mem = nullptr;
  std::vector<Queue*> queues;  // index = queue index; owned by the transport; null if not ready
  VirtioInterrupt* interrupt = nullptr;
  uint64_t features = 0;  // what the driver accepted
  // Calls `on_ready` on the event-loop thread, with the transport's lock held,
  // when `fd` reports `epoll_events` (e.g. EPOLLIN, or EPOLLIN | EPOLLET),
  // until the device is reset: backend completions, a TAP's packets.
  std::function<absl::Status(int fd, uint32_t epoll_events, std::function<void()> on_ready)>
      watch_fd;
  // Calls `poll` on the event-loop thread, with the transport's lock held,
  // whenever the loop busy-polls (EventLoop pollers), until the device is
  // reset. It looks for work without being told (a queue the driver filled,
  // completions of the I/O engine), does it, and returns true if it found any.
  std::function<void(std::function<bool()> poll)> add_poller;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  virtual uint32_t DeviceType() const = 0;
  // Including kFeatureVersion1: mote offers modern devices only.
  virtual uint64_t AvailableFeatures() const = 0;
  virtual std::vector<uint16_t> QueueMaxSizes() const = 0;
  // Device configuration space; the default has none (reads as zero).
  virtual void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const;
  virtual void WriteConfig(uint64_t offset, absl::Span<const uint8_t> data);
  // The driver set DRIVER_OK: keep ctx for ProcessQueue. An error puts the
  // device in DEVICE_NEEDS_RESET.
  virtual absl::Status Activate(const ActivationContext& ctx) = 0;
  // The driver notified queue `index` (event-loop thread).
  virtual void ProcessQueue(uint16_t index) = 0;
  // Forget the activation; the device may be activated again.
  virtual void Reset() = 0;
  // Before its state is saved (snapshot, migration), with the vCPUs
  // stopped: completes every request in flight (used ring written,
  // interrupt sent), so none is lost or done twice after a restore.
  virtual void Quiesce() {}
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_VIRTIO_DEVICE_H_
