#include "vmm/vm_runner.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <variant>

namespace mote {
namespace {

using nlohmann::json;

std::unique_ptr<VmRunner> Runner(const std::string& name = "") {
  VmConfig config;
  config.name = name;
  auto runner = VmRunner::Create(config, RunOptions{});
  REQUIRE(runner.ok());
  return std::move(*runner);
}

json Reply(VmRunner& runner, const std::string& command, const json& arguments = json::object()) {
  qmp::QmpResult r = runner.Execute(command, arguments, qmp::Peer::Self());
  REQUIRE(std::holds_alternative<json>(r));
  return std::get<json>(r);
}

qmp::QmpError Failure(VmRunner& runner, const std::string& command,
                      const json& arguments = json::object()) {
  qmp::QmpResult r = runner.Execute(command, arguments, qmp::Peer::Self());
  REQUIRE(std::holds_alternative<qmp::QmpError>(r));
  return std::get<qmp::QmpError>(r);
}

// Before Boot there is no VM: what a client sees between boots, or after
// the guest has shut down.

TEST_CASE("VmRunner::Execute: query-version and query-name", "[vm_runner]") {
  auto runner = Runner();
  json version = Reply(*runner, "query-version");
  CHECK(version["package"] == std::string("mote ") + kMoteVersion);
  CHECK(version["qemu"] == json{{"major", 0}, {"minor", 1}, {"micro", 0}});
  CHECK(Reply(*runner, "query-name") == json::object());
  CHECK(Reply(*Runner("web-1"), "query-name") == json{{"name", "web-1"}});
}

TEST_CASE("VmRunner::Execute: query-commands lists each command once", "[vm_runner]") {
  auto runner = Runner();
  json commands = Reply(*runner, "query-commands");
  REQUIRE(commands.is_array());
  std::set<std::string> names;
  for (const json& c : commands) names.insert(c.at("name").get<std::string>());
  CHECK(names.size() == commands.size());
  for (const char* expected : {"qmp_capabilities", "query-status", "stop", "cont", "quit",
                               "system_reset", "system_powerdown", "query-block"}) {
    CHECK(names.count(expected) == 1);
  }
  // Every listed command is known: none answers CommandNotFound.
  for (const std::string& name : names) {
    if (name == "qmp_capabilities") continue;  // the server answers it, not the runner
    qmp::QmpResult r = runner->Execute(name, json::object(), qmp::Peer::Self());
    if (auto* error = std::get_if<qmp::QmpError>(&r)) {
      INFO(name);
      CHECK(error->error_class != "CommandNotFound");
    }
  }
}

TEST_CASE("VmRunner::Execute: without a VM the status is shutdown", "[vm_runner]") {
  auto runner = Runner();
  CHECK(Reply(*runner, "query-status") ==
        json{{"status", "shutdown"}, {"running", false}, {"singlestep", false}});
  for (const char* command : {"stop", "cont", "system_reset", "query-block", "query-cpus-fast"}) {
    INFO(command);
    qmp::QmpError e = Failure(*runner, command);
    CHECK(e.error_class == "GenericError");
    CHECK(e.desc == "the guest has shut down");
  }
  CHECK(Reply(*runner, "quit") == json::object());
}

TEST_CASE("VmRunner::Execute: unknown commands and unexpected arguments", "[vm_runner]") {
  auto runner = Runner();
  qmp::QmpError unknown = Failure(*runner, "frobnicate");
  CHECK(unknown.error_class == "CommandNotFound");
  CHECK(unknown.desc == "The command frobnicate has not been found");
  qmp::QmpError extra = Failure(*runner, "query-status", json{{"verbose", true}});
  CHECK(extra.error_class == "GenericError");
  CHECK(extra.desc == "Parameter 'verbose' is unexpected");
}

}  // namespace
}  // namespace mote
