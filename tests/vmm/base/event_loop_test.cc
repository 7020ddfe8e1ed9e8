#include "vmm/base/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
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
