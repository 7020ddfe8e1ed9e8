// BlockDevice: virtio-blk (virtio 1.2 section 5.2) over a BlockBackend: reads,
// writes, flush, get-id, discard and write-zeroes on one request queue.
// Every request is checked before it touches the backend: header present and
// readable, status byte present and writable, data a whole number of sectors
// inside the disk, no writes to a read-only disk. A request that fails a check
// completes with IOERR or UNSUPP; one without a status byte completes with
// length 0.
// Thread-safety: called by its transport with the transport's lock held.
#ifndef MOTE_VIRTIO_BLOCK_H_
#define MOTE_VIRTIO_BLOCK_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "virtio/block_backend.h"
#include "virtio/virtio_device.h"
#include "vmm/base/logging.h"

namespace mote::virtio {

class BlockDevice : public VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint64_t kFeatureSizeMax = 1ull << 1, kFeatureSegMax = 1ull << 2,
                            kFeatureReadOnly = 1ull << 5, kFeatureBlockSize = 1ull << 6,
                            kFeatureFlush = 1ull << 9, kFeatureDiscard = 1ull << 13,
                            kFeatureWriteZeroes = 1ull << 14;
  static constexpr size_t kSerialLength = 20;  // VIRTIO_BLK_ID_BYTES

  struct Options {
    bool readonly = false;
    std::string serial;  // at most kSerialLength bytes
  };

  BlockDevice(std::unique_ptr<BlockBackend> backend, Options options);

  uint32_t DeviceType() const override { return kDeviceTypeBlock; }
  uint64_t AvailableFeatures() const override;
  std::vector<uint16_t> QueueMaxSizes() const override { return {kQueueSize}; }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const override;
  absl::Status Activate(const ActivationContext& ctx) override;
  void ProcessQueue(uint16_t index) override;
  void Reset() override;

  struct Counters {
    uint64_t reads = 0, writes = 0, flushes = 0, bytes_read = 0, bytes_written = 0, errors = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  // Handles one validated chain; returns the used length to report.
  uint32_t HandleRequest(const DescriptorChain& chain);
  uint8_t Execute(uint32_t type, uint64_t sector, const DescriptorChain& chain, uint64_t data_offset,
                  uint64_t data_length, uint32_t* written);
  uint8_t DiscardOrZero(bool zero, const DescriptorChain& chain, uint64_t data_length);

  const std::unique_ptr<BlockBackend> backend_;
  const Options options_;
  std::array<uint8_t, 64> config_{};
  ActivationContext ctx_;
  bool active_ = false;
  Counters counters_;
  RateLimiter log_limiter_;
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_BLOCK_H_
