// virtio-blk: one instance per --disk (VmConfig::disks) on a raw file.
#include "vmm/device_kinds/virtio_blk.h"

#include "virtio/block_backend.h"
#include "vmm/base/seccomp_filter.h"
#include "vmm/base/status_macros.h"

namespace mote {

virtio::IoLimits DiskLimits(const DiskThrottle& t) {
  auto limit = [](uint64_t bps, uint64_t bps_max, uint64_t iops, uint64_t iops_max) {
    return virtio::IoLimit{{bps, bps_max}, {iops, iops_max}};
  };
  return {limit(t.bps, t.bps_max, t.iops, t.iops_max),
          limit(t.bps_rd, t.bps_rd_max, t.iops_rd, t.iops_rd_max),
          limit(t.bps_wr, t.bps_wr_max, t.iops_wr, t.iops_wr_max)};
}

const DeviceKind kVirtioBlk = {
    .name = "virtio-blk",
    .validate = [](const VmConfig& config) -> absl::Status {
      const auto& disks = config.disks;
      for (size_t i = 0; i < disks.size(); ++i) {
        for (size_t j = 0; j < i; ++j) {
          if (disks[i].id == disks[j].id) {
            return absl::InvalidArgumentError("two disks are named '" + disks[i].id + "'");
          }
        }
        if (absl::Status s = CheckDiskThrottle(disks[i].throttle); !s.ok()) {
          return absl::InvalidArgumentError("disk '" + disks[i].id +
                                            "': " + std::string(s.message()));
        }
      }
      return absl::OkStatus();
    },
    .open = [](const VmConfig& config) -> absl::StatusOr<VirtioDevices> {
      VirtioDevices devices;
      for (const DiskConfig& disk : config.disks) {
        // A migration's target locks its images once the source has let go.
        virtio::ImageLocking locking = !disk.lock                ? virtio::ImageLocking::kOff
                                       : config.incoming.empty() ? virtio::ImageLocking::kOnOpen
                                                                 : virtio::ImageLocking::kDeferred;
        MOTE_ASSIGN_OR_RETURN(
            std::unique_ptr<virtio::FileBackend> backend,
            virtio::FileBackend::Open(disk.path, disk.readonly, disk.cache_none, locking));
        virtio::BlockDevice::Options options;
        options.readonly = disk.readonly;
        options.serial = disk.serial;
        options.queues = disk.queues;
        options.aio = disk.aio_threads ? virtio::BlockDevice::Aio::kThreads
                                       : virtio::BlockDevice::Aio::kIoUring;
        options.seccomp = SeccompModeOf(config);
        options.limits = DiskLimits(disk.throttle);
        devices.push_back(std::make_shared<virtio::BlockDevice>(std::move(backend), options));
      }
      return devices;
    },
    .report_counters =
        [](const VmConfig& config, const VirtioDevices& devices, control::Counters& counters) {
          for (size_t i = 0; i < devices.size() && i < config.disks.size(); ++i) {
            const auto& disk = AsBlockDevice(*devices[i]);
            const auto& c = disk.counters();
            counters.disks.push_back({config.disks[i].id, c.reads, c.writes, c.flushes,
                                      c.bytes_read, c.bytes_written, c.errors, disk.throttled(),
                                      disk.throttled_ns() / 1'000'000});
          }
        },
    .save_state = &SaveConfigSpace,
    .restore_state = &CheckConfigSpace,
    .set_limits = [](virtio::VirtioDevice& device,
                     const virtio::IoLimits& limits) { AsBlockDevice(device).SetLimits(limits); },
    .set_locks = [](virtio::VirtioDevice& device,
                    bool held) { return AsBlockDevice(device).backend().SetImageLock(held); },
};

}  // namespace mote
