#include "vmm/dirty_ring.h"

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "vmm/base/logging.h"
#include "vmm/base/status_macros.h"

namespace mote {

uint32_t CollectDirtyRing(kvm_dirty_gfn* ring, uint32_t entries, uint32_t* next,
                          absl::FunctionRef<void(uint32_t slot, uint64_t offset)> mark) {
  uint32_t taken = 0;
  // A full ring holds `entries`: never go round more than once.
  for (; taken < entries; ++taken) {
    kvm_dirty_gfn& gfn = ring[*next & (entries - 1)];
    // KVM writes slot and offset, then the flag: read them after it.
    if ((__atomic_load_n(&gfn.flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY) == 0) break;
    mark(gfn.slot, gfn.offset);
    __atomic_store_n(&gfn.flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
    ++*next;
  }
  return taken;
}

absl::StatusOr<std::unique_ptr<DirtyRings>> DirtyRings::Enable(VmFd* vm, uint32_t entries) {
  if (entries == 0) return nullptr;
  int max_bytes = vm->CheckExtension(KVM_CAP_DIRTY_LOG_RING);
  if (max_bytes <= 0) return nullptr;
  uint32_t max_entries = static_cast<uint32_t>(max_bytes) / sizeof(kvm_dirty_gfn);
  while (entries > max_entries) entries /= 2;  // both are powers of two
  absl::Status enabled =
      vm->EnableCapability(KVM_CAP_DIRTY_LOG_RING, uint64_t{entries} * sizeof(kvm_dirty_gfn));
  if (!enabled.ok()) {
    // KVM has a floor of its own (its reserved entries): the bitmap will do.
    spdlog::debug("dirty ring of {} entries refused ({}): the dirty bitmap instead", entries,
                  std::string(enabled.message()));
    return nullptr;
  }
  return std::unique_ptr<DirtyRings>(new DirtyRings(vm, entries));
}

DirtyRings::~DirtyRings() {
  MutexLock lock(&mu_);
  for (Ring& ring : rings_) munmap(ring.gfns, size_t{entries_} * sizeof(kvm_dirty_gfn));
}

absl::Status DirtyRings::Map(const std::vector<const VcpuFd*>& vcpus,
                             std::vector<uint64_t> slot_pages) {
  MutexLock lock(&mu_);
  if (!rings_.empty()) return absl::OkStatus();
  uint64_t first = 0;
  for (uint64_t pages : slot_pages) {
    slot_first_page_.push_back(first);
    first += pages;
  }
  slot_pages_ = std::move(slot_pages);
  pages_.assign((first + 63) / 64, 0);
  const off_t offset = off_t{KVM_DIRTY_LOG_PAGE_OFFSET} * getpagesize();
  for (const VcpuFd* vcpu : vcpus) {
    void* ring = mmap(nullptr, size_t{entries_} * sizeof(kvm_dirty_gfn), PROT_READ | PROT_WRITE,
                      MAP_SHARED, vcpu->fd(), offset);
    if (ring == MAP_FAILED) {
      return ErrnoToStatus(errno, absl::StrFormat("mmap dirty ring of vCPU %d", vcpu->id()));
    }
    rings_.push_back({static_cast<kvm_dirty_gfn*>(ring), 0});
  }
  return absl::OkStatus();
}

absl::Status DirtyRings::Harvest() {
  MutexLock lock(&mu_);
  return HarvestLocked();
}

absl::Status DirtyRings::HarvestLocked() {
  // Gathered first, marked after: the thread-safety analysis cannot see that
  // a callback runs under mu_.
  std::vector<std::pair<uint32_t, uint64_t>> written;
  auto gather = [&written](uint32_t slot, uint64_t offset) { written.push_back({slot, offset}); };
  uint32_t taken = 0;
  for (Ring& ring : rings_) taken += CollectDirtyRing(ring.gfns, entries_, &ring.next, gather);
  for (auto [slot, offset] : written) {
    uint32_t id = slot & 0xffff;  // the high half is the address space, always 0 here
    if ((slot >> 16) != 0 || id >= slot_pages_.size() || offset >= slot_pages_[id]) {
      ++ignored_;
      continue;
    }
    uint64_t page = slot_first_page_[id] + offset;
    pages_[page / 64] |= uint64_t{1} << (page % 64);
  }
  if (taken == 0) return absl::OkStatus();
  // KVM write-protects the pages handed back, so it sees their next write.
  if (ioctl(vm_->fd(), KVM_RESET_DIRTY_RINGS, 0) < 0) {
    return ErrnoToStatus(errno, "KVM_RESET_DIRTY_RINGS");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint64_t>> DirtyRings::Take() {
  MutexLock lock(&mu_);
  MOTE_RETURN_IF_ERROR(HarvestLocked());
  if (ignored_ != 0) {
    spdlog::warn("dirty ring: {} entries named no page of guest RAM", ignored_);
    ignored_ = 0;
  }
  std::vector<uint64_t> pages(pages_.size(), 0);
  pages.swap(pages_);
  return pages;
}

}  // namespace mote
