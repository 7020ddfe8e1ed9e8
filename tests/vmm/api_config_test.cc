// libmote's VmConfig, the one configuration model: the flag syntax parsers,
// JSON both ways, SetMember, and the checks Vm::Create runs, without KVM.
#include <catch2/catch.hpp>
#include <string>

#include "mote/config.h"
#include "mote/vm.h"
#include "nlohmann/json.hpp"
#include "tests/vmm/config_json_test_paths.h"
#include "vmm/vm_config.h"

namespace libmote {
namespace {

using nlohmann::json;

std::string CreateError(const VmConfig& config) {
  Result<std::unique_ptr<Vm>> vm = Vm::Create(config);
  REQUIRE_FALSE(vm.ok());
  return vm.message();
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
  CHECK(disk->cache_none);
  CHECK(disk->serial == "S");
  CHECK(disk->id.empty());
  CHECK(disk->queues == 4);
  CHECK(disk->aio_threads);
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
  CHECK(net->mac == std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc});
  Result<NetConfig> by_fd = NetConfig::Parse("fd=5");
  REQUIRE(by_fd.ok());
  CHECK(by_fd->fd == 5);
  CHECK(by_fd->mac == std::array<uint8_t, 6>{});  // the default follows its position
  CHECK_FALSE(NetConfig::Parse("tap=a,fd=3").ok());
}

TEST_CASE("VmConfig JSON round trip keeps every member", "[api_config]") {
  Result<VmConfig> loaded =
      VmConfig::FromJsonFile(std::string(MOTE_SOURCE_ROOT) + "/examples/vm.json");
  INFO(loaded.message());
  REQUIRE(loaded.ok());
  CHECK(loaded->name == "web1");
  CHECK(loaded->cpus == 2);
  CHECK(loaded->memory_bytes == 512ull << 20);
  CHECK(loaded->timeout == 120);
  REQUIRE(loaded->disks.size() == 2);
  CHECK(loaded->disks[0].id == "root");
  CHECK(loaded->disks[1].id == "disk1");  // named by its position
  CHECK(loaded->disks[1].cache_none);
  REQUIRE(loaded->nets.size() == 2);
  CHECK(loaded->nets[1].fd == 3);
  CHECK(loaded->nets[1].mac == std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0x12, 0x34, 0x57});
  Result<VmConfig> again = VmConfig::FromJson(loaded->ToJson());
  REQUIRE(again.ok());
  CHECK(json::parse(again->ToJson()) == json::parse(loaded->ToJson()));
}

TEST_CASE("Unnamed disks and NICs get their positions' names", "[api_config]") {
  VmConfig config = WithKernel();
  config.disks.push_back(Disk("a.img"));
  config.disks.push_back(Disk("b.img"));
  config.nets.push_back(NetFd(4));
  config.nets.push_back(NetFd(5));
  CHECK(json::parse(config.ToJson())["disks"][1].count("id") == 0);  // unset, not written
  mote::FillDefaultNames(config);
  CHECK(config.disks[1].id == "disk1");
  CHECK(config.nets[1].mac[5] == 0x57);
  // A name given by hand that one by position would take is a clash.
  config = WithKernel();
  config.disks.push_back(Disk("a.img"));
  config.disks.push_back(Disk("b.img"));
  config.disks[0].id = "disk1";
  CHECK(CreateError(config) == "two disks are named 'disk1'");
}

TEST_CASE("SetMember sets one member from JSON, checked as a description's", "[api_config]") {
  VmConfig config;
  CHECK(config.SetMember("memory", R"("2G,hugepages=on")").ok());
  CHECK(config.memory_bytes == 2ull << 30);
  CHECK(config.hugepages);
  CHECK(config.SetMember("disks", R"([{"path": "a,b.img"}])").ok());
  REQUIRE(config.disks.size() == 1);
  CHECK(config.disks[0].path == "a,b.img");
  CHECK(config.kernel.empty());  // the check's stand-in kernel stays out
  CHECK(config.SetMember("kernel", R"("vmlinuz")").ok());
  CHECK(config.kernel == "vmlinuz");
  CHECK(config.SetMember("cpus", "0").message() == "cpus: expected an integer from 1 to 254");
  CHECK(config.SetMember("cpus", "{").message() == "cpus: not JSON");
  CHECK(config.SetMember("turbo", "true").message().rfind("turbo: unknown member", 0) == 0);
  CHECK(config.cpus == 1);  // failed sets change nothing
}

TEST_CASE("Vm::Create's checks name the member, with no file label", "[api_config]") {
  VmConfig config;
  CHECK(CreateError(config) == "kernel: missing (required)");
  config = WithKernel();
  config.cpus = 255;
  CHECK(CreateError(config) == "cpus: expected an integer from 1 to 254");
  config = WithKernel();
  config.memory_bytes = 2;
  CHECK(CreateError(config) == "memory: not a multiple of 4 KiB");
  config.memory_bytes = 4096;
  CHECK(CreateError(config) == "memory: '4K' is too small: mote needs at least 4 MiB");
  config = WithKernel();
  config.timeout = -1;
  CHECK(CreateError(config).rfind("timeout: ", 0) == 0);
  config = WithKernel();
  config.disks.push_back(Disk("a.img"));
  config.disks[0].queues = 17;
  CHECK(CreateError(config) == "disks[0].queues: --disk queues=17: expected 1 to 16");
  config = WithKernel();
  config.nets.push_back(NetConfig{});
  CHECK(CreateError(config).rfind("nets[0]", 0) == 0);
  config = WithKernel();
  config.console = {ConsoleKind::kFile, ""};
  CHECK(CreateError(config) == "console: console 'file:': expected stdio, none or file:PATH");
  config = WithKernel();
  config.expect = "([";
  CHECK(CreateError(config).find("not a valid regex") != std::string::npos);
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
