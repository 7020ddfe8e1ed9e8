// Fuzz target: the i8042 keyboard controller (devices/i8042.cc) at
// 0x60..0x64: any command, command bytes with and without their data byte,
// the reset pulse, reads of an empty output buffer, at every width.
// Input: register accesses (TakeAccess over 0x5c..0x6b).
#include <cstdlib>

#include "arch/x86/layout.h"
#include "devices/i8042.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/fakes.h"

using namespace mote;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  testing::EventRecorder events;
  auto i8042 = std::make_shared<I8042>(&events);
  Bus bus("pio");
  if (!bus.Insert(i8042, x86::kI8042DataPort, I8042::kPortCount).ok()) abort();
  for (int step = 0; step < 8192 && !in.empty(); ++step) {
    fuzz::Perform(bus, fuzz::TakeAccess(in, x86::kI8042DataPort - 4, 16));
  }
  return 0;
}
