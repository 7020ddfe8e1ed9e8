// EventLoop: one epoll loop that runs on one thread (the VM's event-loop
// thread). File descriptors are watched with callbacks; other threads hand
// work to it with Post(), which wakes it through an eventfd. Pollers are
// called in a busy loop for a short window after any activity, instead of
// sleeping in epoll: on nested KVM a thread's wake-up costs tens of
// microseconds, which polling a virtqueue or an io_uring spares.
// Thread-safety: every method may be called from any thread. A callback
// removed while it runs finishes that run; it is not called again after
// Remove returns (unless Remove was called from another callback's run).
#ifndef MOTE_VMM_BASE_EVENT_LOOP_H_
#define MOTE_VMM_BASE_EVENT_LOOP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "vmm/base/fd.h"
#include "vmm/base/mutex.h"

namespace mote {

class EventLoop {
 public:
  using Callback = std::function<void(uint32_t epoll_events)>;
  // Returns true when it found work (which keeps the loop polling).
  using Poller = std::function<bool()>;
  // How long the loop keeps polling after the last activity.
  static constexpr absl::Duration kPollWindow = absl::Microseconds(50);

  // What the poll window is measured with: absl::Now, or a test's own clock.
  using Clock = std::function<absl::Time()>;

  static absl::StatusOr<std::unique_ptr<EventLoop>> Create(Clock clock = absl::Now);

  absl::Status Add(int fd, uint32_t epoll_events, Callback callback);
  // Changes the events a watched `fd` waits for (e.g. EPOLLOUT only while
  // output is pending); the callback stays.
  absl::Status Modify(int fd, uint32_t epoll_events);
  absl::Status Remove(int fd);
  // Polls `poller` on the loop thread (see above) until RemovePoller(id).
  uint64_t AddPoller(Poller poller);
  void RemovePoller(uint64_t id);

  // Runs callbacks until Stop(); returns an error only if epoll itself fails.
  // A Stop() before Run() makes it return at once; Run may be called again.
  absl::Status Run();
  // Runs `work` on the loop thread soon.
  void Post(std::function<void()> work);
  void Stop();
  // Runs the work posted so far on the calling thread; only while Run is not
  // running (its owner's last word before the loop is abandoned).
  void RunPosted();

 private:
  EventLoop(FileDescriptor epoll, FileDescriptor wake, Clock clock)
      : epoll_(std::move(epoll)), wake_(std::move(wake)), clock_(std::move(clock)) {}
  // Runs every poller once: whether one found work, or nothing if there is
  // no poller. Loop thread.
  std::optional<bool> RunPollers();

  FileDescriptor epoll_;
  FileDescriptor wake_;  // eventfd
  const Clock clock_;
  Mutex mu_;
  absl::flat_hash_map<int, std::shared_ptr<Callback>> callbacks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Poller>> pollers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_poller_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace mote

#endif  // MOTE_VMM_BASE_EVENT_LOOP_H_
