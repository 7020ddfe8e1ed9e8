#include "vmm/base/logging.h"

#include <catch2/catch.hpp>

#include "absl/time/time.h"

namespace mote {
namespace {

TEST_CASE("RateLimiter allows a burst, then counts what it suppresses", "[logging]") {
  RateLimiter limiter(3, absl::Hours(1));
  uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    CHECK(limiter.Allow(&suppressed));
    CHECK(suppressed == 0);
  }
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(limiter.Allow(&suppressed));
}

TEST_CASE("RateLimiter reports the suppressed count in the next window", "[logging]") {
  RateLimiter limiter(1, absl::Milliseconds(20));
  const absl::Time start = absl::UnixEpoch();
  uint64_t suppressed = 0;
  CHECK(limiter.Allow(&suppressed, start));
  CHECK_FALSE(limiter.Allow(&suppressed, start + absl::Milliseconds(1)));
  CHECK_FALSE(limiter.Allow(&suppressed, start + absl::Milliseconds(19)));
  // The window is the period from its first message, no more.
  CHECK(limiter.Allow(&suppressed, start + absl::Milliseconds(20)));
  CHECK(suppressed == 2);
  CHECK_FALSE(limiter.Allow(&suppressed, start + absl::Milliseconds(39)));
  CHECK(limiter.Allow(&suppressed, start + absl::Milliseconds(40)));
  CHECK(suppressed == 1);
}

}  // namespace
}  // namespace mote
