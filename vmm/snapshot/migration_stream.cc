#include "vmm/snapshot/migration_stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"
#include "vmm/config_json.h"
#include "vmm/snapshot/restore_error.h"
#include "vmm/snapshot/snapshot_dir.h"

namespace mote {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'T', 'E', 'M', 'I', 'G', 'R'};
constexpr uint32_t kStreamVersion = 1;
using migration_record::kConfig, migration_record::kPages, migration_record::kState,
    migration_record::kEnd, migration_record::kPostcopy, migration_record::kMachine,
    migration_record::kZeroPages;
constexpr uint64_t kPage = 4096;
constexpr uint32_t kMaxPagesPerRecord = migration_record::kMaxPages;
constexpr uint32_t kMaxConfigBytes = 1 << 20;
constexpr uint64_t kMaxStateBytes = 256 << 20;
constexpr int64_t kStallLimitNs = 60'000'000'000;

absl::Status Bad(const std::string& why) {
  return RestoreError(RestoreFailure::kCorrupt, "migration stream: " + why);
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

struct Address {
  int family = AF_UNIX;
  sockaddr_storage addr{};
  socklen_t len = 0;
};

bool IsZeroPage(const uint8_t* page) {
  const auto* w = reinterpret_cast<const uint64_t*>(page);
  for (size_t i = 0; i < kPage / 8; ++i) {
    if (w[i] != 0) return false;
  }
  return true;
}

absl::StatusOr<Address> Resolve(const std::string& uri) {
  Address a;
  if (absl::StartsWith(uri, "unix:")) {
    std::string path = uri.substr(5);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(un.sun_path)) {
      return absl::InvalidArgumentError("migration address " + uri + ": bad socket path");
    }
    std::memcpy(un.sun_path, path.c_str(), path.size() + 1);
    std::memcpy(&a.addr, &un, sizeof(un));
    a.len = sizeof(un);
    return a;
  }
  if (absl::StartsWith(uri, "tcp:")) {
    std::string rest = uri.substr(4);
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError("migration address " + uri + ": want tcp:HOST:PORT");
    }
    std::string host = rest.substr(0, colon), port = rest.substr(colon + 1);
    if (!host.empty() && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    // Numeric addresses only: mote is one static binary, without the
    // name service modules a host name lookup would load.
    if (host.empty() || host == "localhost") host = host.empty() ? "0.0.0.0" : "127.0.0.1";
    char* end = nullptr;
    unsigned long port_number = std::strtoul(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || port_number == 0 || port_number > 65535) {
      return absl::InvalidArgumentError("migration address " + uri + ": bad port");
    }
    sockaddr_in v4{};
    sockaddr_in6 v6{};
    if (inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
      v4.sin_family = AF_INET;
      v4.sin_port = htons(static_cast<uint16_t>(port_number));
      a.family = AF_INET;
      std::memcpy(&a.addr, &v4, sizeof(v4));
      a.len = sizeof(v4);
    } else if (inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
      v6.sin6_family = AF_INET6;
      v6.sin6_port = htons(static_cast<uint16_t>(port_number));
      a.family = AF_INET6;
      std::memcpy(&a.addr, &v6, sizeof(v6));
      a.len = sizeof(v6);
    } else {
      return absl::InvalidArgumentError("migration address " + uri +
                                        ": give the host as an IPv4 or IPv6 address");
    }
    return a;
  }
  return absl::InvalidArgumentError("migration address " + uri +
                                    ": mote takes unix:PATH or tcp:HOST:PORT");
}

template <typename T>
absl::StatusOr<T> ReadValue(int fd) {
  T v{};
  MOTE_RETURN_IF_ERROR(ReadStream(fd, &v, sizeof(v)));
  return v;
}

absl::Status WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  FileDescriptor out(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out.ok()) return ErrnoToStatus(errno, "create " + path);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(out.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoToStatus(n < 0 ? errno : EIO, "write " + path);
    done += n;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadStream(int fd, void* data, size_t len) {
  auto* p = static_cast<uint8_t*>(data);
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "migration stream");
    if (n == 0) return Bad("it ended early (did the source stop?)");
    p += n;
    len -= n;
  }
  return absl::OkStatus();
}

bool IsMigrationUri(const std::string& uri) {
  return absl::StartsWith(uri, "unix:") || absl::StartsWith(uri, "tcp:");
}

absl::StatusOr<FileDescriptor> ConnectMigration(const std::string& uri) {
  MOTE_ASSIGN_OR_RETURN(Address a, Resolve(uri));
  FileDescriptor fd(socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.ok()) return ErrnoToStatus(errno, "socket");
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a.addr), a.len) != 0) {
    return ErrnoToStatus(errno, "connect to " + uri);
  }
  return fd;
}

absl::StatusOr<FileDescriptor> AcceptMigration(const std::string& uri) {
  MOTE_ASSIGN_OR_RETURN(Address a, Resolve(uri));
  FileDescriptor listener(socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.ok()) return ErrnoToStatus(errno, "socket");
  int one = 1;
  if (a.family != AF_UNIX) setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (a.family == AF_UNIX) unlink(reinterpret_cast<sockaddr_un*>(&a.addr)->sun_path);
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&a.addr), a.len) != 0) {
    return ErrnoToStatus(errno, "--incoming " + uri);
  }
  if (listen(listener.get(), 1) != 0) return ErrnoToStatus(errno, "listen " + uri);
  int fd;
  do {
    fd = accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoToStatus(errno, "accept " + uri);
  if (a.family == AF_UNIX) unlink(reinterpret_cast<sockaddr_un*>(&a.addr)->sun_path);
  return FileDescriptor(fd);
}

MigrationSender::MigrationSender(FileDescriptor fd, const std::atomic<bool>* cancel)
    : fd_(std::move(fd)), cancel_(cancel) {
  // Sends wake up now and then, to see whether to give up.
  timeval tick{0, 200000};
  setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tick, sizeof(tick));
}

absl::Status MigrationSender::Write(const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  int64_t stalled_since = 0;
  while (len > 0) {
    ssize_t n = send(fd_.get(), p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (cancel_ != nullptr && cancel_->load()) return absl::CancelledError("migration cancelled");
      if (stalled_since == 0) stalled_since = NowNs();
      if (NowNs() - stalled_since > kStallLimitNs) {
        return absl::UnavailableError("the target has read nothing for a minute");
      }
      continue;
    }
    stalled_since = 0;
    if (n <= 0) return ErrnoToStatus(n < 0 ? errno : EPIPE, "migration stream to the target");
    p += n;
    len -= n;
    sent_ += n;
  }
  return absl::OkStatus();
}

absl::Status MigrationSender::SendHead(const std::string& config_json,
                                       const std::vector<uint8_t>& machine) {
  MOTE_RETURN_IF_ERROR(Write(kMagic, sizeof(kMagic)));
  MOTE_RETURN_IF_ERROR(Write(&kStreamVersion, 4));
  uint32_t len = static_cast<uint32_t>(config_json.size());
  MOTE_RETURN_IF_ERROR(Write(&kConfig, 1));
  MOTE_RETURN_IF_ERROR(Write(&len, 4));
  MOTE_RETURN_IF_ERROR(Write(config_json.data(), config_json.size()));
  uint64_t machine_len = machine.size();
  MOTE_RETURN_IF_ERROR(Write(&kMachine, 1));
  MOTE_RETURN_IF_ERROR(Write(&machine_len, 8));
  return Write(machine.data(), machine.size());
}

absl::Status MigrationSender::SendPages(const GuestMemory& mem, const PageBitmap* pages,
                                        const std::atomic<bool>& cancel,
                                        uint64_t max_bytes_per_second,
                                        const std::atomic<bool>* switch_now, uint64_t* stopped_at) {
  if (pace_start_ns_ == 0) pace_start_ns_ = NowNs();
  uint64_t file_offset = 0;
  for (const GuestMemory::Region& r : mem.regions()) {
    for (uint64_t off = 0; off < r.size;) {
      if (cancel.load()) return absl::CancelledError("migration cancelled");
      uint64_t page = (file_offset + off) / kPage;
      if (switch_now != nullptr && switch_now->load()) {
        *stopped_at = page;
        return absl::OkStatus();
      }
      bool wanted = pages != nullptr ? ((*pages)[page / 64] >> (page % 64) & 1) : true;
      if (!wanted || (pages == nullptr && IsZeroPage(r.host + off))) {
        off += kPage;
        continue;
      }
      // A run of wanted pages, up to a record's worth.
      uint32_t count = 1;
      while (count < kMaxPagesPerRecord && off + count * kPage < r.size) {
        uint64_t next = page + count;
        if (pages != nullptr && !((*pages)[next / 64] >> (next % 64) & 1)) break;
        ++count;
      }
      MOTE_RETURN_IF_ERROR(Write(&kPages, 1));
      MOTE_RETURN_IF_ERROR(Write(&page, 8));
      MOTE_RETURN_IF_ERROR(Write(&count, 4));
      MOTE_RETURN_IF_ERROR(Write(r.host + off, count * kPage));
      off += count * kPage;
      Pace(max_bytes_per_second);
    }
    file_offset += r.size;
  }
  if (stopped_at != nullptr) *stopped_at = file_offset / kPage;
  return absl::OkStatus();
}

int64_t MigrationSender::PaceWaitNs(uint64_t bytes_per_second) {
  if (bytes_per_second == 0) return 0;
  if (pace_start_ns_ == 0) pace_start_ns_ = NowNs();
  // Never ahead of the rate since the first page.
  int64_t due = pace_start_ns_ + static_cast<int64_t>(sent_ * 1e9 / bytes_per_second);
  return std::max<int64_t>(due - NowNs(), 0);
}

void MigrationSender::Pace(uint64_t bytes_per_second) {
  int64_t wait = PaceWaitNs(bytes_per_second);
  if (wait > 0) {
    timespec ts{wait / 1000000000, wait % 1000000000};
    nanosleep(&ts, nullptr);
  }
}

absl::Status MigrationSender::SendRun(const GuestMemory& mem, uint64_t first, uint32_t count,
                                      bool zero) {
  MOTE_RETURN_IF_ERROR(Write(zero ? &kZeroPages : &kPages, 1));
  MOTE_RETURN_IF_ERROR(Write(&first, 8));
  MOTE_RETURN_IF_ERROR(Write(&count, 4));
  return zero ? absl::OkStatus() : Write(PageHost(mem, first), count * kPage);
}

absl::Status MigrationSender::SendPostcopy(const PageBitmap& pages) {
  uint64_t words = pages.size();
  MOTE_RETURN_IF_ERROR(Write(&kPostcopy, 1));
  MOTE_RETURN_IF_ERROR(Write(&words, 8));
  return Write(pages.data(), words * 8);
}

absl::Status MigrationSender::ServePostcopy(const GuestMemory& mem, PageBitmap pages,
                                            const std::atomic<bool>& cancel,
                                            const std::function<void()>& on_target_running,
                                            int timeout_ms, uint64_t max_bytes_per_second) {
  const uint64_t total = mem.TotalSize() / kPage;
  auto has = [&](uint64_t p) { return p < total && (pages[p / 64] >> (p % 64) & 1); };
  auto take = [&](uint64_t p) { pages[p / 64] &= ~(uint64_t{1} << (p % 64)); };
  uint64_t cursor = 0;  // the pages below are sent
  bool running = false;
  while (true) {
    if (cancel.load() && !running) return absl::CancelledError("migration cancelled");
    while (cursor < total && !has(cursor)) {
      cursor = (cursor % 64 == 0 && pages[cursor / 64] == 0) ? cursor + 64 : cursor + 1;
    }
    cursor = std::min(cursor, total);
    if (cursor == total && running) return SendEnd();
    // Asked-for pages at once; the others when max-bandwidth allows.
    const int64_t wait_ns = cursor < total ? PaceWaitNs(max_bytes_per_second) : 0;
    pollfd p{fd_.get(), POLLIN, 0};
    int n =
        poll(&p, 1, cursor < total ? static_cast<int>((wait_ns + 999999) / 1000000) : timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && cursor == total) return absl::UnavailableError("the target did not answer");
    if (n > 0) {
      uint8_t message = 0;
      if (read(fd_.get(), &message, 1) != 1) {
        return absl::UnavailableError("the target refused the VM or went away");
      }
      if (message == 'K') {
        running = true;
        on_target_running();
        continue;
      }
      uint64_t page = 0;
      if (message != 'P' || ReadStream(fd_.get(), &page, 8) != absl::OkStatus()) {
        return absl::DataLossError("the target sent garbage");
      }
      if (has(page)) {  // asked for: before anything else
        MOTE_RETURN_IF_ERROR(SendRun(mem, page, 1, IsZeroPage(PageHost(mem, page))));
        take(page);
      }
      continue;
    }
    // A run of pages alike (all zero, or none), contiguous in one region.
    const uint8_t* host = PageHost(mem, cursor);
    const bool zero = IsZeroPage(host);
    uint32_t count = 1;
    while (count < kMaxPagesPerRecord && has(cursor + count) &&
           PageHost(mem, cursor + count) == host + count * kPage &&
           IsZeroPage(host + count * kPage) == zero) {
      ++count;
    }
    MOTE_RETURN_IF_ERROR(SendRun(mem, cursor, count, zero));
    for (uint32_t i = 0; i < count; ++i) take(cursor + i);
  }
}

absl::Status MigrationSender::SendState(const std::vector<uint8_t>& state) {
  uint64_t len = state.size();
  MOTE_RETURN_IF_ERROR(Write(&kState, 1));
  MOTE_RETURN_IF_ERROR(Write(&len, 8));
  return Write(state.data(), state.size());
}

absl::Status MigrationSender::SendEnd() { return Write(&kEnd, 1); }

absl::Status MigrationSender::WaitForTarget(int timeout_ms) {
  pollfd p{fd_.get(), POLLIN, 0};
  int n;
  do {
    n = poll(&p, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  uint8_t answer = 0;
  if (n == 1 && read(fd_.get(), &answer, 1) == 1 && answer == 'K') return absl::OkStatus();
  return absl::UnavailableError(n == 0 ? "the target did not answer"
                                       : "the target refused the VM or went away");
}

absl::Status ReceiveMigrationHead(int fd, const std::string& dir) {
  char magic[8];
  MOTE_RETURN_IF_ERROR(ReadStream(fd, magic, sizeof(magic)));
  if (std::memcmp(magic, kMagic, sizeof(magic)) != 0) return Bad("not a mote migration stream");
  MOTE_ASSIGN_OR_RETURN(uint32_t version, ReadValue<uint32_t>(fd));
  if (version > kStreamVersion) {
    return RestoreError(RestoreFailure::kNewerFormat,
                        absl::StrFormat("migration stream: version %d, this mote reads up to %d",
                                        version, kStreamVersion));
  }
  MOTE_ASSIGN_OR_RETURN(uint8_t type, ReadValue<uint8_t>(fd));
  if (type != kConfig) return Bad("no configuration first");
  MOTE_ASSIGN_OR_RETURN(uint32_t config_len, ReadValue<uint32_t>(fd));
  if (config_len > kMaxConfigBytes) return Bad("a configuration of " + std::to_string(config_len));
  std::string config_json(config_len, '\0');
  MOTE_RETURN_IF_ERROR(ReadStream(fd, config_json.data(), config_len));
  VmConfig config;
  if (absl::Status s = ApplyVmConfigJson(config_json, config, "migration stream: config: ");
      !s.ok()) {
    return Bad(std::string(s.message()));
  }
  MOTE_ASSIGN_OR_RETURN(type, ReadValue<uint8_t>(fd));
  if (type != kMachine) return Bad("no machine record after the configuration");
  MOTE_ASSIGN_OR_RETURN(uint64_t machine_len, ReadValue<uint64_t>(fd));
  if (machine_len > kMaxStateBytes) return Bad("a machine of " + std::to_string(machine_len));
  std::vector<uint8_t> machine(machine_len);
  MOTE_RETURN_IF_ERROR(ReadStream(fd, machine.data(), machine_len));
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoToStatus(errno, "mkdir " + dir);
  MOTE_RETURN_IF_ERROR(WriteFile(dir + "/" + kSnapshotConfigFile,
                                 std::vector<uint8_t>(config_json.begin(), config_json.end())));
  return WriteFile(dir + "/" + kSnapshotStateFile, machine);
}

absl::StatusOr<ReceivedMigration> ReceiveMigrationBody(int fd, GuestMemory& mem) {
  const uint64_t total_pages = mem.TotalSize() / kPage;
  ReceivedMigration received;
  bool have_state = false;
  while (true) {
    MOTE_ASSIGN_OR_RETURN(uint8_t type, ReadValue<uint8_t>(fd));
    if (type == kEnd) break;
    if (type == kPages) {
      MOTE_ASSIGN_OR_RETURN(uint64_t first, ReadValue<uint64_t>(fd));
      MOTE_ASSIGN_OR_RETURN(uint32_t count, ReadValue<uint32_t>(fd));
      if (count == 0 || count > kMaxPagesPerRecord || first >= total_pages ||
          count > total_pages - first) {
        return Bad(
            absl::StrFormat("pages %d+%d outside %d pages of RAM", first, count, total_pages));
      }
      // Straight into guest memory, region by region.
      uint64_t offset = first * kPage, left = count * kPage;
      for (const GuestMemory::Region& r : mem.regions()) {
        if (left == 0) break;
        if (offset >= r.size) {
          offset -= r.size;
          continue;
        }
        uint64_t n = std::min(left, r.size - offset);
        MOTE_RETURN_IF_ERROR(ReadStream(fd, r.host + offset, n));
        left -= n;
        offset = 0;
      }
      continue;
    }
    if (type == kState) {
      MOTE_ASSIGN_OR_RETURN(uint64_t len, ReadValue<uint64_t>(fd));
      if (len > kMaxStateBytes) return Bad("a state of " + std::to_string(len) + " bytes");
      received.state.resize(len);
      MOTE_RETURN_IF_ERROR(ReadStream(fd, received.state.data(), len));
      have_state = true;
      continue;
    }
    if (type == kPostcopy) {
      MOTE_ASSIGN_OR_RETURN(uint64_t words, ReadValue<uint64_t>(fd));
      if (words != (total_pages + 63) / 64) {
        return Bad(
            absl::StrFormat("a post-copy page map of %d words for %d pages", words, total_pages));
      }
      received.postcopy = true;
      received.pages_at_source.resize(words);
      MOTE_RETURN_IF_ERROR(ReadStream(fd, received.pages_at_source.data(), words * 8));
      break;
    }
    return Bad(absl::StrFormat("unknown record type %d", type));
  }
  if (!have_state) return Bad("it ended without the VM's state");
  return received;
}

void AcknowledgeMigration(int fd) {
  uint8_t ok = 'K';
  (void)!send(fd, &ok, 1, MSG_NOSIGNAL);
}

}  // namespace mote
