// GuestMemory: the guest's RAM as a set of non-overlapping regions in one
// anonymous mapping owned by this object, populated on the guest's first
// touch. Every access is bounds- and overflow-checked and never crosses a
// region. The object does not know KVM: the Vm registers regions() as memory
// slots.
// Thread-safety: the region table is immutable after Create(); accessors may
// be called from any thread (guest RAM itself is shared with the guest).
#ifndef MOTE_VMM_BASE_GUEST_MEMORY_H_
#define MOTE_VMM_BASE_GUEST_MEMORY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace mote {

// A guest physical address, kept apart from host integers by type.
struct GuestAddress {
  uint64_t value = 0;
};

struct MemoryRegionSpec {
  uint64_t guest_base = 0;
  uint64_t size = 0;  // multiple of the page size
};

class GuestMemory {
 public:
  struct Region {
    uint64_t guest_base;
    uint64_t size;
    uint8_t* host;  // mapping owned by GuestMemory
  };

  enum class Pages {
    // 4 KiB pages, with transparent huge pages asked for (MADV_HUGEPAGE, as
    // QEMU does): where the host allows them, a guest buffer is physically
    // contiguous, so O_DIRECT I/O into it needs far fewer segments.
    kTransparent,
    // Reserved 2 MiB hugetlb pages (--memory SIZE,hugepages=on): all of RAM
    // is reserved at Create, which fails with a clear error if the host has
    // too few free.
    kHuge2M,
  };
  inline static constexpr uint64_t kHugePageSize = 2 << 20;

  // Maps all regions back to back. Regions must be page-aligned (2 MiB for
  // kHuge2M), non-empty and must not overlap.
  static absl::StatusOr<std::unique_ptr<GuestMemory>> Create(
      const std::vector<MemoryRegionSpec>& specs, Pages pages = Pages::kTransparent);
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  const std::vector<Region>& regions() const { return regions_; }
  uint64_t TotalSize() const;

  // Host view of [gpa, gpa+len) if it lies inside one region; OutOfRange if
  // not (including on address overflow). len 0 is allowed inside a region.
  absl::StatusOr<absl::Span<uint8_t>> GetSlice(GuestAddress gpa, uint64_t len) const;

  absl::Status Read(GuestAddress gpa, absl::Span<uint8_t> out) const;
  absl::Status Write(GuestAddress gpa, absl::Span<const uint8_t> data) const;

  // Pages mote itself writes (device emulation), for incremental snapshots:
  // KVM's dirty log sees only the guest's own writes. While on, every slice
  // handed out marks its pages (one that is only read, too: conservative).
  // Turn on with the vCPUs and devices stopped.
  void SetWriteTracking(bool on);
  // The pages marked since the last call, one bit per 4 KiB page of the
  // regions back to back (bit i: byte offset i * 4096), and clears them.
  std::vector<uint64_t> TakeWrittenPages() const;

  template <typename T>
  absl::StatusOr<T> ReadObj(GuestAddress gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    absl::Status s = Read(gpa, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&value), sizeof(T)));
    if (!s.ok()) return s;
    return value;
  }
  template <typename T>
  absl::Status WriteObj(GuestAddress gpa, const T& value) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return Write(gpa,
                 absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }

 private:
  GuestMemory(uint8_t* mapping, uint64_t mapping_size, std::vector<Region> regions)
      : mapping_(mapping), mapping_size_(mapping_size), regions_(std::move(regions)) {}

  void MarkWritten(uint64_t offset, uint64_t len) const;

  uint8_t* mapping_;
  uint64_t mapping_size_;
  std::vector<Region> regions_;  // sorted by guest_base
  std::atomic<bool> tracking_{false};
  // Allocated when tracking first starts; then never freed while in use.
  std::unique_ptr<std::atomic<uint64_t>[]> written_;
  size_t written_words_ = 0;
};

}  // namespace mote

#endif  // MOTE_VMM_BASE_GUEST_MEMORY_H_
