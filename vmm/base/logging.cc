#include "vmm/base/logging.h"

#include "absl/time/clock.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace mote {

void InitLogging(const std::string& level) {
  static Mutex mu;
  MutexLock lock(&mu);
  if (std::shared_ptr<spdlog::logger> existing = spdlog::get("mote")) {
    existing->set_level(spdlog::level::from_str(level));
    return;
  }
  auto logger = spdlog::stderr_logger_mt("mote");
  logger->set_pattern("mote: %l: %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

void EnsureLogging() {
  if (spdlog::get("mote") == nullptr) InitLogging("info");
}

bool RateLimiter::Allow(uint64_t* suppressed, absl::Time now) {
  MutexLock lock(&mu_);
  if (now - window_start_ >= period_) {
    window_start_ = now;
    used_ = 0;
  }
  if (used_ >= burst_) {
    ++suppressed_;
    return false;
  }
  ++used_;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace mote
