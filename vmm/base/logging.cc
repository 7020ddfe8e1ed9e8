#include "vmm/base/logging.h"

#include <memory>
#include <string_view>

#include "absl/time/clock.h"
#include "spdlog/formatter.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace mote {
namespace {

// "mote: LEVEL: message", what set_pattern("mote: %l: %v") gives, without
// compiling a pattern: that is a noticeable part of a tiny guest's start-up.
class LineFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    constexpr std::string_view kPrefix = "mote: ";
    dest.append(kPrefix.data(), kPrefix.data() + kPrefix.size());
    spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    dest.append(level.data(), level.data() + level.size());
    dest.push_back(':');
    dest.push_back(' ');
    dest.append(msg.payload.data(), msg.payload.data() + msg.payload.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>();
  }
};

}  // namespace

void InitLogging(const std::string& level) {
  static Mutex mu;
  MutexLock lock(&mu);
  if (std::shared_ptr<spdlog::logger> existing = spdlog::get("mote")) {
    existing->set_level(spdlog::level::from_str(level));
    return;
  }
  auto logger = spdlog::stderr_logger_mt("mote");
  logger->set_formatter(std::make_unique<LineFormatter>());
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
