// virtio-net's descriptor (kVirtioNet, in registry.cc's list) and the view
// the control plane takes of its instances.
// Thread-safety: AsNetDevice is a cast; the counters it reaches are the
// event-loop thread's.
#ifndef MOTE_VMM_DEVICE_KINDS_VIRTIO_NET_H_
#define MOTE_VMM_DEVICE_KINDS_VIRTIO_NET_H_

#include "virtio/net.h"
#include "vmm/device_kinds/device_kind.h"

namespace mote {

extern const DeviceKind kVirtioNet;

// A NIC's rate limits as its device takes them: receive (in), transmit (out).
virtio::IoLimits NetLimits(const NetThrottle& throttle);

inline const virtio::NetDevice& AsNetDevice(const virtio::VirtioDevice& device) {
  return static_cast<const virtio::NetDevice&>(device);
}
inline virtio::NetDevice& AsNetDevice(virtio::VirtioDevice& device) {
  return static_cast<virtio::NetDevice&>(device);
}

}  // namespace mote

#endif  // MOTE_VMM_DEVICE_KINDS_VIRTIO_NET_H_
