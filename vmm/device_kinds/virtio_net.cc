// virtio-net: one instance per --net (VmConfig::nets) on a TAP, opened by
// name or inherited as a file descriptor.
#include "vmm/device_kinds/virtio_net.h"

#include "virtio/net.h"
#include "virtio/tap.h"

namespace mote {

virtio::IoLimits NetLimits(const NetThrottle& t) {
  return {{},
          {{t.rx_bps, t.rx_bps_max}, {t.rx_pps, t.rx_pps_max}},
          {{t.tx_bps, t.tx_bps_max}, {t.tx_pps, t.tx_pps_max}}};
}

const DeviceKind kVirtioNet = {
    .name = "virtio-net",
    .validate = [](const VmConfig& config) -> absl::Status {
      for (size_t i = 0; i < config.nets.size(); ++i) {
        if (absl::Status s = CheckNetThrottle(config.nets[i].throttle); !s.ok()) {
          return absl::InvalidArgumentError("nic " + std::to_string(i) + ": " +
                                            std::string(s.message()));
        }
      }
      return absl::OkStatus();
    },
    .open = [](const VmConfig& config) -> absl::StatusOr<VirtioDevices> {
      VirtioDevices devices;
      for (const NetConfig& net : config.nets) {
        absl::StatusOr<FileDescriptor> tap =
            net.tap.empty() ? virtio::AdoptTap(net.fd) : virtio::OpenTap(net.tap);
        if (!tap.ok()) return tap.status();
        int tap_fd = tap->get();
        devices.push_back(std::make_shared<virtio::NetDevice>(
            std::move(*tap), net.mac,
            [tap_fd](unsigned flags) { return virtio::SetTapOffload(tap_fd, flags); },
            NetLimits(net.throttle)));
      }
      return devices;
    },
    .report_counters =
        [](const VmConfig&, const VirtioDevices& devices, control::Counters& counters) {
          for (size_t i = 0; i < devices.size(); ++i) {
            const auto& nic = AsNetDevice(*devices[i]);
            const auto& c = nic.counters();
            counters.nics.push_back({static_cast<uint32_t>(i), c.tx_frames, c.tx_bytes,
                                     c.tx_dropped, c.rx_frames, c.rx_bytes, c.rx_dropped,
                                     nic.throttled(), nic.throttled_ns() / 1'000'000});
          }
        },
    .save_state = &SaveConfigSpace,
    .restore_state = &CheckConfigSpace,
    .set_limits = [](virtio::VirtioDevice& device,
                     const virtio::IoLimits& limits) { AsNetDevice(device).SetLimits(limits); },
};

}  // namespace mote
