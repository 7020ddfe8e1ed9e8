#include "vmm/console.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "vmm/base/status_macros.h"
#include "vmm/startup_timings.h"

namespace mote {
namespace {

// Long lines are matched in pieces of this size, so a guest that never sends
// a newline cannot make mote buffer without bound.
constexpr size_t kMaxLine = 4096;

void WriteAll(int fd, const uint8_t* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a closed stdout must not stop the guest
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConsoleOutput>> ConsoleOutput::Create(
    const ConsoleConfig& config, const std::string& expect, std::function<void()> on_match) {
  FileDescriptor owned;
  int fd = -1;
  if (config.kind == ConsoleKind::kStdio) {
    fd = STDOUT_FILENO;
  } else if (config.kind == ConsoleKind::kFile) {
    owned.Reset(::open(config.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!owned.ok()) return ErrnoToStatus(errno, "console file " + config.path);
    fd = owned.get();
  }
  std::optional<std::regex> re;
  if (!expect.empty()) re.emplace(expect);  // validated by VmConfig::Validate
  return std::unique_ptr<ConsoleOutput>(
      new ConsoleOutput(std::move(owned), fd, std::move(re), std::move(on_match)));
}

bool ConsoleOutput::LineMatches(const std::string& line) const {
  return expect_.has_value() && std::regex_search(line, *expect_);
}

void ConsoleOutput::Write(absl::Span<const uint8_t> bytes) {
  startup::Mark(startup::Phase::kFirstConsoleByte);
  if (fd_ >= 0) WriteAll(fd_, bytes.data(), bytes.size());
  if (!expect_.has_value()) return;
  bool fire = false;
  {
    MutexLock lock(&mu_);
    if (matched_) return;
    for (uint8_t b : bytes) {
      if (b == '\n' || line_.size() >= kMaxLine) {
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        if (LineMatches(line_)) {
          matched_ = fire = true;
          break;
        }
        line_.clear();
        if (b == '\n') continue;
      }
      line_.push_back(static_cast<char>(b));
    }
  }
  if (fire) on_match_();
}

bool ConsoleOutput::MatchedOrFinalLineMatches() {
  MutexLock lock(&mu_);
  if (!matched_ && !line_.empty() && LineMatches(line_)) matched_ = true;
  return matched_;
}

TerminalRawMode::TerminalRawMode(int fd) : fd_(fd) {
  termios t;
  if (!isatty(fd) || tcgetattr(fd, &t) != 0) return;
  saved_ = t;
  cfmakeraw(&t);
  // Keep output post-processing so the host terminal renders "\n" as it would.
  t.c_oflag |= OPOST;
  tcsetattr(fd, TCSANOW, &t);
}

TerminalRawMode::~TerminalRawMode() {
  if (saved_.has_value()) tcsetattr(fd_, TCSANOW, &*saved_);
}

ConsoleEscape::Result ConsoleEscape::Feed(absl::Span<const uint8_t> typed) {
  Result result;
  for (uint8_t byte : typed) {
    if (after_ctrl_a_) {
      after_ctrl_a_ = false;
      if (byte == 'x') {
        result.quit = true;
        return result;
      }
      result.guest_input.push_back(byte);
    } else if (byte == kCtrlA) {
      after_ctrl_a_ = true;
    } else {
      result.guest_input.push_back(byte);
    }
  }
  return result;
}

}  // namespace mote
