#include "vmm/base/guest_memory.h"

#include <fcntl.h>
#include <linux/mman.h>  // MAP_HUGE_2MB
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"

namespace mote {
namespace {

constexpr uint64_t kPageSize = 4096;

// An anonymous mapping of `size` bytes whose start is a multiple of 2 MiB.
// The kernel can only back a range with transparent huge pages (and KVM map
// it with 2 MiB EPT/NPT entries) where the host address is 2 MiB aligned;
// mmap alone promises 4 KiB. Without it a Linux boot took one nested page
// fault per 4 KiB page it touched: 29553 of them, against QEMU's 1450.
void* MapHugeAligned(uint64_t size) {
  constexpr uint64_t kHuge = GuestMemory::kHugePageSize;
  const uint64_t slack = kHuge - kPageSize;
  void* raw = mmap(nullptr, size + slack, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return MAP_FAILED;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHuge - 1) & ~(kHuge - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t tail = start + size + slack - (aligned + size);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + size), tail);
  return reinterpret_cast<void*>(aligned);
}

// "N huge pages" from /proc/meminfo's HugePages_Free, for error messages.
std::string FreeHugePages() {
  FILE* f = std::fopen("/proc/meminfo", "re");
  if (f == nullptr) return "an unknown number of";
  char line[128];
  std::string free = "an unknown number of";
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    unsigned long n;
    if (std::sscanf(line, "HugePages_Free: %lu", &n) == 1) {
      free = absl::StrFormat("%d 2 MiB page%s", n, n == 1 ? "" : "s");
      break;
    }
  }
  std::fclose(f);
  return free;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GuestMemory>> GuestMemory::Create(
    const std::vector<MemoryRegionSpec>& specs, Pages pages) {
  const uint64_t align = pages == Pages::kHuge2M ? GuestMemory::kHugePageSize : kPageSize;
  if (specs.empty()) return absl::InvalidArgumentError("guest memory: no regions");
  std::vector<MemoryRegionSpec> sorted = specs;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.guest_base < b.guest_base; });
  uint64_t total = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const MemoryRegionSpec& r = sorted[i];
    if (r.size == 0 || r.size % align != 0 || r.guest_base % align != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("guest memory: region 0x%x+0x%x is empty or not aligned to %d KiB",
                          r.guest_base, r.size, align >> 10));
    }
    if (r.guest_base + r.size < r.guest_base) {
      return absl::InvalidArgumentError("guest memory: region wraps the address space");
    }
    if (i > 0 && sorted[i - 1].guest_base + sorted[i - 1].size > r.guest_base) {
      return absl::InvalidArgumentError("guest memory: regions overlap");
    }
    total += r.size;
  }

  void* mapping;
  if (pages == Pages::kHuge2M) {
    // No MAP_NORESERVE: the pages are reserved now, so a guest can never
    // fault on a huge page the host does not have (that would be SIGBUS).
    mapping = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
    if (mapping == MAP_FAILED) {
      int err = errno;
      return absl::ResourceExhaustedError(absl::StrFormat(
          "hugepages=on: cannot reserve %d MiB of 2 MiB huge pages (%s); the host has %s free "
          "(raise /proc/sys/vm/nr_hugepages)",
          total >> 20, std::strerror(err), FreeHugePages()));
    }
  } else {
    // MAP_NORESERVE and no pre-faulting: pages are allocated on the guest's
    // first touch. Regions start and end on 2 MiB in practice, so with the
    // mapping aligned each region's huge pages line up with the guest's.
    mapping = MapHugeAligned(total);
    if (mapping == MAP_FAILED) return ErrnoToStatus(errno, "mmap guest memory");
    (void)madvise(mapping, total, MADV_HUGEPAGE);  // a hint: hosts without THP say no
  }

  std::vector<Region> regions;
  uint64_t offset = 0;
  for (const MemoryRegionSpec& r : sorted) {
    regions.push_back(Region{r.guest_base, r.size, static_cast<uint8_t*>(mapping) + offset});
    offset += r.size;
  }
  return std::unique_ptr<GuestMemory>(
      new GuestMemory(static_cast<uint8_t*>(mapping), total, std::move(regions)));
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
      uint8_t* host = r.host + (gpa.value - r.guest_base);
      if (tracking_.load(std::memory_order_acquire)) MarkWritten(host - mapping_, len);
      return absl::Span<uint8_t>(host, len);
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

void GuestMemory::SetWriteTracking(bool on) {
  if (on && written_ == nullptr) {
    written_words_ = (mapping_size_ / kPageSize + 63) / 64;
    written_ = std::make_unique<std::atomic<uint64_t>[]>(written_words_);
  }
  tracking_.store(on, std::memory_order_release);
}

void GuestMemory::MarkWritten(uint64_t offset, uint64_t len) const {
  uint64_t first = offset / kPageSize, last = (offset + std::max<uint64_t>(len, 1) - 1) / kPageSize;
  for (uint64_t page = first; page <= last; ++page) {
    written_[page / 64].fetch_or(1ull << (page % 64), std::memory_order_relaxed);
  }
}

std::vector<uint64_t> GuestMemory::TakeWrittenPages() const {
  std::vector<uint64_t> pages((mapping_size_ / kPageSize + 63) / 64, 0);
  if (written_ == nullptr) return pages;
  for (size_t i = 0; i < written_words_; ++i) {
    pages[i] = written_[i].exchange(0, std::memory_order_relaxed);
  }
  return pages;
}

}  // namespace mote
