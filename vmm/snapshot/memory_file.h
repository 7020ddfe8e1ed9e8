// The guest's RAM in a snapshot: one raw file, the regions back to back in
// guest-address order, with every all-zero page left as a hole (a sparse
// file: an idle 2 GiB guest takes what it touched). Restore maps the file
// privately (copy-on-write) over the guest's regions, so only the pages the
// guest touches after restore are ever read.
// Functions; the caller stops the vCPUs and devices first.
#ifndef MOTE_VMM_SNAPSHOT_MEMORY_FILE_H_
#define MOTE_VMM_SNAPSHOT_MEMORY_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "vmm/base/guest_memory.h"

namespace mote {

struct MemoryFileStats {
  uint64_t bytes_written = 0;  // the non-zero pages
  uint64_t total_bytes = 0;    // the file's length: all of RAM
};

// One bit per 4 KiB page of the regions back to back (GuestMemory::
// TakeWrittenPages' layout): the pages an incremental snapshot holds.
using PageBitmap = std::vector<uint64_t>;

// Page `page` of `mem`'s regions back to back (the memory file's layout),
// or null past their end.
uint8_t* PageHost(const GuestMemory& mem, uint64_t page);

// With `pages`, only those pages are written (an incremental snapshot; the
// rest are holes whatever they hold).
absl::StatusOr<MemoryFileStats> WriteMemoryFile(const GuestMemory& mem, const std::string& path,
                                                const PageBitmap* pages = nullptr);
// Reads the pages of an incremental snapshot's memory file over `mem`.
absl::Status ApplyMemoryPages(GuestMemory& mem, const std::string& path, const PageBitmap& pages);

// Maps `path` over `mem`'s regions, copy-on-write. The file must be exactly
// mem.TotalSize() bytes (RestoreFailure::kMemoryFile otherwise). With
// `copy`, the pages are read in instead of mapped (hugetlb memory cannot
// map a regular file).
absl::Status LoadMemoryFile(GuestMemory& mem, const std::string& path, bool copy);

}  // namespace mote

#endif  // MOTE_VMM_SNAPSHOT_MEMORY_FILE_H_
