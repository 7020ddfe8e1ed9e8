#include "virtio/rng.h"

#include <sys/random.h>

#include <cerrno>

namespace mote::virtio {

RngDevice::RngDevice(EntropySource source) : source_(std::move(source)) {}

bool RngDevice::GetRandom(absl::Span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

uint64_t RngDevice::AvailableFeatures() const {
  return kFeatureVersion1 | kFeatureRingIndirect | kFeatureRingEventIdx;
}

absl::Status RngDevice::Activate(const ActivationContext& ctx) {
  if (ctx.queues.empty() || ctx.queues[0] == nullptr) {
    return absl::FailedPreconditionError("virtio-rng: the request queue is not ready");
  }
  ctx_ = ctx;
  active_ = true;
  return absl::OkStatus();
}

void RngDevice::Reset() {
  ctx_ = ActivationContext{};
  active_ = false;
}

void RngDevice::ProcessQueue(uint16_t index) {
  if (!active_ || index != 0) return;
  Queue& queue = *ctx_.queues[0];
  bool used = false;
  while (true) {
    absl::StatusOr<PopResult> popped = queue.Pop(*ctx_.mem);
    if (!popped.ok()) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-rng: {}",
                       popped.status().ToString());
      ctx_.interrupt->SignalNeedsReset();
      active_ = false;
      return;
    }
    if (popped->status == PopStatus::kEmpty) break;
    uint32_t written = 0;
    if (popped->status == PopStatus::kBadChain) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-rng: bad request: {}",
                       popped->error);
    } else {
      // Only device-writable buffers matter; readable parts are ignored (5.4.6.1).
      for (absl::Span<uint8_t> buf : popped->chain.writable) {
        uint32_t room = kMaxBytesPerRequest - written;
        absl::Span<uint8_t> part = buf.subspan(0, std::min<size_t>(buf.size(), room));
        if (part.empty()) break;
        if (!source_(part)) {
          MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-rng: entropy source failed");
          break;
        }
        written += part.size();
      }
    }
    bytes_served_ += written;
    if (absl::Status s = queue.AddUsed(*ctx_.mem, popped->chain.head, written); !s.ok()) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-rng: {}", s.ToString());
      ctx_.interrupt->SignalNeedsReset();
      active_ = false;
      return;
    }
    used = true;
  }
  if (!used) return;
  absl::StatusOr<bool> notify = queue.NeedsInterrupt(*ctx_.mem);
  if (!notify.ok() || *notify) ctx_.interrupt->SignalUsedBuffers(index);
}

}  // namespace mote::virtio
