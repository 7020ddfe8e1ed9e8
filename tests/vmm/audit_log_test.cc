// AuditLog: the line it writes for a command, and that lines are appended.
#include "vmm/audit_log.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace mote {
namespace {

using nlohmann::json;

TEST_CASE("audit log: a JSON line per command, its peer and its result", "[audit]") {
  TempDir dir;
  std::string path = dir.Path("audit.log");
  {
    auto log = AuditLog::Open(path);
    REQUIRE(log.ok());
    qmp::Peer peer{1234, 1000, 100};
    (*log)->Record(peer, "stop", json::object(), json::object());
    (*log)->Record(peer, "migrate", {{"uri", "tcp:1.2.3.4:5"}},
                   qmp::QmpError{"GenericError", "no route"});
  }
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::ifstream in(path);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["pid"] == 1234);
  CHECK(lines[0]["uid"] == 1000);
  CHECK(lines[0]["gid"] == 100);
  CHECK(lines[0]["command"] == "stop");
  CHECK(lines[0]["result"] == "ok");
  CHECK(lines[0]["time"].get<std::string>().size() ==
        std::string("2026-12-07T10:00:00.000Z").size());
  CHECK(lines[1]["arguments"] == json{{"uri", "tcp:1.2.3.4:5"}});
  CHECK(lines[1]["result"] == json{{"error", "GenericError"}, {"desc", "no route"}});
  // Appended, not replaced, by the next mote.
  auto again = AuditLog::Open(path);
  REQUIRE(again.ok());
  (*again)->Record({1, 2, 3}, "quit", json::object(), json::object());
  std::ifstream reread(path);
  int count = 0;
  for (std::string line; std::getline(reread, line);) ++count;
  CHECK(count == 3);
}

TEST_CASE("audit log: refuses a symlink and names an unwritable file", "[audit]") {
  TempDir dir;
  REQUIRE(symlink("/etc/passwd", dir.Path("link").c_str()) == 0);
  auto linked = AuditLog::Open(dir.Path("link"));
  CHECK_FALSE(linked.ok());
  auto missing = AuditLog::Open(dir.Path("no/such/dir/audit.log"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() ==
        "--audit-log " + dir.Path("no/such/dir/audit.log") + ": No such file or directory");
}

}  // namespace
}  // namespace mote
