#include "vmm/outcome.h"

#include <catch2/catch.hpp>
#include <set>

namespace mote {
namespace {

TEST_CASE("Exit codes are the documented, distinct values", "[outcome]") {
  CHECK(ExitCodeFor({OutcomeKind::kPowerOff, 0, ""}) == 0);
  CHECK(ExitCodeFor({OutcomeKind::kExpectMatched, 0, ""}) == 0);
  CHECK(ExitCodeFor({OutcomeKind::kHostError, 0, ""}) == 2);
  CHECK(ExitCodeFor({OutcomeKind::kReset, 0, ""}) == 4);
  CHECK(ExitCodeFor({OutcomeKind::kPanic, 0, ""}) == 6);
  CHECK(ExitCodeFor({OutcomeKind::kTimeout, 0, ""}) == 8);
  CHECK(ExitCodeFor({OutcomeKind::kExpectNotMet, 0, ""}) == 10);
  CHECK(ExitCodeFor({OutcomeKind::kKvmError, 0, ""}) == 12);
  CHECK(ExitCodeFor({OutcomeKind::kSignal, 15, ""}) == 143);
}

TEST_CASE("Debug-exit gives (v << 1) | 1, always odd, so never one of mote's codes", "[outcome]") {
  CHECK(ExitCodeFor({OutcomeKind::kDebugExit, 0, ""}) == 1);
  CHECK(ExitCodeFor({OutcomeKind::kDebugExit, 0x10, ""}) == 0x21);
  CHECK(ExitCodeFor({OutcomeKind::kDebugExit, 0x7f, ""}) == 0xff);
  for (uint64_t v = 0; v < 300; ++v) CHECK(ExitCodeFor({OutcomeKind::kDebugExit, v, ""}) % 2 == 1);
}

}  // namespace
}  // namespace mote
