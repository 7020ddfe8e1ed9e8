// Mutex and MutexLock: mote's lock, a std::mutex carrying Abseil's
// thread-safety annotations (ABSL_GUARDED_BY and friends work as they did
// with absl::Mutex). Not absl::Mutex itself: Debian builds Abseil without
// ThreadSanitizer hooks, so TSan cannot see absl::Mutex's hand-offs and
// reports every access it guards as a race; std::mutex goes through
// pthread_mutex, which TSan follows.
// Thread-safety: it is the lock. Not recursive.
#ifndef MOTE_VMM_BASE_MUTEX_H_
#define MOTE_VMM_BASE_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace mote {

class ABSL_LOCKABLE Mutex {
 public:
  constexpr Mutex() = default;  // constant-initialised: usable as a static
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds `mu` from construction to destruction.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace mote

#endif  // MOTE_VMM_BASE_MUTEX_H_
