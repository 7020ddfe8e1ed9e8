// VmOutcome: how a VM run ended, and the stable process exit code the CLI
// gives each ending (documented in README.md; do not renumber).
// Value type; thread-compatible.
#ifndef MOTE_VMM_OUTCOME_H_
#define MOTE_VMM_OUTCOME_H_

#include <cstdint>
#include <string>

namespace mote {

enum class OutcomeKind {
  kPowerOff,       // guest powered off (ACPI S5)
  kDebugExit,      // guest wrote `value` to the debug-exit port
  kReset,          // guest rebooted (ACPI reset, i8042, triple fault) with --on-reboot exit
  kPanic,          // guest reported a panic through pvpanic
  kTimeout,        // --timeout expired
  kExpectMatched,  // --expect matched a console line
  kExpectNotMet,   // the guest ended without the --expect line
  kKvmError,       // KVM could not run the guest (internal error, failed entry)
  kHostError,      // mote failed on the host side
  kSignal,         // mote was asked to stop (SIGINT/SIGTERM/SIGHUP, Ctrl-A x)
  kQuit,           // a control client asked mote to quit (QMP `quit`)
  kHostReset,      // a control client asked for a reset (QMP `system_reset`): boot again
};

// Why a VM run ended, in QMP's SHUTDOWN `reason` words (QEMU's ShutdownCause)
// where QEMU has one, and an x-mote- word where it has none.
inline const char* ShutdownReason(OutcomeKind kind) {
  switch (kind) {
    case OutcomeKind::kPowerOff:
      return "guest-shutdown";
    case OutcomeKind::kReset:
      return "guest-reset";
    case OutcomeKind::kPanic:
      return "guest-panic";
    case OutcomeKind::kSignal:
      return "host-signal";
    case OutcomeKind::kQuit:
      return "host-qmp-quit";
    case OutcomeKind::kHostReset:
      return "host-qmp-system-reset";
    case OutcomeKind::kDebugExit:
      return "x-mote-debug-exit";
    case OutcomeKind::kTimeout:
      return "x-mote-timeout";
    case OutcomeKind::kExpectMatched:
      return "x-mote-expect-matched";
    case OutcomeKind::kExpectNotMet:
      return "x-mote-expect-not-met";
    case OutcomeKind::kKvmError:
      return "x-mote-kvm-error";
    case OutcomeKind::kHostError:
      return "x-mote-host-error";
  }
  return "x-mote-host-error";
}

struct VmOutcome {
  OutcomeKind kind = OutcomeKind::kHostError;
  uint64_t value = 0;  // debug-exit value, or signal number
  std::string detail;  // one line for the user
};

namespace exit_code {
inline constexpr int kPowerOff = 0;
inline constexpr int kHostError = 2;  // also bad flags and bad input files
inline constexpr int kReset = 4;
inline constexpr int kPanic = 6;
inline constexpr int kTimeout = 8;
inline constexpr int kExpectNotMet = 10;
inline constexpr int kKvmError = 12;
inline constexpr int kSignalBase = 128;  // 128 + signal number
}  // namespace exit_code

// The process exit status for `outcome`. Debug-exit gives (value << 1) | 1
// (odd, in 1..255) like QEMU's isa-debug-exit; mote's own codes are even.
inline int ExitCodeFor(const VmOutcome& outcome) {
  switch (outcome.kind) {
    case OutcomeKind::kPowerOff:
    case OutcomeKind::kExpectMatched:
    case OutcomeKind::kQuit:
      return exit_code::kPowerOff;
    case OutcomeKind::kDebugExit:
      return static_cast<int>(((outcome.value << 1) | 1) & 0xff);
    case OutcomeKind::kReset:
    case OutcomeKind::kHostReset:
      return exit_code::kReset;
    case OutcomeKind::kPanic:
      return exit_code::kPanic;
    case OutcomeKind::kTimeout:
      return exit_code::kTimeout;
    case OutcomeKind::kExpectNotMet:
      return exit_code::kExpectNotMet;
    case OutcomeKind::kKvmError:
      return exit_code::kKvmError;
    case OutcomeKind::kHostError:
      return exit_code::kHostError;
    case OutcomeKind::kSignal:
      return exit_code::kSignalBase + static_cast<int>(outcome.value & 0x7f);
  }
  return exit_code::kHostError;
}

}  // namespace mote

#endif  // MOTE_VMM_OUTCOME_H_
