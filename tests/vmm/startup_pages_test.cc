#include "vmm/startup_pages.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>

#include "vmm/startup_timings.h"

namespace mote {
namespace {

// Written at run time (.data), relocated at start-up (RELRO in a PIE), and
// code reached through a pointer: all must survive the release intact.
int g_written = 1;
const char* const kRelocated[] = {"relocated", "table"};
int Twice(int x) { return 2 * x; }
int (*volatile g_function)(int) = Twice;

size_t ExecutableRssKib() {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  REQUIRE(n > 0);
  exe[n] = '\0';
  const std::regex header("^[0-9a-f]+-[0-9a-f]+ ");
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool ours = false;
  size_t kib = 0;
  while (std::getline(smaps, line)) {
    if (std::regex_search(line, header)) {
      ours = line.size() >= std::strlen(exe) &&
             line.compare(line.size() - std::strlen(exe), std::string::npos, exe) == 0;
    } else if (ours && line.rfind("Rss:", 0) == 0) {
      kib += std::stoul(line.substr(4));
    }
  }
  return kib;
}

TEST_CASE("ReleaseStartupPages drops read-only pages and keeps written ones", "[startup_pages]") {
  g_written = 42;
  size_t before = ExecutableRssKib();
  size_t released = ReleaseStartupPages();
  CHECK(released > 0);
  CHECK(ExecutableRssKib() < before);
  CHECK(g_written == 42);
  CHECK(std::string(kRelocated[0]) + kRelocated[1] == "relocatedtable");
  CHECK(g_function(21) == 42);
}

TEST_CASE("startup timings: marks are kept only once enabled, first mark wins", "[timings]") {
  // Process-wide: this test enables them for the rest of the binary, which
  // no other test reads.
  startup::Mark(startup::Phase::kConfigParsed);
  CHECK(startup::ToJson()["phases"].size() == 1);  // the kernel's process start only
  int64_t main_ns = startup::MonotonicNs();
  startup::Enable(main_ns);
  startup::Mark(startup::Phase::kConfigParsed);
  startup::Mark(startup::Phase::kConfigParsed);
  nlohmann::json phases = startup::ToJson()["phases"];
  REQUIRE(phases.size() == 3);
  CHECK(phases[0]["phase"] == "process_start");
  CHECK(phases[1]["phase"] == "main");
  CHECK(phases[1]["monotonic_ns"] == main_ns);
  CHECK(phases[2]["phase"] == "config_parsed");
  CHECK(phases[2]["monotonic_ns"].get<int64_t>() >= main_ns);
  CHECK(phases[0]["monotonic_ns"].get<int64_t>() <= main_ns);
  CHECK(startup::Table().find("configuration parsed") != std::string::npos);
}

}  // namespace
}  // namespace mote
