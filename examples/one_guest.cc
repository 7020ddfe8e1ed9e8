// One tiny guest through libmote's C++ API: boot it paused, watch its
// events, let it run, and report how it ended.
//
//   c++ -std=c++17 -o one_guest examples/one_guest.cc $(pkg-config --cflags --libs libmote)
//   ./one_guest build/guest-images/motetest.pvh
#include <mote/vm.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s KERNEL (a mote tiny test kernel, e.g. motetest.pvh)\n",
                 argv[0]);
    return 2;
  }
  libmote::VmConfig config;
  config.kernel = argv[1];
  config.cmdline = "test=smp";
  config.cpus = 2;
  config.console.kind = libmote::ConsoleKind::kNone;
  config.paused = true;
  libmote::VmOptions options;
  options.on_event = [](const libmote::Event& e) {
    std::printf("event %s %s\n", e.name.c_str(), e.data.c_str());
  };
  libmote::Result<std::unique_ptr<libmote::Vm>> vm = libmote::Vm::Create(config, options);
  if (!vm.ok()) {
    std::fprintf(stderr, "one_guest: %s\n", vm.message().c_str());
    return 2;
  }
  if (libmote::Status s = (*vm)->Start(); !s.ok()) {
    std::fprintf(stderr, "one_guest: %s\n", s.message().c_str());
    return 2;
  }
  std::printf("status %s\n", (*vm)->QueryStatus()->c_str());
  if (libmote::Status s = (*vm)->Resume(); !s.ok())
    std::fprintf(stderr, "one_guest: %s\n", s.message().c_str());
  libmote::Outcome end = (*vm)->Wait();
  libmote::Result<libmote::Counters> counters = (*vm)->GetCounters();  // after the end: an error
  std::printf("exit code %d (%s: %s); counters after the end: %s\n", end.exit_code,
              end.reason.c_str(), end.detail.c_str(),
              counters.ok() ? "?" : counters.message().c_str());
  return end.exit_code == 1 ? 0 : 1;  // test=smp passes with debug-exit 0, which is exit code 1
}
