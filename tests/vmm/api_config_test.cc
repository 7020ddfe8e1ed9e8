// libmote's public VmConfig: the flag syntax parsers, JSON both ways, and the
// checks Vm::Create runs (vmm/api/config_bridge.h), without KVM.
#include <catch2/catch.hpp>
#include <string>

#include "mote/config.h"
#include "mote/vm.h"
#include "nlohmann/json.hpp"
#include "tests/vmm/config_json_test_paths.h"
#include "vmm/api/config_bridge.h"

namespace libmote {
namespace {

using nlohmann::json;

std::string InternalError(const VmConfig& config) {
  absl::StatusOr<mote::api::InternalConfig> internal = mote::api::ToInternal(config);
  REQUIRE_FALSE(internal.ok());
  return std::string(internal.status().message());
}

DiskConfig Disk(const std::string& path) {
  DiskConfig disk;
  disk.path = path;
  return disk;
}

NetConfig NetFd(int fd) {
  NetConfig net;
  net.fd = fd;
  return net;
}

VmConfig WithKernel() {
  VmConfig config;
  config.kernel = "k";
  return config;
}

TEST_CASE("DiskConfig::Parse reads --disk syntax and leaves the id to the position",
          "[api_config]") {
  Result<DiskConfig> disk =
      DiskConfig::Parse("path=a.img,readonly=on,cache=none,serial=S,queues=4,aio=threads");
  REQUIRE(disk.ok());
  CHECK(disk->path == "a.img");
  CHECK(disk->readonly);
  CHECK(disk->cache == "none");
  CHECK(disk->serial == "S");
  CHECK(disk->id.empty());
  CHECK(disk->queues == 4);
  CHECK(disk->aio == "threads");
  CHECK(DiskConfig::Parse("path=a.img,id=root")->id == "root");
  CHECK(DiskConfig::Parse("readonly=on").message() == "--disk 'readonly=on': no path=FILE");
  CHECK(DiskConfig::Parse("path=a,cache=fast").message() ==
        "--disk cache=fast: expected writeback or none");
}

TEST_CASE("NetConfig::Parse reads --net syntax", "[api_config]") {
  Result<NetConfig> net = NetConfig::Parse("tap=tap0,mac=52:54:00:aa:bb:cc");
  REQUIRE(net.ok());
  CHECK(net->tap == "tap0");
  CHECK(net->fd == -1);
  CHECK(net->mac == "52:54:00:aa:bb:cc");
  Result<NetConfig> by_fd = NetConfig::Parse("fd=5");
  REQUIRE(by_fd.ok());
  CHECK(by_fd->fd == 5);
  CHECK(by_fd->mac.empty());  // the default follows its position
  CHECK_FALSE(NetConfig::Parse("tap=a,fd=3").ok());
}

TEST_CASE("VmConfig JSON round trip keeps every member", "[api_config]") {
  Result<VmConfig> loaded =
      VmConfig::FromJsonFile(std::string(MOTE_SOURCE_ROOT) + "/examples/vm.json");
  INFO(loaded.message());
  REQUIRE(loaded.ok());
  CHECK(loaded->name == "web1");
  CHECK(loaded->cpus == 2);
  CHECK(loaded->memory == "512M");
  CHECK(loaded->timeout == 120);
  REQUIRE(loaded->disks.size() == 2);
  CHECK(loaded->disks[0].id == "root");
  CHECK(loaded->disks[1].id == "disk1");  // named by its position
  CHECK(loaded->disks[1].cache == "none");
  REQUIRE(loaded->nets.size() == 2);
  CHECK(loaded->nets[1].fd == 3);
  CHECK(loaded->nets[1].mac == "52:54:00:12:34:57");
  Result<VmConfig> again = VmConfig::FromJson(loaded->ToJson());
  REQUIRE(again.ok());
  CHECK(json::parse(again->ToJson()) == json::parse(loaded->ToJson()));
}

TEST_CASE("VmConfig defaults are the flags' defaults", "[api_config]") {
  absl::StatusOr<mote::api::InternalConfig> internal = mote::api::ToInternal(WithKernel());
  REQUIRE(internal.ok());
  mote::VmConfig defaults;
  CHECK(internal->config.cpus == defaults.cpus);
  CHECK(internal->config.memory_bytes == defaults.memory_bytes);
  CHECK(internal->config.kvm_path == defaults.kvm_path);
  CHECK_FALSE(internal->config.timeout.has_value());
  CHECK(internal->extras.log_level.empty());  // the process's level stays as it is
  // A disk without an id and a NIC without a MAC get their positions' names.
  VmConfig config = WithKernel();
  config.disks.push_back(Disk("a.img"));
  config.disks.push_back(Disk("b.img"));
  config.nets.push_back(NetFd(4));
  config.nets.push_back(NetFd(5));
  internal = mote::api::ToInternal(config);
  REQUIRE(internal.ok());
  CHECK(internal->config.disks[1].id == "disk1");
  CHECK(internal->config.nets[1].mac[5] == 0x57);
}

TEST_CASE("Vm::Create's checks name the member, with no file label", "[api_config]") {
  VmConfig config;
  CHECK(InternalError(config) == "kernel: missing (required)");
  config = WithKernel();
  config.cpus = 255;
  CHECK(InternalError(config) == "cpus: expected an integer from 1 to 254");
  config = WithKernel();
  config.memory = "2X";
  CHECK(InternalError(config) == "memory: memory size '2X': unknown suffix 'X'");
  config = WithKernel();
  config.timeout = -1;
  CHECK(InternalError(config).rfind("timeout: ", 0) == 0);
  config = WithKernel();
  config.disks.push_back(Disk("a.img"));
  config.disks[0].cache = "fast";
  CHECK(InternalError(config) == "disks[0].cache: --disk cache=fast: expected writeback or none");
  config = WithKernel();
  config.nets.push_back(NetConfig{});
  CHECK(InternalError(config).rfind("nets[0]", 0) == 0);
  config = WithKernel();
  config.console = "tty9";
  CHECK(InternalError(config) == "console: console 'tty9': expected stdio, none or file:PATH");
  config = WithKernel();
  config.expect = "([";
  CHECK(InternalError(config).find("not a valid regex") != std::string::npos);
}

TEST_CASE("A file's errors carry the config label", "[api_config]") {
  CHECK(VmConfig::FromJson(R"({"kernel": "k", "cpus": 0})").message() ==
        "config: cpus: expected an integer from 1 to 254");
  CHECK(VmConfig::FromJsonFile("/nonexistent.json")
            .message()
            .rfind("cannot read config /nonexistent.json", 0) == 0);
}

TEST_CASE("SetLogLevel takes only known levels", "[api_config]") {
  CHECK(SetLogLevel("warn").ok());
  CHECK(SetLogLevel("loud").message() ==
        "log level 'loud': expected trace, debug, info, warn, error or off");
  CHECK(SetLogLevel("info").ok());
}

TEST_CASE("Vm commands before Start fail with a reason", "[api_config]") {
  // No KVM is touched before Start: Create only checks the config.
  Result<std::unique_ptr<Vm>> vm = Vm::Create(WithKernel());
  REQUIRE(vm.ok());
  CHECK((*vm)->Pause().message() == "the VM has not been started");
  CHECK((*vm)->QueryStatus().message() == "the VM has not been started");
  Outcome outcome = (*vm)->Wait();
  CHECK(outcome.exit_code == 2);
  CHECK(outcome.reason == "x-mote-host-error");
  CHECK((*vm)->Execute("query-status", "not json").message().rfind("arguments are not JSON", 0) ==
        0);
}

}  // namespace
}  // namespace libmote
