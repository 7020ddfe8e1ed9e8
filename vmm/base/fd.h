// FileDescriptor: a move-only owner of one file descriptor, closed on
// destruction. Thread-compatible (one owner at a time).
#ifndef MOTE_VMM_BASE_FD_H_
#define MOTE_VMM_BASE_FD_H_

namespace mote {

class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.Release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { Reset(); }

  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  [[nodiscard]] int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the current descriptor (errno preserved, never retried) and owns `fd`.
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

}  // namespace mote

#endif  // MOTE_VMM_BASE_FD_H_
