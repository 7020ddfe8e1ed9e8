// DirtyRings: KVM's dirty ring (KVM_CAP_DIRTY_LOG_RING), one ring of
// written guest pages per vCPU that KVM fills as the guest writes and mote
// reads while the guest runs, instead of a bitmap of all of RAM fetched and
// cleared at each pass (KVM_GET_DIRTY_LOG, which the ring replaces for the
// whole VM). The ring is turned on when the VM is made, before its vCPUs;
// the rings are mapped only once dirty logging starts (a snapshot or a
// migration), so a VM that never logs pays two ioctls.
// A vCPU whose ring is full exits (KVM_EXIT_DIRTY_RING_FULL) and harvests
// all rings itself; the pages collected wait here for Take.
// Thread-safety: Harvest and Take from any thread (vCPU threads, the
// migration's); Map before the guest writes with logging on.
#ifndef MOTE_VMM_DIRTY_RING_H_
#define MOTE_VMM_DIRTY_RING_H_

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vmm/base/kvm.h"
#include "vmm/base/mutex.h"

namespace mote {

// Walks one ring from entry `*next` (a count that wraps modulo `entries`, a
// power of two): calls `mark(slot, offset)` for each entry KVM has published
// (flag DIRTY), hands it back to KVM (flag RESET, which KVM_RESET_DIRTY_RINGS
// then recycles) and stops at the first entry not yet published. Returns
// how many it took.
uint32_t CollectDirtyRing(kvm_dirty_gfn* ring, uint32_t entries, uint32_t* next,
                          absl::FunctionRef<void(uint32_t slot, uint64_t offset)> mark);

class DirtyRings {
 public:
  // Turns the dirty ring on for `vm` (which must have no vCPU yet) with
  // `entries` per vCPU, fewer if KVM allows fewer. nullptr when `entries` is
  // 0 or this KVM has no dirty ring (or refuses this size): the VM then uses
  // the dirty bitmap.
  static absl::StatusOr<std::unique_ptr<DirtyRings>> Enable(VmFd* vm, uint32_t entries);
  ~DirtyRings();
  DirtyRings(const DirtyRings&) = delete;
  DirtyRings& operator=(const DirtyRings&) = delete;

  uint32_t entries() const { return entries_; }

  // Maps each vCPU's ring; `slot_pages[i]` is memory slot i's size in 4 KiB
  // pages (the pages are numbered across the slots back to back, as in
  // PageBitmap). Once; later calls do nothing.
  absl::Status Map(const std::vector<const VcpuFd*>& vcpus, std::vector<uint64_t> slot_pages);
  // Moves what the rings hold into the collected pages and lets KVM reuse
  // the entries (and track those pages again).
  absl::Status Harvest();
  // Harvest, then the pages collected since the last Take (one bit per page).
  absl::StatusOr<std::vector<uint64_t>> Take();

 private:
  DirtyRings(VmFd* vm, uint32_t entries) : vm_(vm), entries_(entries) {}
  absl::Status HarvestLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  struct Ring {
    kvm_dirty_gfn* gfns = nullptr;
    uint32_t next = 0;  // the next entry to read
  };
  VmFd* const vm_;
  const uint32_t entries_;
  Mutex mu_;
  std::vector<Ring> rings_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> slot_first_page_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> slot_pages_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> pages_ ABSL_GUARDED_BY(mu_);  // collected, one bit per page
  uint64_t ignored_ ABSL_GUARDED_BY(mu_) = 0;         // entries outside every slot
};

}  // namespace mote

#endif  // MOTE_VMM_DIRTY_RING_H_
