// The one list of device kinds. Order matters: it is the order in which
// instances take virtio-mmio slots and PCI functions, which a guest sees.
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

absl::Status ValidateDevices(const VmConfig& config) {
  for (const DeviceKind* kind : DeviceKinds()) {
    if (kind->validate) MOTE_RETURN_IF_ERROR(kind->validate(config));
  }
  return absl::OkStatus();
}

}  // namespace mote
