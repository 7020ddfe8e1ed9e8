// VmCgroup: puts a mote process into a cgroup v2 directory with the VM's
// limits (cpu.max, memory.max, io.max, io.weight), as libvirt and
// Firecracker's jailer do, and, when asked, its vCPU threads into a threaded
// child group ("vcpus") with a cpu.max of their own. The whole process
// moves (memory is not a threaded controller): an embedding program that
// runs several VMs runs each in its own mote process for this.
// Owned by VmRunner; Join before the VM's threads start, PlaceVcpus from
// the thread that builds the VM.
#ifndef MOTE_VMM_VM_CGROUP_H_
#define MOTE_VMM_VM_CGROUP_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mote {

struct CgroupLimits {
  std::string cpu_max;       // "QUOTA PERIOD" or "max [PERIOD]"; "": left as it is
  uint64_t memory_max = 0;   // bytes; 0: left as it is
  std::string io_max;        // "MAJ:MIN rbps=N wbps=N riops=N wiops=N"; ""
  uint32_t io_weight = 0;    // 1..10000; 0
  std::string vcpu_cpu_max;  // the vCPU threads' own group; "": they stay with the rest
};

class VmCgroup {
 public:
  // `path`: absolute, or under /sys/fs/cgroup; made if missing (and left
  // behind at exit, as the jailer leaves its own). Enables the controllers
  // the limits need in the parent, writes them, moves this process in.
  // Errors name the file and what the kernel said.
  static absl::StatusOr<std::unique_ptr<VmCgroup>> Join(const std::string& path,
                                                        const CgroupLimits& limits);

  // With vcpu_cpu_max: moves these threads into PATH/vcpus. Otherwise nothing.
  absl::Status PlaceVcpus(const std::vector<int>& thread_ids) const;

  const std::string& path() const { return path_; }

 private:
  VmCgroup(std::string path, bool vcpu_group) : path_(std::move(path)), vcpu_group_(vcpu_group) {}
  std::string path_;
  bool vcpu_group_;
};

}  // namespace mote

#endif  // MOTE_VMM_VM_CGROUP_H_
