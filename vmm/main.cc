// The mote command line: `mote run ...` fills a libmote::VmConfig from flags
// (one per member of the configuration's table, and --config), runs the VM
// through libmote like any embedder, and exits with the code its outcome maps
// to (vmm/outcome.h); `mote ctl SOCKET ...` is a QMP client for scripts
// (vmm/ctl.h). This is the only place that calls
// exit() or catches CLI11's exceptions.
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "mote/config.h"
#include "mote/vm.h"
#include "spdlog/spdlog.h"
#include "vmm/base/seccomp_filter.h"
#include "vmm/console.h"
#include "vmm/ctl.h"
#include "vmm/jail.h"
#include "vmm/outcome.h"
#include "vmm/startup_pages.h"
#include "vmm/startup_timings.h"
#include "vmm/vm_config.h"

namespace mote {
namespace {

// Prints one clear line and returns the host-error code.
int Fail(const std::string& message) {
  std::fprintf(stderr, "mote: error: %s\n", message.c_str());
  return exit_code::kHostError;
}

// The same with the exit code a failure asks for (a refused restore's), or
// the host-error code.
int FailWith(const std::string& message, int code) {
  Fail(message);
  return code != 0 ? code : exit_code::kHostError;
}

// What the flags' callbacks found wrong (the first error wins), and the
// process-level flags that are not part of the VM's configuration.
struct RunFlags {
  std::string error;
  bool timings = false;      // --timings: a table on stderr at exit
  std::string timings_file;  // --timings=FILE: JSON there instead,
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> timings_out{nullptr,
                                                              std::fclose};  // opened early
  std::optional<JailOptions> jail;  // --jail DIR and its --jail-* flags
};

// One flag per VM member (vmm/vm_config.h's table): the member's help, and
// a callback that sets it through the table, so a flag checks its value
// exactly as the JSON description does. The item syntax and the default are
// written only into a help screen (`for_help`): building them costs more than
// parsing a whole command line.
void AddMemberFlag(CLI::App* run, const SectionMember<libmote::VmConfig>& member,
                   libmote::VmConfig& config, RunFlags& flags, bool for_help) {
  auto apply = [&member, &config, &flags](const std::vector<std::string>& values) {
    absl::Status s = ApplyFlag(member, values, config);
    if (!s.ok() && flags.error.empty()) flags.error = std::string(s.message());
  };
  std::string flag = FlagName(member);
  if (member.type == MemberType::kBool) {
    run->add_flag_callback(
        flag, [apply] { apply({}); }, member.help);
    return;
  }
  std::string help = member.help;
  if (for_help && member.item_syntax != nullptr) help += ": " + member.item_syntax();
  CLI::Option* option;
  if (member.type == MemberType::kList) {
    option = run->add_option_function<std::vector<std::string>>(flag, apply, help)->take_all();
  } else {
    option = run->add_option_function<std::string>(
        flag, [apply](const std::string& value) { apply({value}); }, help);
  }
  option->type_name(member.syntax);
  if (!for_help || member.type == MemberType::kList) return;
  nlohmann::json default_value = member.get(libmote::VmConfig{});
  if (default_value.is_string() && !default_value.get<std::string>().empty()) {
    option->default_str(default_value.get<std::string>());
  } else if (default_value.is_number()) {
    option->default_str(default_value.dump());
  }
}

// The jail's flags (vmm/jail.h): process-level, not part of the VM's
// configuration. Any --jail-* flag needs --jail.
void AddJailFlags(CLI::App* run, RunFlags& flags) {
  static const JailOptions defaults;
  auto jail = [&flags]() -> JailOptions& {
    if (!flags.jail) flags.jail = JailOptions{};
    return *flags.jail;
  };
  CLI::Option* dir = run->add_option_function<std::string>(
      "--jail", [jail](const std::string& d) { jail().dir = d; },
      "Run the VM jailed (needs root): new namespaces, a root at DIR (an empty directory) with "
      "only the VM's files, as --jail-uid with no capabilities");
  dir->type_name("DIR");
  run->add_option_function<uid_t>(
         "--jail-uid", [jail](uid_t uid) { jail().uid = uid; }, "The jailed VM's user")
      ->type_name("UID")
      ->default_str(std::to_string(defaults.uid))
      ->needs(dir);
  run->add_option_function<gid_t>(
         "--jail-gid", [jail](gid_t gid) { jail().gid = gid; }, "The jailed VM's group")
      ->type_name("GID")
      ->default_str(std::to_string(defaults.gid))
      ->needs(dir);
  run->add_option_function<std::string>(
         "--jail-netns", [jail](const std::string& path) { jail().netns = path; },
         "A network namespace the jailed VM joins (/var/run/netns/NAME); its TAPs are there")
      ->type_name("PATH")
      ->needs(dir);
  run->add_option_function<uint64_t>(
         "--jail-nofile", [jail](uint64_t n) { jail().nofile = n; },
         "The jailed VM's limit of open files")
      ->type_name("N")
      ->default_str(std::to_string(defaults.nofile))
      ->needs(dir);
  run->add_option_function<uint64_t>(
         "--jail-fsize", [jail](uint64_t n) { jail().fsize = n; },
         "The jailed VM's largest file size in bytes (a disk write past it fails); 0: unlimited")
      ->type_name("BYTES")
      ->needs(dir);
}

void AddRunFlags(CLI::App* run, libmote::VmConfig& config, RunFlags& flags, bool for_help) {
  // First: CLI11 runs option callbacks in definition order, so every flag
  // given beside --config overrides what the file says.
  run->add_option_function<std::string>(
      "--config",
      [&](const std::string& path) {
        libmote::Result<libmote::VmConfig> loaded = libmote::VmConfig::FromJsonFile(path);
        if (loaded.ok()) {
          config = *std::move(loaded);
        } else if (flags.error.empty()) {
          flags.error = loaded.message();
        }
      },
      "The whole VM as a JSON file (docs/vm-config.md); other flags override it");
  run->add_option_function<std::string>(
         "--timings",
         [&flags](const std::string& file) {
           flags.timings = true;
           flags.timings_file = file;
           if (file.empty()) return;
           // Opened now, so a path that cannot be written is refused before the guest runs.
           flags.timings_out.reset(std::fopen(file.c_str(), "w"));
           if (flags.timings_out == nullptr && flags.error.empty()) {
             flags.error = "--timings " + file + ": " + std::strerror(errno);
           }
         },
         "Report where start-up went: a table on stderr at exit, or JSON to FILE")
      ->expected(0, 1)
      ->type_name("[=FILE]");
  for (const SectionMember<libmote::VmConfig>& member : VmMembers()) {
    AddMemberFlag(run, member, config, flags, for_help);
  }
  AddJailFlags(run, flags);
}

// The --timings report, once the VM has ended: JSON to the file, or a table
// on stderr. Returns false (after one error line) if the file cannot be written.
bool ReportTimings(RunFlags& flags) {
  startup::Mark(startup::Phase::kExit);
  if (flags.timings_out == nullptr) {
    std::fputs(startup::Table().c_str(), stderr);
    return true;
  }
  bool written =
      std::fputs((startup::ToJson().dump(2) + "\n").c_str(), flags.timings_out.get()) >= 0;
  if (std::fclose(flags.timings_out.release()) != 0) written = false;
  if (!written) Fail("--timings " + flags.timings_file + ": " + std::strerror(errno));
  return written;
}

// Waits for the VM's end. A guest still running after its start-up had time
// to settle no longer needs the code that built it mapped (vmm/startup_pages.h);
// one that ends sooner never pays for dropping it.
libmote::Outcome WaitReleasingStartupPages(libmote::Vm& vm) {
  constexpr std::chrono::milliseconds kSettle{500};
  if (std::optional<libmote::Outcome> early = vm.WaitFor(kSettle)) return *early;
  spdlog::debug("releasing start-up pages");  // before: logging after would map it back
  ReleaseStartupPages();
  return vm.Wait();
}

// Runs the VM through libmote, as any embedder would, and maps its end to
// the process's exit code.
int RunVm(const libmote::VmConfig& config) {
  // Stop signals are read by the VM's event loop; blocking them before any
  // thread starts means one arriving while the VM is built is not lost and
  // cannot kill mote with the terminal still in raw mode.
  libmote::BlockStopSignals();
  libmote::VmOptions options;
  options.stop_on_signals = true;
  libmote::Result<std::unique_ptr<libmote::Vm>> vm = libmote::Vm::Create(config, options);
  if (!vm.ok()) return FailWith(vm.message(), vm.exit_code());
  libmote::Outcome outcome;
  libmote::Status started;
  {
    TerminalRawMode raw(config.console.kind == libmote::ConsoleKind::kStdio ? STDIN_FILENO : -1);
    started = (*vm)->Start();
    // From here this thread only waits, tears the VM down and reports: it
    // gets a filter too (the loop's list), so no thread of mote runs without.
    if (started.ok()) {
      absl::Status filtered =
          mote::InstallSeccompFilter(mote::ThreadKind::kMain, mote::SeccompModeOf(config));
      if (filtered.ok()) {
        outcome = WaitReleasingStartupPages(**vm);
      } else {
        started = libmote::Error{std::string(filtered.message())};
      }
    }
    vm->reset();  // tear down before the terminal is restored
  }
  if (!started.ok()) return FailWith(started.message(), started.exit_code());
  bool expected = outcome.exit_code == exit_code::kPowerOff || (outcome.exit_code & 1) != 0;
  if (expected) {
    spdlog::debug("{} (exit code {})", outcome.detail, outcome.exit_code);
  } else {
    spdlog::warn("{} (exit code {})", outcome.detail, outcome.exit_code);
  }
  return outcome.exit_code;
}

// mote's threads (vCPUs, the event loop, block workers) run small frames.
// glibc's default 8 MiB stack is a mapping where transparent huge pages can
// back the first touched page with 2 MiB; one under 2 MiB cannot hold one.
// Sanitizer builds keep the default: their frames are larger.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MOTE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MOTE_SANITIZED 1
#endif
#endif
void UseSmallThreadStacks() {
#ifndef MOTE_SANITIZED
  constexpr size_t kStackBytes = 1 << 20;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return;
  if (pthread_attr_setstacksize(&attr, kStackBytes) == 0) pthread_setattr_default_np(&attr);
  pthread_attr_destroy(&attr);
#endif
}

// True if a help screen may be printed: only then is help text worth building.
bool AsksForHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "--help-all") return true;
  }
  return false;
}

// One malloc arena for all threads: mote's threads allocate little after
// start-up, and each new arena costs a 64 MiB reservation, its page tables and
// system calls on the thread's first malloc (a vCPU's first exit).
void UseOneMallocArena() { mallopt(M_ARENA_MAX, 1); }

// Ends `mote run` with `code`. By now the VM is torn down and every report
// written; what is left (the command line's objects, the logger registry)
// the kernel takes back anyway, and destroying it costs a tiny guest's run
// milliseconds. Sanitizer builds return normally, so the leak check runs.
int EndRun(int code) {
#ifndef MOTE_SANITIZED
  std::fflush(nullptr);
  std::_Exit(code);
#endif
  return code;
}

int Main(int argc, char** argv) {
  int64_t main_ns = startup::MonotonicNs();
  UseSmallThreadStacks();
  UseOneMallocArena();
  std::string_view command = argc > 1 ? argv[1] : "";
  // CLI11 would answer an unknown first word with "A subcommand is required".
  if (!command.empty() && command[0] != '-' && command != "run" && command != "ctl") {
    return Fail(std::string("unknown command '") + argv[1] +
                "': try `mote run` or `mote ctl` (--help)");
  }
  // A subcommand's flags are defined only when it (or help) is asked for:
  // `mote run` is a guest's start-up, and defining flags is most of parsing.
  bool help = AsksForHelp(argc, argv);
  libmote::VmConfig config;
  RunFlags flags;
  CtlRequest ctl;
  CLI::App app{"mote: a minimal virtual machine monitor on Linux KVM"};
  app.set_version_flag("--version", libmote::Version());
  app.require_subcommand(1);
  CLI::App* run = app.add_subcommand("run", "Boot a guest with its console on this terminal");
  if (command == "run" || help) AddRunFlags(run, config, flags, help);
  CLI::App* ctl_app =
      app.add_subcommand("ctl", "Send one QMP command to a running mote, or follow its events");
  if (command == "ctl" || help) AddCtlFlags(ctl_app, ctl);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return Fail(e.what());
  }
  if (ctl_app->parsed()) return RunCtl(ctl);
  if (!flags.error.empty()) return Fail(flags.error);
  if (flags.jail) {
    std::vector<int> keep;
    if (flags.timings_out != nullptr) keep.push_back(fileno(flags.timings_out.get()));
    absl::StatusOr<std::optional<int>> jailed = EnterJail(*flags.jail, config, keep);
    if (!jailed.ok()) return Fail(std::string(jailed.status().message()));
    if (jailed->has_value()) return EndRun(**jailed);  // the parent, after the VM's end
  }
  if (!flags.timings) return EndRun(RunVm(config));
  startup::Enable(main_ns);
  startup::Mark(startup::Phase::kConfigParsed);
  int code = RunVm(config);
  return EndRun(ReportTimings(flags) ? code : exit_code::kHostError);
}

}  // namespace
}  // namespace mote

int main(int argc, char** argv) { return mote::Main(argc, argv); }
