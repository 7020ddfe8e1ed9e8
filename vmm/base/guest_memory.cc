#include "vmm/base/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"

namespace mote {
namespace {

constexpr uint64_t kPageSize = 4096;

}  // namespace

absl::StatusOr<std::unique_ptr<GuestMemory>> GuestMemory::Create(
    const std::vector<MemoryRegionSpec>& specs) {
  if (specs.empty()) return absl::InvalidArgumentError("guest memory: no regions");
  std::vector<MemoryRegionSpec> sorted = specs;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.guest_base < b.guest_base; });
  uint64_t total = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const MemoryRegionSpec& r = sorted[i];
    if (r.size == 0 || r.size % kPageSize != 0 || r.guest_base % kPageSize != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "guest memory: region 0x%x+0x%x is empty or not page-aligned", r.guest_base, r.size));
    }
    if (r.guest_base + r.size < r.guest_base) {
      return absl::InvalidArgumentError("guest memory: region wraps the address space");
    }
    if (i > 0 && sorted[i - 1].guest_base + sorted[i - 1].size > r.guest_base) {
      return absl::InvalidArgumentError("guest memory: regions overlap");
    }
    total += r.size;
  }

  FileDescriptor memfd(memfd_create("mote-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!memfd.ok()) return ErrnoToStatus(errno, "memfd_create");
  if (ftruncate(memfd.get(), static_cast<off_t>(total)) != 0) {
    return ErrnoToStatus(errno, absl::StrFormat("ftruncate guest memory to %d bytes", total));
  }
  // The guest's RAM must not shrink under a mapping (SIGBUS otherwise).
  fcntl(memfd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
  // MAP_NORESERVE and no pre-faulting: pages are allocated on the guest's first touch.
  void* mapping = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                       memfd.get(), 0);
  if (mapping == MAP_FAILED) return ErrnoToStatus(errno, "mmap guest memory");

  std::vector<Region> regions;
  uint64_t offset = 0;
  for (const MemoryRegionSpec& r : sorted) {
    regions.push_back(Region{r.guest_base, r.size, static_cast<uint8_t*>(mapping) + offset});
    offset += r.size;
  }
  return std::unique_ptr<GuestMemory>(
      new GuestMemory(std::move(memfd), static_cast<uint8_t*>(mapping), total, std::move(regions)));
}

GuestMemory::~GuestMemory() { munmap(mapping_, mapping_size_); }

uint64_t GuestMemory::TotalSize() const { return mapping_size_; }

absl::StatusOr<absl::Span<uint8_t>> GuestMemory::GetSlice(GuestAddress gpa, uint64_t len) const {
  uint64_t end = gpa.value + len;
  if (end < gpa.value) {
    return absl::OutOfRangeError(
        absl::StrFormat("guest range 0x%x+0x%x overflows", gpa.value, len));
  }
  for (const Region& r : regions_) {
    if (gpa.value >= r.guest_base && end <= r.guest_base + r.size) {
      return absl::Span<uint8_t>(r.host + (gpa.value - r.guest_base), len);
    }
  }
  return absl::OutOfRangeError(
      absl::StrFormat("guest range 0x%x+0x%x is outside guest RAM", gpa.value, len));
}

absl::Status GuestMemory::Read(GuestAddress gpa, absl::Span<uint8_t> out) const {
  MOTE_ASSIGN_OR_RETURN(absl::Span<uint8_t> src, GetSlice(gpa, out.size()));
  if (!out.empty()) std::memcpy(out.data(), src.data(), out.size());
  return absl::OkStatus();
}

absl::Status GuestMemory::Write(GuestAddress gpa, absl::Span<const uint8_t> data) const {
  MOTE_ASSIGN_OR_RETURN(absl::Span<uint8_t> dst, GetSlice(gpa, data.size()));
  if (!data.empty()) std::memcpy(dst.data(), data.data(), data.size());
  return absl::OkStatus();
}

}  // namespace mote
