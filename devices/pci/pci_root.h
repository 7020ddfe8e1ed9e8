// PciRoot: PCI segment 0, bus 0, behind a host bridge at 00:00.0. It gives
// the three ways in: configuration mechanism #1 (an address latch at 0xcf8,
// data at 0xcfc..0xcff), ECAM (one bus: 1 MiB, described by the ACPI MCFG),
// and the 32-bit MMIO window where the functions' BARs live. Each is a
// BusDevice for the Vm to map. Functions are single-function devices in
// slots 1..31, added before vCPUs run.
// Thread-safety: the device list is fixed once vCPUs run; the address latch
// has its own lock; functions lock themselves.
#ifndef MOTE_DEVICES_PCI_PCI_ROOT_H_
#define MOTE_DEVICES_PCI_PCI_ROOT_H_

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>

#include "absl/status/statusor.h"
#include "devices/pci/pci_device.h"
#include "vmm/base/bus.h"
#include "vmm/base/logging.h"

namespace mote::pci {

inline constexpr int kSlotCount = 32;
inline constexpr uint64_t kConfigPortCount = 8;  // 0xcf8..0xcff

class PciRoot {
 public:
  PciRoot();

  // Puts `device` in the lowest free slot; returns the slot number.
  absl::StatusOr<int> AddDevice(std::shared_ptr<PciDevice> device);

  // Bus devices for the Vm: the mechanism #1 ports (kConfigPortCount from
  // 0xcf8), the ECAM window (1 MiB) and the BAR window (any size).
  std::shared_ptr<BusDevice> config_ports() const { return config_ports_; }
  std::shared_ptr<BusDevice> ecam() const { return ecam_; }
  std::shared_ptr<BusDevice> bar_window(uint64_t window_base) const;

  // Configuration access to bus 0: absent functions read as all-ones.
  void ReadConfig(int device, int function, uint32_t offset, absl::Span<uint8_t> data) const;
  void WriteConfig(int device, int function, uint32_t offset, absl::Span<const uint8_t> data);

 private:
  class ConfigPorts;
  class Ecam;
  class BarWindow;
  PciDevice* Function(int device, int function) const;

  std::array<std::shared_ptr<PciDevice>, kSlotCount> slots_;
  std::shared_ptr<BusDevice> config_ports_;
  std::shared_ptr<BusDevice> ecam_;
};

}  // namespace mote::pci

#endif  // MOTE_DEVICES_PCI_PCI_ROOT_H_
