// The guest console on the host side: ConsoleOutput receives the UART's bytes,
// writes them to stdout or a file, and matches complete lines against the
// --expect pattern; ConsoleEscape reads the keyboard's escape (Ctrl-A x) out
// of a terminal's input; TerminalRawMode puts an interactive stdin into raw
// mode and restores it when destroyed.
// Thread-safety: ConsoleOutput::Write may be called from any vCPU thread.
#ifndef MOTE_VMM_CONSOLE_H_
#define MOTE_VMM_CONSOLE_H_

#include <termios.h>

#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/base/fd.h"
#include "vmm/base/mutex.h"
#include "vmm/base/platform_hooks.h"
#include "vmm/vm_config.h"

namespace mote {

class ConsoleOutput : public ByteSink {
 public:
  // Opens the file for kFile (created/truncated, 0644). `on_match` runs (on
  // the writing thread) the first time a line matches `expect`.
  static absl::StatusOr<std::unique_ptr<ConsoleOutput>> Create(const ConsoleConfig& config,
                                                               const std::string& expect,
                                                               std::function<void()> on_match);

  void Write(absl::Span<const uint8_t> bytes) override;
  // True once a line has matched (for the "guest ended without it" check,
  // which also tries the unterminated last line).
  bool MatchedOrFinalLineMatches();

 private:
  ConsoleOutput(FileDescriptor owned, int fd, std::optional<std::regex> expect,
                std::function<void()> on_match)
      : owned_(std::move(owned)),
        fd_(fd),
        expect_(std::move(expect)),
        on_match_(std::move(on_match)) {}
  bool LineMatches(const std::string& line) const;

  FileDescriptor owned_;  // for a file console
  const int fd_;          // -1: discard
  const std::optional<std::regex> expect_;
  const std::function<void()> on_match_;
  Mutex mu_;
  std::string line_ ABSL_GUARDED_BY(mu_);
  bool matched_ ABSL_GUARDED_BY(mu_) = false;
};

// On a terminal in raw mode Ctrl-C goes to the guest, so mote's own key is
// Ctrl-A, as in QEMU's stdio monitor: Ctrl-A x quits, Ctrl-A Ctrl-A sends one
// Ctrl-A, and Ctrl-A before any other byte is dropped. The state carries
// over from one read to the next.
class ConsoleEscape {
 public:
  static constexpr uint8_t kCtrlA = 0x01;
  struct Result {
    std::vector<uint8_t> guest_input;  // what the guest gets, up to a quit
    bool quit = false;                 // Ctrl-A x was typed
  };
  Result Feed(absl::Span<const uint8_t> typed);

 private:
  bool after_ctrl_a_ = false;
};

class TerminalRawMode {
 public:
  // Raw mode on `fd` if it is a terminal; otherwise does nothing.
  explicit TerminalRawMode(int fd);
  ~TerminalRawMode();
  TerminalRawMode(const TerminalRawMode&) = delete;
  TerminalRawMode& operator=(const TerminalRawMode&) = delete;
  bool active() const { return saved_.has_value(); }

 private:
  int fd_;
  std::optional<termios> saved_;
};

}  // namespace mote

#endif  // MOTE_VMM_CONSOLE_H_
