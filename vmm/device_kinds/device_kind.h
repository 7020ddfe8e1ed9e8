// DeviceKind: everything one kind of virtio device brings to a VM, declared
// once in its own file here and listed once in registry.cc. Vm and VmRunner
// go through these descriptors; they name no device themselves.
// Adding a device: the device itself in virtio/, a descriptor file here, one
// line in registry.cc, and tests (see docs/architecture.md).
// Thread-safety: descriptors are immutable. `validate` and `open` run on the
// thread building the VM; `report_counters` and the state and rate-limit hooks
// on the event-loop thread, with the devices' transports quiesced or locked.
#ifndef MOTE_VMM_DEVICE_KINDS_DEVICE_KIND_H_
#define MOTE_VMM_DEVICE_KINDS_DEVICE_KIND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "virtio/throttle.h"
#include "virtio/virtio_device.h"
#include "vmm/control_replies.h"
#include "vmm/vm_config.h"

namespace mote {

using VirtioDevices = std::vector<std::shared_ptr<virtio::VirtioDevice>>;

struct DeviceKind {
  std::string_view name;  // "virtio-blk": how errors and the control plane name it

  // Checks this device's sections of a parsed config beyond what each
  // member's parser checks (e.g. unique ids across instances). Empty: none.
  std::function<absl::Status(const VmConfig&)> validate = nullptr;

  // Makes the instances `config` asks for, in config order, opening their
  // backends (files, TAPs). Runs before any KVM object exists, so a bad
  // --disk or --net is the first thing reported; errors name the bad one.
  std::function<absl::StatusOr<VirtioDevices>(const VmConfig&)> open = nullptr;

  // Adds the instances' counters to x-mote-query-counters and libmote's
  // GetCounters. Empty: the device keeps none.
  std::function<void(const VmConfig&, const VirtioDevices&, control::Counters&)> report_counters =
      nullptr;

  // Hooks for what comes next (snapshot/restore, rate limits): empty until
  // the device implements them, and a caller refuses, naming the device,
  // to snapshot or throttle a VM holding one without the hook.
  std::function<absl::StatusOr<std::vector<uint8_t>>(const virtio::VirtioDevice&)> save_state =
      nullptr;
  std::function<absl::Status(virtio::VirtioDevice&, absl::Span<const uint8_t>)> restore_state =
      nullptr;
  // New rate limits for the instance (virtio/throttle.h); any thread.
  std::function<void(virtio::VirtioDevice&, const virtio::IoLimits&)> set_limits = nullptr;
  // Takes or lets go the locks on the instance's host files (disk images)
  // at a live migration's switch-over, as QEMU inactivates its images: the
  // source lets go once the guest is stopped, the target (which opened
  // without them) takes them before it runs the guest. Empty: nothing to lock.
  std::function<absl::Status(virtio::VirtioDevice&, bool held)> set_locks = nullptr;
};

// Save and restore hooks for a device whose only state beyond its transport
// (which saves its queues) is what its configuration space shows: the
// disk's capacity, the MAC. Restore checks that the device this VM opened
// shows the same ("a disk of a different size").
absl::StatusOr<std::vector<uint8_t>> SaveConfigSpace(const virtio::VirtioDevice& device);
absl::Status CheckConfigSpace(virtio::VirtioDevice& device, absl::Span<const uint8_t> saved);

// Every device kind, in the order their instances take transport slots.
const std::vector<const DeviceKind*>& DeviceKinds();

// The kind named `name`; nullptr when there is none.
const DeviceKind* FindDeviceKind(std::string_view name);

// Each kind's `validate`, in order; the first error.
absl::Status ValidateDevices(const VmConfig& config);

}  // namespace mote

#endif  // MOTE_VMM_DEVICE_KINDS_DEVICE_KIND_H_
