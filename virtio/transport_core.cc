#include "virtio/transport_core.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"

namespace mote::virtio {

absl::StatusOr<FileDescriptor> NewEventFd() {
  FileDescriptor fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd.ok()) return ErrnoToStatus(errno, "eventfd");
  return fd;
}

void SignalEventFd(int fd) {
  uint64_t one = 1;
  (void)!::write(fd, &one, sizeof(one));
}

absl::StatusOr<std::unique_ptr<TransportCore>> TransportCore::Create(
    std::string name, std::shared_ptr<VirtioDevice> device, const GuestMemory* mem, EventLoop* loop,
    Mutex* mu, VirtioInterrupt* interrupt) {
  std::vector<FileDescriptor> notify_fds;
  for (size_t i = 0; i < device->QueueMaxSizes().size(); ++i) {
    MOTE_ASSIGN_OR_RETURN(FileDescriptor fd, NewEventFd());
    notify_fds.push_back(std::move(fd));
  }
  return std::unique_ptr<TransportCore>(new TransportCore(
      std::move(name), std::move(device), mem, loop, mu, interrupt, std::move(notify_fds)));
}

TransportCore::TransportCore(std::string name, std::shared_ptr<VirtioDevice> device,
                             const GuestMemory* mem, EventLoop* loop, Mutex* mu,
                             VirtioInterrupt* interrupt, std::vector<FileDescriptor> notify_fds)
    : name_(std::move(name)),
      device_(std::move(device)),
      mem_(mem),
      loop_(loop),
      mu_(mu),
      interrupt_(interrupt),
      notify_fds_(std::move(notify_fds)) {
  for (uint16_t max : device_->QueueMaxSizes()) queues_.emplace_back(max);
}

TransportCore::~TransportCore() {
  // Takes the fds off the loop before they close.
  MutexLock lock(mu_);
  Reset();
}

bool TransportCore::WriteStatus(uint8_t value) {
  if (value == 0) {
    Reset();
    return true;
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
  return false;
}

uint32_t TransportCore::DeviceFeaturesWindow() const {
  uint64_t features = device_->AvailableFeatures();
  if (device_features_sel_ == 0) return static_cast<uint32_t>(features);
  if (device_features_sel_ == 1) return static_cast<uint32_t>(features >> 32);
  return 0;
}

uint32_t TransportCore::DriverFeaturesWindow() const {
  if (driver_features_sel_ == 0) return static_cast<uint32_t>(driver_features_);
  if (driver_features_sel_ == 1) return static_cast<uint32_t>(driver_features_ >> 32);
  return 0;
}

void TransportCore::WriteDriverFeaturesWindow(uint32_t value) {
  if ((status_ & kStatusFeaturesOk) || driver_features_sel_ > 1) return;
  int shift = driver_features_sel_ == 0 ? 0 : 32;
  driver_features_ = (driver_features_ & ~(0xffffffffull << shift)) | (uint64_t{value} << shift);
}

const Queue* TransportCore::SelectedQueue() const {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

Queue* TransportCore::SelectedQueueForSetup() {
  return !activated_ && queue_sel_ < queues_.size() && !queues_[queue_sel_].ready()
             ? &queues_[queue_sel_]
             : nullptr;
}

void TransportCore::SetSelectedQueueReady(bool ready) {
  if (activated_ || queue_sel_ >= queues_.size()) return;
  Queue& q = queues_[queue_sel_];
  if (ready && !q.ready()) {
    if (absl::Status s = q.Validate(*mem_); !s.ok()) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "{}: queue {} not made ready: {}", name_,
                       queue_sel_, s.ToString());
      return;
    }
  }
  q.set_ready(ready);
}

void TransportCore::Notify(uint32_t index) {
  if (index < notify_fds_.size()) SignalEventFd(notify_fds_[index].get());
}

void TransportCore::Activate() {
  ActivationContext ctx;
  ctx.mem = mem_;
  ctx.interrupt = interrupt_;
  ctx.features = driver_features_;
  // The device calls watch_fd from Activate, with the transport's lock held.
  ctx.watch_fd = [this](int fd, uint32_t events, std::function<void()> on_ready) {
    return WatchForDevice(fd, events, std::move(on_ready));
  };
  ctx.add_poller = [this](std::function<bool()> poll) {
    device_pollers_.push_back(loop_->AddPoller([this, poll = std::move(poll)] {
      MutexLock lock(mu_);
      return activated_ && !(status_ & kStatusNeedsReset) && poll();
    }));
  };
  for (Queue& q : queues_) {
    q.set_event_idx(driver_features_ & kFeatureRingEventIdx);
    q.set_indirect(driver_features_ & kFeatureRingIndirect);
    ctx.queues.push_back(q.ready() ? &q : nullptr);
  }
  if (absl::Status s = device_->Activate(ctx); !s.ok()) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "{}: activation failed: {}", name_,
                     s.ToString());
    interrupt_->SignalNeedsReset();
    return;
  }
  activated_ = true;
  for (uint16_t i = 0; i < notify_fds_.size(); ++i) {
    if (absl::Status s =
            loop_->Add(notify_fds_[i].get(), EPOLLIN, [this, i](uint32_t) { OnNotify(i); });
        !s.ok()) {
      spdlog::error("{}: cannot watch queue {}: {}", name_, i, s.ToString());
    }
  }
  watching_ = true;
}

absl::Status TransportCore::WatchForDevice(int fd, uint32_t events,
                                           std::function<void()> on_ready) {
  device_fds_.push_back(fd);
  return loop_->Add(fd, events, [this, on_ready = std::move(on_ready)](uint32_t) {
    MutexLock lock(mu_);
    if (activated_) on_ready();
  });
}

void TransportCore::Reset() {
  if (watching_) {
    for (const FileDescriptor& fd : notify_fds_) (void)loop_->Remove(fd.get());
    watching_ = false;
  }
  for (int fd : device_fds_) (void)loop_->Remove(fd);
  device_fds_.clear();
  for (uint64_t id : device_pollers_) loop_->RemovePoller(id);
  device_pollers_.clear();
  if (activated_) device_->Reset();
  activated_ = false;
  for (Queue& q : queues_) q.Reset();
  status_ = 0;
  driver_features_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
}

void TransportCore::SaveState(StateWriter& out) {
  // Nothing may be half done: a request in the engine would be lost (or
  // done twice) by the restored VM.
  device_->Quiesce();
  out.U8(status_);
  out.Bool(activated_);
  out.U32(device_features_sel_);
  out.U32(driver_features_sel_);
  out.U64(driver_features_);
  out.U32(queue_sel_);
  out.U16(static_cast<uint16_t>(queues_.size()));
  for (const Queue& q : queues_) q.SaveState(out);
}

absl::Status TransportCore::RestoreState(StateReader& in) {
  Reset();
  uint8_t status = in.U8();
  bool activated = in.Bool();
  uint32_t device_features_sel = in.U32();
  uint32_t driver_features_sel = in.U32();
  uint64_t driver_features = in.U64();
  uint32_t queue_sel = in.U32();
  uint16_t num_queues = in.U16();
  if (in.ok() && num_queues != queues_.size()) {
    in.Fail(absl::StrFormat("%d queues, the device has %d", num_queues, queues_.size()));
  }
  // Before FEATURES_OK the features are only what the driver wrote; from
  // then on they are what the device accepted (WriteStatus).
  if (in.ok() && ((status & kStatusFeaturesOk) || activated)) {
    uint64_t foreign = driver_features & ~device_->AvailableFeatures();
    if (foreign != 0) {
      in.Fail(absl::StrFormat("driver features 0x%x were never offered", foreign));
    } else if (!(driver_features & kFeatureVersion1)) {
      in.Fail("features without VERSION_1 were accepted");
    }
  }
  std::vector<Queue> queues = queues_;  // reset: each keeps its max size
  for (Queue& q : queues) {
    if (!in.ok()) break;
    (void)q.RestoreState(in, *mem_);
  }
  if (!in.ok()) return in.status(/*want_end=*/false);

  status_ = status;
  device_features_sel_ = device_features_sel;
  driver_features_sel_ = driver_features_sel;
  driver_features_ = driver_features;
  queue_sel_ = queue_sel;
  queues_ = std::move(queues);
  // A device that failed (DEVICE_NEEDS_RESET) stays stopped until the
  // driver resets it, as it was.
  if (activated && !(status_ & kStatusNeedsReset)) {
    Activate();
    if (!activated_) {
      Reset();
      return absl::FailedPreconditionError(name_ + ": the device refused to run again on restore");
    }
    for (uint16_t i = 0; i < notify_fds_.size(); ++i) Notify(i);
  }
  return absl::OkStatus();
}

void TransportCore::OnNotify(uint16_t index) {
  uint64_t count;
  (void)!::read(notify_fds_[index].get(), &count, sizeof(count));
  MutexLock lock(mu_);
  // A reset may have raced with this notification.
  if (activated_ && !(status_ & kStatusNeedsReset)) device_->ProcessQueue(index);
}

}  // namespace mote::virtio
