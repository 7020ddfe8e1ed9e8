#include "virtio/throttle.h"

#include <catch2/catch.hpp>

namespace mote::virtio {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST_CASE("A token bucket lets its burst go at once, then its rate", "[throttle]") {
  TokenBucket bucket;
  bucket.Set({1000, 100}, 0);  // 1000 a second, 100 at once
  CHECK(bucket.Wait(100, 0) == 0);
  bucket.Take(100);
  CHECK(bucket.Wait(50, 0) == 50 * kMs);  // 50 more come in 50 ms
  CHECK(bucket.Wait(50, 49 * kMs) > 0);
  CHECK(bucket.Wait(50, 50 * kMs) == 0);
  // It never holds more than its burst, however long it was idle.
  bucket.Take(50);
  CHECK(bucket.Wait(100, 10'000 * kMs) == 0);
  bucket.Take(100);
  CHECK(bucket.Wait(1, 10'000 * kMs) > 0);
}

TEST_CASE("A request bigger than the burst waits for a full bucket and leaves a debt",
          "[throttle]") {
  TokenBucket bucket;
  bucket.Set({1000, 100}, 0);
  CHECK(bucket.Wait(500, 0) == 0);  // a full bucket lets it go
  bucket.Take(500);
  // 400 owed and 100 to refill: half a second before anything goes again.
  CHECK(bucket.Wait(1, 400 * kMs) > 0);
  CHECK(bucket.Wait(1, 401 * kMs) == 0);
  CHECK(bucket.Wait(100, 401 * kMs) > 0);
  CHECK(bucket.Wait(100, 500 * kMs) == 0);
}

TEST_CASE("A bucket without a burst holds a tenth of a second; rate 0 is no limit", "[throttle]") {
  TokenBucket bucket;
  bucket.Set({1000, 0}, 0);
  CHECK(bucket.Wait(100, 0) == 0);
  bucket.Take(100);
  CHECK(bucket.Wait(1, 0) > 0);
  CHECK(bucket.Wait(100, 100 * kMs) == 0);
  bucket.Set({0, 0}, 0);
  CHECK_FALSE(bucket.limited());
  CHECK(bucket.Wait(uint64_t{1} << 40, 0) == 0);
}

// Back-to-back requests for 10 s of simulated time: what was let through is
// the rate times the time, plus the burst.
uint64_t Simulate(Throttle& throttle, IoDirection direction, uint64_t request_bytes,
                  uint64_t* ops) {
  int64_t now = 0;
  uint64_t bytes = 0;
  *ops = 0;
  while (now < 10'000 * kMs) {
    int64_t wait = throttle.Admit(direction, request_bytes, now);
    if (wait == 0) {
      bytes += request_bytes;
      ++*ops;
    } else {
      now += wait;
    }
  }
  return bytes;
}

TEST_CASE("A throttle holds each limit over 10 s within 2 % (its burst included)", "[throttle]") {
  uint64_t ops = 0;
  SECTION("bytes per second, with requests larger than the burst") {
    Throttle throttle;
    throttle.Set({{}, {{1 << 20, 64 << 10}, {}}, {}}, 0);  // reads: 1 MiB/s, 64 KiB at once
    uint64_t bytes = Simulate(throttle, IoDirection::kIn, 128 << 10, &ops);
    CHECK(bytes == Approx(10 << 20).epsilon(0.02));
  }
  SECTION("operations per second") {
    Throttle throttle;
    throttle.Set({{}, {}, {{}, {500, 0}}}, 0);  // writes: 500 a second
    Simulate(throttle, IoDirection::kOut, 4096, &ops);
    CHECK(static_cast<double>(ops) == Approx(5000).epsilon(0.02));
  }
  SECTION("a total limit holds both directions; one direction's limit not the other") {
    Throttle throttle;
    throttle.Set({{{}, {1000, 0}}, {}, {{}, {100, 0}}}, 0);
    Simulate(throttle, IoDirection::kIn, 512, &ops);
    CHECK(static_cast<double>(ops) == Approx(10000).epsilon(0.02));
    throttle.Set({{{}, {1000, 0}}, {}, {{}, {100, 0}}}, 0);
    Simulate(throttle, IoDirection::kOut, 512, &ops);
    CHECK(static_cast<double>(ops) == Approx(1000).epsilon(0.02));
  }
}

TEST_CASE("An unlimited throttle admits everything at once", "[throttle]") {
  Throttle throttle;
  throttle.Set({}, 0);
  CHECK_FALSE(throttle.limited());
  for (int i = 0; i < 1000; ++i) CHECK(throttle.Admit(IoDirection::kOut, 1 << 20, 0) == 0);
}

}  // namespace
}  // namespace mote::virtio
