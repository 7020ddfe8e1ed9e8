// BlockBackend: where a virtio-blk device's sectors live. FileBackend is a
// raw image file (buffered, or O_DIRECT for cache=none); MemoryBackend serves
// tests. Calls are synchronous and made on the event-loop thread, never on a
// vCPU thread. (The io_uring backend of issue 3 will complete asynchronously.)
// Thread-safety: one thread at a time.
#ifndef MOTE_VIRTIO_BLOCK_BACKEND_H_
#define MOTE_VIRTIO_BLOCK_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "vmm/base/fd.h"

namespace mote::virtio {

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;
  virtual uint64_t size() const = 0;  // bytes, a multiple of 512
  // Callers keep [offset, offset + length) inside size().
  virtual absl::Status ReadAt(uint64_t offset, absl::Span<uint8_t> out) = 0;
  virtual absl::Status WriteAt(uint64_t offset, absl::Span<const uint8_t> data) = 0;
  // Returns once every completed write is on stable storage.
  virtual absl::Status Flush() = 0;
  // Deallocates the range (reads then return zeros).
  virtual absl::Status Discard(uint64_t offset, uint64_t length) = 0;
  virtual absl::Status WriteZeroes(uint64_t offset, uint64_t length) = 0;
  // The open file, for asynchronous engines (io_uring); -1 if there is none.
  virtual int fd() const { return -1; }
  // Opened with O_DIRECT: asynchronous I/O needs 512-byte aligned buffers.
  virtual bool direct() const { return false; }
  // Takes or lets go the image's locks (virtio/image_lock.h), where the
  // backend has an image and was opened with locking: a live migration's
  // two ends hand them over at the switch-over.
  virtual absl::Status SetImageLock(bool /*held*/) { return absl::OkStatus(); }
};

// Whether a FileBackend locks its image (virtio/image_lock.h): not at all
// (lock=off), from Open on, or only once SetImageLock(true) asks (a live
// migration's target, while the source still runs on the image).
enum class ImageLocking { kOff, kOnOpen, kDeferred };

class FileBackend : public BlockBackend {
 public:
  // Opens `path` read-write (read-only if `readonly`), with O_DIRECT if
  // `direct`. Errors name the file: missing, unreadable, unwritable without
  // readonly, not a regular file or block device, size not a multiple of
  // 512, in use by another process (`locking`).
  static absl::StatusOr<std::unique_ptr<FileBackend>> Open(
      const std::string& path, bool readonly, bool direct,
      ImageLocking locking = ImageLocking::kOnOpen);
  uint64_t size() const override { return size_; }
  absl::Status ReadAt(uint64_t offset, absl::Span<uint8_t> out) override;
  absl::Status WriteAt(uint64_t offset, absl::Span<const uint8_t> data) override;
  absl::Status Flush() override;
  absl::Status Discard(uint64_t offset, uint64_t length) override;
  absl::Status WriteZeroes(uint64_t offset, uint64_t length) override;
  int fd() const override { return fd_.get(); }
  bool direct() const override { return direct_; }
  absl::Status SetImageLock(bool held) override;

 private:
  FileBackend(FileDescriptor fd, std::string path, uint64_t size, bool direct, bool readonly,
              bool locking)
      : fd_(std::move(fd)),
        path_(std::move(path)),
        size_(size),
        direct_(direct),
        readonly_(readonly),
        locking_(locking) {}
  absl::Status Io(bool write, uint64_t offset, uint8_t* data, size_t length);

  FileDescriptor fd_;
  std::string path_;
  uint64_t size_;
  bool direct_;  // O_DIRECT: guest buffers go through an aligned bounce buffer
  bool readonly_;
  bool locking_;  // not lock=off
};

class MemoryBackend : public BlockBackend {
 public:
  explicit MemoryBackend(uint64_t size) : data_(size, 0) {}
  uint64_t size() const override { return data_.size(); }
  absl::Status ReadAt(uint64_t offset, absl::Span<uint8_t> out) override;
  absl::Status WriteAt(uint64_t offset, absl::Span<const uint8_t> data) override;
  absl::Status Flush() override;
  absl::Status Discard(uint64_t offset, uint64_t length) override;
  absl::Status WriteZeroes(uint64_t offset, uint64_t length) override;
  std::vector<uint8_t>& data() { return data_; }
  int flushes() const { return flushes_; }

 private:
  std::vector<uint8_t> data_;
  int flushes_ = 0;
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_BLOCK_BACKEND_H_
