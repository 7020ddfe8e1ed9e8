// NetDevice: virtio-net (virtio 1.2 section 5.1) on a packet fd: a TAP with
// IFF_VNET_HDR, or in tests one end of a SOCK_SEQPACKET pair. Frames travel
// with the 12-byte virtio-net header in front, untouched, so checksum and
// TSO offloads pass straight between guest and TAP (TUNSETOFFLOAD follows
// what the guest accepted). Receive uses mergeable buffers when the guest
// accepts them. Queue 0 receives, queue 1 transmits.
// The packet fd is watched edge-triggered: when the guest has no receive
// buffers, the packet waits in the device until the guest adds some.
// Rate limits (virtio/throttle.h; in: receive, out: transmit) hold frames
// back: a frame to send waits on the guest's ring, received ones in the TAP,
// until the throttle's timer says the bucket has refilled.
// Thread-safety: called by its transport with the transport's lock held.
#ifndef MOTE_VIRTIO_NET_H_
#define MOTE_VIRTIO_NET_H_

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "virtio/throttle.h"
#include "virtio/virtio_device.h"
#include "vmm/base/fd.h"
#include "vmm/base/logging.h"

namespace mote::virtio {

class NetDevice : public VirtioDevice {
 public:
  using Mac = std::array<uint8_t, 6>;
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint64_t kFeatureCsum = 1ull << 0, kFeatureGuestCsum = 1ull << 1,
                            kFeatureMac = 1ull << 5, kFeatureGuestTso4 = 1ull << 7,
                            kFeatureGuestTso6 = 1ull << 8, kFeatureGuestEcn = 1ull << 9,
                            kFeatureGuestUfo = 1ull << 10, kFeatureHostTso4 = 1ull << 11,
                            kFeatureHostTso6 = 1ull << 12, kFeatureHostEcn = 1ull << 13,
                            kFeatureHostUfo = 1ull << 14, kFeatureMrgRxbuf = 1ull << 15,
                            kFeatureStatus = 1ull << 16;
  static constexpr size_t kHeaderSize = 12;
  // The largest frame a TAP hands over with TSO: 64 KiB plus headers.
  static constexpr size_t kMaxPacket = kHeaderSize + 65550;

  // `set_offload` receives TUN_F_* flags when the guest's features are known
  // (nullptr: not a TAP).
  NetDevice(FileDescriptor packet_fd, Mac mac, std::function<absl::Status(unsigned)> set_offload,
            const IoLimits& limits = {});

  uint32_t DeviceType() const override { return kDeviceTypeNet; }
  uint64_t AvailableFeatures() const override;
  std::vector<uint16_t> QueueMaxSizes() const override { return {kQueueSize, kQueueSize}; }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const override;
  absl::Status Activate(const ActivationContext& ctx) override;
  void ProcessQueue(uint16_t index) override;
  void Reset() override;

  struct Counters {
    uint64_t tx_frames = 0, tx_bytes = 0, rx_frames = 0, rx_bytes = 0, tx_dropped = 0,
             rx_dropped = 0;
  };
  const Counters& counters() const { return counters_; }
  // New rate limits, taken up at once on the device's thread; any thread.
  void SetLimits(const IoLimits& limits) { throttle_.SetLimits(limits); }
  IoLimits limits() const { return throttle_.limits(); }
  uint64_t throttled() const { return throttle_.throttled(); }
  uint64_t throttled_ns() const { return throttle_.throttled_ns(); }

 private:
  void Transmit();
  void Receive();
  // Takes receive chains into reserved_ until there is one, and (with
  // mergeable buffers) room for `bytes`; false if the guest has too few now
  // (or the queue failed).
  bool ReserveChains(uint64_t bytes);
  // The frame of `len` bytes read into reserved_.front() is done there.
  bool CompleteInPlace(uint32_t len);
  // Puts pending_ into receive buffers; false if the guest has too few.
  bool DeliverPending();
  void Fail(const absl::Status& status);
  void OnThrottleTimer();

  const FileDescriptor fd_;
  const Mac mac_;
  const std::function<absl::Status(unsigned)> set_offload_;
  ActivationContext ctx_;
  bool active_ = false;
  bool mergeable_ = false;
  std::vector<uint8_t> pending_;  // a received packet not yet in guest buffers
  size_t pending_len_ = 0;
  std::vector<DescriptorChain> reserved_;  // receive chains taken for pending_
  Counters counters_;
  DeviceThrottle throttle_;
  RateLimiter log_limiter_;
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_NET_H_
