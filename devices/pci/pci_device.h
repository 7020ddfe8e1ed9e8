// PciDevice: one PCI function as the root complex sees it: configuration
// space accesses, and accesses to guest-physical addresses inside the PCI
// MMIO window that its memory BARs may decode.
// Thread-safety: called from any vCPU thread; implementations lock.
#ifndef MOTE_DEVICES_PCI_PCI_DEVICE_H_
#define MOTE_DEVICES_PCI_PCI_DEVICE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "vmm/base/state_stream.h"

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

  // Snapshot and migration: as BusDevice's (vmm/base/bus.h). 0: cannot be saved.
  virtual uint32_t state_version() const { return 0; }
  virtual void SaveState(StateWriter& out) { (void)out; }
  virtual absl::Status RestoreState(StateReader& in) {
    (void)in;
    return absl::UnimplementedError("this device cannot be restored");
  }
};

}  // namespace mote::pci

#endif  // MOTE_DEVICES_PCI_PCI_DEVICE_H_
