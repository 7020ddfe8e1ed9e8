#include "vmm/qmp_commands.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

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
  qmp::QmpResult r = (*runner)->Execute("query-commands", json::object());
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

}  // namespace
}  // namespace mote
