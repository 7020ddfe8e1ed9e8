// BlockDevice: virtio-blk (virtio 1.2 section 5.2) over a BlockBackend: reads,
// writes, flush, get-id, discard and write-zeroes on one request queue.
// Every request is checked before it touches the backend: header present and
// readable, status byte present and writable, data a whole number of sectors
// inside the disk, no writes to a read-only disk. A request that fails a check
// completes with IOERR or UNSUPP; one without a status byte completes with
// length 0.
// Reads, writes, flushes and discards on a file go to an asynchronous engine
// (io_uring, or worker threads where io_uring is unavailable or aio=threads)
// and complete later on the event loop; unaligned O_DIRECT buffers and
// in-memory backends run synchronously on the event-loop thread. With
// several queues (VIRTIO_BLK_F_MQ) each queue is served independently.
// Rate limits (virtio/throttle.h) hold reads and writes back: a request that
// would overdraw a bucket goes back on its ring, and the queue rests until a
// timer says the bucket has refilled.
// Thread-safety: called by its transport with the transport's lock held.
#ifndef MOTE_VIRTIO_BLOCK_H_
#define MOTE_VIRTIO_BLOCK_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "virtio/block_backend.h"
#include "virtio/block_io.h"
#include "virtio/throttle.h"
#include "virtio/virtio_device.h"
#include "vmm/base/fd.h"
#include "vmm/base/logging.h"
#include "vmm/base/seccomp_filter.h"

namespace mote::virtio {

class BlockDevice : public VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint64_t kFeatureSizeMax = 1ull << 1, kFeatureSegMax = 1ull << 2,
                            kFeatureReadOnly = 1ull << 5, kFeatureBlockSize = 1ull << 6,
                            kFeatureFlush = 1ull << 9, kFeatureMultiQueue = 1ull << 12,
                            kFeatureDiscard = 1ull << 13, kFeatureWriteZeroes = 1ull << 14;
  static constexpr size_t kSerialLength = 20;  // VIRTIO_BLK_ID_BYTES

  static constexpr uint16_t kMaxQueues = 16;
  enum class Aio { kIoUring, kThreads };

  struct Options {
    bool readonly = false;
    std::string serial;       // at most kSerialLength bytes
    uint16_t queues = 1;      // 1..kMaxQueues
    Aio aio = Aio::kIoUring;  // falls back to kThreads where io_uring is unavailable
    SeccompMode seccomp = SeccompMode::kOff;  // the filter kThreads' workers install
    IoLimits limits{};                        // in: reads, out: writes (discards count as writes)
  };

  BlockDevice(std::unique_ptr<BlockBackend> backend, Options options);

  uint32_t DeviceType() const override { return kDeviceTypeBlock; }
  uint64_t AvailableFeatures() const override;
  std::vector<uint16_t> QueueMaxSizes() const override;
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const override;
  absl::Status Activate(const ActivationContext& ctx) override;
  void ProcessQueue(uint16_t index) override;
  void Reset() override;
  // Waits for every request in the I/O engine and completes each as if it
  // had finished on the event loop (status byte, used ring, interrupt).
  void Quiesce() override;

  struct Counters {
    uint64_t reads = 0, writes = 0, flushes = 0, bytes_read = 0, bytes_written = 0, errors = 0;
    uint64_t async_ops = 0;  // submitted to the asynchronous engine
  };
  // New rate limits (buckets start full), which the device takes up on its
  // own thread with the transport's lock held, at once: a resting queue
  // looks again. Any thread.
  void SetLimits(const IoLimits& limits) { throttle_.SetLimits(limits); }
  IoLimits limits() const { return throttle_.limits(); }
  // Requests that waited for the limits, and for how long the queues rested.
  uint64_t throttled() const { return throttle_.throttled(); }
  uint64_t throttled_ns() const { return throttle_.throttled_ns(); }
  // "io_uring", "threads" or "sync" once activated.
  const char* engine_name() const { return engine_name_; }
  const Counters& counters() const { return counters_; }
  BlockBackend& backend() { return *backend_; }

 private:
  // A request in the engine, indexed by queue * kQueueSize + chain head
  // (a head is unique in its queue while in flight).
  struct InFlight {
    uint8_t* status = nullptr;
    uint32_t used_len = 0;  // reported on success
    int64_t expected = 0;   // the result that means success (bytes, or 0)
    uint32_t type = 0;
    uint64_t bytes = 0;
  };

  // One request, parsed from a validated chain: what the driver asked for
  // and where the answer goes.
  struct Request {
    const DescriptorChain& chain;
    uint64_t tag;   // queue * kQueueSize + chain head: its in-flight slot
    uint32_t type;  // kTypeIn, kTypeOut, ...
    uint64_t sector;
    uint64_t data_length;  // the data after the header, or before the status byte
    uint8_t* status;       // the chain's last writable byte
    uint32_t written = 0;  // data bytes written for the driver, when done now
  };

  // Handles one validated chain; the used length to report, or nullopt if it
  // completes later.
  std::optional<uint32_t> HandleRequest(uint16_t queue, const DescriptorChain& chain);
  // The virtio status of a request done now, or nullopt: it went to the
  // engine and completes later (OnCompletions).
  std::optional<uint8_t> Execute(Request& req);
  std::optional<uint8_t> DiscardOrZero(const Request& req);
  // Queues a request on the engine if it can go there; false: run it synchronously.
  bool SubmitAsync(const Request& req, const std::vector<absl::Span<uint8_t>>& data,
                   uint64_t offset, uint64_t length, uint32_t used_len);
  // The event loop's poller: completions and requests, without waiting to
  // be told (ActivationContext::add_poller).
  bool Poll();
  void StartEngine();
  void OnCompletions();
  // One request the engine finished: its status byte and used entry;
  // marks its queue in `touched` (Finish sends the interrupt).
  void Complete(uint64_t tag, int32_t result, std::vector<bool>& touched);
  void Finish(uint16_t queue);
  void Fail(const absl::Status& status);
  // Whether the request in `chain` may go now under the rate limits; if not,
  // the queues rest and the throttle timer is set for when it may.
  bool Admit(const DescriptorChain& chain);
  void OnThrottleTimer();

  const std::unique_ptr<BlockBackend> backend_;
  const Options options_;
  std::unique_ptr<BlockIo> io_;  // created at first activation; destroyed (drained) first
  const char* engine_name_ = "none";
  std::vector<InFlight> in_flight_;  // queues * kQueueSize
  std::array<uint8_t, 64> config_{};
  ActivationContext ctx_;
  bool active_ = false;
  Counters counters_;
  DeviceThrottle throttle_;
  RateLimiter log_limiter_;
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_BLOCK_H_
