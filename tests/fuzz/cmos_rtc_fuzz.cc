// Fuzz target: the CMOS RTC (devices/cmos_rtc.cc) at ports 0x70/0x71: any
// index (NMI bit included), BCD and binary modes, 12/24-hour, writes to the
// clock and status registers, at a clock time taken from the input.
// Input: i64 seconds since the epoch, then register accesses (TakeAccess
// over 0x6c..0x7b).
#include <cstdlib>

#include "arch/x86/layout.h"
#include "devices/cmos_rtc.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/fakes.h"

using namespace mote;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  // Any time a host clock could report, from 1900 to 10000 years ahead.
  int64_t seconds = in.Take<int64_t>() % (int64_t{320000} * 365 * 86400) - int64_t{2208988800};
  testing::FakeClock clock(absl::FromUnixSeconds(seconds));
  auto rtc = std::make_shared<CmosRtc>(&clock);
  Bus bus("pio");
  if (!bus.Insert(rtc, x86::kCmosPort, CmosRtc::kPortCount).ok()) abort();
  for (int step = 0; step < 8192 && !in.empty(); ++step) {
    fuzz::Perform(bus, fuzz::TakeAccess(in, x86::kCmosPort - 4, 16));
  }
  return 0;
}
