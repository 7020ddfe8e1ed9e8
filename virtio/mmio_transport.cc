#include "virtio/mmio_transport.h"

#include <cstring>

#include "absl/strings/str_format.h"
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
uint64_t WithHigh(uint64_t old, uint32_t high) {
  return (old & 0xffffffffull) | (uint64_t{high} << 32);
}
uint32_t Low(uint64_t v) { return static_cast<uint32_t>(v); }
uint32_t High(uint64_t v) { return static_cast<uint32_t>(v >> 32); }

}  // namespace

absl::StatusOr<std::unique_ptr<MmioTransport>> MmioTransport::Create(
    std::shared_ptr<VirtioDevice> device, const GuestMemory* mem, EventLoop* loop) {
  MOTE_ASSIGN_OR_RETURN(FileDescriptor interrupt_fd, NewEventFd());
  std::unique_ptr<MmioTransport> t(new MmioTransport(std::move(interrupt_fd)));
  MOTE_ASSIGN_OR_RETURN(
      std::unique_ptr<TransportCore> core,
      TransportCore::Create("virtio-mmio", std::move(device), mem, loop, &t->mu_, t.get()));
  MutexLock lock(&t->mu_);
  t->core_ = std::move(core);
  return t;
}

int MmioTransport::queue_notify_fd(uint16_t index) const {
  MutexLock lock(&mu_);
  return core_->queue_notify_fd(index);
}

size_t MmioTransport::num_queues() const {
  MutexLock lock(&mu_);
  return core_->num_queues();
}

uint8_t MmioTransport::status() const {
  MutexLock lock(&mu_);
  return core_->status();
}

void MmioTransport::Read(uint64_t offset, absl::Span<uint8_t> data) {
  MutexLock lock(&mu_);
  if (offset >= kConfig) {
    core_->device().ReadConfig(offset - kConfig, data);
    return;
  }
  // The register file takes 32-bit accesses only (4.2.2.2); others read as zero.
  uint32_t value = data.size() == 4 && offset % 4 == 0 ? ReadRegister(offset) : 0;
  std::memcpy(data.data(), &value, std::min<size_t>(data.size(), sizeof(value)));
  if (data.size() > sizeof(value)) std::fill(data.begin() + sizeof(value), data.end(), 0);
}

void MmioTransport::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  MutexLock lock(&mu_);
  if (offset >= kConfig) {
    core_->device().WriteConfig(offset - kConfig, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    MOTE_LOG_LIMITED(core_->log_limiter(), spdlog::level::warn,
                     "virtio-mmio: ignoring a {}-byte write at register 0x{:x}", data.size(),
                     offset);
    return;
  }
  uint32_t value;
  std::memcpy(&value, data.data(), sizeof(value));
  WriteRegister(offset, value);
}

void MmioTransport::SaveState(StateWriter& out) {
  MutexLock lock(&mu_);
  // First, so the interrupts of the requests it completes are in the
  // status saved here (the core's SaveState then finds nothing in flight).
  core_->device().Quiesce();
  out.U32(interrupt_status_.load());
  core_->SaveState(out);
}

absl::Status MmioTransport::RestoreState(StateReader& in) {
  MutexLock lock(&mu_);
  uint32_t interrupt_status = in.U32();
  if (in.ok() && (interrupt_status & ~(kInterruptUsedBuffer | kInterruptConfigChange))) {
    in.Fail(absl::StrFormat("InterruptStatus 0x%x has undefined bits", interrupt_status));
  }
  if (!in.ok()) return in.status();
  MOTE_RETURN_IF_ERROR(core_->RestoreState(in));
  if (absl::Status s = in.status(); !s.ok()) {
    core_->Reset();
    return s;
  }
  interrupt_status_.store(interrupt_status);
  if (interrupt_status != 0) SignalEventFd(interrupt_fd_.get());
  return absl::OkStatus();
}

uint32_t MmioTransport::ReadRegister(uint64_t offset) {
  const Queue* q = core_->SelectedQueue();
  switch (offset) {
    case kMagicValue:
      return kMagic;
    case kVersion:
      return kModernVersion;
    case kDeviceId:
      return core_->device().DeviceType();
    case kVendorId:
      return kVendor;
    case kDeviceFeatures:
      return core_->DeviceFeaturesWindow();
    case kQueueNumMax:
      return q ? q->max_size() : 0;
    case kQueueNum:
      return q ? q->size() : 0;
    case kQueueReady:
      return q && q->ready() ? 1 : 0;
    case kQueueDescLow:
      return q ? Low(q->desc_table()) : 0;
    case kQueueDescHigh:
      return q ? High(q->desc_table()) : 0;
    case kQueueDriverLow:
      return q ? Low(q->avail_ring()) : 0;
    case kQueueDriverHigh:
      return q ? High(q->avail_ring()) : 0;
    case kQueueDeviceLow:
      return q ? Low(q->used_ring()) : 0;
    case kQueueDeviceHigh:
      return q ? High(q->used_ring()) : 0;
    case kInterruptStatus:
      return interrupt_status_.load();
    case kStatus:
      return core_->status();
    case kConfigGeneration:
      return 0;  // the configuration of mote's devices never changes under the driver
    default:
      return 0;  // write-only and reserved registers
  }
}

void MmioTransport::WriteRegister(uint64_t offset, uint32_t value) {
  Queue* q = core_->SelectedQueueForSetup();
  switch (offset) {
    case kDeviceFeaturesSel:
      core_->set_device_features_sel(value);
      return;
    case kDriverFeaturesSel:
      core_->set_driver_features_sel(value);
      return;
    case kDriverFeatures:
      core_->WriteDriverFeaturesWindow(value);
      return;
    case kQueueSel:
      core_->set_queue_sel(value);
      return;
    case kQueueNum:
      if (q) q->set_size(static_cast<uint16_t>(value > 0xffff ? 0 : value));
      return;
    case kQueueReady:
      core_->SetSelectedQueueReady(value == 1);
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
      core_->Notify(value);
      return;
    case kInterruptAck:
      interrupt_status_.fetch_and(~value);
      return;
    case kStatus:
      if (core_->WriteStatus(static_cast<uint8_t>(value))) interrupt_status_.store(0);
      return;
    default:
      MOTE_LOG_LIMITED(core_->log_limiter(), spdlog::level::warn,
                       "virtio-mmio: write 0x{:x} to read-only or unknown register 0x{:x}", value,
                       offset);
      return;
  }
}

void MmioTransport::RaiseInterrupt(uint32_t reason) {
  interrupt_status_.fetch_or(reason);
  SignalEventFd(interrupt_fd_.get());
}

void MmioTransport::SignalUsedBuffers(uint16_t /*queue*/) { RaiseInterrupt(kInterruptUsedBuffer); }

void MmioTransport::SignalNeedsReset() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // The device (or the core's activation) calls this with mu_ held.
  core_->SetNeedsReset();
  RaiseInterrupt(kInterruptConfigChange);
}

}  // namespace mote::virtio
