// virtio-rng: one instance with --rng (VmConfig::rng), fed by getrandom.
#include "virtio/rng.h"
#include "vmm/device_kinds/device_kind.h"

namespace mote {

extern const DeviceKind kVirtioRng;  // listed in registry.cc
const DeviceKind kVirtioRng = {
    .name = "virtio-rng",
    .open = [](const VmConfig& config) -> absl::StatusOr<VirtioDevices> {
      VirtioDevices devices;
      if (config.rng) devices.push_back(std::make_shared<virtio::RngDevice>());
      return devices;
    },
    .save_state = &SaveConfigSpace,
    .restore_state = &CheckConfigSpace,
};

}  // namespace mote
