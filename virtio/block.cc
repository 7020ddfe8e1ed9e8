#include "virtio/block.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cstring>

#include "virtio/thread_pool_io.h"
#include "virtio/uring_io.h"
#include "vmm/base/status_macros.h"

namespace mote::virtio {
namespace {

constexpr uint32_t kTypeIn = 0, kTypeOut = 1, kTypeFlush = 4, kTypeGetId = 8, kTypeDiscard = 11,
                   kTypeWriteZeroes = 13;
constexpr uint8_t kStatusOk = 0, kStatusIoErr = 1, kStatusUnsupported = 2;
constexpr uint64_t kSector = 512;
constexpr uint64_t kHeaderSize = 16;
constexpr uint64_t kSegmentSize = 16;                      // discard / write-zeroes range
constexpr uint32_t kSegMax = BlockDevice::kQueueSize - 2;  // minus header and status
constexpr uint32_t kMaxDiscardSegments = 1;
constexpr uint32_t kWriteZeroesUnmap = 1;

// The spans covering [offset, offset + length) of a chain's buffers seen as
// one byte stream.
std::vector<absl::Span<uint8_t>> Range(const std::vector<absl::Span<uint8_t>>& spans,
                                       uint64_t offset, uint64_t length) {
  std::vector<absl::Span<uint8_t>> out;
  for (absl::Span<uint8_t> s : spans) {
    if (length == 0) break;
    if (offset >= s.size()) {
      offset -= s.size();
      continue;
    }
    uint64_t n = std::min<uint64_t>(s.size() - offset, length);
    out.push_back(s.subspan(offset, n));
    length -= n;
    offset = 0;
  }
  return out;
}

// Copies [offset, offset + length) of the stream into `out`.
void CopyOut(const std::vector<absl::Span<uint8_t>>& spans, uint64_t offset, uint8_t* out,
             uint64_t length) {
  for (absl::Span<uint8_t> part : Range(spans, offset, length)) {
    std::memcpy(out, part.data(), part.size());
    out += part.size();
  }
}

template <typename T>
void PutLe(std::array<uint8_t, 64>& config, size_t offset, T value) {
  std::memcpy(config.data() + offset, &value, sizeof(T));
}

}  // namespace

BlockDevice::BlockDevice(std::unique_ptr<BlockBackend> backend, Options options)
    : backend_(std::move(backend)),
      options_(std::move(options)),
      in_flight_(size_t{options_.queues} * kQueueSize),
      throttle_(options_.limits) {
  uint64_t sectors = backend_->size() / kSector;
  uint32_t max_sectors = static_cast<uint32_t>(std::min<uint64_t>(sectors, 0xffffffffu));
  PutLe<uint64_t>(config_, 0, sectors);           // capacity
  PutLe<uint32_t>(config_, 8, 1u << 20);          // size_max: bytes per data descriptor
  PutLe<uint32_t>(config_, 12, kSegMax);          // seg_max
  PutLe<uint32_t>(config_, 20, kSector);          // blk_size
  PutLe<uint16_t>(config_, 34, options_.queues);  // num_queues
  PutLe<uint32_t>(config_, 36, max_sectors);      // max_discard_sectors
  PutLe<uint32_t>(config_, 40, kMaxDiscardSegments);
  PutLe<uint32_t>(config_, 44, 1);            // discard_sector_alignment
  PutLe<uint32_t>(config_, 48, max_sectors);  // max_write_zeroes_sectors
  PutLe<uint32_t>(config_, 52, kMaxDiscardSegments);
  config_[56] = 1;  // write_zeroes_may_unmap
}

std::vector<uint16_t> BlockDevice::QueueMaxSizes() const {
  return std::vector<uint16_t>(options_.queues, kQueueSize);
}

uint64_t BlockDevice::AvailableFeatures() const {
  uint64_t features = kFeatureVersion1 | kFeatureRingIndirect | kFeatureRingEventIdx |
                      kFeatureSizeMax | kFeatureSegMax | kFeatureBlockSize | kFeatureFlush;
  if (options_.queues > 1) features |= kFeatureMultiQueue;
  if (options_.readonly) return features | kFeatureReadOnly;
  return features | kFeatureDiscard | kFeatureWriteZeroes;
}

void BlockDevice::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const {
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < config_.size() ? config_[offset + i] : 0;
  }
}

absl::Status BlockDevice::Activate(const ActivationContext& ctx) {
  if (ctx.queues.empty() || ctx.queues[0] == nullptr) {
    return absl::FailedPreconditionError("virtio-blk: the request queue is not ready");
  }
  if (io_ == nullptr) StartEngine();
  ctx_ = ctx;
  if (io_ != nullptr && ctx_.watch_fd) {
    MOTE_RETURN_IF_ERROR(ctx_.watch_fd(io_->completion_fd(), EPOLLIN, [this] { OnCompletions(); }));
  }
  MOTE_RETURN_IF_ERROR(throttle_.Watch(ctx_.watch_fd, [this] { OnThrottleTimer(); }));
  if (ctx_.add_poller) ctx_.add_poller([this] { return Poll(); });
  active_ = true;
  return absl::OkStatus();
}

// Charged by the chain's shape, which the guest cannot change once popped
// (the header's type it could): room for data to come back makes a read of
// that many bytes; anything else is a write of the bytes after the header
// (a flush is a write of none, as is a request too short to be one).
bool BlockDevice::Admit(const DescriptorChain& chain) {
  if (!throttle_.limited()) return true;
  bool read = chain.writable_bytes > 1;
  uint64_t bytes =
      read ? chain.writable_bytes - 1
           : (chain.readable_bytes > kHeaderSize ? chain.readable_bytes - kHeaderSize : 0);
  return throttle_.Admit(read ? IoDirection::kIn : IoDirection::kOut, bytes);
}

void BlockDevice::OnThrottleTimer() {
  throttle_.Wake();
  for (uint16_t q = 0; q < ctx_.queues.size(); ++q) ProcessQueue(q);
}

bool BlockDevice::Poll() {
  bool found = false;
  if (io_ != nullptr && io_->HasCompletions()) {
    OnCompletions();
    found = true;
  }
  for (uint16_t q = 0; q < ctx_.queues.size() && !throttle_.resting(); ++q) {
    if (ctx_.queues[q] != nullptr && ctx_.queues[q]->HasAvailable(*ctx_.mem)) {
      ProcessQueue(q);
      found = true;
    }
  }
  return found;
}

// The engine is set up when a driver first uses the disk, not at VM start.
void BlockDevice::StartEngine() {
  engine_name_ = "sync";
  if (backend_->fd() < 0) return;
  if (options_.aio == Aio::kIoUring) {
    absl::StatusOr<std::unique_ptr<UringIo>> uring = UringIo::Create(backend_->fd(), kQueueSize);
    if (uring.ok()) {
      io_ = std::move(*uring);
      engine_name_ = "io_uring";
      return;
    }
    spdlog::info("virtio-blk: io_uring unavailable ({}); using worker threads",
                 uring.status().ToString());
  }
  absl::StatusOr<std::unique_ptr<ThreadPoolIo>> pool =
      ThreadPoolIo::Create(backend_->fd(), options_.seccomp);
  if (pool.ok()) {
    io_ = std::move(*pool);
    engine_name_ = "threads";
  } else {
    spdlog::warn("virtio-blk: {}; using synchronous I/O", pool.status().ToString());
  }
}

void BlockDevice::Reset() {
  // Requests still in flight write into guest memory: let them finish
  // before the driver can reuse that memory. Their results are dropped.
  if (io_ != nullptr) io_->Drain([](uint64_t, int32_t) {});
  throttle_.Wake();  // no rest outlives the driver; a late timer finds nothing to do
  ctx_ = ActivationContext{};
  active_ = false;
}

void BlockDevice::Fail(const absl::Status& status) {
  MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-blk: {}", status.ToString());
  ctx_.interrupt->SignalNeedsReset();
  active_ = false;
}

void BlockDevice::ProcessQueue(uint16_t index) {
  if (!active_ || index >= ctx_.queues.size() || ctx_.queues[index] == nullptr) return;
  if (throttle_.resting()) return;  // the throttle timer comes back
  Queue& queue = *ctx_.queues[index];
  while (true) {
    absl::StatusOr<PopResult> popped = queue.Pop(*ctx_.mem);
    if (!popped.ok()) return Fail(popped.status());
    if (popped->status == PopStatus::kEmpty) break;
    if (popped->status == PopStatus::kChain && !Admit(popped->chain)) {
      queue.UndoPop();  // it waits on the ring, where a snapshot finds it
      break;
    }
    std::optional<uint32_t> len = 0;
    if (popped->status == PopStatus::kBadChain) {
      ++counters_.errors;
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-blk: bad request: {}",
                       popped->error);
    } else {
      len = HandleRequest(index, popped->chain);
    }
    if (!len.has_value()) continue;  // in the engine; completed by OnCompletions
    if (absl::Status s = queue.AddUsed(*ctx_.mem, popped->chain.head, *len); !s.ok())
      return Fail(s);
  }
  if (io_ != nullptr && io_->in_flight() > 0) {
    if (absl::Status s = io_->Submit(); !s.ok()) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-blk: {}", s.ToString());
    }
  }
  Finish(index);
}

void BlockDevice::Finish(uint16_t queue) {
  if (!active_) return;
  // NeedsInterrupt is false when nothing was added since the last call.
  absl::StatusOr<bool> notify = ctx_.queues[queue]->NeedsInterrupt(*ctx_.mem);
  if (!notify.ok() || *notify) ctx_.interrupt->SignalUsedBuffers(queue);
}

void BlockDevice::OnCompletions() {
  if (io_ == nullptr) return;
  std::vector<bool> touched(ctx_.queues.size(), false);
  io_->Reap([&](uint64_t tag, int32_t result) { Complete(tag, result, touched); });
  for (uint16_t q = 0; q < touched.size(); ++q) {
    if (touched[q]) Finish(q);
  }
}

void BlockDevice::Quiesce() {
  if (io_ == nullptr || io_->in_flight() == 0) return;
  std::vector<bool> touched(ctx_.queues.size(), false);
  io_->Drain([&](uint64_t tag, int32_t result) { Complete(tag, result, touched); });
  for (uint16_t q = 0; q < touched.size(); ++q) {
    if (touched[q]) Finish(q);
  }
}

void BlockDevice::Complete(uint64_t tag, int32_t result, std::vector<bool>& touched) {
  if (tag >= in_flight_.size()) return;
  InFlight& r = in_flight_[tag];
  bool ok = result == r.expected;
  *r.status = ok ? kStatusOk : kStatusIoErr;
  if (ok) {
    if (r.type == kTypeIn) {
      ++counters_.reads;
      counters_.bytes_read += r.bytes;
    } else if (r.type == kTypeOut) {
      ++counters_.writes;
      counters_.bytes_written += r.bytes;
    }
  } else {
    ++counters_.errors;
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                     "virtio-blk: request type {} finished with {} (want {})", r.type, result,
                     r.expected);
  }
  uint16_t queue = static_cast<uint16_t>(tag / kQueueSize);
  if (!active_ || queue >= ctx_.queues.size() || ctx_.queues[queue] == nullptr) return;
  uint16_t head = static_cast<uint16_t>(tag % kQueueSize);
  // The length covers the status byte either way.
  if (absl::Status s = ctx_.queues[queue]->AddUsed(*ctx_.mem, head, r.used_len); !s.ok()) {
    return Fail(s);
  }
  touched[queue] = true;
}

bool BlockDevice::SubmitAsync(const Request& req, const std::vector<absl::Span<uint8_t>>& data,
                              uint64_t offset, uint64_t length, uint32_t used_len) {
  const uint32_t type = req.type;
  const uint64_t tag = req.tag;
  if (io_ == nullptr) return false;
  std::vector<iovec> iov;
  for (absl::Span<uint8_t> part : data) {
    // O_DIRECT needs sector-aligned memory; odd guest buffers take the
    // synchronous path, which bounces them.
    if (backend_->direct() &&
        (reinterpret_cast<uintptr_t>(part.data()) % kSector != 0 || part.size() % kSector != 0)) {
      return false;
    }
    iov.push_back({part.data(), part.size()});
  }
  bool queued = false;
  switch (type) {
    case kTypeIn:
      queued = io_->Read(iov, offset, tag);
      break;
    case kTypeOut:
      queued = io_->Write(iov, offset, tag);
      break;
    case kTypeFlush:
      queued = io_->Flush(tag);
      break;
    case kTypeDiscard:
    case kTypeWriteZeroes:
      // A punched hole reads back as zeros, which is all write-zeroes promises.
      queued = io_->PunchHole(offset, length, tag);
      break;
  }
  if (!queued) return false;
  ++counters_.async_ops;
  InFlight& r = in_flight_[tag];
  r.status = req.status;
  r.used_len = used_len;
  r.type = type;
  r.bytes = length;
  r.expected = type == kTypeIn || type == kTypeOut ? static_cast<int64_t>(length) : 0;
  return true;
}

std::optional<uint32_t> BlockDevice::HandleRequest(uint16_t queue, const DescriptorChain& chain) {
  if (chain.writable_bytes == 0) {
    // Nowhere to put a status: the driver learns only that the chain came back empty.
    ++counters_.errors;
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                     "virtio-blk: request without a status byte");
    return 0;
  }
  // The status is the last byte of the writable part (zero-length buffers may follow it).
  uint8_t* status = nullptr;
  for (auto it = chain.writable.rbegin(); it != chain.writable.rend() && status == nullptr; ++it) {
    if (!it->empty()) status = &(*it)[it->size() - 1];
  }
  if (chain.readable_bytes < kHeaderSize) {
    ++counters_.errors;
    *status = kStatusIoErr;
    return 1;
  }
  uint8_t header[kHeaderSize];
  CopyOut(chain.readable, 0, header, kHeaderSize);
  uint32_t type;
  uint64_t sector;
  std::memcpy(&type, header, sizeof(type));
  std::memcpy(&sector, header + 8, sizeof(sector));
  Request req{chain,
              uint64_t{queue} * kQueueSize + chain.head,
              type,
              sector,
              type == kTypeIn || type == kTypeGetId ? chain.writable_bytes - 1
                                                    : chain.readable_bytes - kHeaderSize,
              status};
  std::optional<uint8_t> result = Execute(req);
  if (!result) return std::nullopt;
  *status = *result;
  if (*result != kStatusOk) {
    ++counters_.errors;
    // The status byte ends the writable part; a length that covers it keeps
    // it inside what the driver is told was written (as QEMU reports).
    if (type == kTypeIn) {
      req.written = static_cast<uint32_t>(std::min<uint64_t>(req.data_length, 0xfffffffe));
    }
  }
  return req.written + 1;
}

std::optional<uint8_t> BlockDevice::Execute(Request& req) {
  const uint64_t capacity = backend_->size() / kSector;
  const uint64_t sector = req.sector, data_length = req.data_length;
  switch (req.type) {
    case kTypeIn:
    case kTypeOut: {
      bool in = req.type == kTypeIn;
      if (!in && options_.readonly) return kStatusIoErr;
      if (data_length % kSector != 0 || sector > capacity ||
          data_length / kSector > capacity - sector) {
        MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                         "virtio-blk: {} of {} bytes at sector {} is outside the disk ({} sectors)",
                         in ? "read" : "write", data_length, sector, capacity);
        return kStatusIoErr;
      }
      uint64_t offset = sector * kSector;
      std::vector<absl::Span<uint8_t>> data =
          in ? Range(req.chain.writable, 0, data_length)
             : Range(req.chain.readable, kHeaderSize, data_length);
      uint32_t used_len = in ? static_cast<uint32_t>(data_length) + 1 : 1;
      if (SubmitAsync(req, data, offset, data_length, used_len)) return std::nullopt;
      for (absl::Span<uint8_t> part : data) {
        absl::Status s = in ? backend_->ReadAt(offset, part) : backend_->WriteAt(offset, part);
        if (!s.ok()) {
          MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-blk: {}", s.ToString());
          return kStatusIoErr;
        }
        offset += part.size();
      }
      if (in) {
        ++counters_.reads;
        counters_.bytes_read += data_length;
        req.written = static_cast<uint32_t>(data_length);
      } else {
        ++counters_.writes;
        counters_.bytes_written += data_length;
      }
      return kStatusOk;
    }
    case kTypeFlush:
      ++counters_.flushes;
      if (SubmitAsync(req, {}, 0, 0, 1)) return std::nullopt;
      if (absl::Status s = backend_->Flush(); !s.ok()) {
        MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-blk: {}", s.ToString());
        return kStatusIoErr;
      }
      return kStatusOk;
    case kTypeGetId: {
      uint8_t id[kSerialLength] = {};
      std::memcpy(id, options_.serial.data(), std::min(options_.serial.size(), kSerialLength));
      uint64_t n = std::min<uint64_t>(kSerialLength, data_length);
      uint64_t done = 0;
      for (absl::Span<uint8_t> part : Range(req.chain.writable, 0, n)) {
        std::memcpy(part.data(), id + done, part.size());
        done += part.size();
      }
      req.written = static_cast<uint32_t>(n);
      return kStatusOk;
    }
    case kTypeDiscard:
    case kTypeWriteZeroes:
      if (options_.readonly) return kStatusIoErr;
      return DiscardOrZero(req);
    default:
      return kStatusUnsupported;
  }
}

std::optional<uint8_t> BlockDevice::DiscardOrZero(const Request& req) {
  const bool zero = req.type == kTypeWriteZeroes;
  // One segment per request (max_discard_seg = max_write_zeroes_seg = 1).
  if (req.data_length != kSegmentSize) return kStatusUnsupported;
  uint64_t capacity = backend_->size() / kSector;
  uint8_t segment[kSegmentSize];
  CopyOut(req.chain.readable, kHeaderSize, segment, kSegmentSize);
  uint64_t sector;
  uint32_t count, flags;
  std::memcpy(&sector, segment, 8);
  std::memcpy(&count, segment + 8, 4);
  std::memcpy(&flags, segment + 12, 4);
  if (sector > capacity || count > capacity - sector) return kStatusIoErr;
  // Discard takes no flags; write-zeroes only "unmap allowed".
  if (flags & ~(zero ? kWriteZeroesUnmap : 0u)) return kStatusUnsupported;
  uint64_t offset = sector * kSector, length = uint64_t{count} * kSector;
  if (SubmitAsync(req, {}, offset, length, 1)) return std::nullopt;
  absl::Status s = zero ? backend_->WriteZeroes(offset, length) : backend_->Discard(offset, length);
  if (!s.ok()) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-blk: {}", s.ToString());
    return kStatusIoErr;
  }
  return kStatusOk;
}

}  // namespace mote::virtio
