#include "virtio/block_backend.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"
#include "virtio/image_lock.h"
#include "vmm/base/status_macros.h"

namespace mote::virtio {
namespace {

constexpr uint64_t kSector = 512;
constexpr size_t kDirectAlign = 4096;
constexpr size_t kBounceSize = 1 << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<FileBackend>> FileBackend::Open(const std::string& path,
                                                               bool readonly, bool direct,
                                                               ImageLocking locking) {
  int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);
  FileDescriptor fd(::open(path.c_str(), flags));
  if (!fd.ok()) {
    int err = errno;
    std::string context = "disk " + path;
    if (!readonly && (err == EACCES || err == EROFS || err == EPERM)) {
      context += " (use readonly=on for a read-only disk)";
    }
    return ErrnoToStatus(err, context);
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, "disk " + path);
  uint64_t size;
  if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (ioctl(fd.get(), BLKGETSIZE64, &size) != 0) return ErrnoToStatus(errno, "disk " + path);
  } else {
    return absl::InvalidArgumentError("disk " + path + ": not a regular file or block device");
  }
  if (size % kSector != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("disk %s: size %d bytes is not a multiple of 512", path, size));
  }
  if (size == 0) return absl::InvalidArgumentError("disk " + path + ": the file is empty");
  std::unique_ptr<FileBackend> backend(
      new FileBackend(std::move(fd), path, size, direct, readonly, locking != ImageLocking::kOff));
  if (locking == ImageLocking::kOnOpen) MOTE_RETURN_IF_ERROR(backend->SetImageLock(true));
  return backend;
}

absl::Status FileBackend::SetImageLock(bool held) {
  if (!locking_) return absl::OkStatus();
  return held ? LockImage(fd_.get(), path_, !readonly_) : UnlockImage(fd_.get(), path_);
}

absl::Status FileBackend::Io(bool write, uint64_t offset, uint8_t* data, size_t length) {
  while (length > 0) {
    ssize_t n = write ? ::pwrite(fd_.get(), data, length, static_cast<off_t>(offset))
                      : ::pread(fd_.get(), data, length, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(
          errno, absl::StrFormat("disk %s: %s at %d", path_, write ? "write" : "read", offset));
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrFormat("disk %s: unexpected end of file at %d", path_, offset));
    }
    data += n;
    offset += static_cast<uint64_t>(n);
    length -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status FileBackend::ReadAt(uint64_t offset, absl::Span<uint8_t> out) {
  if (!direct_) return Io(false, offset, out.data(), out.size());
  // O_DIRECT wants aligned memory; guest buffers need not be. Offsets and
  // lengths are whole sectors, which the 512-byte logical block size accepts.
  void* bounce = std::aligned_alloc(kDirectAlign, kBounceSize);
  if (bounce == nullptr) return absl::ResourceExhaustedError("bounce buffer");
  absl::Status status;
  for (size_t done = 0; done < out.size() && status.ok();) {
    size_t n = std::min(kBounceSize, out.size() - done);
    status = Io(false, offset + done, static_cast<uint8_t*>(bounce), n);
    if (status.ok()) std::memcpy(out.data() + done, bounce, n);
    done += n;
  }
  std::free(bounce);
  return status;
}

absl::Status FileBackend::WriteAt(uint64_t offset, absl::Span<const uint8_t> data) {
  if (!direct_) return Io(true, offset, const_cast<uint8_t*>(data.data()), data.size());
  void* bounce = std::aligned_alloc(kDirectAlign, kBounceSize);
  if (bounce == nullptr) return absl::ResourceExhaustedError("bounce buffer");
  absl::Status status;
  for (size_t done = 0; done < data.size() && status.ok();) {
    size_t n = std::min(kBounceSize, data.size() - done);
    std::memcpy(bounce, data.data() + done, n);
    status = Io(true, offset + done, static_cast<uint8_t*>(bounce), n);
    done += n;
  }
  std::free(bounce);
  return status;
}

absl::Status FileBackend::Flush() {
  if (fdatasync(fd_.get()) != 0) return ErrnoToStatus(errno, "disk " + path_ + ": fdatasync");
  return absl::OkStatus();
}

absl::Status FileBackend::Discard(uint64_t offset, uint64_t length) {
  if (fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                static_cast<off_t>(length)) != 0) {
    return ErrnoToStatus(errno, "disk " + path_ + ": punch hole");
  }
  return absl::OkStatus();
}

absl::Status FileBackend::WriteZeroes(uint64_t offset, uint64_t length) {
  if (fallocate(fd_.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                static_cast<off_t>(length)) == 0) {
    return absl::OkStatus();
  }
  // Not every filesystem zeroes ranges; punching a hole reads back as zeros too.
  return Discard(offset, length);
}

absl::Status MemoryBackend::ReadAt(uint64_t offset, absl::Span<uint8_t> out) {
  std::memcpy(out.data(), data_.data() + offset, out.size());
  return absl::OkStatus();
}

absl::Status MemoryBackend::WriteAt(uint64_t offset, absl::Span<const uint8_t> data) {
  std::memcpy(data_.data() + offset, data.data(), data.size());
  return absl::OkStatus();
}

absl::Status MemoryBackend::Flush() {
  ++flushes_;
  return absl::OkStatus();
}

absl::Status MemoryBackend::Discard(uint64_t offset, uint64_t length) {
  return WriteZeroes(offset, length);
}

absl::Status MemoryBackend::WriteZeroes(uint64_t offset, uint64_t length) {
  std::memset(data_.data() + offset, 0, length);
  return absl::OkStatus();
}

}  // namespace mote::virtio
