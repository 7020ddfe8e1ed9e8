// Logging: spdlog to stderr, and a RateLimiter for every message a guest can
// trigger, so a hostile guest cannot flood the host's logs.
// Thread-safety: all functions and RateLimiter::Allow may be called from any thread.
#ifndef MOTE_VMM_BASE_LOGGING_H_
#define MOTE_VMM_BASE_LOGGING_H_

#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"
#include "vmm/base/mutex.h"

namespace mote {

// Sends logs to stderr with a "mote: level: message" pattern, at `level`:
// one of spdlog's names (trace, debug, info, warn, error, off). Calling it
// again only changes the level.
void InitLogging(const std::string& level);
// The levels InitLogging takes, by name.
inline constexpr const char* kLogLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
// The same at "info" the first time; later calls leave the level alone.
void EnsureLogging();

// Allows `burst` messages per `period`; counts what it suppressed so the next
// allowed message can say how many were dropped.
class RateLimiter {
 public:
  explicit RateLimiter(int burst = 10, absl::Duration period = absl::Seconds(1))
      : burst_(burst), period_(period) {}
  // True if the caller may log now; *suppressed gets the count dropped since
  // the last allowed message.
  bool Allow(uint64_t* suppressed) { return Allow(suppressed, absl::Now()); }
  // The same at a given time (tests drive the window with it).
  bool Allow(uint64_t* suppressed, absl::Time now);

 private:
  Mutex mu_;
  const int burst_;
  const absl::Duration period_;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int used_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mote

// Logs at `level` (a spdlog::level::level_enum) through `limiter`.
#define MOTE_LOG_LIMITED(limiter, level, ...)                                     \
  do {                                                                            \
    uint64_t mote_suppressed_ = 0;                                                \
    if ((limiter).Allow(&mote_suppressed_)) {                                     \
      spdlog::log(level, __VA_ARGS__);                                            \
      if (mote_suppressed_ > 0)                                                   \
        spdlog::log(level, "({} similar messages suppressed)", mote_suppressed_); \
    }                                                                             \
  } while (0)

#endif  // MOTE_VMM_BASE_LOGGING_H_
