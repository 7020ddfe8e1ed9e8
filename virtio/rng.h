// RngDevice: virtio entropy device (virtio 1.2 section 5.4): one queue of
// device-writable buffers that the device fills with random bytes from an
// injected source (getrandom by default).
// Thread-safety: called by its transport with the transport's lock held.
#ifndef MOTE_VIRTIO_RNG_H_
#define MOTE_VIRTIO_RNG_H_

#include <cstdint>
#include <functional>

#include "virtio/virtio_device.h"
#include "vmm/base/logging.h"

namespace mote::virtio {

class RngDevice : public VirtioDevice {
 public:
  // Fills the span completely; returns false if the source failed.
  using EntropySource = std::function<bool(absl::Span<uint8_t>)>;
  // At most this many bytes per request: a guest asking for gigabytes gets a
  // short (but valid) answer instead of stalling the event loop.
  static constexpr uint32_t kMaxBytesPerRequest = 64 * 1024;
  static constexpr uint16_t kQueueSize = 256;

  explicit RngDevice(EntropySource source = GetRandom);

  uint32_t DeviceType() const override { return kDeviceTypeRng; }
  uint64_t AvailableFeatures() const override;
  std::vector<uint16_t> QueueMaxSizes() const override { return {kQueueSize}; }
  absl::Status Activate(const ActivationContext& ctx) override;
  void ProcessQueue(uint16_t index) override;
  void Reset() override;

  uint64_t bytes_served() const { return bytes_served_; }

  static bool GetRandom(absl::Span<uint8_t> out);

 private:
  const EntropySource source_;
  ActivationContext ctx_;
  bool active_ = false;
  uint64_t bytes_served_ = 0;
  RateLimiter log_limiter_;
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_RNG_H_
