#include "vmm/base/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <catch2/catch.hpp>
#include <thread>

namespace mote {
namespace {

TEST_CASE("EventLoop runs posted work and fd callbacks on its thread, then stops", "[event_loop]") {
  auto loop = EventLoop::Create();
  REQUIRE(loop.ok());
  FileDescriptor efd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  std::atomic<int> fd_events{0};
  std::thread::id loop_thread;
  REQUIRE((*loop)->Add(efd.get(), EPOLLIN, [&](uint32_t) {
    uint64_t v;
    (void)!read(efd.get(), &v, sizeof(v));
    ++fd_events;
    loop_thread = std::this_thread::get_id();
    (*loop)->Stop();
  }).ok());
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
  auto loop = EventLoop::Create();
  REQUIRE(loop.ok());
  // Work appears for the poller to find without any fd event: only polling sees it.
  std::atomic<int> work{0}, found{0}, calls{0};
  uint64_t id = (*loop)->AddPoller([&] {
    ++calls;
    if (work.load() == 0) return false;
    --work;
    ++found;
    return true;
  });
  work = 1000;
  std::thread runner([&] { REQUIRE((*loop)->Run().ok()); });
  // One event opens the poll window. On a loaded host (a sanitizer build
  // beside the fuzzers) the loop thread can be preempted for longer than the
  // window and go back to epoll: then another event reopens it.
  (*loop)->Post([] {});
  int events = 1;
  for (int i = 0, last = 0; i < 4000 && found.load() < 1000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (found.load() == last) {
      (*loop)->Post([] {});
      ++events;
    }
    last = found.load();
  }
  CHECK(found.load() == 1000);
  // Found back to back, each find keeping the window open: far fewer events
  // than finds (one event per find would mean no polling at all).
  CHECK(events < 500);
  // With nothing to find, the window closes and the loop sleeps: no more calls.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  int settled = calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(calls.load() == settled);
  // Removed, it is not called again.
  (*loop)->RemovePoller(id);
  (*loop)->Post([] {});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(calls.load() == settled);
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
