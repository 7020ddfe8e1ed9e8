// Fuzz target: the small guest-event ports (devices/guest_ports.cc): the
// debug-exit port, pvpanic, the boot timer and the ACPI sleep/reset
// registers, each on the I/O-port bus where the Vm puts it. Any width, any
// value, ports next to them included.
// Input: register accesses (TakeAccess over 0..0x7ff, where all four live).
#include <cstdlib>

#include "arch/x86/layout.h"
#include "devices/guest_ports.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/fakes.h"

using namespace mote;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  testing::EventRecorder events;
  Bus bus("pio");
  if (!bus.Insert(std::make_shared<DebugExit>(&events), x86::kDebugExitPort, DebugExit::kPortCount)
           .ok() ||
      !bus.Insert(std::make_shared<Pvpanic>(&events), x86::kPvpanicPort, Pvpanic::kPortCount)
           .ok() ||
      !bus.Insert(std::make_shared<BootTimer>(&events), x86::kBootTimerPort, BootTimer::kPortCount)
           .ok() ||
      !bus.Insert(std::make_shared<AcpiPm>(&events, x86::kAcpiS5SleepType, x86::kAcpiResetValue),
                  x86::kAcpiSleepControlPort, AcpiPm::kPortCount)
           .ok()) {
    abort();
  }
  for (int step = 0; step < 8192 && !in.empty(); ++step) {
    fuzz::Perform(bus, fuzz::TakeAccess(in, 0, 0x800));
  }
  return 0;
}
