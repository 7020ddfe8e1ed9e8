#include "vmm/base/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <thread>

namespace mote {
namespace {

TEST_CASE("EventLoop runs posted work and fd callbacks on its thread, then stops", "[event_loop]") {
  auto loop = EventLoop::Create();
  REQUIRE(loop.ok());
  FileDescriptor efd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  std::atomic<int> fd_events{0};
  std::thread::id loop_thread;
  REQUIRE((*loop)
              ->Add(efd.get(), EPOLLIN,
                    [&](uint32_t) {
                      uint64_t v;
                      (void)!read(efd.get(), &v, sizeof(v));
                      ++fd_events;
                      loop_thread = std::this_thread::get_id();
                      (*loop)->Stop();
                    })
              .ok());
  std::thread runner([&] { REQUIRE((*loop)->Run().ok()); });
  std::thread::id runner_id = runner.get_id();
  uint64_t one = 1;
  REQUIRE(write(efd.get(), &one, sizeof(one)) == sizeof(one));
  runner.join();
  CHECK(fd_events == 1);
  CHECK(loop_thread == runner_id);
}

TEST_CASE("EventLoop runs work posted from another thread on its own thread", "[event_loop]") {
  auto loop = EventLoop::Create();
  REQUIRE(loop.ok());
  std::atomic<int> posted{0};
  std::thread::id ran_on;
  std::thread runner([&] { REQUIRE((*loop)->Run().ok()); });
  std::thread::id runner_id = runner.get_id();
  (*loop)->Post([&] {
    ++posted;
    ran_on = std::this_thread::get_id();
    (*loop)->Stop();
  });
  runner.join();  // returns only because the posted work stopped the loop
  CHECK(posted == 1);
  CHECK(ran_on == runner_id);
}

TEST_CASE("EventLoop runs again after a Stop (the next boot after a reset)", "[event_loop]") {
  auto loop = EventLoop::Create();
  REQUIRE(loop.ok());
  (*loop)->Stop();
  REQUIRE((*loop)->Run().ok());  // a Stop before Run ends it at once
  int runs = 0;
  (*loop)->Post([&] {
    ++runs;
    (*loop)->Stop();
  });
  REQUIRE((*loop)->Run().ok());  // not still stopped: the posted work ran
  CHECK(runs == 1);
}

TEST_CASE("EventLoop polls while pollers find work, then sleeps in epoll", "[event_loop]") {
  // The loop's clock is the test's: time stands still until the test moves
  // it, so the poll window closes exactly when the test says, on any host.
  // seen_us: the latest time the loop read, so the test knows when the loop
  // has seen a time it set (counting reads would race with a read that
  // happens between the test's move of the clock and its count).
  std::atomic<int64_t> now_us{0}, seen_us{-1};
  auto loop = EventLoop::Create([&] {
    const int64_t us = now_us.load();
    seen_us = us;
    return absl::UnixEpoch() + absl::Microseconds(us);
  });
  REQUIRE(loop.ok());
  // Work appears for the poller to find without any fd event: only polling sees it.
  std::atomic<int> work{1000}, found{0}, calls{0};
  uint64_t id = (*loop)->AddPoller([&] {
    ++calls;
    if (work.load() == 0) return false;
    --work;
    ++found;
    return true;
  });
  std::thread runner([&] { REQUIRE((*loop)->Run().ok()); });
  // One event opens the window; with the clock stopped it stays open, so
  // the poller finds all the work without another event.
  (*loop)->Post([] {});
  while (found.load() < 1000) std::this_thread::yield();
  // Still polling (nothing found now): the poller keeps being called.
  for (int seen = calls.load(); calls.load() < seen + 3;) std::this_thread::yield();

  // Past the window, the loop's next look at the clock sends it to sleep in
  // epoll: pollers run only after epoll returns, so from that read on the
  // count stands still until an event comes.
  now_us += absl::ToInt64Microseconds(EventLoop::kPollWindow) + 1;
  while (seen_us.load() < now_us.load()) std::this_thread::yield();
  const int settled = calls.load();
  // A posted task runs before that iteration's pollers: it sees the count
  // the loop slept with.
  std::promise<int> while_asleep;
  (*loop)->Post([&] { while_asleep.set_value(calls.load()); });
  CHECK(while_asleep.get_future().get() == settled);

  // Removed, it is not called again: a task posted from a task runs in the
  // iteration after the one whose pollers would have run.
  (*loop)->RemovePoller(id);
  std::promise<int> after_removal;
  (*loop)->Post([&] { (*loop)->Post([&] { after_removal.set_value(calls.load()); }); });
  const int removed_at = after_removal.get_future().get();
  std::promise<int> later;
  (*loop)->Post([&] { later.set_value(calls.load()); });
  CHECK(later.get_future().get() == removed_at);
  (*loop)->Stop();
  runner.join();
}

TEST_CASE("EventLoop refuses fds that cannot be polled", "[event_loop]") {
  auto loop = EventLoop::Create();
  REQUIRE(loop.ok());
  char path[] = "/tmp/mote-event-loop-XXXXXX";
  FileDescriptor file(mkstemp(path));
  unlink(path);
  CHECK_FALSE((*loop)->Add(file.get(), EPOLLIN, [](uint32_t) {}).ok());
}

}  // namespace
}  // namespace mote
