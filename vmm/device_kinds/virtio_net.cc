// virtio-net: one instance per --net (VmConfig::nets) on a TAP, opened by
// name or inherited as a file descriptor.
#include "virtio/net.h"
#include "virtio/tap.h"
#include "vmm/device_kinds/device_kind.h"

namespace mote {

extern const DeviceKind kVirtioNet;  // listed in registry.cc
const DeviceKind kVirtioNet = {
    .name = "virtio-net",
    .open = [](const VmConfig& config) -> absl::StatusOr<VirtioDevices> {
      VirtioDevices devices;
      for (const NetConfig& net : config.nets) {
        absl::StatusOr<FileDescriptor> tap =
            net.tap.empty() ? virtio::AdoptTap(net.fd) : virtio::OpenTap(net.tap);
        if (!tap.ok()) return tap.status();
        int tap_fd = tap->get();
        devices.push_back(std::make_shared<virtio::NetDevice>(
            std::move(*tap), net.mac,
            [tap_fd](unsigned flags) { return virtio::SetTapOffload(tap_fd, flags); }));
      }
      return devices;
    },
    .report_counters =
        [](const VmConfig&, const VirtioDevices& devices, control::Counters& counters) {
          for (size_t i = 0; i < devices.size(); ++i) {
            const auto& c = static_cast<const virtio::NetDevice&>(*devices[i]).counters();
            counters.nics.push_back({static_cast<uint32_t>(i), c.tx_frames, c.tx_bytes,
                                     c.tx_dropped, c.rx_frames, c.rx_bytes, c.rx_dropped});
          }
        },
    .save_state = &SaveConfigSpace,
    .restore_state = &CheckConfigSpace,
};

}  // namespace mote
