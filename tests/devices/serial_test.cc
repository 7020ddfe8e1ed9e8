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

std::vector<uint8_t> Save(Serial16550& uart) {
  StateWriter out;
  uart.SaveState(out);
  return out.Take();
}

absl::Status Restore(Serial16550& uart, absl::Span<const uint8_t> bytes) {
  StateReader in(bytes, "serial");
  return uart.RestoreState(in);
}

TEST_CASE("Serial snapshot: registers, pending THR-empty and queued input come back",
          "[serial][snapshot]") {
  StringSink out;
  FakeIrqLine irq;
  Serial16550 uart(&out, &irq);
  CHECK(uart.state_version() == 1);
  WriteByte(uart, kLcr, 0x80 | 0x1b);
  WriteByte(uart, kData, 0x01);  // DLL
  WriteByte(uart, kIer, 0x02);   // DLM
  WriteByte(uart, kLcr, 0x1b);
  WriteByte(uart, kIer, 0x03);  // RX and THR-empty: THR-empty pending now
  WriteByte(uart, kMcr, 0x0b);
  WriteByte(uart, kScr, 0x5a);
  WriteByte(uart, kIir, 0x01);  // FIFO on
  REQUIRE(uart.EnqueueInput(
              absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>("hi!"), 3)) == 3);
  CHECK(ReadByte(uart, kData) == 'h');
  REQUIRE(irq.level);
  std::vector<uint8_t> state = Save(uart);

  StringSink out2;
  FakeIrqLine irq2;
  Serial16550 copy(&out2, &irq2);
  REQUIRE(Restore(copy, state).ok());
  CHECK(irq2.level);  // driven at restore, before any access
  CHECK(ReadByte(copy, kLcr) == 0x1b);
  CHECK(ReadByte(copy, kIer) == 0x03);
  CHECK(ReadByte(copy, kMcr) == 0x0b);
  CHECK(ReadByte(copy, kScr) == 0x5a);
  CHECK(ReadByte(copy, kLsr) == 0x61);  // data ready, THR empty, idle
  CHECK(ReadByte(copy, kIir) == (0xc0 | 0x04));
  CHECK(ReadByte(copy, kData) == 'i');
  CHECK(ReadByte(copy, kData) == '!');
  CHECK((ReadByte(copy, kLsr) & 0x01) == 0);
  // The THR-empty interrupt was still pending: reported, then acknowledged.
  CHECK(irq2.level);
  CHECK(ReadByte(copy, kIir) == (0xc0 | 0x02));
  CHECK_FALSE(irq2.level);
  CHECK(ReadByte(copy, kIir) == (0xc0 | 0x01));
  WriteByte(copy, kLcr, 0x80 | 0x1b);
  CHECK(ReadByte(copy, kData) == 0x01);
  CHECK(ReadByte(copy, kIer) == 0x02);
  CHECK(out2.text.empty());
}

TEST_CASE("Serial snapshot: a quiet line is restored low", "[serial][snapshot]") {
  StringSink out;
  Serial16550 uart(&out, nullptr);
  std::vector<uint8_t> state = Save(uart);
  FakeIrqLine irq;
  Serial16550 copy(&out, &irq);
  irq.level = true;
  REQUIRE(Restore(copy, state).ok());
  CHECK_FALSE(irq.level);
}

TEST_CASE("Serial snapshot: truncated or out-of-range state is refused, the device unchanged",
          "[serial][snapshot]") {
  StringSink out;
  Serial16550 uart(&out, nullptr);
  WriteByte(uart, kScr, 0x42);
  uart.EnqueueInput(std::vector<uint8_t>{'a', 'b'});
  std::vector<uint8_t> good = Save(uart);

  Serial16550 target(&out, nullptr);
  WriteByte(target, kScr, 0x17);
  target.EnqueueInput(std::vector<uint8_t>{'z'});
  auto unchanged = [&] {
    CHECK(ReadByte(target, kScr) == 0x17);
    CHECK(target.InputRoom() == Serial16550::kInputCapacity - 1);
    CHECK(ReadByte(target, kLcr) == 0x03);
  };
  for (size_t n = 0; n < good.size(); ++n) {
    absl::Status s = Restore(target, absl::MakeConstSpan(good.data(), n));
    CHECK(s.code() == absl::StatusCode::kDataLoss);
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  CHECK_FALSE(Restore(target, longer).ok());
  unchanged();

  auto state = [](uint8_t ier, uint8_t mcr, uint8_t thre, size_t fifo) {
    StateWriter w;
    for (uint8_t v : {ier, uint8_t{0x03}, mcr, uint8_t{0}, uint8_t{0}, uint8_t{0x0c}, uint8_t{0}}) {
      w.U8(v);
    }
    w.U8(thre);
    w.Bytes(std::vector<uint8_t>(fifo, 'x'));
    return w.Take();
  };
  // The limits themselves are fine.
  Serial16550 full(&out, nullptr);
  CHECK(Restore(full, state(0x0f, 0x1f, 1, Serial16550::kInputCapacity)).ok());
  CHECK(full.InputRoom() == 0);
  absl::Status s = Restore(target, state(0x10, 0x08, 0, 0));
  CHECK(s.code() == absl::StatusCode::kDataLoss);
  CHECK(std::string(s.message()).find("IER") != std::string::npos);
  s = Restore(target, state(0, 0x20, 0, 0));
  CHECK(std::string(s.message()).find("MCR") != std::string::npos);
  s = Restore(target, state(0, 0x08, 2, 0));
  CHECK(std::string(s.message()).find("THR") != std::string::npos);
  s = Restore(target, state(0, 0x08, 0, Serial16550::kInputCapacity + 1));
  CHECK(std::string(s.message()).find("FIFO") != std::string::npos);
  unchanged();
}

}  // namespace
}  // namespace mote
