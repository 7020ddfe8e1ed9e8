#include "devices/serial.h"

#include <catch2/catch.hpp>

#include "tests/support/fakes.h"

namespace mote {
namespace {

using testing::FakeIrqLine;
using testing::ReadByte;
using testing::StringSink;
using testing::WriteByte;

constexpr uint64_t kData = 0, kIer = 1, kIir = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;

TEST_CASE("Serial: bytes written to THR reach the sink", "[serial]") {
  StringSink out;
  Serial16550 uart(&out, nullptr);
  for (char c : std::string("hello\n")) WriteByte(uart, kData, static_cast<uint8_t>(c));
  CHECK(out.text == "hello\n");
  CHECK((ReadByte(uart, kLsr) & 0x60) == 0x60);  // THR empty and idle
}

TEST_CASE("Serial: divisor latch hides THR/IER while DLAB is set", "[serial]") {
  StringSink out;
  Serial16550 uart(&out, nullptr);
  WriteByte(uart, kLcr, 0x83);
  WriteByte(uart, kData, 0x01);  // divisor low, not output
  WriteByte(uart, kIer, 0x00);
  CHECK(ReadByte(uart, kData) == 0x01);
  WriteByte(uart, kLcr, 0x03);
  CHECK(out.text.empty());
  CHECK(ReadByte(uart, kLcr) == 0x03);
}

TEST_CASE("Serial: input is queued, flagged in LSR and raises the RX interrupt", "[serial]") {
  StringSink out;
  FakeIrqLine irq;
  Serial16550 uart(&out, &irq);
  WriteByte(uart, kIer, 0x01);
  CHECK_FALSE(irq.level);
  CHECK(uart.EnqueueInput(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>("ab"), 2)) ==
        2);
  CHECK(irq.level);
  CHECK((ReadByte(uart, kLsr) & 0x01) == 0x01);
  CHECK((ReadByte(uart, kIir) & 0x0f) == 0x04);
  CHECK(ReadByte(uart, kData) == 'a');
  CHECK(ReadByte(uart, kData) == 'b');
  CHECK_FALSE(irq.level);
  CHECK((ReadByte(uart, kLsr) & 0x01) == 0);
  CHECK((ReadByte(uart, kIir) & 0x0f) == 0x01);
}

TEST_CASE("Serial: THR-empty interrupt is raised on enable and cleared by reading IIR",
          "[serial]") {
  StringSink out;
  FakeIrqLine irq;
  Serial16550 uart(&out, &irq);
  WriteByte(uart, kIer, 0x02);
  CHECK(irq.level);
  CHECK((ReadByte(uart, kIir) & 0x0f) == 0x02);
  CHECK_FALSE(irq.level);
  WriteByte(uart, kData, 'x');  // transmitting empties THR again
  CHECK(irq.level);
}

TEST_CASE("Serial: loopback mode feeds output back and mirrors modem lines", "[serial]") {
  StringSink out;
  Serial16550 uart(&out, nullptr);
  WriteByte(uart, kMcr, 0x10 | 0x0a);  // loop + RTS + OUT2, as Linux's probe does
  CHECK((ReadByte(uart, kMsr) & 0xf0) == 0x90);
  WriteByte(uart, kData, 0x5a);
  CHECK(out.text.empty());
  CHECK(ReadByte(uart, kData) == 0x5a);
  WriteByte(uart, kMcr, 0x08);
  CHECK(ReadByte(uart, kMsr) == 0xb0);
}

TEST_CASE("Serial: scratch register, FIFO flag and hostile accesses", "[serial]") {
  StringSink out;
  Serial16550 uart(&out, nullptr);
  WriteByte(uart, kScr, 0x77);
  CHECK(ReadByte(uart, kScr) == 0x77);
  WriteByte(uart, kIir, 0x07);  // enable and clear FIFOs
  CHECK((ReadByte(uart, kIir) & 0xc0) == 0xc0);
  WriteByte(uart, 99, 1);          // beyond the registers: ignored
  CHECK(ReadByte(uart, 99) == 0);  // and reads as zero
  CHECK(ReadByte(uart, kScr) == 0x77);
  CHECK(out.text.empty());
  uint8_t wide[4] = {1, 2, 3, 4};
  uart.Write(kData, absl::Span<const uint8_t>(wide, 4));  // a 4-byte write sends its low byte
  CHECK(out.text == std::string(1, '\x01'));
  uart.Read(kScr, absl::Span<uint8_t>(wide, 4));
  CHECK(wide[0] == 0x77);
  CHECK(wide[1] == 0);
  uart.Write(kData, absl::Span<const uint8_t>());  // empty access: nothing sent
  CHECK(out.text == std::string(1, '\x01'));
}

TEST_CASE("Serial: input beyond capacity is refused, not buffered without bound", "[serial]") {
  StringSink out;
  Serial16550 uart(&out, nullptr);
  std::vector<uint8_t> big(Serial16550::kInputCapacity + 100, 'z');
  CHECK(uart.EnqueueInput(big) == Serial16550::kInputCapacity);
  CHECK(uart.InputRoom() == 0);
  CHECK(uart.EnqueueInput(big) == 0);
}

}  // namespace
}  // namespace mote
