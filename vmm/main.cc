// The mote command line: `mote run ...` builds a VmConfig from flags, runs
// the VM and exits with the code its outcome maps to (vmm/outcome.h);
// `mote ctl SOCKET ...` is a QMP client for scripts (vmm/ctl.h). This is the
// only place that calls exit() or catches CLI11's exceptions.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/clock.h"
#include "vmm/base/logging.h"
#include "vmm/config_json.h"
#include "vmm/console.h"
#include "vmm/outcome.h"
#include "vmm/ctl.h"
#include "vmm/vm.h"
#include "vmm/vm_config.h"
#include "vmm/vm_runner.h"

namespace mote {
namespace {


// Prints one clear line and returns the host-error code.
int Fail(const std::string& message) {
  std::fprintf(stderr, "mote: error: %s\n", message.c_str());
  return exit_code::kHostError;
}

struct RunFlags {
  std::string memory = "128M";
  std::string console = "stdio";
  std::string pit = "auto";
  std::string on_reboot = "exit";
  std::string transport = "pci";
  double timeout_seconds = 0;
  std::string log_level = "info";
  std::vector<std::string> disks;
  std::vector<std::string> nets;
};

void AddRunFlags(CLI::App* run, VmConfig& config, RunFlags& flags, RunOptions& options,
                 absl::Status& config_status) {
  // First: CLI11 runs option callbacks in definition order, so every flag
  // given beside --config overrides what the file says.
  run->add_option_function<std::string>(
      "--config",
      [&](const std::string& path) {
        VmConfigExtras extras{options.api_socket, options.paused, options.name, flags.log_level};
        config_status = LoadVmConfigFile(path, config, extras);
        options.api_socket = extras.api_socket;
        options.paused = extras.paused;
        options.name = extras.name;
        flags.log_level = extras.log_level;
      },
      "The whole VM as a JSON file (docs/vm-config.md); other flags override it");
  run->add_option("--kernel", config.kernel,
                  "Kernel image: bzImage, ELF with a PVH note, Multiboot ELF, or x86-64 ELF");
  run->add_option("--initrd", config.initrd, "Initial ramdisk (Linux) or first module");
  run->add_option("--cmdline", config.cmdline, "Kernel command line");
  run->add_option("--cpus", config.cpus, "Number of vCPUs")->capture_default_str();
  run->add_option("--memory", flags.memory, "Guest RAM: 512 (MiB), 512M, 2G ...")
      ->capture_default_str();
  run->add_option("--console", flags.console, "Guest console: stdio, file:PATH or none")
      ->capture_default_str();
  run->add_option("--cpu-template", config.cpu_template, "CPU features: host or minimal")
      ->capture_default_str();
  run->add_option("--pit", flags.pit,
                  "In-kernel PIT: on, off, or auto (on for Linux bzImage kernels)")
      ->capture_default_str();
  run->add_option("--timeout", flags.timeout_seconds, "Stop the guest after SECONDS (exit code 8)");
  run->add_option("--expect", config.expect,
                  "Exit 0 as soon as a console line matches this regex (10 if the guest ends first)");
  run->add_option("--on-reboot", flags.on_reboot, "What a guest reboot does: exit (code 4) or restart")
      ->capture_default_str();
  run->add_option("--disk", flags.disks,
                  "A virtio-blk disk: path=FILE[,readonly=on][,cache=writeback|none][,serial=ID][,id=NAME]")
      ->take_all();
  run->add_option("--net", flags.nets, "A virtio-net NIC on a TAP: tap=NAME[,mac=MAC] or fd=N[,mac=MAC]")
      ->take_all();
  run->add_option("--transport", flags.transport,
                  "How virtio devices attach: pci (virtio-pci, MSI-X) or mmio (virtio-mmio)")
      ->capture_default_str();
  run->add_flag("--rng", config.rng, "Give the guest a virtio-rng device backed by getrandom");
  run->add_option("--api-socket", options.api_socket,
                  "Serve the QMP control protocol on this Unix socket (created mode 0600)");
  run->add_flag("--paused", options.paused, "Start with the vCPUs stopped until a QMP `cont`");
  run->add_option("--name", options.name, "The VM's name (QMP query-name)");
  run->add_option("--kvm-device", config.kvm_path, "The KVM device to open")->capture_default_str();
  run->add_option("--log-level", flags.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
}

// Applies the flags that were given (a --config file may have set the rest).
absl::Status ApplyRunFlags(const CLI::App& run, const RunFlags& flags, VmConfig& config) {
  auto given = [&run](const char* flag) { return run.count(flag) > 0; };
  if (given("--memory")) {
    absl::StatusOr<uint64_t> memory = ParseMemorySize(flags.memory);
    if (!memory.ok()) return memory.status();
    config.memory_bytes = *memory;
  }
  if (given("--console")) {
    absl::StatusOr<ConsoleConfig> console = ParseConsole(flags.console);
    if (!console.ok()) return console.status();
    config.console = *console;
  }
  if (given("--pit")) {
    absl::StatusOr<PitMode> pit = ParsePitMode(flags.pit);
    if (!pit.ok()) return pit.status();
    config.pit = *pit;
  }
  if (given("--on-reboot")) {
    absl::StatusOr<OnReboot> on_reboot = ParseOnReboot(flags.on_reboot);
    if (!on_reboot.ok()) return on_reboot.status();
    config.on_reboot = *on_reboot;
  }
  if (given("--transport")) {
    absl::StatusOr<VirtioTransport> transport = ParseTransport(flags.transport);
    if (!transport.ok()) return transport.status();
    config.transport = *transport;
  }
  // Disks and NICs on the command line replace the file's lists.
  if (given("--disk")) config.disks.clear();
  for (const std::string& text : flags.disks) {
    absl::StatusOr<DiskConfig> disk = ParseDisk(text, config.disks.size());
    if (!disk.ok()) return disk.status();
    config.disks.push_back(*disk);
  }
  if (given("--net")) config.nets.clear();
  for (const std::string& text : flags.nets) {
    absl::StatusOr<NetConfig> net = ParseNet(text, config.nets.size());
    if (!net.ok()) return net.status();
    config.nets.push_back(*net);
  }
  if (given("--timeout")) {
    if (flags.timeout_seconds < 0 || flags.timeout_seconds > 1e9) {
      return absl::InvalidArgumentError("--timeout must be a positive number of seconds");
    }
    // 0 means none (and overrides a file's timeout).
    config.timeout = flags.timeout_seconds > 0
                         ? std::optional<absl::Duration>(absl::Seconds(flags.timeout_seconds))
                         : std::nullopt;
  }
  return config.Validate();
}

int RunVm(const VmConfig& config, const RunOptions& options) {
  // Stop signals are read by each Vm's event loop; blocking them from here on
  // means one arriving while a VM is being built is not lost and cannot kill
  // mote with the terminal still in raw mode.
  sigset_t stop_signals = Vm::StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  absl::StatusOr<std::unique_ptr<VmRunner>> runner = VmRunner::Create(config, options);
  if (!runner.ok()) return Fail(std::string(runner.status().message()));
  absl::StatusOr<VmOutcome> outcome;
  {
    TerminalRawMode raw(config.console.kind == ConsoleKind::kStdio ? STDIN_FILENO : -1);
    outcome = (*runner)->Run();
    runner->reset();  // tear down before the terminal is restored
  }
  if (!outcome.ok()) return Fail(std::string(outcome.status().message()));
  int code = ExitCodeFor(*outcome);
  if (outcome->kind == OutcomeKind::kPowerOff || outcome->kind == OutcomeKind::kExpectMatched ||
      outcome->kind == OutcomeKind::kDebugExit || outcome->kind == OutcomeKind::kQuit) {
    spdlog::debug("{} (exit code {})", outcome->detail, code);
  } else {
    spdlog::warn("{} (exit code {})", outcome->detail, code);
  }
  return code;
}

int Main(int argc, char** argv) {
  VmConfig config;
  config.launch_time = absl::Now();
  RunFlags flags;
  RunOptions options;
  absl::Status config_status;
  CtlRequest ctl;
  CLI::App app{"mote: a minimal virtual machine monitor on Linux KVM"};
  app.set_version_flag("--version", kMoteVersion);
  app.require_subcommand(1);
  CLI::App* run = app.add_subcommand("run", "Boot a guest with its console on this terminal");
  AddRunFlags(run, config, flags, options, config_status);
  CLI::App* ctl_app = app.add_subcommand("ctl", "Send one QMP command to a running mote, or follow its events");
  AddCtlFlags(ctl_app, ctl);
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
  InitLogging(flags.log_level);
  if (!config_status.ok()) return Fail(std::string(config_status.message()));
  if (absl::Status s = ApplyRunFlags(*run, flags, config); !s.ok()) return Fail(std::string(s.message()));
  return RunVm(config, options);
}

}  // namespace
}  // namespace mote

int main(int argc, char** argv) { return mote::Main(argc, argv); }
