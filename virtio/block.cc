#include "virtio/block.h"

#include <algorithm>
#include <cstring>

namespace mote::virtio {
namespace {

constexpr uint32_t kTypeIn = 0, kTypeOut = 1, kTypeFlush = 4, kTypeGetId = 8, kTypeDiscard = 11,
                   kTypeWriteZeroes = 13;
constexpr uint8_t kStatusOk = 0, kStatusIoErr = 1, kStatusUnsupported = 2;
constexpr uint64_t kSector = 512;
constexpr uint64_t kHeaderSize = 16;
constexpr uint64_t kSegmentSize = 16;  // discard / write-zeroes range
constexpr uint32_t kSegMax = BlockDevice::kQueueSize - 2;  // minus header and status
constexpr uint32_t kMaxDiscardSegments = 1;
constexpr uint32_t kWriteZeroesUnmap = 1;

// Copies between a chain's buffers, seen as one byte stream, and a flat buffer.
void CopyOut(const std::vector<absl::Span<uint8_t>>& spans, uint64_t offset, uint8_t* out,
             uint64_t length) {
  for (absl::Span<uint8_t> s : spans) {
    if (length == 0) return;
    if (offset >= s.size()) {
      offset -= s.size();
      continue;
    }
    uint64_t n = std::min<uint64_t>(s.size() - offset, length);
    std::memcpy(out, s.data() + offset, n);
    out += n;
    length -= n;
    offset = 0;
  }
}

// The spans covering [offset, offset + length) of the stream.
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

template <typename T>
void PutLe(std::array<uint8_t, 64>& config, size_t offset, T value) {
  std::memcpy(config.data() + offset, &value, sizeof(T));
}

}  // namespace

BlockDevice::BlockDevice(std::unique_ptr<BlockBackend> backend, Options options)
    : backend_(std::move(backend)), options_(std::move(options)) {
  uint64_t sectors = backend_->size() / kSector;
  uint32_t max_sectors = static_cast<uint32_t>(std::min<uint64_t>(sectors, 0xffffffffu));
  PutLe<uint64_t>(config_, 0, sectors);         // capacity
  PutLe<uint32_t>(config_, 8, 1u << 20);        // size_max: bytes per data descriptor
  PutLe<uint32_t>(config_, 12, kSegMax);        // seg_max
  PutLe<uint32_t>(config_, 20, kSector);        // blk_size
  PutLe<uint16_t>(config_, 34, 1);              // num_queues
  PutLe<uint32_t>(config_, 36, max_sectors);    // max_discard_sectors
  PutLe<uint32_t>(config_, 40, kMaxDiscardSegments);
  PutLe<uint32_t>(config_, 44, 1);              // discard_sector_alignment
  PutLe<uint32_t>(config_, 48, max_sectors);    // max_write_zeroes_sectors
  PutLe<uint32_t>(config_, 52, kMaxDiscardSegments);
  config_[56] = 1;                              // write_zeroes_may_unmap
}

uint64_t BlockDevice::AvailableFeatures() const {
  uint64_t features = kFeatureVersion1 | kFeatureRingIndirect | kFeatureRingEventIdx |
                      kFeatureSizeMax | kFeatureSegMax | kFeatureBlockSize | kFeatureFlush;
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
  ctx_ = ctx;
  active_ = true;
  return absl::OkStatus();
}

void BlockDevice::Reset() {
  ctx_ = ActivationContext{};
  active_ = false;
}

void BlockDevice::ProcessQueue(uint16_t index) {
  if (!active_ || index != 0) return;
  Queue& queue = *ctx_.queues[0];
  bool used = false;
  while (true) {
    absl::StatusOr<PopResult> popped = queue.Pop(*ctx_.mem);
    if (!popped.ok()) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-blk: {}", popped.status().ToString());
      ctx_.interrupt->SignalNeedsReset();
      active_ = false;
      return;
    }
    if (popped->status == PopStatus::kEmpty) break;
    uint32_t len = 0;
    if (popped->status == PopStatus::kBadChain) {
      ++counters_.errors;
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-blk: bad request: {}", popped->error);
    } else {
      len = HandleRequest(popped->chain);
    }
    if (absl::Status s = queue.AddUsed(*ctx_.mem, popped->chain.head, len); !s.ok()) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-blk: {}", s.ToString());
      ctx_.interrupt->SignalNeedsReset();
      active_ = false;
      return;
    }
    used = true;
  }
  if (!used) return;
  absl::StatusOr<bool> notify = queue.NeedsInterrupt(*ctx_.mem);
  if (!notify.ok() || *notify) ctx_.interrupt->SignalUsedBuffers();
}

uint32_t BlockDevice::HandleRequest(const DescriptorChain& chain) {
  if (chain.writable_bytes == 0) {
    // Nowhere to put a status: the driver learns only that the chain came back empty.
    ++counters_.errors;
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-blk: request without a status byte");
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
  uint32_t written = 0;
  uint64_t data_length = type == kTypeIn || type == kTypeGetId ? chain.writable_bytes - 1
                                                              : chain.readable_bytes - kHeaderSize;
  *status = Execute(type, sector, chain, kHeaderSize, data_length, &written);
  if (*status != kStatusOk) ++counters_.errors;
  return written + 1;
}

uint8_t BlockDevice::Execute(uint32_t type, uint64_t sector, const DescriptorChain& chain,
                             uint64_t data_offset, uint64_t data_length, uint32_t* written) {
  uint64_t capacity = backend_->size() / kSector;
  switch (type) {
    case kTypeIn:
    case kTypeOut: {
      bool in = type == kTypeIn;
      if (!in && options_.readonly) return kStatusIoErr;
      if (data_length % kSector != 0 || sector > capacity ||
          data_length / kSector > capacity - sector) {
        MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                         "virtio-blk: {} of {} bytes at sector {} is outside the disk ({} sectors)",
                         in ? "read" : "write", data_length, sector, capacity);
        return kStatusIoErr;
      }
      uint64_t offset = sector * kSector;
      for (absl::Span<uint8_t> part : in ? Range(chain.writable, 0, data_length)
                                         : Range(chain.readable, data_offset, data_length)) {
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
        *written = static_cast<uint32_t>(data_length);
      } else {
        ++counters_.writes;
        counters_.bytes_written += data_length;
      }
      return kStatusOk;
    }
    case kTypeFlush:
      ++counters_.flushes;
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
      for (absl::Span<uint8_t> part : Range(chain.writable, 0, n)) {
        std::memcpy(part.data(), id + done, part.size());
        done += part.size();
      }
      *written = static_cast<uint32_t>(n);
      return kStatusOk;
    }
    case kTypeDiscard:
    case kTypeWriteZeroes:
      if (options_.readonly) return kStatusIoErr;
      return DiscardOrZero(type == kTypeWriteZeroes, chain, data_length);
    default:
      return kStatusUnsupported;
  }
}

uint8_t BlockDevice::DiscardOrZero(bool zero, const DescriptorChain& chain, uint64_t data_length) {
  if (data_length == 0 || data_length % kSegmentSize != 0 ||
      data_length / kSegmentSize > kMaxDiscardSegments) {
    return kStatusUnsupported;
  }
  uint64_t capacity = backend_->size() / kSector;
  for (uint64_t off = 0; off < data_length; off += kSegmentSize) {
    uint8_t segment[kSegmentSize];
    CopyOut(chain.readable, kHeaderSize + off, segment, kSegmentSize);
    uint64_t sector;
    uint32_t count, flags;
    std::memcpy(&sector, segment, 8);
    std::memcpy(&count, segment + 8, 4);
    std::memcpy(&flags, segment + 12, 4);
    if (sector > capacity || count > capacity - sector) return kStatusIoErr;
    // Discard takes no flags; write-zeroes only "unmap allowed".
    if (flags & ~(zero ? kWriteZeroesUnmap : 0u)) return kStatusUnsupported;
    absl::Status s = zero ? backend_->WriteZeroes(sector * kSector, uint64_t{count} * kSector)
                          : backend_->Discard(sector * kSector, uint64_t{count} * kSector);
    if (!s.ok()) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-blk: {}", s.ToString());
      return kStatusIoErr;
    }
  }
  return kStatusOk;
}

}  // namespace mote::virtio
