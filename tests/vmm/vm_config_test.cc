#include "vmm/vm_config.h"

#include <catch2/catch.hpp>
#include <set>

#include "vmm/config_json.h"

namespace mote {
namespace {

TEST_CASE("ParseMemorySize accepts MiB numbers and K/M/G suffixes", "[vm_config]") {
  CHECK(*ParseMemorySize("128") == (128ull << 20));
  CHECK(*ParseMemorySize("128M") == (128ull << 20));
  CHECK(*ParseMemorySize("2G") == (2ull << 30));
  CHECK(*ParseMemorySize("2gib") == (2ull << 30));
  CHECK(*ParseMemorySize("8192K") == (8ull << 20));
}

TEST_CASE("ParseMemorySize rejects garbage with a message", "[vm_config]") {
  for (const char* bad : {"", "abc", "-5", "12X", "0", "1.5G", "99999999999999999999", "6K", "M"}) {
    INFO(bad);
    auto r = ParseMemorySize(bad);
    CHECK(absl::IsInvalidArgument(r.status()));
  }
  CHECK(ParseMemorySize("12X").status().message().find("suffix") != absl::string_view::npos);
}

TEST_CASE("--memory takes hugepages=on|off after the size", "[vm_config]") {
  absl::StatusOr<MemoryOption> plain = ParseMemory("512M");
  REQUIRE(plain.ok());
  CHECK(plain->bytes == 512ull << 20);
  CHECK_FALSE(plain->hugepages);
  absl::StatusOr<MemoryOption> huge = ParseMemory("1G,hugepages=on");
  REQUIRE(huge.ok());
  CHECK(huge->bytes == 1ull << 30);
  CHECK(huge->hugepages);
  CHECK_FALSE(ParseMemory("64M,hugepages=off")->hugepages);
  CHECK(ParseMemory("64M,huge").status().message() ==
        "memory '64M,huge': expected SIZE[,hugepages=on|off]");
  CHECK(ParseMemory("4100K,hugepages=on").status().message() ==
        "memory '4100K,hugepages=on': with hugepages=on the size is a multiple of 2 MiB");
  CHECK_FALSE(ParseMemory("lots,hugepages=on").ok());
  CHECK(ParseMemory(",hugepages=on").status().message() ==
        "memory ',hugepages=on': expected SIZE[,hugepages=on|off]");
  CHECK(ParseMemory("64M=1").status().message() ==
        "memory '64M=1': expected SIZE[,hugepages=on|off]");
}

TEST_CASE("ValidateConfig names the problem", "[vm_config]") {
  VmConfig c;
  CHECK(ValidateConfig(c).message().find("kernel") != absl::string_view::npos);
  c.kernel = "k";
  CHECK(ValidateConfig(c).ok());
  c.cpus = 0;
  CHECK(!ValidateConfig(c).ok());
  c.cpus = 300;
  CHECK(ValidateConfig(c).message().find("254") != absl::string_view::npos);
  c.cpus = 1;
  c.memory_bytes = 1 << 20;
  CHECK(ValidateConfig(c).message().find("too small") != absl::string_view::npos);
  c.memory_bytes = 128 << 20;
  c.expect = "([unclosed";
  CHECK(ValidateConfig(c).message().find("regex") != absl::string_view::npos);
  c.expect = "PASS .*";
  c.timeout = -1;
  CHECK(ValidateConfig(c).message().find("timeout") != absl::string_view::npos);
}

TEST_CASE("Console, PIT and reboot flags parse or explain", "[vm_config]") {
  CHECK(ParseConsole("stdio")->kind == ConsoleKind::kStdio);
  CHECK(ParseConsole("none")->kind == ConsoleKind::kNone);
  auto f = ParseConsole("file:/tmp/x.log");
  REQUIRE(f.ok());
  CHECK(f->kind == ConsoleKind::kFile);
  CHECK(f->path == "/tmp/x.log");
  CHECK(!ParseConsole("file:").ok());
  CHECK(!ParseConsole("tty").ok());
  CHECK(*ParsePitMode("off") == PitMode::kOff);
  CHECK(!ParsePitMode("maybe").ok());
  CHECK(*ParseOnReboot("restart") == OnReboot::kRestart);
  CHECK(!ParseOnReboot("halt").ok());
  CHECK(*ParseTransport("pci") == VirtioTransport::kPci);
  CHECK(*ParseTransport("mmio") == VirtioTransport::kMmio);
  CHECK(!ParseTransport("isa").ok());
}

TEST_CASE("--disk values parse, with clear errors", "[vm_config]") {
  auto d = ParseDisk("path=/tmp/a.img,readonly=on,cache=none,serial=S1,id=root");
  REQUIRE(d.ok());
  CHECK(d->path == "/tmp/a.img");
  CHECK(d->readonly);
  CHECK(d->cache_none);
  CHECK(d->serial == "S1");
  CHECK(d->id == "root");
  auto plain = ParseDisk("path=b.img");
  REQUIRE(plain.ok());
  CHECK(plain->id.empty());  // named by its position later
  CHECK_FALSE(plain->readonly);
  CHECK(ParseDisk("readonly=on").status().message().find("no path") != absl::string_view::npos);
  CHECK(ParseDisk("path=a,readonly=yes").status().message().find("on or off") !=
        absl::string_view::npos);
  CHECK(ParseDisk("path=a,cache=fast").status().message().find("writeback or none") !=
        absl::string_view::npos);
  CHECK(ParseDisk("path=a,color=red").status().message().find("unknown option 'color'") !=
        absl::string_view::npos);
  CHECK(!ParseDisk("path=a,serial=123456789012345678901").ok());
  auto mq = ParseDisk("path=a,queues=4,aio=threads");
  REQUIRE(mq.ok());
  CHECK(mq->queues == 4);
  CHECK(mq->aio_threads);
  CHECK(ParseDisk("path=a,queues=0").status().message().find("1 to 16") != absl::string_view::npos);
  CHECK(ParseDisk("path=a,queues=x").status().message().find("1 to 16") != absl::string_view::npos);
  CHECK(ParseDisk("path=a,aio=native").status().message().find("io_uring or threads") !=
        absl::string_view::npos);
  VmConfig c;
  c.kernel = "k";
  DiskConfig named = *plain;
  named.id = "x";
  c.disks = {named, named};
  CHECK(ValidateConfig(c).message().find("two disks") != absl::string_view::npos);
}

TEST_CASE("SplitKeyValues: commas split, double quotes hold them", "[vm_config]") {
  using KV = KeyValues;
  CHECK(*SplitKeyValues("a=1,b=two") == KV{{"a", "1"}, {"b", "two"}});
  CHECK(*SplitKeyValues(R"(path="/srv/a,b.img",ro)") == KV{{"path", "/srv/a,b.img"}, {"ro", ""}});
  CHECK(*SplitKeyValues(R"(s="say \"hi\", \\o/")") == KV{{"s", R"(say "hi", \o/)"}});
  CHECK(*SplitKeyValues("a=") == KV{{"a", ""}});
  CHECK(*SplitKeyValues(R"(a="")") == KV{{"a", ""}});
  CHECK(SplitKeyValues(R"(a="open)").status().message() == "a quote is not closed");
  CHECK(SplitKeyValues(R"(a="x"y)").status().message() == "'a': text after the closing quote");
  CHECK(SplitKeyValues("=1").status().message() == "an item without a name");
  CHECK(SplitKeyValues("a=1,,b=2").status().message() == "an item without a name");
}

TEST_CASE("--disk takes a quoted path with commas; its help comes from the table", "[vm_config]") {
  auto d = ParseDisk(R"(path="/srv/a,b.img",serial=S1)");
  REQUIRE(d.ok());
  CHECK(d->path == "/srv/a,b.img");
  CHECK(d->serial == "S1");
  CHECK(ParseDisk(R"(path="/srv/a)").status().message() ==
        R"(--disk 'path="/srv/a': a quote is not closed)");
  CHECK(SectionSyntax(DiskMembers()) ==
        "path=FILE[,readonly=on|off][,cache=writeback|none][,serial=ID][,id=NAME]"
        "[,queues=1..16][,aio=io_uring|threads][,lock=on|off][,bps=N][,bps_rd=N][,bps_wr=N]"
        "[,iops=N][,iops_rd=N][,iops_wr=N][,bps_max=N][,bps_rd_max=N][,bps_wr_max=N]"
        "[,iops_max=N][,iops_rd_max=N][,iops_wr_max=N]");
  CHECK(SectionSyntax(NetMembers()) ==
        "tap=NAME[,fd=N][,mac=xx:xx:xx:xx:xx:xx][,rx_bps=N][,rx_pps=N][,tx_bps=N][,tx_pps=N]"
        "[,rx_bps_max=N][,rx_pps_max=N][,tx_bps_max=N][,tx_pps_max=N]");
  auto limited = ParseNet("tap=t0,rx_bps=1000,tx_pps=10,tx_pps_max=20");
  REQUIRE(limited.ok());
  CHECK(limited->throttle.rx_bps == 1000);
  CHECK(limited->throttle.tx_pps_max == 20);
  CHECK(ParseNetThrottle("tx_pps=10,rx_bps=5").ok());
  CHECK(ParseNetThrottle("tap=x").status().message() == "rate limits 'tap=x': 'tap' is not one");
  CHECK(ParseNetThrottle("tx_pps_max=3").status().message() == "a burst (*_max) needs its rate");
}

TEST_CASE("Rate limits by name: QEMU's for a disk, as JSON both ways", "[vm_config]") {
  std::vector<std::string> disk(DiskThrottleNames().begin(), DiskThrottleNames().end());
  CHECK(disk == std::vector<std::string>{"bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr",
                                         "bps_max", "bps_rd_max", "bps_wr_max", "iops_max",
                                         "iops_rd_max", "iops_wr_max"});
  std::vector<std::string> nic(NetThrottleNames().begin(), NetThrottleNames().end());
  CHECK(nic == std::vector<std::string>{"rx_bps", "rx_pps", "tx_bps", "tx_pps", "rx_bps_max",
                                        "rx_pps_max", "tx_bps_max", "tx_pps_max"});

  auto read = DiskThrottleFromJson({{"device", "disk0"}, {"bps_rd", 1000}, {"iops_wr_max", 9}});
  REQUIRE(read.ok());
  CHECK(read->bps_rd == 1000);
  CHECK(read->iops_wr_max == 9);
  CHECK(read->bps == 0);
  nlohmann::json written = DiskThrottleJson(*read);
  CHECK(written.size() == 12);
  CHECK(written["bps_rd"] == 1000);
  CHECK(written["iops_wr_max"] == 9);
  CHECK(written["bps_wr"] == 0);
  CHECK(DiskThrottleFromJson({{"bps", -1}}).status().message() ==
        "bps: expected a whole number, 0 for no limit");
  auto net = NetThrottleFromJson({{"index", 0}, {"tx_pps", 100}});
  REQUIRE(net.ok());
  CHECK(net->tx_pps == 100);
  CHECK(net->rx_bps == 0);
}

TEST_CASE("The disk and NIC tables write what they read", "[vm_config]") {
  auto d = ParseDisk(
      "path=a.img,readonly=on,cache=none,serial=S,id=root,queues=4,aio=threads,lock=off,"
      "bps_rd=1000,bps_rd_max=2000,iops_wr=50");
  REQUIRE(d.ok());
  CHECK(d->throttle.bps_rd == 1000);
  CHECK(d->throttle.bps_rd_max == 2000);
  CHECK(d->throttle.iops_wr == 50);
  nlohmann::json j = SectionToJson(*d, DiskMembers());
  for (const char* zero : {"bps", "bps_wr", "iops", "iops_rd", "bps_max", "bps_wr_max", "iops_max",
                           "iops_rd_max", "iops_wr_max"}) {
    CHECK(j[zero] == 0);
    j.erase(zero);
  }
  CHECK(j == nlohmann::json{{"bps_rd", 1000},
                            {"bps_rd_max", 2000},
                            {"iops_wr", 50},
                            {"path", "a.img"},
                            {"readonly", true},
                            {"cache", "none"},
                            {"serial", "S"},
                            {"id", "root"},
                            {"queues", 4},
                            {"aio", "threads"},
                            {"lock", false}});
  auto n = ParseNet("fd=3,mac=02:00:00:00:00:09");
  REQUIRE(n.ok());
  nlohmann::json nic = SectionToJson(*n, NetMembers());
  for (const char* zero : {"rx_bps", "rx_pps", "tx_bps", "tx_pps", "rx_bps_max", "rx_pps_max",
                           "tx_bps_max", "tx_pps_max"}) {
    CHECK(nic[zero] == 0);
    nic.erase(zero);
  }
  CHECK(nic == nlohmann::json{{"fd", 3}, {"mac", "02:00:00:00:00:09"}});
  CHECK(FormatMac(DefaultMac(2)) == "52:54:00:12:34:58");
}

TEST_CASE("--net values parse, with clear errors", "[vm_config]") {
  auto n = ParseNet("tap=tap0,mac=02:11:22:33:44:55");
  REQUIRE(n.ok());
  CHECK(n->tap == "tap0");
  CHECK(n->mac[0] == 0x02);
  CHECK(n->mac[5] == 0x55);
  auto d = ParseNet("fd=5");
  REQUIRE(d.ok());
  CHECK(d->fd == 5);
  CHECK(d->mac == std::array<uint8_t, 6>{});  // unset: FillDefaultNames picks one by position
  CHECK(ParseNet("tap=a,fd=3").status().message().find("exactly one") != absl::string_view::npos);
  CHECK(ParseNet("mac=02:00:00:00:00:01").status().message().find("exactly one") !=
        absl::string_view::npos);
  CHECK(ParseNet("tap=a,mac=zz").status().message().find("xx:xx") != absl::string_view::npos);
  CHECK(ParseNet("tap=a,mac=01:00:00:00:00:01").status().message().find("multicast") !=
        absl::string_view::npos);
  CHECK(ParseNet("tap=averyveryverylongname").status().message().find("1 to 15") !=
        absl::string_view::npos);
  CHECK(ParseNet("tap=a,speed=10").status().message().find("unknown option 'speed'") !=
        absl::string_view::npos);
}

TEST_CASE("The VM's table gives each member its flag, help and checks", "[vm_config]") {
  std::set<std::string> flags;
  for (const auto& m : VmMembers()) {
    INFO(m.name);
    CHECK(m.help != nullptr);
    CHECK((m.type == MemberType::kList) == (m.set_json != nullptr));
    CHECK((m.type == MemberType::kList) == (m.item_syntax != nullptr));
    flags.insert(FlagName(m));
  }
  CHECK(flags.count("--cpu") == 1);
  CHECK(flags.count("--disk") == 1);  // a list's flag is singular
  CHECK(flags.size() == VmMembers().size());

  auto member = [](const char* name) { return *FindSectionMember(VmMembers(), name); };
  VmConfig c;
  CHECK(ApplyFlag(member("cpus"), {"4"}, c).ok());
  CHECK(c.cpus == 4);
  CHECK(ApplyFlag(member("cpus"), {"0"}, c).message() == "cpus: expected an integer from 1 to 254");
  CHECK(ApplyFlag(member("rng"), {}, c).ok());  // a bare bool flag is on
  CHECK(c.rng);
  CHECK(ApplyFlag(member("memory"), {"1G,hugepages=on"}, c).ok());
  CHECK(c.memory_bytes == 1ull << 30);
  CHECK(c.hugepages);
  CHECK(ApplyFlag(member("timeout"), {"0.5"}, c).ok());
  CHECK(c.timeout == 0.5);
  // A list's flags replace it, and what they leave unnamed is named by position.
  c.disks.resize(3);
  CHECK(ApplyFlag(member("disks"), {"path=a.img", "path=b.img,id=data"}, c).ok());
  REQUIRE(c.disks.size() == 2);
  CHECK(c.disks[0].id == "disk0");
  CHECK(c.disks[1].id == "data");
  CHECK(ApplyFlag(member("nets"), {"fd=3", "tap=t1"}, c).ok());
  REQUIRE(c.nets.size() == 2);
  CHECK(FormatMac(c.nets[1].mac) == "52:54:00:12:34:57");
  CHECK(ApplyFlag(member("disks"), {"cache=none"}, c).message() ==
        "--disk 'cache=none': no path=FILE");
}

}  // namespace
}  // namespace mote
