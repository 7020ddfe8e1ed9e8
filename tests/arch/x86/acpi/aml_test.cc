// Tests of the AML writer against hand-assembled bytes (ACPI 6.x ch. 20 and
// 6.4); cross-checked with iasl's own encoding where noted.
#include "arch/x86/acpi/aml.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace mote::x86::acpi::aml {
namespace {

// Decodes a PkgLength independently of the writer: {value, encoded size}.
std::pair<size_t, size_t> DecodePkgLength(const Bytes& b, size_t at) {
  uint8_t lead = b.at(at);
  size_t follow = lead >> 6;
  if (follow == 0) return {lead & 0x3f, 1};
  size_t value = lead & 0x0f;
  for (size_t i = 0; i < follow; ++i) value |= size_t{b.at(at + 1 + i)} << (4 + 8 * i);
  return {value, follow + 1};
}

Bytes Ascii(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST_CASE("PkgLength picks the smallest encoding at every boundary", "[acpi]") {
  struct Case {
    size_t body;
    Bytes expected;
  };
  // The encoded value is body + the PkgLength's own size.
  const std::vector<Case> cases = {
      {0, {0x01}},
      {62, {0x3f}},                           // total 63: the 1-byte maximum
      {63, {0x41, 0x04}},                     // total 65 (64 would not fit one byte)
      {64, {0x42, 0x04}},                     // total 66
      {4093, {0x4f, 0xff}},                   // total 4095: the 2-byte maximum
      {4094, {0x81, 0x00, 0x01}},             // total 4097 = 0x1001
      {4095, {0x82, 0x00, 0x01}},             // total 4098
      {4096, {0x83, 0x00, 0x01}},             // total 4099
      {0xffffc, {0x8f, 0xff, 0xff}},          // total 0xfffff: the 3-byte maximum
      {0xffffd, {0xc1, 0x00, 0x00, 0x01}},    // total 0x100001
      {0xffffffb, {0xcf, 0xff, 0xff, 0xff}},  // total 0xfffffff: the maximum
  };
  for (const Case& c : cases) {
    INFO("body length " << c.body);
    Bytes encoded = PkgLength(c.body);
    CHECK(encoded == c.expected);
    auto [value, size] = DecodePkgLength(encoded, 0);
    CHECK(size == encoded.size());
    CHECK(value == c.body + encoded.size());
  }
}

TEST_CASE("Integers use ZeroOp, OneOp or the smallest prefix", "[acpi]") {
  CHECK(Integer(0) == Bytes{0x00});
  CHECK(Integer(1) == Bytes{0x01});
  CHECK(Integer(2) == Bytes{0x0a, 0x02});
  CHECK(Integer(0xff) == Bytes{0x0a, 0xff});
  CHECK(Integer(0x100) == Bytes{0x0b, 0x00, 0x01});
  CHECK(Integer(0xffff) == Bytes{0x0b, 0xff, 0xff});
  CHECK(Integer(0x10000) == Bytes{0x0c, 0x00, 0x00, 0x01, 0x00});
  CHECK(Integer(0xfee00000) == Bytes{0x0c, 0x00, 0x00, 0xe0, 0xfe});
  CHECK(Integer(0x100000000) == Bytes{0x0e, 0, 0, 0, 0, 1, 0, 0, 0});
  CHECK(Integer(0x0123456789abcdef) == Bytes{0x0e, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01});
}

TEST_CASE("Strings and EISA ids", "[acpi]") {
  CHECK(String("") == Bytes{0x0d, 0x00});
  CHECK(String("mote") == Bytes{0x0d, 'm', 'o', 't', 'e', 0x00});
  // iasl: EisaId ("PNP0501") is DWord 0x0105D041.
  CHECK(EisaId("PNP0501") == Bytes{0x0c, 0x41, 0xd0, 0x05, 0x01});
  CHECK(EisaId("PNP0A03") == Bytes{0x0c, 0x41, 0xd0, 0x0a, 0x03});
  CHECK(EisaId("PNP0a08") == Bytes{0x0c, 0x41, 0xd0, 0x0a, 0x08});
  CHECK(EisaId("PNP0B00") == Bytes{0x0c, 0x41, 0xd0, 0x0b, 0x00});
  // "QEM" = 17, 5, 13: 10001 00101 01101.
  CHECK(EisaId("QEM0001") == Bytes{0x0c, 0x44, 0xad, 0x00, 0x01});
}

TEST_CASE("NameStrings pad segments and pick the right prefix", "[acpi]") {
  CHECK(NameString("_UID") == Ascii("_UID"));
  CHECK(NameString("RTC") == Ascii("RTC_"));
  CHECK(NameString("\\_SB") == Cat({{0x5c}, Ascii("_SB_")}));
  CHECK(NameString("\\") == Bytes{0x5c, 0x00});
  CHECK(NameString("^FOO") == Cat({{0x5e}, Ascii("FOO_")}));
  CHECK(NameString("^^A") == Cat({{0x5e, 0x5e}, Ascii("A___")}));
  CHECK(NameString("\\_SB.COM1") == Cat({{0x5c, 0x2e}, Ascii("_SB_COM1")}));
  CHECK(NameString("_SB.PCI0.S1") == Cat({{0x2f, 0x03}, Ascii("_SB_PCI0S1__")}));

  for (const char* good : {"_S5", "A", "\\", "^", "\\A1_.B", "_SB.PCI0.MRES"}) {
    INFO(good);
    CHECK(IsValidNamePath(good));
  }
  for (const char* bad :
       {"", "1ABC", "ABCDE", "abc", "A..B", "A.", ".A", "\\\\A", "^\\A", "A-B", "\\.A"}) {
    INFO(bad);
    CHECK_FALSE(IsValidNamePath(bad));
  }
}

TEST_CASE("Name, Package, Scope, Device and Method encode like iasl", "[acpi]") {
  CHECK(Name("_UID", Integer(0)) == Cat({{0x08}, Ascii("_UID"), {0x00}}));
  // iasl: Name (\_S5, Package () {5, 0, 0, 0}) body is 12 07 04 0A 05 00 00 00.
  CHECK(Package({Integer(5), Integer(0), Integer(0), Integer(0)}) ==
        Bytes{0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00});
  CHECK(Package({}) == Bytes{0x12, 0x02, 0x00});
  CHECK(Scope("\\_SB", {}) == Cat({{0x10, 0x06, 0x5c}, Ascii("_SB_")}));
  // 5B 82, PkgLength 11 = 1 + "COM1" + Name(_UID, Zero) (6 bytes).
  CHECK(Device("COM1", {Name("_UID", Integer(0))}) ==
        Cat({{0x5b, 0x82, 0x0b}, Ascii("COM1"), {0x08}, Ascii("_UID"), {0x00}}));
  CHECK(Method("_STA", 0, false, {Return(Integer(0x0f))}) ==
        Cat({{0x14, 0x09}, Ascii("_STA"), {0x00, 0xa4, 0x0a, 0x0f}}));
  CHECK(Method("FOO", 3, true, {}) == Cat({{0x14, 0x06}, Ascii("FOO_"), {0x0b}}));
  CHECK(Buffer({1, 2, 3}) == Bytes{0x11, 0x06, 0x0a, 0x03, 1, 2, 3});
}

TEST_CASE("Nested objects get PkgLengths that end exactly at their contents", "[acpi]") {
  // Buffer sizes around the 1/2/3-byte PkgLength boundaries, inside a
  // Device inside a Scope, each PkgLength checked by an independent decoder.
  for (size_t n : {0u, 58u, 59u, 60u, 61u, 62u, 100u, 4089u, 4090u, 4091u, 4092u, 5000u}) {
    INFO("buffer of " << n << " bytes");
    Bytes data(n, 0xaa);
    Bytes buffer = Buffer(data);
    Bytes device = Device("DEV", {Name("BUF", buffer)});
    Bytes scope = Scope("\\_SB", {device});

    auto [buf_len, buf_size] = DecodePkgLength(buffer, 1);
    CHECK(1 + buf_len == buffer.size());
    auto [dev_len, dev_size] = DecodePkgLength(device, 2);
    CHECK(2 + dev_len == device.size());
    auto [scope_len, scope_size] = DecodePkgLength(scope, 1);
    CHECK(1 + scope_len == scope.size());
    // The scope's body is its name then exactly the device.
    CHECK(Bytes(scope.begin() + 1 + scope_size + 5, scope.end()) == device);
  }
}

uint8_t Sum(const Bytes& b, size_t from, size_t to) {
  uint8_t sum = 0;
  for (size_t i = from; i < to; ++i) sum = static_cast<uint8_t>(sum + b[i]);
  return sum;
}

TEST_CASE("Small resource descriptors and the End Tag checksum", "[acpi]") {
  CHECK(IoPort(0x3f8, 0x3f8, 1, 8) == Bytes{0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08});
  CHECK(IrqNoFlags({4}) == Bytes{0x22, 0x10, 0x00});
  CHECK(IrqNoFlags({1, 8, 15}) == Bytes{0x22, 0x02, 0x81});

  Bytes rt = ResourceTemplate({IoPort(0x3f8, 0x3f8, 1, 8), IrqNoFlags({4})});
  // Buffer, PkgLength 0x10, BufferSize 0x0d, 8 + 3 descriptor bytes, End Tag.
  REQUIRE(rt.size() == 17);
  CHECK(Bytes(rt.begin(), rt.begin() + 4) == Bytes{0x11, 0x10, 0x0a, 0x0d});
  CHECK(rt[15] == 0x79);
  CHECK(Sum(rt, 4, rt.size()) == 0);

  Bytes empty = ResourceTemplate({});
  CHECK(empty == Bytes{0x11, 0x05, 0x0a, 0x02, 0x79, 0x87});
}

TEST_CASE("Large resource descriptors", "[acpi]") {
  CHECK(ExtendedInterrupt(9, Trigger::kLevel, Polarity::kActiveHigh, false) ==
        Bytes{0x89, 0x06, 0x00, 0x01, 0x01, 0x09, 0x00, 0x00, 0x00});
  CHECK(ExtendedInterrupt(0x123, Trigger::kEdge, Polarity::kActiveLow, true) ==
        Bytes{0x89, 0x06, 0x00, 0x0f, 0x01, 0x23, 0x01, 0x00, 0x00});
  CHECK(Memory32Fixed(0xe0000000, 0x100000, true) ==
        Bytes{0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x10, 0x00});
  // Word: tag, length 13, type, general flags (producer, MinFixed, MaxFixed),
  // type flags, granularity, min, max, translation, length.
  CHECK(WordBusNumber(0, 0) ==
        Bytes{0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00});
  CHECK(WordIo(0x0d00, 0xffff) ==
        Bytes{0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0, 0x00, 0x0d, 0xff, 0xff, 0, 0, 0x00, 0xf3});
  CHECK(DWordMemory(0xc0000000, 0xdfffffff, Cacheability::kNonCacheable, true) ==
        Bytes{0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0,    0x00, 0x00, 0x00,
              0xc0, 0xff, 0xff, 0xff, 0xdf, 0,    0, 0, 0, 0x00, 0x00, 0x00, 0x20});
  Bytes q = QWordMemory(0x100000000, 0x1ffffffff, Cacheability::kPrefetchable, false);
  REQUIRE(q.size() == 46);
  CHECK(Bytes(q.begin(), q.begin() + 6) == Bytes{0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x06});
  CHECK(Bytes(q.begin() + 14, q.begin() + 22) == Bytes{0, 0, 0, 0, 1, 0, 0, 0});  // min
  CHECK(Bytes(q.begin() + 38, q.end()) == Bytes{0, 0, 0, 0, 1, 0, 0, 0});         // length
}

}  // namespace
}  // namespace mote::x86::acpi::aml
