// The mote command line: `mote run ...` fills a libmote::VmConfig from flags
// (and --config), runs the VM through libmote like any embedder, and exits
// with the code its outcome maps to (vmm/outcome.h); `mote ctl SOCKET ...` is
// a QMP client for scripts (vmm/ctl.h). This is the only place that calls
// exit() or catches CLI11's exceptions.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "mote/config.h"
#include "mote/vm.h"
#include "spdlog/spdlog.h"
#include "vmm/console.h"
#include "vmm/ctl.h"
#include "vmm/outcome.h"

namespace mote {
namespace {

// Prints one clear line and returns the host-error code.
int Fail(const std::string& message) {
  std::fprintf(stderr, "mote: error: %s\n", message.c_str());
  return exit_code::kHostError;
}

// The flags that are not simply a VmConfig member.
struct RunFlags {
  std::vector<std::string> disks;
  std::vector<std::string> nets;
  std::string config_error;  // from --config
};

void AddRunFlags(CLI::App* run, libmote::VmConfig& config, RunFlags& flags) {
  // First: CLI11 runs option callbacks in definition order, so every flag
  // given beside --config overrides what the file says.
  run->add_option_function<std::string>(
      "--config",
      [&](const std::string& path) {
        libmote::Result<libmote::VmConfig> loaded = libmote::VmConfig::FromJsonFile(path);
        if (loaded.ok()) {
          config = *std::move(loaded);
        } else {
          flags.config_error = loaded.message();
        }
      },
      "The whole VM as a JSON file (docs/vm-config.md); other flags override it");
  run->add_option("--kernel", config.kernel,
                  "Kernel image: bzImage, ELF with a PVH note, Multiboot ELF, or x86-64 ELF");
  run->add_option("--initrd", config.initrd, "Initial ramdisk (Linux) or first module");
  run->add_option("--cmdline", config.cmdline, "Kernel command line");
  run->add_option("--cpus", config.cpus, "Number of vCPUs")->capture_default_str();
  run->add_option("--memory", config.memory, "Guest RAM: 512 (MiB), 512M, 2G ...")
      ->capture_default_str();
  run->add_option("--console", config.console, "Guest console: stdio, file:PATH or none")
      ->capture_default_str();
  run->add_option("--cpu-template", config.cpu_template, "CPU features: host or minimal")
      ->capture_default_str();
  run->add_option("--pit", config.pit,
                  "In-kernel PIT: on, off, or auto (on for Linux bzImage kernels)")
      ->capture_default_str();
  run->add_option("--timeout", config.timeout,
                  "Stop the guest after SECONDS (exit code 8); 0: never");
  run->add_option(
      "--expect", config.expect,
      "Exit 0 as soon as a console line matches this regex (10 if the guest ends first)");
  run->add_option("--on-reboot", config.on_reboot,
                  "What a guest reboot does: exit (code 4) or restart")
      ->capture_default_str();
  run->add_option("--disk", flags.disks,
                  "A virtio-blk disk: " + libmote::DiskConfig::Syntax() +
                      " (a value in double quotes may hold commas)")
      ->take_all();
  run->add_option("--net", flags.nets,
                  "A virtio-net NIC on a TAP, by name or an inherited fd (one of the two): " +
                      libmote::NetConfig::Syntax())
      ->take_all();
  run->add_option("--transport", config.transport,
                  "How virtio devices attach: pci (virtio-pci, MSI-X) or mmio (virtio-mmio)")
      ->capture_default_str();
  run->add_flag("--rng", config.rng, "Give the guest a virtio-rng device backed by getrandom");
  run->add_option("--api-socket", config.api_socket,
                  "Serve the QMP control protocol on this Unix socket (created mode 0600)");
  run->add_flag("--paused", config.paused, "Start with the vCPUs stopped until a QMP `cont`");
  run->add_option("--name", config.name, "The VM's name (QMP query-name)");
  run->add_option("--kvm-device", config.kvm_device, "The KVM device to open")
      ->capture_default_str();
  run->add_option("--log-level", config.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
}

// --disk and --net on the command line replace a --config file's lists.
absl::Status ApplyDeviceFlags(const CLI::App& run, const RunFlags& flags,
                              libmote::VmConfig& config) {
  if (run.count("--disk") > 0) config.disks.clear();
  for (const std::string& text : flags.disks) {
    libmote::Result<libmote::DiskConfig> disk = libmote::DiskConfig::Parse(text);
    if (!disk.ok()) return absl::InvalidArgumentError(disk.message());
    config.disks.push_back(*disk);
  }
  if (run.count("--net") > 0) config.nets.clear();
  for (const std::string& text : flags.nets) {
    libmote::Result<libmote::NetConfig> net = libmote::NetConfig::Parse(text);
    if (!net.ok()) return absl::InvalidArgumentError(net.message());
    config.nets.push_back(*net);
  }
  return absl::OkStatus();
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
  if (!vm.ok()) return Fail(vm.message());
  libmote::Outcome outcome;
  libmote::Status started;
  {
    TerminalRawMode raw(config.console == "stdio" ? STDIN_FILENO : -1);
    started = (*vm)->Start();
    if (started.ok()) outcome = (*vm)->Wait();
    vm->reset();  // tear down before the terminal is restored
  }
  if (!started.ok()) return Fail(started.message());
  bool expected = outcome.exit_code == exit_code::kPowerOff || (outcome.exit_code & 1) != 0;
  if (expected) {
    spdlog::debug("{} (exit code {})", outcome.detail, outcome.exit_code);
  } else {
    spdlog::warn("{} (exit code {})", outcome.detail, outcome.exit_code);
  }
  return outcome.exit_code;
}

int Main(int argc, char** argv) {
  libmote::VmConfig config;
  RunFlags flags;
  CtlRequest ctl;
  CLI::App app{"mote: a minimal virtual machine monitor on Linux KVM"};
  app.set_version_flag("--version", libmote::Version());
  app.require_subcommand(1);
  CLI::App* run = app.add_subcommand("run", "Boot a guest with its console on this terminal");
  AddRunFlags(run, config, flags);
  CLI::App* ctl_app =
      app.add_subcommand("ctl", "Send one QMP command to a running mote, or follow its events");
  AddCtlFlags(ctl_app, ctl);
  // CLI11 would answer an unknown first word with "A subcommand is required".
  if (argc > 1 && argv[1][0] != '-' && std::string(argv[1]) != "run" &&
      std::string(argv[1]) != "ctl") {
    return Fail(std::string("unknown command '") + argv[1] +
                "': try `mote run` or `mote ctl` (--help)");
  }
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
  if (!flags.config_error.empty()) return Fail(flags.config_error);
  if (absl::Status s = ApplyDeviceFlags(*run, flags, config); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  return RunVm(config);
}

}  // namespace
}  // namespace mote

int main(int argc, char** argv) { return mote::Main(argc, argv); }
