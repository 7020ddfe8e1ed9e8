#include "virtio/net.h"

#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mote::virtio {
namespace {

constexpr uint16_t kRxQueue = 0, kTxQueue = 1;
constexpr uint16_t kStatusLinkUp = 1;
constexpr size_t kNumBuffersOffset = 10;  // in the 12-byte header

}  // namespace

NetDevice::NetDevice(FileDescriptor packet_fd, Mac mac,
                     std::function<absl::Status(unsigned)> set_offload, const IoLimits& limits)
    : fd_(std::move(packet_fd)),
      mac_(mac),
      set_offload_(std::move(set_offload)),
      throttle_(limits) {}

uint64_t NetDevice::AvailableFeatures() const {
  uint64_t features = kFeatureVersion1 | kFeatureRingIndirect | kFeatureRingEventIdx | kFeatureMac |
                      kFeatureStatus | kFeatureMrgRxbuf;
  // The header goes through untouched, so the TAP does what the guest asked.
  if (set_offload_) {
    features |= kFeatureCsum | kFeatureHostTso4 | kFeatureHostTso6 | kFeatureHostEcn |
                kFeatureGuestCsum | kFeatureGuestTso4 | kFeatureGuestTso6 | kFeatureGuestEcn;
  }
  return features;
}

void NetDevice::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const {
  uint8_t config[8];
  std::memcpy(config, mac_.data(), 6);
  config[6] = kStatusLinkUp & 0xff;
  config[7] = kStatusLinkUp >> 8;
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
  }
}

absl::Status NetDevice::Activate(const ActivationContext& ctx) {
  if (ctx.queues.size() < 2 || ctx.queues[kRxQueue] == nullptr || ctx.queues[kTxQueue] == nullptr) {
    return absl::FailedPreconditionError(
        "virtio-net: the receive and transmit queues must be ready");
  }
  ctx_ = ctx;
  mergeable_ = ctx.features & kFeatureMrgRxbuf;
  if (set_offload_) {
    unsigned offload = 0;
    if (ctx.features & kFeatureGuestCsum) {
      offload |= TUN_F_CSUM;
      if (ctx.features & kFeatureGuestTso4) offload |= TUN_F_TSO4;
      if (ctx.features & kFeatureGuestTso6) offload |= TUN_F_TSO6;
      if (ctx.features & kFeatureGuestEcn) offload |= TUN_F_TSO_ECN;
    }
    if (absl::Status s = set_offload_(offload); !s.ok()) return s;
  }
  pending_.resize(kMaxPacket);
  if (absl::Status s = throttle_.Watch(ctx_.watch_fd, [this] { OnThrottleTimer(); }); !s.ok()) {
    return s;
  }
  if (ctx_.watch_fd) {
    absl::Status s = ctx_.watch_fd(fd_.get(), EPOLLIN | EPOLLET, [this] { Receive(); });
    if (!s.ok()) return s;
  }
  // No poller (ActivationContext::add_poller): a polling loop thread took
  // the CPU the TAP's other end needs on 2 cores, and transmit rates fell
  // by up to half (tests/bench/net_bench.py).
  active_ = true;
  Receive();  // packets that arrived before the guest was ready
  return absl::OkStatus();
}

void NetDevice::Reset() {
  throttle_.Wake();  // no rest outlives the driver; a late timer finds nothing to do
  ctx_ = ActivationContext{};
  active_ = false;
  reserved_.clear();
  pending_len_ = 0;
}

void NetDevice::Fail(const absl::Status& status) {
  MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-net: {}", status.ToString());
  ctx_.interrupt->SignalNeedsReset();
  active_ = false;
}

void NetDevice::ProcessQueue(uint16_t index) {
  if (!active_) return;
  if (index == kTxQueue) Transmit();
  if (index == kRxQueue) Receive();  // new receive buffers: deliver what waits
}

void NetDevice::OnThrottleTimer() {
  throttle_.Wake();
  ProcessQueue(kTxQueue);
  ProcessQueue(kRxQueue);  // and the frames that wait in the TAP
}

void NetDevice::Transmit() {
  if (throttle_.resting(IoDirection::kOut)) return;  // the throttle timer comes back
  Queue& queue = *ctx_.queues[kTxQueue];
  bool used = false;
  while (active_) {
    absl::StatusOr<PopResult> popped = queue.Pop(*ctx_.mem);
    if (!popped.ok()) return Fail(popped.status());
    if (popped->status == PopStatus::kEmpty) break;
    const DescriptorChain& chain = popped->chain;
    if (popped->status == PopStatus::kBadChain) {
      ++counters_.tx_dropped;
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-net: bad transmit chain: {}",
                       popped->error);
    } else if (chain.readable_bytes <= kHeaderSize || chain.readable_bytes > kMaxPacket) {
      ++counters_.tx_dropped;
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                       "virtio-net: dropping a {}-byte transmit buffer", chain.readable_bytes);
    } else if (!throttle_.Admit(IoDirection::kOut, chain.readable_bytes - kHeaderSize)) {
      queue.UndoPop();  // it waits on the ring, where a snapshot finds it
      break;
    } else {
      std::vector<iovec> iov;
      for (absl::Span<uint8_t> part : chain.readable) iov.push_back({part.data(), part.size()});
      ssize_t n;
      do {
        n = ::writev(fd_.get(), iov.data(), static_cast<int>(iov.size()));
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        // A full TAP queue or a downed interface drops the frame, as a NIC would.
        ++counters_.tx_dropped;
      } else {
        ++counters_.tx_frames;
        counters_.tx_bytes += chain.readable_bytes - kHeaderSize;
      }
    }
    if (absl::Status s = queue.AddUsed(*ctx_.mem, chain.head, 0); !s.ok()) return Fail(s);
    used = true;
  }
  if (!used || !active_) return;
  absl::StatusOr<bool> notify = queue.NeedsInterrupt(*ctx_.mem);
  if (!notify.ok() || *notify) ctx_.interrupt->SignalUsedBuffers(kTxQueue);
}

void NetDevice::Receive() {
  if (!active_ || throttle_.resting(IoDirection::kIn)) return;
  bool used = false;
  while (active_) {
    if (pending_len_ == 0) {
      // Frames stay in the TAP until the guest has a buffer for them, and are
      // read straight into it (pending_ takes what does not fit). Over a
      // rate limit they stay there too: a frame's size is known only once
      // read, so it is charged then, and the next waits for the debt.
      if (!throttle_.Ready(IoDirection::kIn)) break;
      if (!ReserveChains(0)) break;
      const DescriptorChain& first = reserved_.front();
      std::vector<iovec> iov;
      for (absl::Span<uint8_t> part : first.writable) iov.push_back({part.data(), part.size()});
      iov.push_back({pending_.data(), pending_.size()});
      ssize_t n;
      do {
        n = ::readv(fd_.get(), iov.data(), static_cast<int>(iov.size()));
      } while (n < 0 && errno == EINTR);
      if (n < 0) break;  // EAGAIN: drained, the next packet brings a new edge
      if (static_cast<size_t>(n) <= kHeaderSize) continue;
      throttle_.Charge(IoDirection::kIn, static_cast<uint64_t>(n) - kHeaderSize);
      if (static_cast<uint64_t>(n) <= first.writable_bytes) {
        if (!CompleteInPlace(static_cast<uint32_t>(n))) break;
        used = true;
        continue;
      }
      // Longer than the first buffer: gather it in pending_ and spread it
      // over as many buffers as it takes (or cut it) below.
      size_t in_guest = first.writable_bytes;
      std::memmove(pending_.data() + in_guest, pending_.data(), static_cast<size_t>(n) - in_guest);
      size_t at = 0;
      for (absl::Span<uint8_t> part : first.writable) {
        std::memcpy(pending_.data() + at, part.data(), part.size());
        at += part.size();
      }
      pending_len_ = static_cast<size_t>(n);
    }
    if (!DeliverPending()) break;  // waits for the guest's next receive buffers
    used = true;
  }
  if (!used || !active_) return;
  absl::StatusOr<bool> notify = ctx_.queues[kRxQueue]->NeedsInterrupt(*ctx_.mem);
  if (!notify.ok() || *notify) ctx_.interrupt->SignalUsedBuffers(kRxQueue);
}

bool NetDevice::CompleteInPlace(uint32_t len) {
  // The header's num_buffers (the TAP leaves it 0): this frame took one.
  const uint8_t one[2] = {1, 0};
  uint64_t skip = kNumBuffersOffset;
  size_t put = 0;
  for (absl::Span<uint8_t> part : reserved_.front().writable) {
    for (size_t i = 0; i < part.size() && put < sizeof(one); ++i) {
      if (skip > 0) {
        --skip;
      } else {
        part[i] = one[put++];
      }
    }
  }
  if (absl::Status s = ctx_.queues[kRxQueue]->AddUsed(*ctx_.mem, reserved_.front().head, len);
      !s.ok()) {
    Fail(s);
    return false;
  }
  ++counters_.rx_frames;
  counters_.rx_bytes += len - kHeaderSize;
  reserved_.erase(reserved_.begin());
  return true;
}

bool NetDevice::ReserveChains(uint64_t bytes) {
  Queue& queue = *ctx_.queues[kRxQueue];
  uint64_t capacity = 0;
  for (const DescriptorChain& c : reserved_) capacity += c.writable_bytes;
  while (reserved_.empty() || (mergeable_ && capacity < bytes)) {
    absl::StatusOr<PopResult> popped = queue.Pop(*ctx_.mem);
    if (!popped.ok()) {
      Fail(popped.status());
      return false;
    }
    if (popped->status == PopStatus::kEmpty) return false;
    if (popped->status == PopStatus::kBadChain || popped->chain.writable_bytes < kHeaderSize) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-net: bad receive buffer {}",
                       popped->error);
      if (absl::Status s = queue.AddUsed(*ctx_.mem, popped->chain.head, 0); !s.ok()) {
        Fail(s);
        return false;
      }
      continue;
    }
    capacity += popped->chain.writable_bytes;
    reserved_.push_back(std::move(popped->chain));
  }
  return true;
}

bool NetDevice::DeliverPending() {
  Queue& queue = *ctx_.queues[kRxQueue];
  // Take receive chains until the packet fits (one chain without mergeable
  // buffers); they stay reserved if the guest has too few for now.
  if (!ReserveChains(pending_len_)) return false;
  // num_buffers: how many chains this packet fills (1 without mergeable buffers).
  size_t buffers = 0;
  for (uint64_t filled = 0; buffers < reserved_.size() && filled < pending_len_; ++buffers) {
    filled += reserved_[buffers].writable_bytes;
    if (!mergeable_) {
      buffers = 1;
      break;
    }
  }
  pending_[kNumBuffersOffset] = static_cast<uint8_t>(buffers & 0xff);
  pending_[kNumBuffersOffset + 1] = static_cast<uint8_t>(buffers >> 8);
  size_t copied = 0;
  for (size_t i = 0; i < buffers; ++i) {
    uint32_t len = 0;
    for (absl::Span<uint8_t> part : reserved_[i].writable) {
      size_t n = std::min(part.size(), pending_len_ - copied);
      std::memcpy(part.data(), pending_.data() + copied, n);
      copied += n;
      len += static_cast<uint32_t>(n);
    }
    if (absl::Status s = queue.AddUsed(*ctx_.mem, reserved_[i].head, len); !s.ok()) {
      Fail(s);
      return false;
    }
  }
  // Without mergeable buffers a frame larger than the guest's buffer is cut.
  if (copied < pending_len_) ++counters_.rx_dropped;
  ++counters_.rx_frames;
  counters_.rx_bytes += pending_len_ - kHeaderSize;
  reserved_.erase(reserved_.begin(), reserved_.begin() + static_cast<long>(buffers));
  pending_len_ = 0;
  return true;
}

}  // namespace mote::virtio
