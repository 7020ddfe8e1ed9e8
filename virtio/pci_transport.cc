#include "virtio/pci_transport.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"

namespace mote::virtio {
namespace {

constexpr uint16_t kVirtioVendor = 0x1af4;
constexpr uint16_t kModernDeviceBase = 0x1040;  // device ID = 0x1040 + virtio type (4.1.2.1)
constexpr uint16_t kSubsystem = 0x1100;         // what QEMU reports; drivers ignore it

// virtio_pci_cap.cfg_type (4.1.4).
constexpr uint8_t kCapCommon = 1, kCapNotify = 2, kCapIsr = 3, kCapDevice = 4, kCapPciCfg = 5;
constexpr uint8_t kCapLength = 16, kCapLengthWithWord = 20;
// Offsets inside a virtio capability; the PCI-cfg window's fields.
constexpr uint32_t kCapBar = 4, kCapOffset = 8, kCapWindowLength = 12, kCapData = 16;

// Common configuration (4.1.4.3). 0x38 and 0x3a (notification data, queue
// reset) belong to features mote does not offer, so the structure ends there.
constexpr uint64_t kDeviceFeatureSelect = 0x00, kDeviceFeature = 0x04, kDriverFeatureSelect = 0x08,
                   kDriverFeature = 0x0c, kConfigMsixVector = 0x10, kNumQueues = 0x12,
                   kDeviceStatus = 0x14, kConfigGeneration = 0x15, kQueueSelect = 0x16,
                   kQueueSize = 0x18, kQueueMsixVector = 0x1a, kQueueEnable = 0x1c,
                   kQueueNotifyOff = 0x1e, kQueueDesc = 0x20, kQueueDriver = 0x28,
                   kQueueDevice = 0x30, kCommonLength = 0x38;

constexpr uint8_t kIsrQueue = 1, kIsrConfig = 2;

uint32_t ClassCode(uint32_t device_type) {
  switch (device_type) {
    case kDeviceTypeNet:
      return 0x020000;  // network controller, Ethernet
    case kDeviceTypeBlock:
      return 0x018000;  // mass storage, other
    default:
      return 0xff0000;  // unassigned class
  }
}

void Put32(std::vector<uint8_t>& v, uint32_t x) {
  for (int i = 0; i < 4; ++i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}

// A virtio_pci_cap body (after the ID and next bytes) for a BAR0 region.
std::vector<uint8_t> VirtioCap(uint8_t cfg_type, uint32_t offset, uint32_t length,
                               uint8_t cap_len = kCapLength) {
  std::vector<uint8_t> body = {cap_len, cfg_type, /*bar=*/0, /*id=*/0, 0, 0};
  Put32(body, offset);
  Put32(body, length);
  return body;
}

bool Overlaps(uint32_t offset, size_t size, uint32_t start, uint32_t len) {
  return offset < start + len && start < offset + size;
}

uint64_t Le(absl::Span<const uint8_t> data) {
  uint64_t v = 0;
  std::memcpy(&v, data.data(), std::min<size_t>(data.size(), sizeof(v)));
  return v;
}

}  // namespace

uint16_t PciTransport::VectorCount(const VirtioDevice& device) {
  return static_cast<uint16_t>(device.QueueMaxSizes().size() + 1);
}

absl::StatusOr<std::unique_ptr<PciTransport>> PciTransport::Create(
    std::shared_ptr<VirtioDevice> device, const GuestMemory* mem, EventLoop* loop,
    pci::MsiRouter* router, const Placement& placement, NotifyHook notify_hook) {
  std::unique_ptr<PciTransport> t(
      new PciTransport(device, router, placement, std::move(notify_hook)));
  MOTE_ASSIGN_OR_RETURN(
      std::unique_ptr<TransportCore> core,
      TransportCore::Create("virtio-pci", std::move(device), mem, loop, &t->mu_, t.get()));
  MutexLock lock(&t->mu_);
  t->core_ = std::move(core);
  t->queue_vectors_.assign(t->core_->num_queues(), kNoVector);
  t->BuildCapabilities();
  t->UpdateMapping();
  return t;
}

PciTransport::PciTransport(std::shared_ptr<VirtioDevice> device, pci::MsiRouter* router,
                           const Placement& placement, NotifyHook notify_hook)
    : device_(device),
      placement_(placement),
      notify_hook_(std::move(notify_hook)),
      msix_(VectorCount(*device), router),
      config_(pci::PciIdentity{
          .vendor = kVirtioVendor,
          .device = static_cast<uint16_t>(kModernDeviceBase + device->DeviceType()),
          .revision = 1,  // modern only (4.1.2.1)
          .class_code = ClassCode(device->DeviceType()),
          .subsystem_vendor = kVirtioVendor,
          .subsystem = kSubsystem}) {}

PciTransport::~PciTransport() {
  MutexLock lock(&mu_);
  uint64_t base = bar_base_.load();
  if (base == kUnmapped || core_ == nullptr) return;
  for (uint16_t q = 0; q < core_->num_queues(); ++q) {
    (void)notify_hook_(base + kNotifyOffset + kNotifyMultiplier * q, core_->queue_notify_fd(q),
                       false);
  }
}

void PciTransport::BuildCapabilities() {
  config_.AddMemoryBar32(0, kBarSize, placement_.bar_address);
  // Decoding on, as firmware leaves a device it assigned.
  config_.Set16(pci::kCommandOffset, pci::kCommandMemory);
  config_.AddCapability(pci::kCapabilityVendor,
                        VirtioCap(kCapCommon, kCommonOffset, kCommonLength));
  std::vector<uint8_t> notify =
      VirtioCap(kCapNotify, kNotifyOffset,
                kNotifyMultiplier * static_cast<uint32_t>(core_->num_queues()), kCapLengthWithWord);
  Put32(notify, kNotifyMultiplier);
  config_.AddCapability(pci::kCapabilityVendor, notify);
  config_.AddCapability(pci::kCapabilityVendor, VirtioCap(kCapIsr, kIsrOffset, 1));
  config_.AddCapability(pci::kCapabilityVendor, VirtioCap(kCapDevice, kDeviceConfigOffset,
                                                          kNotifyOffset - kDeviceConfigOffset));
  // The PCI-cfg window: bar, offset, length and data are the driver's to write.
  std::vector<uint8_t> window = VirtioCap(kCapPciCfg, 0, 0, kCapLengthWithWord);
  Put32(window, 0);
  std::vector<uint8_t> window_writable(window.size(), 0);
  std::fill(window_writable.begin() + 2, window_writable.begin() + 3, 0xff);  // bar
  std::fill(window_writable.begin() + 6, window_writable.end(), 0xff);        // offset..data
  pci_cfg_cap_ = config_.AddCapability(pci::kCapabilityVendor, window, window_writable);
  // MSI-X: table size N-1, table and PBA in BAR0 (BIR 0); enable and
  // function mask are writable.
  std::vector<uint8_t> msix;
  uint16_t control = static_cast<uint16_t>(msix_.count() - 1);
  msix.push_back(static_cast<uint8_t>(control));
  msix.push_back(static_cast<uint8_t>(control >> 8));
  Put32(msix, kMsixTableOffset);
  Put32(msix, kMsixPbaOffset);
  std::vector<uint8_t> msix_writable(msix.size(), 0);
  msix_writable[1] = 0xc0;
  msix_cap_ = config_.AddCapability(pci::kCapabilityMsix, msix, msix_writable);
}

uint8_t PciTransport::status() const {
  MutexLock lock(&mu_);
  return core_->status();
}

void PciTransport::ReadConfig(uint32_t offset, absl::Span<uint8_t> data) {
  MutexLock lock(&mu_);
  if (Overlaps(offset, data.size(), pci_cfg_cap_ + kCapData, 4)) PciCfgWindowRead();
  config_.Read(offset, data);
}

void PciTransport::WriteConfig(uint32_t offset, absl::Span<const uint8_t> data) {
  MutexLock lock(&mu_);
  config_.Write(offset, data);
  if (Overlaps(offset, data.size(), msix_cap_ + 2, 2))
    msix_.SetControl(config_.Get16(msix_cap_ + 2));
  if (Overlaps(offset, data.size(), pci_cfg_cap_ + kCapData, 4)) PciCfgWindowWrite();
  UpdateMapping();
}

void PciTransport::SaveState(StateWriter& out) {
  MutexLock lock(&mu_);
  // First, so the interrupts of the requests it completes (ISR bits) are
  // in what is saved here; the core's SaveState then finds nothing in flight.
  core_->device().Quiesce();
  config_.SaveState(out);
  msix_.SaveState(out);
  out.U8(isr_);
  out.U16(config_vector_);
  out.U16(static_cast<uint16_t>(queue_vectors_.size()));
  for (uint16_t v : queue_vectors_) out.U16(v);
  core_->SaveState(out);
}

absl::Status PciTransport::RestoreState(StateReader& in) {
  MutexLock lock(&mu_);
  // The config space and MSI-X check their own parts before they change.
  MOTE_RETURN_IF_ERROR(config_.RestoreState(in));
  UpdateMapping();  // BAR0 and its ioeventfds follow the restored config space
  MOTE_RETURN_IF_ERROR(msix_.RestoreState(in));
  uint16_t control = config_.Get16(msix_cap_ + 2);
  if (msix_.enabled() != ((control & pci::kMsixControlEnable) != 0) ||
      msix_.function_masked() != ((control & pci::kMsixControlFunctionMask) != 0)) {
    in.Fail("MSI-X enable and mask bits differ from the config space's");
  }
  uint8_t isr = in.U8();
  if (in.ok() && (isr & ~(kIsrQueue | kIsrConfig))) {
    in.Fail(absl::StrFormat("ISR 0x%x has undefined bits", isr));
  }
  auto vector = [&](const char* what, uint16_t v) {
    if (in.ok() && v != kNoVector && v >= msix_.count()) {
      in.Fail(absl::StrFormat("%s vector %d, the table has %d", what, v, msix_.count()));
    }
    return v;
  };
  uint16_t config_vector = vector("config", in.U16());
  uint16_t num_queues = in.U16();
  if (in.ok() && num_queues != queue_vectors_.size()) {
    in.Fail(absl::StrFormat("%d queue vectors, the device has %d queues", num_queues,
                            queue_vectors_.size()));
  }
  std::vector<uint16_t> queue_vectors(queue_vectors_.size());
  for (uint16_t& v : queue_vectors) v = vector("queue", in.U16());
  if (!in.ok()) return in.status();
  isr_ = isr;
  config_vector_ = config_vector;
  queue_vectors_ = std::move(queue_vectors);
  MOTE_RETURN_IF_ERROR(core_->RestoreState(in));
  if (absl::Status s = in.status(); !s.ok()) {
    core_->Reset();
    return s;
  }
  return absl::OkStatus();
}

void PciTransport::UpdateMapping() {
  uint64_t want = kUnmapped;
  std::optional<uint64_t> address = config_.BarAddress(0);
  if (config_.memory_enabled() && address && *address >= placement_.window_start &&
      *address + kBarSize <= placement_.window_end) {
    want = *address;
  }
  uint64_t old = bar_base_.load();
  if (want == old) return;
  for (uint16_t q = 0; q < core_->num_queues(); ++q) {
    uint64_t at = kNotifyOffset + kNotifyMultiplier * q;
    int fd = core_->queue_notify_fd(q);
    if (old != kUnmapped) (void)notify_hook_(old + at, fd, false);
    if (want == kUnmapped) continue;
    if (absl::Status s = notify_hook_(want + at, fd, true); !s.ok()) {
      // The notification still arrives, as a BAR write (WriteBar).
      MOTE_LOG_LIMITED(core_->log_limiter(), spdlog::level::warn, "virtio-pci: {}", s.ToString());
    }
  }
  bar_base_.store(want);
}

void PciTransport::PciCfgWindowRead() {
  uint32_t bar = config_.Get8(pci_cfg_cap_ + kCapBar);
  uint32_t offset = config_.Get32(pci_cfg_cap_ + kCapOffset);
  uint32_t length = config_.Get32(pci_cfg_cap_ + kCapWindowLength);
  uint8_t value[4] = {0, 0, 0, 0};
  if (bar == 0 && (length == 1 || length == 2 || length == 4) && offset % length == 0 &&
      offset < kBarSize) {
    BarRead(offset, absl::MakeSpan(value, length));
  }
  uint32_t word;
  std::memcpy(&word, value, 4);
  config_.Set32(pci_cfg_cap_ + kCapData, word);
}

void PciTransport::PciCfgWindowWrite() {
  uint32_t bar = config_.Get8(pci_cfg_cap_ + kCapBar);
  uint32_t offset = config_.Get32(pci_cfg_cap_ + kCapOffset);
  uint32_t length = config_.Get32(pci_cfg_cap_ + kCapWindowLength);
  if (bar != 0 || (length != 1 && length != 2 && length != 4) || offset % length != 0 ||
      offset >= kBarSize) {
    return;
  }
  uint8_t value[4];
  uint32_t word = config_.Get32(pci_cfg_cap_ + kCapData);
  std::memcpy(value, &word, 4);
  BarWrite(offset, absl::MakeConstSpan(value, length));
}

bool PciTransport::ReadBar(uint64_t addr, absl::Span<uint8_t> data) {
  uint64_t base = bar_base_.load();
  if (base == kUnmapped || addr < base || addr + data.size() > base + kBarSize) return false;
  MutexLock lock(&mu_);
  BarRead(addr - base, data);
  return true;
}

bool PciTransport::WriteBar(uint64_t addr, absl::Span<const uint8_t> data) {
  uint64_t base = bar_base_.load();
  if (base == kUnmapped || addr < base || addr + data.size() > base + kBarSize) return false;
  MutexLock lock(&mu_);
  BarWrite(addr - base, data);
  return true;
}

void PciTransport::BarRead(uint64_t offset, absl::Span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset < kIsrOffset) {
    ReadCommon(offset, data);
  } else if (offset == kIsrOffset) {
    data[0] = isr_;  // reading clears it (4.1.4.5)
    isr_ = 0;
  } else if (offset >= kDeviceConfigOffset && offset < kNotifyOffset) {
    core_->device().ReadConfig(offset - kDeviceConfigOffset, data);
  } else if (offset >= kMsixTableOffset && offset < kMsixPbaOffset) {
    msix_.ReadTable(offset - kMsixTableOffset, data);
  } else if (offset >= kMsixPbaOffset) {
    msix_.ReadPba(offset - kMsixPbaOffset, data);
  }
}

void PciTransport::BarWrite(uint64_t offset, absl::Span<const uint8_t> data) {
  if (offset < kIsrOffset) {
    WriteCommon(offset, data);
  } else if (offset >= kDeviceConfigOffset && offset < kNotifyOffset) {
    core_->device().WriteConfig(offset - kDeviceConfigOffset, data);
  } else if (offset >= kNotifyOffset && offset < kMsixTableOffset) {
    // Reached only when no KVM ioeventfd caught the write first.
    core_->Notify(static_cast<uint32_t>((offset - kNotifyOffset) / kNotifyMultiplier));
  } else if (offset >= kMsixTableOffset && offset < kMsixPbaOffset) {
    msix_.WriteTable(offset - kMsixTableOffset, data);
  } else {
    MOTE_LOG_LIMITED(core_->log_limiter(), spdlog::level::warn,
                     "virtio-pci: ignoring a write at BAR0 offset 0x{:x}", offset);
  }
}

void PciTransport::ReadCommon(uint64_t offset, absl::Span<uint8_t> data) {
  if (offset + data.size() > kCommonLength) return;
  uint8_t image[kCommonLength] = {};
  auto put = [&image](uint64_t at, uint64_t value, size_t size) {
    for (size_t i = 0; i < size; ++i) image[at + i] = static_cast<uint8_t>(value >> (8 * i));
  };
  const Queue* q = core_->SelectedQueue();
  put(kDeviceFeatureSelect, core_->device_features_sel(), 4);
  put(kDeviceFeature, core_->DeviceFeaturesWindow(), 4);
  put(kDriverFeatureSelect, core_->driver_features_sel(), 4);
  put(kDriverFeature, core_->DriverFeaturesWindow(), 4);
  put(kConfigMsixVector, config_vector_, 2);
  put(kNumQueues, core_->num_queues(), 2);
  put(kDeviceStatus, core_->status(), 1);
  put(kConfigGeneration, 0, 1);  // mote's device configuration never changes under the driver
  put(kQueueSelect, core_->queue_sel(), 2);
  if (q != nullptr) {
    uint32_t index = core_->queue_sel();
    put(kQueueSize, q->size(), 2);
    put(kQueueMsixVector, queue_vectors_[index], 2);
    put(kQueueEnable, q->ready() ? 1 : 0, 2);
    put(kQueueNotifyOff, index, 2);
    put(kQueueDesc, q->desc_table(), 8);
    put(kQueueDriver, q->avail_ring(), 8);
    put(kQueueDevice, q->used_ring(), 8);
  } else {
    put(kQueueMsixVector, kNoVector, 2);  // queue_size 0: no such queue
  }
  std::memcpy(data.data(), image + offset, data.size());
}

void PciTransport::WriteCommon(uint64_t offset, absl::Span<const uint8_t> data) {
  uint64_t value = Le(data);
  size_t size = data.size();
  uint32_t index = core_->queue_sel();
  Queue* q = core_->SelectedQueueForSetup();
  // 64-bit queue addresses may come as one access or as two 32-bit halves.
  auto set_address = [&](uint64_t field, uint64_t old, auto setter) {
    if (q == nullptr) return;
    if (offset == field && size == 8) {
      (q->*setter)(value);
    } else if (offset == field && size == 4) {
      (q->*setter)((old & ~0xffffffffull) | value);
    } else if (offset == field + 4 && size == 4) {
      (q->*setter)((old & 0xffffffffull) | value << 32);
    }
  };
  auto vector = [this](uint64_t v) {
    return v < msix_.count() ? static_cast<uint16_t>(v) : kNoVector;  // NO_VECTOR: refused
  };
  if (offset == kDeviceFeatureSelect && size == 4) {
    core_->set_device_features_sel(static_cast<uint32_t>(value));
  } else if (offset == kDriverFeatureSelect && size == 4) {
    core_->set_driver_features_sel(static_cast<uint32_t>(value));
  } else if (offset == kDriverFeature && size == 4) {
    core_->WriteDriverFeaturesWindow(static_cast<uint32_t>(value));
  } else if (offset == kConfigMsixVector && size == 2) {
    config_vector_ = vector(value);
  } else if (offset == kDeviceStatus && size == 1) {
    if (core_->WriteStatus(static_cast<uint8_t>(value))) ResetTransportState();
  } else if (offset == kQueueSelect && size == 2) {
    core_->set_queue_sel(static_cast<uint32_t>(value));
  } else if (offset == kQueueSize && size == 2) {
    if (q) q->set_size(static_cast<uint16_t>(value));
  } else if (offset == kQueueMsixVector && size == 2) {
    if (index < queue_vectors_.size()) queue_vectors_[index] = vector(value);
  } else if (offset == kQueueEnable && size == 2) {
    if (value == 1) core_->SetSelectedQueueReady(true);  // writing 0 is not allowed (4.1.4.3.2)
  } else if (offset >= kQueueDesc && offset < kQueueDriver && q) {
    set_address(kQueueDesc, q->desc_table(), &Queue::set_desc_table);
  } else if (offset >= kQueueDriver && offset < kQueueDevice && q) {
    set_address(kQueueDriver, q->avail_ring(), &Queue::set_avail_ring);
  } else if (offset >= kQueueDevice && offset < kCommonLength && q) {
    set_address(kQueueDevice, q->used_ring(), &Queue::set_used_ring);
  } else if (q != nullptr || offset < kQueueSize) {
    MOTE_LOG_LIMITED(core_->log_limiter(), spdlog::level::warn,
                     "virtio-pci: ignoring a {}-byte write of 0x{:x} at common config 0x{:x}", size,
                     value, offset);
  }
}

void PciTransport::ResetTransportState() {
  isr_ = 0;
  config_vector_ = kNoVector;
  std::fill(queue_vectors_.begin(), queue_vectors_.end(), kNoVector);
}

void PciTransport::Interrupt(uint8_t isr_bit, uint16_t vector) {
  isr_ |= isr_bit;
  // With MSI-X disabled the function would use INTx, which mote does not
  // wire: the driver then sees only the ISR bits (polling).
  if (vector != kNoVector) (void)msix_.Signal(vector);
}

void PciTransport::SignalUsedBuffers(uint16_t queue) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Interrupt(kIsrQueue, queue < queue_vectors_.size() ? queue_vectors_[queue] : kNoVector);
}

void PciTransport::SignalNeedsReset() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  core_->SetNeedsReset();
  Interrupt(kIsrConfig, config_vector_);
}

}  // namespace mote::virtio
