#include "vmm/snapshot/memory_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/base/fd.h"
#include "vmm/base/status_macros.h"
#include "vmm/snapshot/restore_error.h"

namespace mote {
namespace {

constexpr uint64_t kPage = 4096;

bool PageIsZero(const uint8_t* page) {
  const auto* words = reinterpret_cast<const uint64_t*>(page);
  uint64_t any = 0;
  for (size_t i = 0; i < kPage / 8; ++i) any |= words[i];
  return any == 0;
}

absl::Status WriteAll(int fd, const uint8_t* data, uint64_t len, uint64_t offset,
                      const std::string& path) {
  while (len > 0) {
    ssize_t n = pwrite(fd, data, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoToStatus(n < 0 ? errno : EIO, "write " + path);
    data += n;
    len -= n;
    offset += n;
  }
  return absl::OkStatus();
}

}  // namespace

uint8_t* PageHost(const GuestMemory& mem, uint64_t page) {
  uint64_t offset = page * kPage;
  for (const GuestMemory::Region& r : mem.regions()) {
    if (offset < r.size) return r.host + offset;
    offset -= r.size;
  }
  return nullptr;
}

absl::StatusOr<MemoryFileStats> WriteMemoryFile(const GuestMemory& mem, const std::string& path,
                                                const PageBitmap* pages) {
  FileDescriptor fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.ok()) return ErrnoToStatus(errno, "create " + path);
  MemoryFileStats stats;
  stats.total_bytes = mem.TotalSize();
  if (ftruncate(fd.get(), static_cast<off_t>(stats.total_bytes)) != 0) {
    return ErrnoToStatus(errno, "truncate " + path);
  }
  uint64_t file_offset = 0;
  for (const GuestMemory::Region& r : mem.regions()) {
    // Runs of non-zero pages, one write each.
    uint64_t run_start = 0, run_len = 0;
    for (uint64_t off = 0; off <= r.size; off += kPage) {
      uint64_t page = (file_offset + off) / kPage;
      bool wanted = pages == nullptr ||
                    (page / 64 < pages->size() && ((*pages)[page / 64] >> (page % 64) & 1));
      bool data = off < r.size && wanted && !PageIsZero(r.host + off);
      if (data) {
        if (run_len == 0) run_start = off;
        run_len += kPage;
        continue;
      }
      if (run_len > 0) {
        MOTE_RETURN_IF_ERROR(
            WriteAll(fd.get(), r.host + run_start, run_len, file_offset + run_start, path));
        stats.bytes_written += run_len;
        run_len = 0;
      }
    }
    file_offset += r.size;
  }
  return stats;
}

namespace {

// The memory file at `path`, open for reading, if it is exactly the size of
// the guest's RAM.
absl::StatusOr<FileDescriptor> OpenMemoryFile(const GuestMemory& mem, const std::string& path) {
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) {
    return RestoreError(RestoreFailure::kMemoryFile,
                        absl::StrFormat("memory file %s: %s", path, std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, "stat " + path);
  if (static_cast<uint64_t>(st.st_size) != mem.TotalSize()) {
    return RestoreError(RestoreFailure::kMemoryFile,
                        absl::StrFormat("memory file %s: %d bytes, the guest has %d of RAM", path,
                                        st.st_size, mem.TotalSize()));
  }
  return fd;
}

}  // namespace

absl::Status LoadMemoryFile(GuestMemory& mem, const std::string& path, bool copy) {
  MOTE_ASSIGN_OR_RETURN(FileDescriptor fd, OpenMemoryFile(mem, path));
  uint64_t file_offset = 0;
  for (const GuestMemory::Region& r : mem.regions()) {
    if (copy) {
      for (uint64_t done = 0; done < r.size;) {
        ssize_t n =
            pread(fd.get(), r.host + done, r.size - done, static_cast<off_t>(file_offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return ErrnoToStatus(n < 0 ? errno : EIO, "read " + path);
        done += n;
      }
    } else {
      void* at =
          mmap(r.host, r.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE,
               fd.get(), static_cast<off_t>(file_offset));
      if (at == MAP_FAILED) return ErrnoToStatus(errno, "map " + path);
    }
    file_offset += r.size;
  }
  return absl::OkStatus();
}

absl::Status ApplyMemoryPages(GuestMemory& mem, const std::string& path, const PageBitmap& pages) {
  MOTE_ASSIGN_OR_RETURN(FileDescriptor fd, OpenMemoryFile(mem, path));
  if (pages.size() != (mem.TotalSize() / kPage + 63) / 64) {
    return RestoreError(
        RestoreFailure::kCorrupt,
        absl::StrFormat("snapshot of %s: a page list for %d pages, the guest has %d", path,
                        pages.size() * 64, mem.TotalSize() / kPage));
  }
  uint64_t file_offset = 0;
  for (const GuestMemory::Region& r : mem.regions()) {
    for (uint64_t off = 0; off < r.size; off += kPage) {
      uint64_t page = (file_offset + off) / kPage;
      if (!(pages[page / 64] >> (page % 64) & 1)) continue;
      ssize_t n;
      do {
        n = pread(fd.get(), r.host + off, kPage, static_cast<off_t>(file_offset + off));
      } while (n < 0 && errno == EINTR);
      if (n != static_cast<ssize_t>(kPage))
        return ErrnoToStatus(n < 0 ? errno : EIO, "read " + path);
    }
    file_offset += r.size;
  }
  return absl::OkStatus();
}

}  // namespace mote
