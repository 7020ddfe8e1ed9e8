#include "vmm/qmp_commands.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "vmm/vm_runner.h"

namespace mote {
namespace {

using nlohmann::json;

QmpCommand TakesNameAndCount() {
  return {"x-test",
          {{"name", json::value_t::string}, {"count", json::value_t::number_unsigned, false}},
          [](VmRunner&, const json&) -> qmp::QmpResult { return json::object(); }};
}

std::string Complaint(const json& arguments) {
  auto error = CheckArguments(TakesNameAndCount(), arguments);
  REQUIRE(error.has_value());
  CHECK(error->error_class == "GenericError");
  return error->desc;
}

TEST_CASE("CheckArguments accepts what the row declares", "[qmp_commands]") {
  QmpCommand command = TakesNameAndCount();
  CHECK_FALSE(CheckArguments(command, json{{"name", "vda"}}).has_value());
  CHECK_FALSE(CheckArguments(command, json{{"name", "vda"}, {"count", 3}}).has_value());
}

TEST_CASE("CheckArguments names the argument in QEMU's words", "[qmp_commands]") {
  CHECK(Complaint(json::object()) == "Parameter 'name' is missing");
  CHECK(Complaint(json{{"name", "vda"}, {"speed", 1}}) == "Parameter 'speed' is unexpected");
  CHECK(Complaint(json{{"name", 7}}) == "Invalid parameter type for 'name', expected: string");
  CHECK(Complaint(json{{"name", "vda"}, {"count", -1}}) ==
        "Invalid parameter type for 'count', expected: integer");
  CHECK(Complaint(json{{"name", "vda"}, {"count", "3"}}) ==
        "Invalid parameter type for 'count', expected: integer");
}

TEST_CASE("query-commands is the table, in its order", "[qmp_commands]") {
  RunOptions options;
  auto runner = VmRunner::Create(VmConfig{}, options);
  REQUIRE(runner.ok());
  qmp::QmpResult r = (*runner)->Execute("query-commands", json::object(), qmp::Peer::Self());
  REQUIRE(std::holds_alternative<json>(r));
  const json& listed = std::get<json>(r);
  REQUIRE(listed.size() == QmpCommands().size());
  std::set<std::string> seen;
  for (size_t i = 0; i < listed.size(); ++i) {
    CHECK(listed[i].at("name") == QmpCommands()[i].name);
    CHECK(FindQmpCommand(QmpCommands()[i].name) == &QmpCommands()[i]);
    seen.insert(QmpCommands()[i].name);
  }
  CHECK(seen.size() == listed.size());
  CHECK(FindQmpCommand("no-such-command") == nullptr);
}

TEST_CASE("the rate-limit commands take QEMU's arguments", "[qmp_commands]") {
  const QmpCommand* disk = FindQmpCommand("block_set_io_throttle");
  REQUIRE(disk != nullptr);
  json rates = {{"device", "disk0"}, {"bps", 0},     {"bps_rd", 1000}, {"bps_wr", 0},
                {"iops", 0},         {"iops_rd", 0}, {"iops_wr", 0}};
  CHECK_FALSE(CheckArguments(*disk, rates).has_value());
  rates["bps_rd_max"] = 2000;  // a burst is optional
  CHECK_FALSE(CheckArguments(*disk, rates).has_value());
  rates.erase("iops_wr");  // a rate is not
  auto missing = CheckArguments(*disk, rates);
  REQUIRE(missing.has_value());
  CHECK(missing->desc == "Parameter 'iops_wr' is missing");

  const QmpCommand* nic = FindQmpCommand("x-mote-set-net-throttle");
  REQUIRE(nic != nullptr);
  CHECK_FALSE(CheckArguments(*nic, json{{"index", 0}, {"tx_pps", 100}}).has_value());
  auto unexpected = CheckArguments(*nic, json{{"index", 0}, {"bps", 100}});
  REQUIRE(unexpected.has_value());
  CHECK(unexpected->desc == "Parameter 'bps' is unexpected");
}

TEST_CASE("the commands that change the VM's state are the audited ones", "[qmp_commands]") {
  std::set<std::string> audited;
  for (const QmpCommand& c : QmpCommands()) {
    if (c.changes_state) audited.insert(c.name);
  }
  CHECK(audited == std::set<std::string>{"stop", "cont", "system_reset", "system_powerdown",
                                         "system_wakeup", "quit", "migrate", "migrate_cancel",
                                         "migrate-start-postcopy", "migrate-set-capabilities",
                                         "block_set_io_throttle", "x-mote-set-net-throttle",
                                         "migrate-set-parameters"});
}

TEST_CASE("a state-changing command is audited with its peer, whatever its result",
          "[qmp_commands]") {
  TempDir dir;
  VmConfig config;
  config.audit_log = dir.Path("audit.log");
  auto runner = VmRunner::Create(config, RunOptions{});
  REQUIRE(runner.ok());
  qmp::Peer peer{4321, 1001, 1002};
  (void)(*runner)->Execute("query-status", json::object(), peer);  // not audited
  (void)(*runner)->Execute("stop", json::object(), peer);          // no guest: an error
  (void)(*runner)->Execute("migrate", {{"uri", 5}}, peer);         // bad arguments
  std::ifstream in(config.audit_log);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["command"] == "stop");
  CHECK(lines[0]["pid"] == 4321);
  CHECK(lines[0]["uid"] == 1001);
  CHECK(lines[0]["gid"] == 1002);
  CHECK(lines[0]["result"].contains("error"));
  CHECK(lines[1]["command"] == "migrate");
  CHECK(lines[1]["arguments"] == json{{"uri", 5}});
  CHECK(lines[1]["result"]["desc"] == "Invalid parameter type for 'uri', expected: string");
}

}  // namespace
}  // namespace mote
