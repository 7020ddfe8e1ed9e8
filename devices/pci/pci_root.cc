#include "devices/pci/pci_root.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "devices/pci/config_space.h"

namespace mote::pci {
namespace {

// The host bridge: identity only (QEMU's PCIe host bridge IDs, which Linux
// knows as a plain host bridge).
constexpr PciIdentity kHostBridgeIdentity = {
    .vendor = 0x1b36, .device = 0x0008, .revision = 0, .class_code = 0x060000};

class HostBridge : public PciDevice {
 public:
  HostBridge() : config_(kHostBridgeIdentity) {}
  void ReadConfig(uint32_t offset, absl::Span<uint8_t> data) override {
    std::lock_guard lock(mu_);
    config_.Read(offset, data);
  }
  void WriteConfig(uint32_t offset, absl::Span<const uint8_t> data) override {
    std::lock_guard lock(mu_);
    config_.Write(offset, data);
  }
  bool ReadBar(uint64_t, absl::Span<uint8_t>) override { return false; }
  bool WriteBar(uint64_t, absl::Span<const uint8_t>) override { return false; }

 private:
  std::mutex mu_;
  PciConfigSpace config_;
};

bool ValidConfigAccess(uint32_t offset, size_t size) {
  return (size == 1 || size == 2 || size == 4) && offset % size == 0;
}

}  // namespace

// Mechanism #1: a dword write to 0xcf8 latches
// enable(31) | bus(23:16) | device(15:11) | function(10:8) | register(7:2);
// 0xcfc..0xcff then reach that dword of that function.
class PciRoot::ConfigPorts : public BusDevice {
 public:
  explicit ConfigPorts(PciRoot* root) : root_(root) {}
  void Read(uint64_t offset, absl::Span<uint8_t> data) override {
    std::fill(data.begin(), data.end(), 0xff);
    if (offset == 0 && data.size() == 4) {
      uint32_t address = Address();
      std::memcpy(data.data(), &address, 4);
      return;
    }
    uint32_t reg;
    int device, function;
    if (!Decode(offset, data.size(), &device, &function, &reg)) return;
    root_->ReadConfig(device, function, reg, data);
  }
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override {
    if (offset == 0 && data.size() == 4) {
      std::lock_guard lock(mu_);
      std::memcpy(&address_, data.data(), 4);
      return;
    }
    uint32_t reg;
    int device, function;
    if (!Decode(offset, data.size(), &device, &function, &reg)) return;
    root_->WriteConfig(device, function, reg, data);
  }

  // The address latch: a guest may be between its two accesses.
  uint32_t state_version() const override { return 1; }
  void SaveState(StateWriter& out) override { out.U32(Address()); }
  absl::Status RestoreState(StateReader& in) override {
    uint32_t address = in.U32();
    if (absl::Status s = in.status(); !s.ok()) return s;
    std::lock_guard lock(mu_);
    address_ = address;
    return absl::OkStatus();
  }

 private:
  uint32_t Address() {
    std::lock_guard lock(mu_);
    return address_;
  }
  // Where a data-port access goes; false when the latch is disabled, names
  // another bus, or the access is not a data-port access.
  bool Decode(uint64_t offset, size_t size, int* device, int* function, uint32_t* reg) {
    if (offset < 4) return false;  // partial accesses to 0xcf8..0xcfb
    uint32_t address = Address();
    uint32_t byte = static_cast<uint32_t>(offset - 4);
    if (!(address & 0x80000000u) || ((address >> 16) & 0xff) != 0) return false;
    if (!ValidConfigAccess(byte, size)) return false;
    *device = (address >> 11) & 0x1f;
    *function = (address >> 8) & 0x7;
    *reg = (address & 0xfc) + byte;
    return true;
  }

  PciRoot* const root_;
  std::mutex mu_;
  uint32_t address_ = 0;
};

// ECAM: offset = bus << 20 | device << 15 | function << 12 | register.
class PciRoot::Ecam : public BusDevice {
 public:
  explicit Ecam(PciRoot* root) : root_(root) {}
  void Read(uint64_t offset, absl::Span<uint8_t> data) override {
    std::fill(data.begin(), data.end(), 0xff);
    uint32_t reg = offset & 0xfff;
    if (offset >> 20 != 0 || !ValidConfigAccess(reg, data.size())) return;
    root_->ReadConfig((offset >> 15) & 0x1f, (offset >> 12) & 0x7, reg, data);
  }
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override {
    uint32_t reg = offset & 0xfff;
    if (offset >> 20 != 0 || !ValidConfigAccess(reg, data.size())) return;
    root_->WriteConfig((offset >> 15) & 0x1f, (offset >> 12) & 0x7, reg, data);
  }

 private:
  PciRoot* const root_;
};

// The BAR window asks each function in turn; BARs that no function decodes
// read as all-ones, as on a bus nobody claims.
class PciRoot::BarWindow : public BusDevice {
 public:
  BarWindow(const PciRoot* root, uint64_t base) : root_(root), base_(base) {}
  void Read(uint64_t offset, absl::Span<uint8_t> data) override {
    for (const auto& slot : root_->slots_) {
      if (slot && slot->ReadBar(base_ + offset, data)) return;
    }
    std::fill(data.begin(), data.end(), 0xff);
    MOTE_LOG_LIMITED(limiter_, spdlog::level::debug, "pci: read of unclaimed 0x{:x}",
                     base_ + offset);
  }
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override {
    for (const auto& slot : root_->slots_) {
      if (slot && slot->WriteBar(base_ + offset, data)) return;
    }
    MOTE_LOG_LIMITED(limiter_, spdlog::level::debug, "pci: write to unclaimed 0x{:x}",
                     base_ + offset);
  }

 private:
  const PciRoot* const root_;
  const uint64_t base_;
  RateLimiter limiter_;
};

PciRoot::PciRoot()
    : config_ports_(std::make_shared<ConfigPorts>(this)), ecam_(std::make_shared<Ecam>(this)) {
  slots_[0] = std::make_shared<HostBridge>();
}

absl::StatusOr<int> PciRoot::AddDevice(std::shared_ptr<PciDevice> device) {
  for (int slot = 1; slot < kSlotCount; ++slot) {
    if (slots_[slot] == nullptr) {
      slots_[slot] = std::move(device);
      return slot;
    }
  }
  return absl::ResourceExhaustedError("the PCI bus has no free slot (31 devices at most)");
}

std::shared_ptr<BusDevice> PciRoot::bar_window(uint64_t window_base) const {
  return std::make_shared<BarWindow>(this, window_base);
}

PciDevice* PciRoot::Function(int device, int function) const {
  if (function != 0 || device < 0 || device >= kSlotCount) return nullptr;
  return slots_[device].get();
}

void PciRoot::ReadConfig(int device, int function, uint32_t offset,
                         absl::Span<uint8_t> data) const {
  PciDevice* f = Function(device, function);
  if (f == nullptr) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  f->ReadConfig(offset, data);
}

void PciRoot::WriteConfig(int device, int function, uint32_t offset,
                          absl::Span<const uint8_t> data) {
  if (PciDevice* f = Function(device, function)) f->WriteConfig(offset, data);
}

}  // namespace mote::pci
