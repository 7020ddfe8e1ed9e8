#include "virtio/mmio_transport.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/base/status_macros.h"

namespace mote::virtio {
namespace {

// Register offsets (virtio 1.2, 4.2.2).
constexpr uint64_t kMagicValue = 0x000, kVersion = 0x004, kDeviceId = 0x008, kVendorId = 0x00c,
                   kDeviceFeatures = 0x010, kDeviceFeaturesSel = 0x014, kDriverFeatures = 0x020,
                   kDriverFeaturesSel = 0x024, kQueueSel = 0x030, kQueueNumMax = 0x034,
                   kQueueNum = 0x038, kQueueReady = 0x044, kQueueNotify = 0x050,
                   kInterruptStatus = 0x060, kInterruptAck = 0x064, kStatus = 0x070,
                   kQueueDescLow = 0x080, kQueueDescHigh = 0x084, kQueueDriverLow = 0x090,
                   kQueueDriverHigh = 0x094, kQueueDeviceLow = 0x0a0, kQueueDeviceHigh = 0x0a4,
                   kConfigGeneration = 0x0fc, kConfig = 0x100;
constexpr uint32_t kMagic = 0x74726976;  // "virt"
constexpr uint32_t kModernVersion = 2;
constexpr uint32_t kVendor = 0x45544f4d;  // "MOTE"

uint64_t WithLow(uint64_t old, uint32_t low) { return (old & ~0xffffffffull) | low; }
uint64_t WithHigh(uint64_t old, uint32_t high) { return (old & 0xffffffffull) | (uint64_t{high} << 32); }

absl::StatusOr<FileDescriptor> NewEventFd() {
  FileDescriptor fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd.ok()) return ErrnoToStatus(errno, "eventfd");
  return fd;
}

void SignalEventFd(int fd) {
  uint64_t one = 1;
  // EAGAIN means the counter is saturated: already signalled.
  (void)!::write(fd, &one, sizeof(one));
}

}  // namespace

absl::StatusOr<std::unique_ptr<MmioTransport>> MmioTransport::Create(
    std::shared_ptr<VirtioDevice> device, const GuestMemory* mem, EventLoop* loop) {
  MOTE_ASSIGN_OR_RETURN(FileDescriptor interrupt_fd, NewEventFd());
  std::vector<FileDescriptor> notify_fds;
  for (size_t i = 0; i < device->QueueMaxSizes().size(); ++i) {
    MOTE_ASSIGN_OR_RETURN(FileDescriptor fd, NewEventFd());
    notify_fds.push_back(std::move(fd));
  }
  return std::unique_ptr<MmioTransport>(new MmioTransport(
      std::move(device), mem, loop, std::move(interrupt_fd), std::move(notify_fds)));
}

MmioTransport::MmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory* mem,
                             EventLoop* loop, FileDescriptor interrupt_fd,
                             std::vector<FileDescriptor> notify_fds)
    : device_(std::move(device)), mem_(mem), loop_(loop), interrupt_fd_(std::move(interrupt_fd)),
      notify_fds_(std::move(notify_fds)) {
  for (uint16_t max : device_->QueueMaxSizes()) queues_.emplace_back(max);
}

MmioTransport::~MmioTransport() {
  absl::MutexLock lock(&mu_);
  ResetDevice();
}

uint8_t MmioTransport::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

void MmioTransport::Read(uint64_t offset, absl::Span<uint8_t> data) {
  absl::MutexLock lock(&mu_);
  if (offset >= kConfig) {
    device_->ReadConfig(offset - kConfig, data);
    return;
  }
  // The register file takes 32-bit accesses only (4.2.2.2); others read as zero.
  uint32_t value = data.size() == 4 && offset % 4 == 0 ? ReadRegister(offset) : 0;
  std::memcpy(data.data(), &value, std::min<size_t>(data.size(), sizeof(value)));
  if (data.size() > sizeof(value)) std::fill(data.begin() + sizeof(value), data.end(), 0);
}

void MmioTransport::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  if (offset >= kConfig) {
    device_->WriteConfig(offset - kConfig, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                     "virtio-mmio: ignoring a {}-byte write at register 0x{:x}", data.size(), offset);
    return;
  }
  uint32_t value;
  std::memcpy(&value, data.data(), sizeof(value));
  WriteRegister(offset, value);
}

Queue* MmioTransport::SelectedQueue() {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

uint32_t MmioTransport::ReadRegister(uint64_t offset) {
  Queue* q = SelectedQueue();
  switch (offset) {
    case kMagicValue:
      return kMagic;
    case kVersion:
      return kModernVersion;
    case kDeviceId:
      return device_->DeviceType();
    case kVendorId:
      return kVendor;
    case kDeviceFeatures: {
      uint64_t features = device_->AvailableFeatures();
      if (device_features_sel_ == 0) return static_cast<uint32_t>(features);
      if (device_features_sel_ == 1) return static_cast<uint32_t>(features >> 32);
      return 0;
    }
    case kQueueNumMax:
      return q ? q->max_size() : 0;
    case kQueueNum:
      return q ? q->size() : 0;
    case kQueueReady:
      return q && q->ready() ? 1 : 0;
    case kQueueDescLow:
      return q ? static_cast<uint32_t>(q->desc_table()) : 0;
    case kQueueDescHigh:
      return q ? static_cast<uint32_t>(q->desc_table() >> 32) : 0;
    case kQueueDriverLow:
      return q ? static_cast<uint32_t>(q->avail_ring()) : 0;
    case kQueueDriverHigh:
      return q ? static_cast<uint32_t>(q->avail_ring() >> 32) : 0;
    case kQueueDeviceLow:
      return q ? static_cast<uint32_t>(q->used_ring()) : 0;
    case kQueueDeviceHigh:
      return q ? static_cast<uint32_t>(q->used_ring() >> 32) : 0;
    case kInterruptStatus:
      return interrupt_status_.load();
    case kStatus:
      return status_;
    case kConfigGeneration:
      return 0;  // the configuration of mote's devices never changes under the driver
    default:
      return 0;  // write-only and reserved registers
  }
}

void MmioTransport::WriteRegister(uint64_t offset, uint32_t value) {
  // Queue layout is frozen once the device runs (a driver must reset first).
  Queue* q = activated_ ? nullptr : SelectedQueue();
  switch (offset) {
    case kDeviceFeaturesSel:
      device_features_sel_ = value;
      return;
    case kDriverFeaturesSel:
      driver_features_sel_ = value;
      return;
    case kDriverFeatures:
      if ((status_ & kStatusFeaturesOk) || driver_features_sel_ > 1) return;
      driver_features_ = driver_features_sel_ == 0 ? WithLow(driver_features_, value)
                                                   : WithHigh(driver_features_, value);
      return;
    case kQueueSel:
      queue_sel_ = value;
      return;
    case kQueueNum:
      if (q) q->set_size(static_cast<uint16_t>(value > 0xffff ? 0 : value));
      return;
    case kQueueReady:
      if (!q) return;
      if (value == 1) {
        if (absl::Status s = q->Validate(*mem_); !s.ok()) {
          MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                           "virtio-mmio: queue {} not made ready: {}", queue_sel_, s.ToString());
          return;
        }
      }
      q->set_ready(value == 1);
      return;
    case kQueueDescLow:
      if (q) q->set_desc_table(WithLow(q->desc_table(), value));
      return;
    case kQueueDescHigh:
      if (q) q->set_desc_table(WithHigh(q->desc_table(), value));
      return;
    case kQueueDriverLow:
      if (q) q->set_avail_ring(WithLow(q->avail_ring(), value));
      return;
    case kQueueDriverHigh:
      if (q) q->set_avail_ring(WithHigh(q->avail_ring(), value));
      return;
    case kQueueDeviceLow:
      if (q) q->set_used_ring(WithLow(q->used_ring(), value));
      return;
    case kQueueDeviceHigh:
      if (q) q->set_used_ring(WithHigh(q->used_ring(), value));
      return;
    case kQueueNotify:
      // Reached only when no KVM ioeventfd caught the write first.
      if (value < notify_fds_.size()) SignalEventFd(notify_fds_[value].get());
      return;
    case kInterruptAck:
      interrupt_status_.fetch_and(~value);
      return;
    case kStatus:
      WriteStatus(static_cast<uint8_t>(value));
      return;
    default:
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                       "virtio-mmio: write 0x{:x} to read-only or unknown register 0x{:x}", value,
                       offset);
      return;
  }
}

void MmioTransport::WriteStatus(uint8_t value) {
  if (value == 0) {
    ResetDevice();
    return;
  }
  uint8_t added = value & ~status_;
  if (added & kStatusFeaturesOk) {
    bool acceptable = (driver_features_ & ~device_->AvailableFeatures()) == 0 &&
                      (driver_features_ & kFeatureVersion1);
    // Leaving FEATURES_OK clear tells the driver its subset was refused (3.1.1).
    if (!acceptable) value &= ~kStatusFeaturesOk;
  }
  status_ = value | (status_ & kStatusNeedsReset);
  if ((added & kStatusDriverOk) && (status_ & kStatusFeaturesOk) && !activated_) Activate();
}

void MmioTransport::Activate() {
  ActivationContext ctx;
  ctx.mem = mem_;
  ctx.interrupt = this;
  ctx.features = driver_features_;
  // Activate runs with mu_ held, which is what WatchForDevice requires.
  ctx.watch_fd = [this](int fd, uint32_t events,
                        std::function<void()> on_ready) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return WatchForDevice(fd, events, std::move(on_ready));
  };
  for (Queue& q : queues_) {
    q.set_event_idx(driver_features_ & kFeatureRingEventIdx);
    q.set_indirect(driver_features_ & kFeatureRingIndirect);
    ctx.queues.push_back(q.ready() ? &q : nullptr);
  }
  if (absl::Status s = device_->Activate(ctx); !s.ok()) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "virtio-mmio: activation failed: {}",
                     s.ToString());
    status_ |= kStatusNeedsReset;
    RaiseInterrupt(kInterruptConfigChange);
    return;
  }
  activated_ = true;
  for (uint16_t i = 0; i < notify_fds_.size(); ++i) {
    if (absl::Status s = loop_->Add(notify_fds_[i].get(), EPOLLIN, [this, i](uint32_t) { OnNotify(i); });
        !s.ok()) {
      spdlog::error("virtio-mmio: cannot watch queue {}: {}", i, s.ToString());
    }
  }
  watching_ = true;
}

absl::Status MmioTransport::WatchForDevice(int fd, uint32_t events, std::function<void()> on_ready) {
  device_fds_.push_back(fd);
  return loop_->Add(fd, events, [this, on_ready = std::move(on_ready)](uint32_t) {
    absl::MutexLock lock(&mu_);
    if (activated_) on_ready();
  });
}

void MmioTransport::ResetDevice() {
  if (watching_) {
    for (const FileDescriptor& fd : notify_fds_) (void)loop_->Remove(fd.get());
    watching_ = false;
  }
  for (int fd : device_fds_) (void)loop_->Remove(fd);
  device_fds_.clear();
  if (activated_) device_->Reset();
  activated_ = false;
  for (Queue& q : queues_) q.Reset();
  status_ = 0;
  driver_features_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
  interrupt_status_.store(0);
}

void MmioTransport::OnNotify(uint16_t index) {
  uint64_t count;
  (void)!::read(notify_fds_[index].get(), &count, sizeof(count));
  absl::MutexLock lock(&mu_);
  // A reset may have raced with this notification.
  if (activated_ && !(status_ & kStatusNeedsReset)) device_->ProcessQueue(index);
}

void MmioTransport::RaiseInterrupt(uint32_t reason) {
  interrupt_status_.fetch_or(reason);
  SignalEventFd(interrupt_fd_.get());
}

void MmioTransport::SignalUsedBuffers() { RaiseInterrupt(kInterruptUsedBuffer); }

void MmioTransport::SignalNeedsReset() {
  // Called by the device with mu_ held (from ProcessQueue or Activate).
  status_ |= kStatusNeedsReset;
  RaiseInterrupt(kInterruptConfigChange);
}

}  // namespace mote::virtio
