#include "devices/pci/config_space.h"

#include <algorithm>
#include <cassert>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"

namespace mote::pci {
namespace {

// Type-0 header offsets (PCI 3.0, 6.1).
constexpr uint32_t kVendorId = 0x00, kDeviceId = 0x02, kStatus = 0x06, kRevision = 0x08,
                   kClassCode = 0x09, kCacheLineSize = 0x0c, kLatencyTimer = 0x0d,
                   kHeaderType = 0x0e, kBar0 = 0x10, kSubsystemVendor = 0x2c, kSubsystem = 0x2e,
                   kCapabilitiesPointer = 0x34, kInterruptLine = 0x3c;
constexpr uint16_t kStatusCapabilities = 1u << 4;

}  // namespace

PciConfigSpace::PciConfigSpace(const PciIdentity& id) {
  Set16(kVendorId, id.vendor);
  Set16(kDeviceId, id.device);
  bytes_[kRevision] = id.revision;
  bytes_[kClassCode] = static_cast<uint8_t>(id.class_code);
  bytes_[kClassCode + 1] = static_cast<uint8_t>(id.class_code >> 8);
  bytes_[kClassCode + 2] = static_cast<uint8_t>(id.class_code >> 16);
  bytes_[kHeaderType] = 0;  // type 0, single function
  Set16(kSubsystemVendor, id.subsystem_vendor);
  Set16(kSubsystem, id.subsystem);
  // What an OS may change: decoding and INTx disable, and its scratch bytes.
  uint16_t command_mask = kCommandMemory | kCommandBusMaster | kCommandIntxDisable;
  writable_[kCommandOffset] = static_cast<uint8_t>(command_mask);
  writable_[kCommandOffset + 1] = static_cast<uint8_t>(command_mask >> 8);
  writable_[kCacheLineSize] = writable_[kLatencyTimer] = writable_[kInterruptLine] = 0xff;
  // Interrupt pin stays 0: mote's functions signal through MSI-X only.
}

void PciConfigSpace::AddMemoryBar32(int index, uint32_t size, uint32_t address) {
  assert(index >= 0 && index < kBarCount && size >= 16 && (size & (size - 1)) == 0);
  bar_size_[index] = size;
  uint32_t offset = kBar0 + 4 * index;
  Set32(offset, address & ~(size - 1));  // type 0 (32-bit), not prefetchable
  uint32_t mask = ~(size - 1);           // the sizing protocol reads back ~(size - 1)
  for (int i = 0; i < 4; ++i) writable_[offset + i] = static_cast<uint8_t>(mask >> (8 * i));
}

std::optional<uint64_t> PciConfigSpace::BarAddress(int index) const {
  if (index < 0 || index >= kBarCount || bar_size_[index] == 0) return std::nullopt;
  return Get32(kBar0 + 4 * index) & ~0xfu;
}

uint8_t PciConfigSpace::AddCapability(uint8_t id, absl::Span<const uint8_t> body,
                                      absl::Span<const uint8_t> writable) {
  uint32_t offset = next_capability_;
  assert(offset + 2 + body.size() <= 0x100);
  bytes_[offset] = id;
  bytes_[offset + 1] = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    bytes_[offset + 2 + i] = body[i];
    writable_[offset + 2 + i] = i < writable.size() ? writable[i] : 0;
  }
  if (last_capability_ == 0) {
    bytes_[kCapabilitiesPointer] = static_cast<uint8_t>(offset);
    Set16(kStatus, Get16(kStatus) | kStatusCapabilities);
  } else {
    bytes_[last_capability_ + 1] = static_cast<uint8_t>(offset);
  }
  last_capability_ = static_cast<uint8_t>(offset);
  next_capability_ = (offset + 2 + body.size() + 3) & ~3u;
  return static_cast<uint8_t>(offset);
}

void PciConfigSpace::SaveState(StateWriter& out) const { out.Bytes(bytes_); }

absl::Status PciConfigSpace::RestoreState(StateReader& in) {
  std::vector<uint8_t> saved = in.Bytes(kConfigSpaceSize);
  if (!in.ok()) return in.status(/*want_end=*/false);
  if (saved.size() != kConfigSpaceSize) {
    in.Fail(
        absl::StrFormat("PCI config space of %d bytes, want %d", saved.size(), kConfigSpaceSize));
    return in.status(/*want_end=*/false);
  }
  auto differs = [&](uint32_t offset, uint32_t length) {
    for (uint32_t i = 0; i < length; ++i) {
      if (saved[offset + i] != bytes_[offset + i]) return true;
    }
    return false;
  };
  std::string why;
  if (differs(kVendorId, 4)) {
    why = "vendor or device ID";
  } else if (differs(kRevision, 4)) {
    why = "revision or class code";
  } else if (differs(kHeaderType, 1)) {
    why = "header type";
  } else if (differs(kSubsystemVendor, 4)) {
    why = "subsystem IDs";
  } else if (differs(kCapabilitiesPointer, 1) ||
             ((saved[kStatus] ^ bytes_[kStatus]) & kStatusCapabilities)) {
    why = "capability list";
  }
  // Each capability's ID and link; the list is ours, so it ends (offsets
  // only grow) and every offset is in the first 256 bytes.
  for (uint32_t at = bytes_[kCapabilitiesPointer]; why.empty() && at != 0; at = bytes_[at + 1]) {
    if (differs(at, 2)) why = absl::StrFormat("capability at 0x%x", at);
  }
  // What a guest cannot write in a BAR (type bits, and the bits below the
  // size) stays as built, so BarAddress() is always a size-aligned address.
  for (int bar = 0; why.empty() && bar < kBarCount; ++bar) {
    uint32_t offset = kBar0 + 4 * bar;
    for (uint32_t i = 0; i < 4; ++i) {
      if ((saved[offset + i] ^ bytes_[offset + i]) & ~writable_[offset + i]) {
        why = absl::StrFormat("BAR%d's read-only bits", bar);
        break;
      }
    }
  }
  if (!why.empty()) {
    in.Fail("a different PCI function (" + why + " differ)");
    return in.status(/*want_end=*/false);
  }
  std::copy(saved.begin(), saved.end(), bytes_.begin());
  return absl::OkStatus();
}

void PciConfigSpace::Read(uint32_t offset, absl::Span<uint8_t> data) const {
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < kConfigSpaceSize ? bytes_[offset + i] : 0xff;
  }
}

void PciConfigSpace::Write(uint32_t offset, absl::Span<const uint8_t> data) {
  for (size_t i = 0; i < data.size() && offset + i < kConfigSpaceSize; ++i) {
    uint8_t mask = writable_[offset + i];
    bytes_[offset + i] = (bytes_[offset + i] & ~mask) | (data[i] & mask);
  }
}

uint16_t PciConfigSpace::Get16(uint32_t offset) const {
  return static_cast<uint16_t>(bytes_[offset] | bytes_[offset + 1] << 8);
}

uint32_t PciConfigSpace::Get32(uint32_t offset) const {
  return uint32_t{Get16(offset)} | uint32_t{Get16(offset + 2)} << 16;
}

void PciConfigSpace::Set16(uint32_t offset, uint16_t v) {
  bytes_[offset] = static_cast<uint8_t>(v);
  bytes_[offset + 1] = static_cast<uint8_t>(v >> 8);
}

void PciConfigSpace::Set32(uint32_t offset, uint32_t v) {
  Set16(offset, static_cast<uint16_t>(v));
  Set16(offset + 2, static_cast<uint16_t>(v >> 16));
}

}  // namespace mote::pci
