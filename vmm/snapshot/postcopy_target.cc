#include "vmm/snapshot/postcopy_target.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "vmm/base/logging.h"
#include "vmm/base/status_macros.h"
#include "vmm/snapshot/migration_stream.h"

namespace mote {
namespace {

constexpr uint64_t kPage = 4096;

bool Test(const PageBitmap& bits, uint64_t page) { return bits[page / 64] >> (page % 64) & 1; }
void Clear(PageBitmap& bits, uint64_t page) { bits[page / 64] &= ~(uint64_t{1} << (page % 64)); }
void Set(PageBitmap& bits, uint64_t page) { bits[page / 64] |= uint64_t{1} << (page % 64); }

// A userfaultfd that also takes faults from the kernel's own accesses
// (KVM's): the system call, or /dev/userfaultfd where the sysctl keeps
// that call to privileged users.
absl::StatusOr<FileDescriptor> OpenUserfaultfd() {
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd < 0) {
    int err = errno;
    FileDescriptor dev(open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
    constexpr unsigned long kIocNew = _IO(0xAA, 0x00);  // USERFAULTFD_IOC_NEW
    if (dev.ok()) fd = ioctl(dev.get(), kIocNew, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      return absl::PermissionDeniedError(
          absl::StrFormat("post-copy needs userfaultfd (%s): run as root, or allow it with "
                          "vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd",
                          std::strerror(err)));
    }
  }
  FileDescriptor uffd(fd);
  uffdio_api api{};
  api.api = UFFD_API;
  if (ioctl(uffd.get(), UFFDIO_API, &api) != 0) return ErrnoToStatus(errno, "UFFDIO_API");
  return uffd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostcopyTarget>> PostcopyTarget::Create(FileDescriptor stream,
                                                                       PageBitmap from_source) {
  MOTE_ASSIGN_OR_RETURN(FileDescriptor uffd, OpenUserfaultfd());
  return std::unique_ptr<PostcopyTarget>(
      new PostcopyTarget(std::move(stream), std::move(uffd), std::move(from_source)));
}

PostcopyTarget::PostcopyTarget(FileDescriptor stream, FileDescriptor uffd, PageBitmap from_source)
    : stream_(std::move(stream)),
      uffd_(std::move(uffd)),
      stop_(eventfd(0, EFD_CLOEXEC)),
      from_source_(std::move(from_source)),
      requested_(from_source_.size(), 0) {
  uint64_t n = 0;
  for (uint64_t w : from_source_) n += std::popcount(w);
  left_ = n;
}

PostcopyTarget::~PostcopyTarget() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!write(stop_.get(), &one, sizeof(one));
    thread_.join();
  }
  // Closing the userfaultfd (with uffd_) wakes whoever still waits on a
  // page: it reads as zero from now on.
}

absl::Status PostcopyTarget::Attach(GuestMemory& mem, SeccompMode seccomp,
                                    std::function<void(const std::string&)> on_lost) {
  mem_ = &mem;
  seccomp_ = seccomp;
  total_pages_ = mem.TotalSize() / kPage;
  if (from_source_.size() != (total_pages_ + 63) / 64) {
    return absl::InvalidArgumentError("post-copy: the page map does not fit the guest's RAM");
  }
  // What the target holds of the source's pages is stale: gone, so that
  // the first touch of each faults.
  for (uint64_t p = 0; p < total_pages_; ++p) {
    if (!Test(from_source_, p)) continue;
    uint64_t run = 1;
    while (p + run < total_pages_ && Test(from_source_, p + run) &&
           PageHost(*mem_, p + run) == PageHost(*mem_, p) + run * kPage) {
      ++run;
    }
    if (madvise(PageHost(*mem_, p), run * kPage, MADV_DONTNEED) != 0) {
      return ErrnoToStatus(errno, "post-copy: dropping stale pages");
    }
    p += run - 1;
  }
  for (const GuestMemory::Region& r : mem_->regions()) {
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<uint64_t>(r.host);
    reg.range.len = r.size;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0) {
      return ErrnoToStatus(errno,
                           "post-copy: userfaultfd over guest memory (hugepages=on "
                           "cannot be migrated post-copy)");
    }
  }
  on_lost_ = std::move(on_lost);
  thread_ = std::thread([this] { Serve(); });
  return absl::OkStatus();
}

void PostcopyTarget::Acknowledge() {
  MutexLock lock(&send_mu_);
  AcknowledgeMigration(stream_.get());
}

absl::Status PostcopyTarget::SendRequest(uint64_t page) {
  uint8_t message[9] = {'P'};
  std::memcpy(message + 1, &page, 8);
  MutexLock lock(&send_mu_);
  if (send(stream_.get(), message, sizeof(message), MSG_NOSIGNAL) != sizeof(message)) {
    return ErrnoToStatus(errno, "asking the source for a page");
  }
  return absl::OkStatus();
}

void PostcopyTarget::CopyPage(uint64_t page, const uint8_t* data) {
  const uint64_t dst = reinterpret_cast<uint64_t>(PageHost(*mem_, page));
  while (true) {
    int r;
    if (data != nullptr) {
      uffdio_copy copy{};
      copy.dst = dst;
      copy.src = reinterpret_cast<uint64_t>(data);
      copy.len = kPage;
      r = ioctl(uffd_.get(), UFFDIO_COPY, &copy);
    } else {
      uffdio_zeropage zero{};
      zero.range = {dst, kPage};
      r = ioctl(uffd_.get(), UFFDIO_ZEROPAGE, &zero);
    }
    if (r == 0) return;
    if (errno == EAGAIN) continue;  // the address space changed under it: again
    if (errno != EEXIST) {
      spdlog::warn("post-copy: page {}: {}", page, std::strerror(errno));
      return;
    }
    // There already: wake whoever waits on it all the same.
    uffdio_range range{dst, kPage};
    (void)ioctl(uffd_.get(), UFFDIO_WAKE, &range);
    return;
  }
}

void PostcopyTarget::OnFault(uint64_t address) {
  uint64_t page = total_pages_;
  uint64_t before = 0;
  for (const GuestMemory::Region& r : mem_->regions()) {
    uint64_t start = reinterpret_cast<uint64_t>(r.host);
    if (address >= start && address < start + r.size) page = (before + address - start) / kPage;
    before += r.size;
  }
  if (page >= total_pages_) return;
  if (!Test(from_source_, page)) {
    CopyPage(page, nullptr);  // never sent: zero on the source too
    return;
  }
  // The source has it: ask once, it comes with the stream.
  if (Test(requested_, page) || !stream_open_) return;
  Set(requested_, page);
  ++requests_;
  if (absl::Status s = SendRequest(page); !s.ok()) StreamOver(std::string(s.message()));
}

bool PostcopyTarget::ReadRecord() {
  uint8_t type = 0;
  absl::Status s = ReadStream(stream_.get(), &type, 1);
  if (s.ok() && type == migration_record::kEnd) {
    StreamOver("");
    return false;
  }
  uint64_t first = 0;
  uint32_t count = 0;
  const bool zero = type == migration_record::kZeroPages;
  if (s.ok() && type != migration_record::kPages && !zero) {
    s = absl::DataLossError("not a page record");
  }
  if (s.ok()) s = ReadStream(stream_.get(), &first, 8);
  if (s.ok()) s = ReadStream(stream_.get(), &count, 4);
  if (s.ok() && (count == 0 || count > migration_record::kMaxPages || first >= total_pages_ ||
                 count > total_pages_ - first)) {
    s = absl::DataLossError(absl::StrFormat("pages %d+%d outside RAM", first, count));
  }
  std::vector<uint8_t> data(zero ? 0 : count * kPage);
  if (s.ok()) s = ReadStream(stream_.get(), data.data(), data.size());
  if (!s.ok()) {
    StreamOver(std::string(s.message()));
    return false;
  }
  for (uint32_t i = 0; i < count; ++i) {
    if (!Test(from_source_, first + i)) continue;  // not the source's to give
    CopyPage(first + i, zero ? nullptr : data.data() + i * kPage);
    Clear(from_source_, first + i);
    left_.fetch_sub(1);
  }
  return true;
}

void PostcopyTarget::StreamOver(const std::string& why) {
  stream_open_ = false;
  if (left_.load() == 0) {
    spdlog::info("post-copy: every page has come from the source ({} asked for)", requests_);
    return;
  }
  std::string message =
      absl::StrFormat("post-copy: the source went away with %d pages of the guest's RAM (%s)",
                      left_.load(), why.empty() ? "it ended the stream early" : why);
  // Whoever waits on a page that will not come must be let go, or the VM
  // could not stop its vCPUs to end: the missing pages read as zero now.
  for (const GuestMemory::Region& r : mem_->regions()) {
    uffdio_range range{reinterpret_cast<uint64_t>(r.host), r.size};
    (void)ioctl(uffd_.get(), UFFDIO_UNREGISTER, &range);
  }
  if (on_lost_) {
    on_lost_(message);  // it ends the VM, and says why
  } else {
    spdlog::error("{}", message);
  }
}

void PostcopyTarget::Serve() {
  pthread_setname_np(pthread_self(), "mote-postcopy");
  // Started before the loop's filter is on (during the first boot): the
  // same filter, installed here.
  if (absl::Status s = InstallSeccompFilter(ThreadKind::kLoop, seccomp_); !s.ok()) {
    on_lost_(std::string(s.message()));
    return;
  }
  std::vector<uffd_msg> messages(16);
  while (true) {
    pollfd fds[3] = {{stop_.get(), POLLIN, 0},
                     {uffd_.get(), POLLIN, 0},
                     {stream_open_ ? stream_.get() : -1, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("post-copy: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[0].revents != 0) return;
    if (fds[1].revents & POLLIN) {
      ssize_t n = read(uffd_.get(), messages.data(), messages.size() * sizeof(uffd_msg));
      for (ssize_t i = 0; n > 0 && i < n / static_cast<ssize_t>(sizeof(uffd_msg)); ++i) {
        if (messages[i].event == UFFD_EVENT_PAGEFAULT) OnFault(messages[i].arg.pagefault.address);
      }
    }
    if (fds[2].revents != 0) ReadRecord();
  }
}

}  // namespace mote
