#include "vmm/base/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "absl/time/clock.h"
#include "vmm/base/status_macros.h"

namespace mote {
namespace {
constexpr int kMaxEvents = 16;
}  // namespace

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create(Clock clock) {
  FileDescriptor epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.ok()) return ErrnoToStatus(errno, "epoll_create1");
  FileDescriptor wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.ok()) return ErrnoToStatus(errno, "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake.get();
  if (epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev) != 0) {
    return ErrnoToStatus(errno, "epoll_ctl add wake eventfd");
  }
  return std::unique_ptr<EventLoop>(
      new EventLoop(std::move(epoll), std::move(wake), std::move(clock)));
}

absl::Status EventLoop::Add(int fd, uint32_t epoll_events, Callback callback) {
  MutexLock lock(&mu_);
  epoll_event ev{};
  ev.events = epoll_events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return ErrnoToStatus(errno, "epoll_ctl add fd " + std::to_string(fd));
  }
  callbacks_[fd] = std::make_shared<Callback>(std::move(callback));
  return absl::OkStatus();
}

absl::Status EventLoop::Modify(int fd, uint32_t epoll_events) {
  MutexLock lock(&mu_);
  if (!callbacks_.contains(fd)) {
    return absl::NotFoundError("EventLoop::Modify: fd " + std::to_string(fd) + " is not watched");
  }
  epoll_event ev{};
  ev.events = epoll_events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
    return ErrnoToStatus(errno, "epoll_ctl mod fd " + std::to_string(fd));
  }
  return absl::OkStatus();
}

absl::Status EventLoop::Remove(int fd) {
  MutexLock lock(&mu_);
  callbacks_.erase(fd);
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return ErrnoToStatus(errno, "epoll_ctl del fd " + std::to_string(fd));
  }
  return absl::OkStatus();
}

void EventLoop::Post(std::function<void()> work) {
  {
    MutexLock lock(&mu_);
    posted_.push_back(std::move(work));
  }
  uint64_t one = 1;
  // A full eventfd counter already means "wake up": ignoring EAGAIN is right.
  (void)!write(wake_.get(), &one, sizeof(one));
}

void EventLoop::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
}

void EventLoop::RunPosted() {
  std::vector<std::function<void()>> work;
  {
    MutexLock lock(&mu_);
    work.swap(posted_);
  }
  for (auto& w : work) w();
}

uint64_t EventLoop::AddPoller(Poller poller) {
  MutexLock lock(&mu_);
  uint64_t id = next_poller_id_++;
  pollers_[id] = std::make_shared<Poller>(std::move(poller));
  return id;
}

void EventLoop::RemovePoller(uint64_t id) {
  MutexLock lock(&mu_);
  pollers_.erase(id);
}

std::optional<bool> EventLoop::RunPollers() {
  std::vector<std::shared_ptr<Poller>> pollers;  // copies: a poller may remove itself
  {
    MutexLock lock(&mu_);
    if (pollers_.empty()) return std::nullopt;
    for (const auto& [id, poller] : pollers_) pollers.push_back(poller);
  }
  bool found = false;
  for (const auto& poller : pollers) found |= (*poller)();
  return found;
}

absl::Status EventLoop::Run() {
  epoll_event events[kMaxEvents];
  absl::Time poll_until = absl::InfinitePast();
  while (true) {
    {
      MutexLock lock(&mu_);
      if (stop_) {
        stop_ = false;  // the loop can be run again (the next VM after a reset)
        return absl::OkStatus();
      }
    }
    // Inside the poll window epoll only looks (timeout 0); the pollers run
    // after the events, and any work found or done extends the window.
    bool polling = clock_() < poll_until;
    int n = epoll_wait(epoll_.get(), events, kMaxEvents, polling ? 0 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_.get()) {
        uint64_t count;
        (void)!read(wake_.get(), &count, sizeof(count));
        RunPosted();
        continue;
      }
      std::shared_ptr<Callback> cb;  // a copy keeps it alive if it removes itself
      {
        MutexLock lock(&mu_);
        auto it = callbacks_.find(fd);
        if (it == callbacks_.end()) continue;  // removed since epoll_wait returned
        cb = it->second;
      }
      (*cb)(events[i].events);
    }
    std::optional<bool> found = RunPollers();
    if (found.has_value() && (*found || n > 0)) poll_until = clock_() + kPollWindow;
  }
}

}  // namespace mote
