// PciDevice: one PCI function as the root complex sees it: configuration
// space accesses, and accesses to guest-physical addresses inside the PCI
// MMIO window that its memory BARs may decode.
// Thread-safety: called from any vCPU thread; implementations lock.
#ifndef MOTE_DEVICES_PCI_PCI_DEVICE_H_
#define MOTE_DEVICES_PCI_PCI_DEVICE_H_

#include <cstdint>

#include "absl/types/span.h"

namespace mote::pci {

class PciDevice {
 public:
  virtual ~PciDevice() = default;
  // `data` (1, 2 or 4 bytes) lies within one dword at `offset` < 4096.
  virtual void ReadConfig(uint32_t offset, absl::Span<uint8_t> data) = 0;
  virtual void WriteConfig(uint32_t offset, absl::Span<const uint8_t> data) = 0;
  // False when no enabled BAR of this function covers [addr, addr + size).
  virtual bool ReadBar(uint64_t addr, absl::Span<uint8_t> data) = 0;
  virtual bool WriteBar(uint64_t addr, absl::Span<const uint8_t> data) = 0;
};

}  // namespace mote::pci

#endif  // MOTE_DEVICES_PCI_PCI_DEVICE_H_
