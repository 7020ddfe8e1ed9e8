// virtio-blk's descriptor (kVirtioBlk, in registry.cc's list) and the view
// the block commands of the control plane (query-block, query-blockstats)
// take of its instances.
// Thread-safety: AsBlockDevice is a cast; the counters it reaches are the
// event-loop thread's.
#ifndef MOTE_VMM_DEVICE_KINDS_VIRTIO_BLK_H_
#define MOTE_VMM_DEVICE_KINDS_VIRTIO_BLK_H_

#include "virtio/block.h"
#include "vmm/device_kinds/device_kind.h"

namespace mote {

extern const DeviceKind kVirtioBlk;

// A disk's rate limits as its device takes them: total, reads (in), writes (out).
virtio::IoLimits DiskLimits(const DiskThrottle& throttle);

// An instance of kVirtioBlk, as what it is.
inline const virtio::BlockDevice& AsBlockDevice(const virtio::VirtioDevice& device) {
  return static_cast<const virtio::BlockDevice&>(device);
}
inline virtio::BlockDevice& AsBlockDevice(virtio::VirtioDevice& device) {
  return static_cast<virtio::BlockDevice&>(device);
}

}  // namespace mote

#endif  // MOTE_VMM_DEVICE_KINDS_VIRTIO_BLK_H_
