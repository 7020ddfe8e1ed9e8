#include "virtio/virtio_device.h"

#include <algorithm>

namespace mote::virtio {

void VirtioDevice::ReadConfig(uint64_t, absl::Span<uint8_t> data) const {
  std::fill(data.begin(), data.end(), 0);
}

void VirtioDevice::WriteConfig(uint64_t, absl::Span<const uint8_t>) {}

}  // namespace mote::virtio
