#include "vmm/config_json.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "tests/vmm/config_json_test_paths.h"

namespace mote {
namespace {

using nlohmann::json;

std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(std::string(MOTE_SOURCE_ROOT) + "/" + relative);
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

json Schema() { return json::parse(ReadSourceFile("docs/vm-config.schema.json")); }

// `members` ("\"cpus\": 2, ...") applied with a kernel to a default VmConfig.
absl::Status Apply(const std::string& members, VmConfig& config) {
  return ApplyVmConfigJson("{\"kernel\": \"k\"" + (members.empty() ? "" : ", " + members) + "}",
                           config);
}

VmConfig Load(const std::string& members) {
  VmConfig config;
  absl::Status s = Apply(members, config);
  INFO(s.message());
  REQUIRE(s.ok());
  return config;
}

std::string Error(const std::string& members) {
  VmConfig config;
  return std::string(Apply(members, config).message());
}

std::set<std::string> Keys(const json& object) {
  std::set<std::string> keys;
  for (const auto& item : object.items()) keys.insert(item.key());
  return keys;
}

// The names an "unknown member (expected one of: a, b)" error lists.
std::set<std::string> NamesInError(const std::string& message) {
  size_t start = message.find("one of: ");
  size_t end = message.rfind(')');
  REQUIRE(start != std::string::npos);
  REQUIRE(end != std::string::npos);
  start += 8;
  std::set<std::string> names;
  for (absl::string_view name : absl::StrSplit(message.substr(start, end - start), ", ")) {
    names.insert(std::string(name));
  }
  return names;
}

TEST_CASE("The worked example loads, and round-trips through VmConfigToJson", "[config_json]") {
  VmConfig config;
  absl::Status s = LoadVmConfigFile(std::string(MOTE_SOURCE_ROOT) + "/examples/vm.json", config);
  INFO(s.message());
  REQUIRE(s.ok());
  CHECK(config.kernel == "build/guest-images/linux/vmlinuz");
  CHECK(config.initrd == "build/guest-images/linux/initramfs.cpio.gz");
  CHECK(config.cmdline == "console=ttyS0 quiet");
  CHECK(config.cpus == 2);
  CHECK(config.memory_bytes == (512ull << 20));
  CHECK(config.cpu == "minimal");
  CHECK(config.pit == PitMode::kAuto);
  CHECK(config.console.kind == ConsoleKind::kFile);
  CHECK(config.console.path == "/tmp/web1-console.log");
  CHECK(config.transport == VirtioTransport::kPci);
  CHECK(config.rng);
  CHECK(config.timeout == 120);
  CHECK(config.expect == "MOTE-LINUX-BOOT-OK");
  CHECK(config.on_reboot == OnReboot::kRestart);
  CHECK(config.kvm_device == "/dev/kvm");
  REQUIRE(config.disks.size() == 2);
  CHECK(config.disks[0].path == "/var/lib/mote/web1-root.img");
  CHECK(config.disks[0].id == "root");
  CHECK(config.disks[0].serial == "web1-root");
  CHECK(config.disks[0].queues == 2);
  CHECK_FALSE(config.disks[0].readonly);
  CHECK(config.disks[1].id == "disk1");
  CHECK(config.disks[1].readonly);
  CHECK(config.disks[1].cache_none);
  CHECK(config.disks[1].aio_threads);
  REQUIRE(config.nets.size() == 2);
  CHECK(config.nets[0].tap == "tap-web1");
  CHECK(config.nets[0].mac == std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0xab, 0xcd, 0x01});
  CHECK(config.nets[1].fd == 3);
  CHECK(config.nets[1].mac == std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0x12, 0x34, 0x57});
  CHECK(config.api_socket == "/run/mote/web1.sock");
  CHECK_FALSE(config.paused);
  CHECK(config.name == "web1");
  CHECK(config.log_level == "warn");

  json dumped = VmConfigToJson(config);
  VmConfig again;
  REQUIRE(ApplyVmConfigJson(dumped.dump(), again).ok());
  CHECK(VmConfigToJson(again) == dumped);
  // Every member of the example says the same after the trip.
  json example = json::parse(ReadSourceFile("examples/vm.json"));
  for (const char* key : {"name", "kernel", "cpus", "memory", "console", "timeout", "expect"}) {
    INFO(key);
    CHECK(dumped[key] == example[key]);
  }
}

TEST_CASE("Absent members leave what the config held", "[config_json]") {
  VmConfig defaults;
  defaults.kernel = "k";
  VmConfig config;
  REQUIRE(Apply("", config).ok());
  CHECK(VmConfigToJson(config) == VmConfigToJson(defaults));
  CHECK(config.timeout == 0);

  // On top of values set before (by a caller or earlier file), not defaults.
  config.cpus = 3;
  config.disks.push_back(*ParseDisk("path=a.img"));
  config.name = "kept";
  REQUIRE(Apply("\"memory\": \"1G\"", config).ok());
  CHECK(config.cpus == 3);
  CHECK(config.disks.size() == 1);
  CHECK(config.name == "kept");
  CHECK(config.memory_bytes == (1ull << 30));
}

TEST_CASE("Each top-level member sets its field", "[config_json]") {
  CHECK(Load("\"initrd\": \"i.cpio\"").initrd == "i.cpio");
  CHECK(Load("\"cmdline\": \"a b=c\"").cmdline == "a b=c");
  CHECK(Load("\"cpus\": 254").cpus == 254);
  CHECK(Load("\"cpus\": 4.0").cpus == 4);  // a JSON Schema integer
  CHECK(Load("\"cpu\": \"minimal,-x2apic\"").cpu == "minimal,-x2apic");
  CHECK(Load("\"pit\": \"off\"").pit == PitMode::kOff);
  CHECK(Load("\"console\": \"none\"").console.kind == ConsoleKind::kNone);
  CHECK(Load("\"console\": \"file:/tmp/c,1.log\"").console.path == "/tmp/c,1.log");
  CHECK(Load("\"transport\": \"mmio\"").transport == VirtioTransport::kMmio);
  CHECK(Load("\"rng\": true").rng);
  CHECK(Load("\"timeout\": 0.25").timeout == 0.25);
  CHECK(Load("\"expect\": \"^PASS\"").expect == "^PASS");
  CHECK(Load("\"on_reboot\": \"restart\"").on_reboot == OnReboot::kRestart);
  CHECK(Load("\"kvm_device\": \"/dev/kvm2\"").kvm_device == "/dev/kvm2");
  CHECK(Load("\"dirty_ring\": 0").dirty_ring == 0);
  CHECK(Load("\"dirty_ring\": 65536").dirty_ring == 65536);

  VmConfig config;
  REQUIRE(
      Apply(R"("api_socket": "/tmp/s", "paused": true, "name": "n", "log_level": "off")", config)
          .ok());
  CHECK(config.api_socket == "/tmp/s");
  CHECK(config.paused);
  CHECK(config.name == "n");
  CHECK(config.log_level == "off");
  CHECK_FALSE(ApplyVmConfigJson(R"({"kernel": "k", "paused": "yes"})", config).ok());
  CHECK(ApplyVmConfigJson(R"({"kernel": "k", "paused": true})", config).ok());
}

TEST_CASE("Memory is a size string or an integer of MiB", "[config_json]") {
  CHECK(Load("\"memory\": \"512M\"").memory_bytes == (512ull << 20));
  CHECK(Load("\"memory\": \"2G\"").memory_bytes == (2ull << 30));
  CHECK(Load("\"memory\": \"2GiB\"").memory_bytes == (2ull << 30));
  CHECK(Load("\"memory\": \"8192K\"").memory_bytes == (8ull << 20));
  CHECK(Load("\"memory\": \"300\"").memory_bytes == (300ull << 20));
  CHECK(Load("\"memory\": 256").memory_bytes == (256ull << 20));
  CHECK(Load("\"memory\": 4").memory_bytes == (4ull << 20));
  CHECK(VmConfigToJson(Load("\"memory\": 3072"))["memory"] == "3G");
  CHECK(VmConfigToJson(Load("\"memory\": \"8196K\""))["memory"] == "8196K");
  VmConfig huge = Load("\"memory\": \"256M,hugepages=on\"");
  CHECK(huge.hugepages);
  CHECK(huge.memory_bytes == 256ull << 20);
  CHECK(VmConfigToJson(huge)["memory"] == "256M,hugepages=on");
}

TEST_CASE("Disks and NICs are arrays that replace the lists", "[config_json]") {
  VmConfig config;
  config.disks.push_back(*ParseDisk("path=old.img"));
  config.nets.push_back(*ParseNet("tap=old"));
  REQUIRE(Apply(R"("disks": [{"path": "a.img"}, {"path": "b.img", "id": "data", "serial": "S",
                              "readonly": false, "cache": "writeback", "queues": 16,
                              "aio": "io_uring"}],
                   "nets": [{"fd": 4}, {"tap": "tap1"},
                            {"tap": "tap2", "mac": "02:00:00:00:00:09"}])",
                config)
              .ok());
  REQUIRE(config.disks.size() == 2);
  CHECK(config.disks[0].path == "a.img");
  CHECK(config.disks[0].id == "disk0");
  CHECK(config.disks[0].queues == 1);
  CHECK(config.disks[1].id == "data");
  CHECK(config.disks[1].serial == "S");
  CHECK(config.disks[1].queues == 16);
  CHECK_FALSE(config.disks[1].cache_none);
  CHECK_FALSE(config.disks[1].aio_threads);
  REQUIRE(config.nets.size() == 3);
  CHECK(config.nets[0].fd == 4);
  CHECK(config.nets[0].tap.empty());
  CHECK(config.nets[1].tap == "tap1");
  CHECK(config.nets[1].fd == -1);
  CHECK(config.nets[1].mac[5] == 0x57);  // the default MAC follows the position
  CHECK(config.nets[2].mac == std::array<uint8_t, 6>{0x02, 0, 0, 0, 0, 0x09});

  REQUIRE(Apply(R"("disks": [], "nets": [])", config).ok());
  CHECK(config.disks.empty());
  CHECK(config.nets.empty());
}

TEST_CASE("A JSON string member may hold a comma: it never becomes flag text", "[config_json]") {
  VmConfig config = Load(R"("disks": [{"path": "/srv/a,b.img", "serial": "x,y"}])");
  REQUIRE(config.disks.size() == 1);
  CHECK(config.disks[0].path == "/srv/a,b.img");
  CHECK(config.disks[0].serial == "x,y");
}

TEST_CASE("Bad members are errors that name them by their JSON path", "[config_json]") {
  struct Bad {
    const char* members;
    const char* message;  // the whole message, or its start when it ends in "..."
  };
  const Bad kBad[] = {
      {R"("kernel": "")", "config: kernel: expected a non-empty string"},
      {R"("cpus": 0)", "config: cpus: expected an integer from 1 to 254"},
      {R"("cpus": 255)", "config: cpus: expected an integer from 1 to 254"},
      {R"("cpus": "2")", "config: cpus: expected an integer from 1 to 254"},
      {R"("cpus": 1.5)", "config: cpus: expected an integer from 1 to 254"},
      {R"("cpus": 18446744073709551615)", "config: cpus: expected an integer from 1 to 254"},
      {R"("memory": "12X")", "config: memory: memory size '12X': unknown suffix 'X'"},
      {R"("memory": 2)", "config: memory: '2' is too small: mote needs at least 4 MiB"},
      {R"("memory": -5)", "config: memory: memory size '-5' is not a number..."},
      {R"("memory": 1048577)", "config: memory: memory size '1048577' is out of range..."},
      {R"("memory": true)",
       "config: memory: expected a size such as \"512M\" or \"2G\", or an integer of MiB"},
      {R"("cpu": "fast")",
       "config: cpu: unknown CPU template 'fast' (expected host or minimal, then ,+FEATURE or "
       ",-FEATURE)"},
      {R"("pit": "maybe")", "config: pit: pit 'maybe': expected on, off or auto"},
      {R"("console": "file:")",
       "config: console: console 'file:': expected stdio, none or file:PATH"},
      {R"("transport": 1)", "config: transport: expected pci or mmio"},
      {R"("pit": true)", "config: pit: expected on, off or auto"},
      {R"("rng": "yes")", "config: rng: expected true or false"},
      {R"("timeout": -1)", "config: timeout: expected a number of seconds from 0 (never) to 1e9"},
      {R"("timeout": "10")", "config: timeout: expected a number of seconds from 0 (never) to 1e9"},
      {R"("expect": "([")", "config: --expect '([' is not a valid regex..."},
      {R"("on_reboot": "halt")", "config: on_reboot: on-reboot 'halt': expected exit or restart"},
      {R"("kvm_device": null)", "config: kvm_device: expected a non-empty string"},
      {R"("dirty_ring": 1000)",
       "config: dirty_ring: expected 0 or a power of two from 1024 to 65536"},
      {R"("dirty_ring": 131072)",
       "config: dirty_ring: expected 0 or a power of two from 1024 to 65536"},
      {R"("api_socket": 3)", "config: api_socket: expected a string"},
      {R"("paused": "true")", "config: paused: expected true or false"},
      {R"("name": null)", "config: name: expected a string"},
      {R"("log_level": "verbose")",
       "config: log_level: expected one of: trace, debug, info, warn, error, off"},
      {R"("vcpus": 2)",
       "config: vcpus: unknown member (expected one of: kernel, initrd, cmdline, cpus, ..."},
      {R"("disks": {})", "config: disks: expected an array of disk objects"},
      {R"("disks": ["a.img"])", "config: disks[0]: expected an object"},
      {R"("disks": [{"path": "a"}, {"path": "b", "cache": "fast"}])",
       "config: disks[1].cache: --disk cache=fast: expected writeback or none"},
      {R"("disks": [{"path": "a", "serial": "123456789012345678901"}])",
       "config: disks[0].serial: --disk serial=123456789012345678901: at most 20 bytes"},
      {R"("disks": [{"path": "a", "queues": 17}])",
       "config: disks[0].queues: --disk queues=17: expected 1 to 16"},
      {R"("disks": [{"path": "a", "queues": "2"}])",
       "config: disks[0].queues: expected an integer from 1 to 16"},
      {R"("disks": [{"path": "a", "cache": false}])",
       "config: disks[0].cache: expected writeback or none"},
      {R"("disks": [{"path": "a", "readonly": "on"}])",
       "config: disks[0].readonly: expected true or false"},
      {R"("disks": [{"path": "a", "aio": "native"}])",
       "config: disks[0].aio: --disk aio=native: expected io_uring or threads"},
      {R"("disks": [{"path": "a", "id": ""}])", "config: disks[0].id: --disk id=: expected a name"},
      {R"("disks": [{"readonly": true}])", "config: disks[0].path: missing (required)"},
      {R"("disks": [{"path": "a", "size": 1}])",
       "config: disks[0].size: unknown member "
       "(expected one of: path, readonly, cache, serial, id, queues, aio, lock, bps, bps_rd, "
       "bps_wr, iops, iops_rd, iops_wr, bps_max, bps_rd_max, bps_wr_max, iops_max, iops_rd_max, "
       "iops_wr_max)"},
      {R"("disks": [{"path": "a", "bps": -1}])",
       "config: disks[0].bps: --disk bps=-1: expected a whole number, 0 for no limit"},
      {R"("disks": [{"path": "a", "bps": 1, "bps_wr": 2}])",
       "config: disk 'disk0': bps(iops) and bps(iops)_rd/_wr cannot be used at the same time"},
      {R"("disks": [{"path": "a", "iops_rd_max": 10}])",
       "config: disk 'disk0': bps_max/iops_max require corresponding bps/iops values"},
      {R"("disks": [{"path": "a", "iops": 100, "iops_max": 10}])",
       "config: disk 'disk0': bps_max/iops_max cannot be lower than bps/iops"},
      {R"("disks": [{"path": "a", "id": "x"}, {"path": "b", "id": "x"}])",
       "config: two disks are named 'x'"},
      {R"("nets": [{"tap": "t"}, {"mac": "02:00:00:00:00:01"}])",
       "config: nets[1]: expected a tap or an fd member"},
      {R"("nets": [{"tap": "t", "fd": 3}])",
       "config: nets[0]: give exactly one of tap=NAME and fd=N"},
      {R"("nets": [{"tap": "t", "mac": "01:00:00:00:00:01"}])",
       "config: nets[0].mac: --net mac=01:00:00:00:00:01: a multicast address"},
      {R"("nets": [{"tap": "t", "mac": "52:54:00:12:34"}])",
       "config: nets[0].mac: --net mac=52:54:00:12:34: expected xx:xx:xx:xx:xx:xx"},
      {R"("nets": [{"tap": "averyveryverylongname"}])",
       "config: nets[0].tap: --net tap=averyveryverylongname: ..."},
      {R"("nets": [{"fd": -1}])",
       "config: nets[0].fd: --net fd=-1: expected a file descriptor number"},
      {R"("nets": [{"fd": 3, "queues": 2}])",
       "config: nets[0].queues: unknown member (expected one of: tap, fd, mac, rx_bps, rx_pps, "
       "tx_bps, tx_pps, rx_bps_max, rx_pps_max, tx_bps_max, tx_pps_max)"},
  };
  for (const Bad& bad : kBad) {
    INFO(bad.members);
    std::string message = Error(bad.members);
    std::string expected = bad.message;
    if (absl::EndsWith(expected, "...")) {
      CHECK(absl::StartsWith(message, expected.substr(0, expected.size() - 3)));
    } else {
      CHECK(message == expected);
    }
  }
}

TEST_CASE("Documents that are not a VM object are errors", "[config_json]") {
  VmConfig config;
  CHECK(ApplyVmConfigJson("{}", config).message() == "config: kernel: missing (required)");
  CHECK(ApplyVmConfigJson("[1]", config).message() == "config: expected a JSON object");
  std::string message(ApplyVmConfigJson("{\n  \"kernel\": \"k\",\n  cpus: 2\n}", config).message());
  CHECK(absl::StartsWith(message, "config: line 3, column 3: syntax error"));
  CHECK(absl::StartsWith(ApplyVmConfigJson("", config).message(), "config: line 1, column 1: "));
  // A trailing comma, a comment, a string that is not UTF-8.
  for (const char* text :
       {"{\"kernel\": \"k\",}", "// no\n{\"kernel\": \"k\"}", "{\"kernel\": \"\xff\"}"}) {
    INFO(text);
    CHECK(absl::StartsWith(ApplyVmConfigJson(text, config).message(), "config: line 1, column "));
  }
}

TEST_CASE("A failed load changes nothing", "[config_json]") {
  VmConfig config;
  config.cpus = 3;
  REQUIRE_FALSE(Apply(R"("cpus": 2, "name": "n", "memory": "1T")", config).ok());
  CHECK(config.cpus == 3);
  CHECK(config.kernel.empty());
  CHECK(config.name.empty());
}

TEST_CASE("LoadVmConfigFile names the file it cannot read", "[config_json]") {
  VmConfig config;
  absl::Status s = LoadVmConfigFile("/nonexistent/vm.json", config);
  CHECK(s.message() == "cannot read config /nonexistent/vm.json: No such file or directory");
  s = LoadVmConfigFile("/", config);
  CHECK(absl::StartsWith(s.message(), "cannot read config /: "));
}

TEST_CASE("Isolation members: seccomp, the socket's mode, cgroup limits", "[config_json]") {
  VmConfig config = Load(R"("seccomp": "log", "api_socket_mode": "0660",
                            "api_socket_group": "kvm", "cgroup": "mote/vm1",
                            "cgroup_cpu_max": "50000 100000", "cgroup_memory_max": "512M",
                            "cgroup_io_weight": 50, "cgroup_vcpu_cpu_max": "max")");
  CHECK(config.seccomp == "log");
  CHECK(config.api_socket_mode == 0660);
  CHECK(config.cgroup_memory_max == 512ull << 20);
  CHECK(config.cgroup_cpu_max == "50000 100000");
  json dumped = VmConfigToJson(config);
  CHECK(dumped["api_socket_mode"] == "0660");
  CHECK(dumped["cgroup_memory_max"] == "512M");
  CHECK(Error(R"("seccomp": "strict")") == "config: seccomp: expected on, off or log");
  for (const char* mode : {"0400", "0700x", "1777", "", "06600"}) {
    INFO(mode);
    CHECK(absl::StrContains(Error(std::string("\"api_socket_mode\": \"") + mode + "\""),
                            "api_socket_mode: expected an octal mode from 0600 to 0777"));
  }
  for (const char* cpu_max : {"50000 10", "half", "0 100000", "1 2 3"}) {
    INFO(cpu_max);
    CHECK(absl::StrContains(Error(std::string("\"cgroup_cpu_max\": \"") + cpu_max + "\""),
                            "cgroup_cpu_max: expected"));
  }
  CHECK(
      absl::StrContains(Error(R"("cgroup_io_weight": 0)"), "expected an integer from 1 to 10000"));
}

TEST_CASE("The JSON Schema has exactly the members the loader accepts", "[config_json]") {
  json schema = Schema();
  REQUIRE(schema["$schema"] == "https://json-schema.org/draft/2020-12/schema");
  CHECK(schema["anyOf"] == json::parse(R"([{"required": ["kernel"]}, {"required": ["restore"]},
                                            {"required": ["incoming"]}])"));
  struct Level {
    json object_schema;
    std::string unknown_error;  // what the loader says of an unknown member there
  };
  const Level kLevels[] = {
      {schema, Error(R"("x-unknown": 1)")},
      {schema["$defs"]["disk"], Error(R"("disks": [{"path": "a", "x-unknown": 1}])")},
      {schema["$defs"]["net"], Error(R"("nets": [{"fd": 3, "x-unknown": 1}])")},
      {schema["$defs"]["fw_cfg_item"],
       Error(R"("fw_cfg": [{"name": "opt/a", "string": "x", "x-unknown": 1}])")},
  };
  for (const Level& level : kLevels) {
    INFO(level.unknown_error);
    CHECK(level.object_schema["type"] == "object");
    CHECK(level.object_schema["additionalProperties"] == false);
    CHECK(Keys(level.object_schema["properties"]) == NamesInError(level.unknown_error));
  }
  CHECK(schema["properties"]["disks"]["items"]["$ref"] == "#/$defs/disk");
  CHECK(schema["properties"]["nets"]["items"]["$ref"] == "#/$defs/net");
  CHECK(schema["$defs"]["disk"]["required"] == json::array({"path"}));
  // The members are the tables' rows, the flags' too.
  std::set<std::string> vm_rows, disk_rows, net_rows;
  for (const auto& m : VmMembers()) vm_rows.insert(m.name);
  CHECK(Keys(schema["properties"]) == vm_rows);
  for (const auto& m : DiskMembers()) disk_rows.insert(m.name);
  for (const auto& m : NetMembers()) net_rows.insert(m.name);
  CHECK(Keys(schema["$defs"]["disk"]["properties"]) == disk_rows);
  CHECK(Keys(schema["$defs"]["net"]["properties"]) == net_rows);

  // Each member is known to the loader (a wrong type names it, not "unknown").
  for (const auto& property : schema["properties"].items()) {
    std::string message = Error("\"" + property.key() + "\": null");
    INFO(message);
    CHECK(absl::StartsWith(message, "config: " + property.key() + ": expected"));
  }

  // VmConfigToJson writes every member (the timeout, log level and restore once set).
  VmConfig config = Load("\"timeout\": 1, \"disks\": [{\"path\": \"a\"}], \"nets\": [{\"fd\": 3}]");
  config.log_level = "warn";
  config.restore = "snapshot-dir";
  config.incoming = "unix:/run/in.sock";
  config.cgroup_memory_max = 1ull << 30;
  config.cgroup_io_weight = 100;
  config.cgroup_cpu_max = config.cgroup_vcpu_cpu_max = "max";
  json dumped = VmConfigToJson(config);
  CHECK(Keys(dumped) == Keys(schema["properties"]));
  std::set<std::string> disk_keys = Keys(schema["$defs"]["disk"]["properties"]);
  CHECK(Keys(dumped["disks"][0]) == disk_keys);
}

TEST_CASE("Every enum value and default in the schema is what the loader takes", "[config_json]") {
  json schema = Schema();
  VmConfig defaults;
  defaults.kernel = "k";
  json default_json = VmConfigToJson(defaults);
  for (const auto& property : schema["properties"].items()) {
    const std::string& name = property.key();
    const json& spec = property.value();
    INFO(name);
    json values = spec.contains("enum") ? spec["enum"] : json::array();
    if (spec.contains("anyOf") && spec["anyOf"][0].contains("enum")) {
      values = spec["anyOf"][0]["enum"];  // console: "stdio", "none" or "file:..."
    }
    for (const json& value : values) {
      INFO(value.dump());
      Load("\"" + name + "\": " + value.dump());
    }
    if (spec.contains("default")) {
      VmConfig config = Load("\"" + name + "\": " + spec["default"].dump());
      CHECK(VmConfigToJson(config)[name] == default_json[name]);
      CHECK(default_json[name] == spec["default"]);
    }
  }
  json disk_default = VmConfigToJson(Load(R"("disks": [{"path": "a"}])"))["disks"][0];
  for (const auto& property : schema["$defs"]["disk"]["properties"].items()) {
    const json& spec = property.value();
    std::string disk_text = "{\"path\": \"a\", \"" + property.key() + "\": ";
    INFO(property.key());
    if (spec.contains("enum")) {
      for (const json& value : spec["enum"]) Load("\"disks\": [" + disk_text + value.dump() + "}]");
    }
    if (spec.contains("default")) {
      Load("\"disks\": [" + disk_text + spec["default"].dump() + "}]");
      CHECK(disk_default[property.key()] == spec["default"]);
    }
  }
}

TEST_CASE("docs/vm-config.md describes every member", "[config_json]") {
  std::string doc = ReadSourceFile("docs/vm-config.md");
  json schema = Schema();
  for (const json* properties : {&schema["properties"], &schema["$defs"]["disk"]["properties"],
                                 &schema["$defs"]["net"]["properties"]}) {
    for (const auto& property : properties->items()) {
      INFO(property.key());
      CHECK(doc.find("`" + property.key() + "`") != std::string::npos);
    }
  }
}

}  // namespace
}  // namespace mote
