// PciConfigSpace: the 4 KiB configuration space of one PCI function with a
// type-0 header (PCI Local Bus 3.0, 6.1): identity registers, a command
// register with the bits mote honours, memory BARs that answer the sizing
// protocol, and a capability list. Writes go through a per-byte write mask,
// so a guest can only change what a real function would let it change.
// Thread-safety: none; the owning device locks around it.
#ifndef MOTE_DEVICES_PCI_CONFIG_SPACE_H_
#define MOTE_DEVICES_PCI_CONFIG_SPACE_H_

#include <array>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "vmm/base/state_stream.h"

namespace mote::pci {

inline constexpr uint32_t kConfigSpaceSize = 4096;  // ECAM; mechanism #1 reaches the first 256
inline constexpr uint32_t kCommandOffset = 0x04;
inline constexpr uint16_t kCommandMemory = 1u << 1, kCommandBusMaster = 1u << 2,
                          kCommandIntxDisable = 1u << 10;
inline constexpr uint8_t kCapabilityMsix = 0x11, kCapabilityVendor = 0x09;
inline constexpr int kBarCount = 6;

struct PciIdentity {
  uint16_t vendor = 0, device = 0;
  uint8_t revision = 0;
  uint32_t class_code = 0;  // base class << 16 | subclass << 8 | programming interface
  uint16_t subsystem_vendor = 0, subsystem = 0;
};

class PciConfigSpace {
 public:
  explicit PciConfigSpace(const PciIdentity& id);

  // A 32-bit non-prefetchable memory BAR of `size` bytes (a power of two, at
  // least 16) at `address`, as firmware would have assigned it.
  void AddMemoryBar32(int index, uint32_t size, uint32_t address);
  // Appends a capability with `body` after its ID and next-pointer bytes;
  // `writable` (same length as body, or empty) marks the bits a guest may
  // change. Returns the capability's offset.
  uint8_t AddCapability(uint8_t id, absl::Span<const uint8_t> body,
                        absl::Span<const uint8_t> writable = {});

  // `data` is 1, 2 or 4 bytes within one dword at `offset` < kConfigSpaceSize.
  void Read(uint32_t offset, absl::Span<uint8_t> data) const;
  void Write(uint32_t offset, absl::Span<const uint8_t> data);

  uint16_t command() const { return Get16(kCommandOffset); }
  bool memory_enabled() const { return command() & kCommandMemory; }
  // The address BAR `index` is programmed with (meaningless while a guest
  // sizes it), or nullopt when there is no such BAR.
  std::optional<uint64_t> BarAddress(int index) const;
  uint64_t BarSize(int index) const { return bar_size_[index]; }

  uint8_t Get8(uint32_t offset) const { return bytes_[offset]; }
  uint16_t Get16(uint32_t offset) const;
  uint32_t Get32(uint32_t offset) const;
  // Device-side updates that bypass the write mask.
  void Set8(uint32_t offset, uint8_t v) { bytes_[offset] = v; }
  void Set16(uint32_t offset, uint16_t v);
  void Set32(uint32_t offset, uint32_t v);

  // Snapshot: the bytes only. The write mask, BARs and capability list come
  // from construction, so RestoreState takes bytes into a function built
  // the same way, and refuses (changing nothing) bytes whose identity,
  // capability list or BAR type and size bits differ from this function's.
  void SaveState(StateWriter& out) const;
  absl::Status RestoreState(StateReader& in);

 private:
  std::array<uint8_t, kConfigSpaceSize> bytes_{};
  std::array<uint8_t, kConfigSpaceSize> writable_{};
  std::array<uint64_t, kBarCount> bar_size_{};  // 0: no BAR
  uint8_t last_capability_ = 0;                 // offset of the list's tail, 0 if empty
  uint32_t next_capability_ = 0x40;             // where the next one goes
};

}  // namespace mote::pci

#endif  // MOTE_DEVICES_PCI_CONFIG_SPACE_H_
