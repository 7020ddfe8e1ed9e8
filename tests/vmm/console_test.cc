#include "vmm/console.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

namespace mote {
namespace {

void Send(ConsoleOutput& out, const std::string& s) {
  out.Write(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

TEST_CASE("ConsoleOutput fires once when a whole line matches --expect", "[console]") {
  int fired = 0;
  auto out = ConsoleOutput::Create({ConsoleKind::kNone, ""}, "^PASS [a-z]+$", [&] { ++fired; });
  REQUIRE(out.ok());
  Send(**out, "booting\r\nPASS ");
  CHECK(fired == 0);  // the line is not complete yet
  Send(**out, "hello\r\nPASS again\n");
  CHECK(fired == 1);
  CHECK((*out)->MatchedOrFinalLineMatches());
}

TEST_CASE("ConsoleOutput checks an unterminated last line when the guest ends", "[console]") {
  int fired = 0;
  auto out = ConsoleOutput::Create({ConsoleKind::kNone, ""}, "done", [&] { ++fired; });
  REQUIRE(out.ok());
  Send(**out, "not yet\nall done");
  CHECK(fired == 0);
  CHECK((*out)->MatchedOrFinalLineMatches());
}

TEST_CASE("ConsoleOutput without a match reports none", "[console]") {
  auto out = ConsoleOutput::Create({ConsoleKind::kNone, ""}, "never", [] {});
  REQUIRE(out.ok());
  Send(**out, std::string(10000, 'x'));  // a line longer than the match window
  CHECK_FALSE((*out)->MatchedOrFinalLineMatches());
}

TEST_CASE("ConsoleOutput writes a file console", "[console]") {
  std::string path = "/tmp/mote-console-test-" + std::to_string(getpid()) + ".log";
  {
    auto out = ConsoleOutput::Create({ConsoleKind::kFile, path}, "", [] {});
    REQUIRE(out.ok());
    Send(**out, "line one\nline two\n");
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(ss.str() == "line one\nline two\n");
  unlink(path.c_str());
  auto bad = ConsoleOutput::Create({ConsoleKind::kFile, "/nonexistent-dir/x.log"}, "", [] {});
  CHECK(absl::IsNotFound(bad.status()));
}

std::string Typed(ConsoleEscape& escape, const std::string& keys, bool* quit = nullptr) {
  ConsoleEscape::Result r = escape.Feed(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(keys.data()), keys.size()));
  if (quit != nullptr) *quit = r.quit;
  return std::string(r.guest_input.begin(), r.guest_input.end());
}

TEST_CASE("ConsoleEscape: Ctrl-A x quits; what came before it reaches the guest", "[console]") {
  ConsoleEscape escape;
  bool quit = false;
  CHECK(Typed(escape, "ls\r\x03", &quit) == "ls\r\x03");  // Ctrl-C is the guest's
  CHECK_FALSE(quit);
  CHECK(Typed(escape, "ab\x01xcd", &quit) == "ab");
  CHECK(quit);
}

TEST_CASE("ConsoleEscape: Ctrl-A Ctrl-A sends one; Ctrl-A before another key drops", "[console]") {
  ConsoleEscape escape;
  bool quit = true;
  CHECK(Typed(escape, "\x01\x01", &quit) == "\x01");
  CHECK_FALSE(quit);
  CHECK(Typed(escape, "\x01yz", &quit) == "yz");
  CHECK(Typed(escape, "X", &quit) == "X");  // only a lower-case x quits
  CHECK_FALSE(quit);
}

TEST_CASE("ConsoleEscape: the escape carries over from one read to the next", "[console]") {
  ConsoleEscape escape;
  bool quit = false;
  CHECK(Typed(escape, "abc\x01", &quit) == "abc");
  CHECK_FALSE(quit);
  CHECK(Typed(escape, "x", &quit).empty());
  CHECK(quit);
  // After a Ctrl-A that was followed by something else, x is just x.
  CHECK(Typed(escape, "\x01q", &quit) == "q");
  CHECK(Typed(escape, "x", &quit) == "x");
  CHECK_FALSE(quit);
}

}  // namespace
}  // namespace mote
