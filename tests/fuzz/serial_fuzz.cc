// Fuzz target: the 16550A UART (devices/serial.cc) at COM1 on an I/O-port
// bus, as a guest driver reaches it: any register at any width (ports around
// the device too), DLAB on and off, FIFO control, interrupt enables, with
// console input arriving in between.
// Input: actions, each a u8 (mod 8): 7 = console input (u8 length, bytes),
// anything else = a register access (TakeAccess over COM1 - 4 .. COM1 + 12).
#include <cstdlib>

#include "arch/x86/layout.h"
#include "devices/serial.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/support/fakes.h"

using namespace mote;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  testing::StringSink out;
  testing::FakeIrqLine irq;
  auto uart = std::make_shared<Serial16550>(&out, &irq);
  Bus bus("pio");
  if (!bus.Insert(uart, x86::kCom1Port, Serial16550::kRegisterCount).ok()) abort();
  for (int step = 0; step < 8192 && !in.empty(); ++step) {
    if (in.Take<uint8_t>() % 8 == 7) {
      std::vector<uint8_t> input = in.TakeBytes(in.Take<uint8_t>());
      size_t room = uart->InputRoom();
      if (uart->EnqueueInput(input) > room) abort();
      continue;
    }
    fuzz::Perform(bus, fuzz::TakeAccess(in, x86::kCom1Port - 4, 16));
  }
  return 0;
}
