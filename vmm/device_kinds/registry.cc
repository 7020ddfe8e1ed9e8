// The one list of device kinds. Order matters: it is the order in which
// instances take virtio-mmio slots and PCI functions, which a guest sees.
#include <algorithm>

#include "vmm/base/status_macros.h"
#include "vmm/device_kinds/device_kind.h"

namespace mote {

// Each defined in its own file in this folder.
extern const DeviceKind kVirtioBlk, kVirtioNet, kVirtioRng;

const std::vector<const DeviceKind*>& DeviceKinds() {
  static const std::vector<const DeviceKind*> kinds = {&kVirtioBlk, &kVirtioNet, &kVirtioRng};
  return kinds;
}

const DeviceKind* FindDeviceKind(std::string_view name) {
  for (const DeviceKind* kind : DeviceKinds()) {
    if (kind->name == name) return kind;
  }
  return nullptr;
}

namespace {
constexpr size_t kConfigSpaceBytes = 256;
}  // namespace

absl::StatusOr<std::vector<uint8_t>> SaveConfigSpace(const virtio::VirtioDevice& device) {
  std::vector<uint8_t> bytes(kConfigSpaceBytes);
  for (size_t off = 0; off < bytes.size(); off += 4) {
    device.ReadConfig(off, absl::Span<uint8_t>(bytes.data() + off, 4));
  }
  return bytes;
}

absl::Status CheckConfigSpace(virtio::VirtioDevice& device, absl::Span<const uint8_t> saved) {
  MOTE_ASSIGN_OR_RETURN(std::vector<uint8_t> mine, SaveConfigSpace(device));
  if (saved.size() != mine.size() || !std::equal(mine.begin(), mine.end(), saved.begin())) {
    return absl::FailedPreconditionError(
        "its configuration (size, serial, MAC...) differs from the snapshot's device");
  }
  return absl::OkStatus();
}

absl::Status ValidateDevices(const VmConfig& config) {
  for (const DeviceKind* kind : DeviceKinds()) {
    if (kind->validate) MOTE_RETURN_IF_ERROR(kind->validate(config));
  }
  return absl::OkStatus();
}

}  // namespace mote
