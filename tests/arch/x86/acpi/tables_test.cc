// Tests of the ACPI tables at the byte offsets of the ACPI 6.3 spec, read
// with local helpers rather than the builders' own, and of their placement
// in guest memory as a guest walks it (RSDP -> XSDT -> tables -> DSDT).
#include "arch/x86/acpi/tables.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "arch/x86/layout.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86::acpi {
namespace {

using Bytes = std::vector<uint8_t>;

uint64_t Le(const Bytes& b, size_t at, size_t width) {
  REQUIRE(at + width <= b.size());
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= uint64_t{b[at + i]} << (8 * i);
  return v;
}
uint16_t Le16(const Bytes& b, size_t at) { return static_cast<uint16_t>(Le(b, at, 2)); }
uint32_t Le32(const Bytes& b, size_t at) { return static_cast<uint32_t>(Le(b, at, 4)); }
uint64_t Le64(const Bytes& b, size_t at) { return Le(b, at, 8); }
std::string Str(const Bytes& b, size_t at, size_t len) {
  REQUIRE(at + len <= b.size());
  return std::string(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + len));
}
uint8_t Sum(const Bytes& b, size_t len) {
  uint8_t sum = 0;
  for (size_t i = 0; i < len; ++i) sum = static_cast<uint8_t>(sum + b.at(i));
  return sum;
}
bool Contains(const Bytes& hay, const Bytes& needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

// Header checks every system description table must pass.
void CheckHeader(const Bytes& t, const std::string& signature, uint8_t revision) {
  INFO(signature);
  REQUIRE(t.size() >= 36);
  CHECK(Str(t, 0, 4) == signature);
  CHECK(Le32(t, 4) == t.size());
  CHECK(t[8] == revision);
  CHECK(Sum(t, t.size()) == 0);
  CHECK(Str(t, 10, 6) == "MOTE  ");
  CHECK(Str(t, 16, 8) == "MOTEVM  ");
  CHECK(Str(t, 28, 4) == "MOTE");
}

void CheckGas(const Bytes& t, size_t at, uint8_t space, uint8_t bits, uint8_t access,
              uint64_t address) {
  INFO("GAS at " << at);
  CHECK(t.at(at) == space);
  CHECK(t.at(at + 1) == bits);
  CHECK(t.at(at + 2) == 0);  // bit offset
  CHECK(t.at(at + 3) == access);
  CHECK(Le64(t, at + 4) == address);
}

TEST_CASE("Every table has a valid header and checksum", "[acpi]") {
  AcpiConfig cfg;
  cfg.num_cpus = 3;
  CheckHeader(BuildDsdt(cfg), "DSDT", 2);
  CheckHeader(BuildFadt(cfg, 0xe0040), "FACP", 6);
  CheckHeader(BuildMadt(cfg), "APIC", 5);
  CheckHeader(BuildXsdt({0xe0100, 0xe0200}), "XSDT", 1);
  CheckHeader(BuildMcfg(), "MCFG", 1);
  cfg.pci_host_bridge = true;
  CheckHeader(BuildDsdt(cfg), "DSDT", 2);
}

TEST_CASE("FADT fields sit at their ACPI 6.3 offsets", "[acpi]") {
  const uint64_t dsdt = 0xe0040;
  Bytes f = BuildFadt(AcpiConfig{}, dsdt);
  REQUIRE(f.size() == 276);
  CHECK(Le32(f, 36) == 0);     // FIRMWARE_CTRL: no FACS
  CHECK(Le32(f, 40) == dsdt);  // DSDT
  CHECK(Le16(f, 46) == 9);     // SCI_INT
  uint16_t boot_arch = Le16(f, 109);
  CHECK((boot_arch & (1u << 2)) != 0);  // VGA not present
  CHECK((boot_arch & (1u << 1)) == 0);  // no 8042: only its reset line exists
  CHECK((boot_arch & (1u << 5)) == 0);  // the CMOS RTC is present
  CHECK(Le32(f, 112) == ((1u << 20) | (1u << 10) | (1u << 5) | (1u << 4)));
  CheckGas(f, 116, /*SystemIO*/ 1, 8, /*byte*/ 1, kAcpiResetPort);
  CHECK(f[128] == kAcpiResetValue);
  CHECK(f[131] == 3);        // minor version: 6.3
  CHECK(Le64(f, 132) == 0);  // X_FIRMWARE_CTRL
  CHECK(Le64(f, 140) == dsdt);
  for (size_t gas = 148; gas < 244; gas += 12) {
    INFO("legacy X_ block at " << gas);
    CHECK(Le64(f, gas + 4) == 0);  // no PM1/PM2/PM timer/GPE blocks
  }
  CheckGas(f, 244, 1, 8, 1, kAcpiSleepControlPort);
  CheckGas(f, 256, 1, 8, 1, kAcpiSleepStatusPort);
  CHECK(Str(f, 268, 8) == std::string("MOTE\0\0\0\0", 8));
}

TEST_CASE("FADT leaves the 32-bit DSDT field 0 above 4 GiB", "[acpi]") {
  Bytes f = BuildFadt(AcpiConfig{}, 0x123456789);
  CHECK(Le32(f, 40) == 0);
  CHECK(Le64(f, 140) == 0x123456789);
  CHECK(Sum(f, f.size()) == 0);
}

TEST_CASE("MADT describes every vCPU, the I/O APIC and the overrides", "[acpi]") {
  const uint32_t num_cpus = GENERATE(1u, 2u, 4u, 255u);
  INFO(num_cpus << " vCPUs");
  AcpiConfig cfg;
  cfg.num_cpus = num_cpus;
  Bytes m = BuildMadt(cfg);
  CheckHeader(m, "APIC", 5);
  CHECK(Le32(m, 36) == 0xfee00000);
  CHECK(Le32(m, 40) == 1);  // PCAT_COMPAT

  std::vector<uint32_t> lapic_ids;
  int ioapics = 0;
  std::map<uint8_t, std::pair<uint32_t, uint16_t>> overrides;  // ISA IRQ -> GSI, flags
  int nmis = 0;
  size_t at = 44;
  while (at < m.size()) {
    REQUIRE(at + 2 <= m.size());
    uint8_t type = m[at];
    uint8_t len = m[at + 1];
    REQUIRE(len >= 2);
    REQUIRE(at + len <= m.size());
    switch (type) {
      case 0:
        REQUIRE(len == 8);
        CHECK(m[at + 2] == lapic_ids.size());  // processor UID
        CHECK(Le32(m, at + 4) == 1);           // enabled
        lapic_ids.push_back(m[at + 3]);
        break;
      case 1:
        REQUIRE(len == 12);
        ++ioapics;
        CHECK(m[at + 2] == num_cpus);  // id distinct from every LAPIC id
        CHECK(Le32(m, at + 4) == kIoapicAddr);
        CHECK(Le32(m, at + 8) == 0);  // GSI base
        break;
      case 2:
        REQUIRE(len == 10);
        CHECK(m[at + 2] == 0);  // ISA bus
        overrides[m[at + 3]] = {Le32(m, at + 4), Le16(m, at + 8)};
        break;
      case 4:
        REQUIRE(len == 6);
        ++nmis;
        CHECK(m[at + 2] == 0xff);  // all processors
        CHECK(Le16(m, at + 3) == 0);
        CHECK(m[at + 5] == 1);  // LINT1
        break;
      default:
        FAIL("unexpected MADT entry type " << int{type});
    }
    at += len;
  }
  CHECK(at == m.size());
  REQUIRE(lapic_ids.size() == num_cpus);
  for (uint32_t i = 0; i < num_cpus; ++i) CHECK(lapic_ids[i] == i);
  CHECK(ioapics == 1);
  CHECK(nmis == 1);
  REQUIRE(overrides.size() == 2);
  CHECK(overrides[0] == std::pair<uint32_t, uint16_t>{kPitIoapicPin, 0});
  CHECK(overrides[9] == std::pair<uint32_t, uint16_t>{9, 0x000d});
}

TEST_CASE("RSDP has both checksums and points at the XSDT", "[acpi]") {
  Bytes r = BuildRsdp(0x000e0400);
  REQUIRE(r.size() == 36);
  CHECK(Str(r, 0, 8) == "RSD PTR ");
  CHECK(Sum(r, 20) == 0);
  CHECK(Sum(r, 36) == 0);
  CHECK(Str(r, 9, 6) == "MOTE  ");
  CHECK(r[15] == 2);
  CHECK(Le32(r, 16) == 0);  // RsdtAddress
  CHECK(Le32(r, 20) == 36);
  CHECK(Le64(r, 24) == 0xe0400);
  CHECK(Bytes(r.begin() + 33, r.end()) == Bytes{0, 0, 0});
}

TEST_CASE("XSDT lists the table addresses in order", "[acpi]") {
  Bytes x = BuildXsdt({0xe0100, 0x1'0000'0000, 0xe0300});
  CheckHeader(x, "XSDT", 1);
  REQUIRE(x.size() == 36 + 3 * 8);
  CHECK(Le64(x, 36) == 0xe0100);
  CHECK(Le64(x, 44) == 0x100000000);
  CHECK(Le64(x, 52) == 0xe0300);
  CHECK(BuildXsdt({}).size() == 36);
}

TEST_CASE("MCFG describes the ECAM of bus 0", "[acpi]") {
  Bytes m = BuildMcfg();
  REQUIRE(m.size() == 60);
  CHECK(Le64(m, 36) == 0);  // reserved
  CHECK(Le64(m, 44) == kPciEcamStart);
  CHECK(Le16(m, 52) == 0);  // segment
  CHECK(m[54] == 0);        // first bus
  CHECK(m[55] == 0);        // last bus
}

// Pieces of AML the DSDT must contain (see aml_test.cc for the encodings).
const Bytes kS5 = {0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0, 0, 0};
const Bytes kCom1Hid = {'C', 'O', 'M', '1', 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01};
const Bytes kCom1Io = {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08};
const Bytes kIrq4 = {0x22, 0x10, 0x00};
const Bytes kRtcHid = {'R', 'T', 'C', '_', 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0b, 0x00};
const Bytes kRtcIo = {0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02};
const Bytes kPci0Hid = {'P', 'C', 'I', '0', 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08};
const Bytes kEcamReserved = {0x86, 0x09, 0x00, 0x01, 0x00, 0x00,
                             0x00, 0xe0, 0x00, 0x00, 0x10, 0x00};

TEST_CASE("DSDT holds \\_S5, COM1 and RTC, and PCI0 only on request", "[acpi]") {
  AcpiConfig cfg;
  Bytes d = BuildDsdt(cfg);
  // Top level: the \_S5 Name, then Scope (\_SB) running to the table's end.
  REQUIRE(d.size() > 36 + kS5.size() + 2);
  CHECK(Bytes(d.begin() + 36, d.begin() + 36 + static_cast<long>(kS5.size())) == kS5);
  size_t scope = 36 + kS5.size();
  REQUIRE(d[scope] == 0x10);
  uint8_t lead = d[scope + 1];
  size_t pkg_len = (lead >> 6) == 0 ? lead : ((lead & 0x0f) | (size_t{d[scope + 2]} << 4));
  REQUIRE((lead >> 6) <= 1);
  CHECK(scope + 1 + pkg_len == d.size());
  CHECK(Bytes(d.begin() + static_cast<long>(scope + 1 + (lead >> 6) + 1),
              d.begin() + static_cast<long>(scope + 1 + (lead >> 6) + 6)) ==
        Bytes{0x5c, '_', 'S', 'B', '_'});

  CHECK(Contains(d, kCom1Hid));
  CHECK(Contains(d, kCom1Io));
  CHECK(Contains(d, kIrq4));
  CHECK(Contains(d, kRtcHid));
  CHECK(Contains(d, kRtcIo));
  CHECK_FALSE(Contains(d, kPci0Hid));
  CHECK_FALSE(Contains(d, kEcamReserved));

  cfg.pci_host_bridge = true;
  Bytes with_pci = BuildDsdt(cfg);
  CHECK(Contains(with_pci, kCom1Hid));
  CHECK(Contains(with_pci, kPci0Hid));
  CHECK(Contains(with_pci, kEcamReserved));
  // Config ports consumed, then the 32-bit MMIO window kPciMmioStart..End-1.
  CHECK(Contains(with_pci, {0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08}));
  CHECK(Contains(with_pci, {0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xc0,
                            0xff, 0xff, 0xff, 0xcf}));
}

// ---- virtio-mmio devices in the DSDT ------------------------------------------

// Decodes the PkgLength at `at` (ACPI 6.3 section 20.2.4): returns the
// encoded length (which counts the PkgLength bytes) and sets `bytes`.
size_t DecodePkgLength(const Bytes& b, size_t at, size_t& bytes) {
  uint8_t lead = b.at(at);
  bytes = 1 + (lead >> 6);
  if (bytes == 1) return lead & 0x3f;
  size_t len = lead & 0x0f;
  for (size_t i = 1; i < bytes; ++i) len |= size_t{b.at(at + i)} << (4 + 8 * (i - 1));
  return len;
}

const Bytes kVirtioMmioHid = {0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N',
                              'R',  'O', '0', '0', '0', '5',  0x00};

size_t Count(const Bytes& hay, const Bytes& needle) {
  size_t n = 0;
  for (auto it = hay.begin();
       (it = std::search(it, hay.end(), needle.begin(), needle.end())) != hay.end(); ++it) {
    ++n;
  }
  return n;
}

// Device (VRxx) as ASL would compile it, written out from the spec:
//   Device (VRxx) { Name (_HID, "LNRO0005") Name (_UID, index) Name (_CCA, One)
//     Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, base, size)
//       Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi } }) }
Bytes ExpectedVirtioMmioDevice(uint8_t index, uint32_t base, uint32_t size, uint32_t gsi) {
  const char* hex = "0123456789ABCDEF";
  Bytes body = {'V', 'R', static_cast<uint8_t>(hex[index >> 4]),
                static_cast<uint8_t>(hex[index & 0xf])};
  body.insert(body.end(), kVirtioMmioHid.begin(), kVirtioMmioHid.end());
  body.insert(body.end(), {0x08, '_', 'U', 'I', 'D'});
  if (index <= 1) {
    body.push_back(index);  // ZeroOp / OneOp
  } else {
    body.insert(body.end(), {0x0a, index});  // BytePrefix
  }
  body.insert(body.end(), {0x08, '_', 'C', 'C', 'A', 0x01});
  Bytes crs = {0x86, 0x09, 0x00, 0x01};  // Memory32Fixed, length 9, read/write
  for (int i = 0; i < 4; ++i) crs.push_back(static_cast<uint8_t>(base >> (8 * i)));
  for (int i = 0; i < 4; ++i) crs.push_back(static_cast<uint8_t>(size >> (8 * i)));
  // Extended Interrupt, length 6, flags consumer | edge (active-high,
  // exclusive), one interrupt.
  crs.insert(crs.end(), {0x89, 0x06, 0x00, 0x03, 0x01});
  for (int i = 0; i < 4; ++i) crs.push_back(static_cast<uint8_t>(gsi >> (8 * i)));
  crs.push_back(0x79);  // End Tag
  crs.push_back(static_cast<uint8_t>(0x100 - Sum(crs, crs.size())));
  REQUIRE(crs.size() == 23);
  // Name (_CRS, Buffer (0x17) {...}): 1 PkgLength byte + BytePrefix 0x17.
  body.insert(body.end(), {0x08, '_', 'C', 'R', 'S', 0x11, 0x1a, 0x0a, 0x17});
  body.insert(body.end(), crs.begin(), crs.end());
  // Two-byte PkgLength: the body is just over 63 bytes.
  size_t pkg_len = body.size() + 2;
  REQUIRE(pkg_len > 0x3f);
  REQUIRE(pkg_len <= 0xfff);
  Bytes out = {0x5b, 0x82, static_cast<uint8_t>(0x40 | (pkg_len & 0x0f)),
               static_cast<uint8_t>(pkg_len >> 4)};
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::vector<VirtioMmioSlot> LayoutSlots(size_t n) {
  std::vector<VirtioMmioSlot> slots;
  for (size_t i = 0; i < n; ++i) {
    slots.push_back(
        {kVirtioMmioStart + i * kVirtioMmioSlotSize, kVirtioMmioSlotSize, kVirtioMmioGsis[i]});
  }
  return slots;
}

// The \_SB scope right after \_S5 runs exactly to the table's end, so no
// device was left outside it by a wrong PkgLength.
void CheckSbScopeEndsTable(const Bytes& d) {
  size_t scope = 36 + kS5.size();
  REQUIRE(d.size() > scope + 2);
  REQUIRE(d[scope] == 0x10);
  size_t len_bytes = 0;
  size_t pkg_len = DecodePkgLength(d, scope + 1, len_bytes);
  CHECK(scope + 1 + pkg_len == d.size());
  CHECK(Bytes(d.begin() + static_cast<long>(scope + 1 + len_bytes),
              d.begin() + static_cast<long>(scope + 1 + len_bytes + 5)) ==
        Bytes{0x5c, '_', 'S', 'B', '_'});
}

TEST_CASE("DSDT describes each virtio-mmio slot as an LNRO0005 device", "[acpi]") {
  const size_t num_slots = GENERATE(0u, 1u, 3u);
  INFO(num_slots << " virtio-mmio slots");
  AcpiConfig cfg;
  for (size_t i = 0; i < num_slots; ++i) {
    cfg.virtio_mmio.push_back({0xd0000000 + i * 0x1000, 0x1000, static_cast<uint32_t>(5 + i)});
  }
  Bytes d = BuildDsdt(cfg);
  CheckHeader(d, "DSDT", 2);
  CheckSbScopeEndsTable(d);
  CHECK(Count(d, kVirtioMmioHid) == num_slots);
  size_t devices_end = 0;
  size_t devices_size = 0;
  for (size_t i = 0; i < num_slots; ++i) {
    INFO("slot " << i);
    Bytes dev = ExpectedVirtioMmioDevice(static_cast<uint8_t>(i),
                                         static_cast<uint32_t>(0xd0000000 + i * 0x1000), 0x1000,
                                         static_cast<uint32_t>(5 + i));
    auto at = std::search(d.begin(), d.end(), dev.begin(), dev.end());
    REQUIRE(at != d.end());
    // In slot order, one after the other.
    size_t offset = static_cast<size_t>(at - d.begin());
    if (i > 0) CHECK(offset == devices_end);
    devices_end = offset + dev.size();
    devices_size += dev.size();
  }
  // Nothing else changed: the table without slots plus the devices, plus
  // whatever the \_SB scope's PkgLength grew by.
  CHECK(Contains(d, kCom1Hid));
  CHECK(Contains(d, kRtcHid));
  Bytes plain = BuildDsdt(AcpiConfig{});
  size_t scope_len_bytes = 0;
  size_t plain_scope_len_bytes = 0;
  DecodePkgLength(d, 36 + kS5.size() + 1, scope_len_bytes);
  DecodePkgLength(plain, 36 + kS5.size() + 1, plain_scope_len_bytes);
  CHECK(d.size() == plain.size() + devices_size + scope_len_bytes - plain_scope_len_bytes);
  if (num_slots == 0) CHECK(d == plain);
}

TEST_CASE("DSDT names every layout.h virtio-mmio slot, with PCI0 too", "[acpi]") {
  const size_t num_slots = std::size(kVirtioMmioGsis);
  AcpiConfig cfg;
  cfg.pci_host_bridge = true;
  cfg.virtio_mmio = LayoutSlots(num_slots);
  Bytes d = BuildDsdt(cfg);
  CheckHeader(d, "DSDT", 2);
  CheckSbScopeEndsTable(d);
  CHECK(Count(d, kVirtioMmioHid) == num_slots);
  CHECK(Contains(d, kPci0Hid));
  for (size_t i = 0; i < num_slots; ++i) {
    INFO("slot " << i);
    CHECK(Contains(d, ExpectedVirtioMmioDevice(
                          static_cast<uint8_t>(i),
                          static_cast<uint32_t>(kVirtioMmioStart + i * kVirtioMmioSlotSize),
                          static_cast<uint32_t>(kVirtioMmioSlotSize), kVirtioMmioGsis[i])));
  }
  // Two hex digits: slot 10 is VR0A, slot 15 (GSI 22) is VR0F.
  CHECK(Contains(d, {0x5b, 0x82, 0x42, 0x04, 'V', 'R', '0', 'A'}));
  CHECK(Contains(d, {0x5b, 0x82, 0x42, 0x04, 'V', 'R', '0', 'F'}));
}

TEST_CASE("DSDT has a power button behind a Generic Event Device", "[acpi]") {
  Bytes d = BuildDsdt(AcpiConfig{});
  CHECK(Contains(d, {'P', 'W', 'R', 'B'}));
  CHECK(Contains(d, {0x0d, 'A', 'C', 'P', 'I', '0', '0', '1', '3', 0}));  // GED0's _HID string
  // _EVT: Notify (PWRB, 0x80).
  CHECK(Contains(d, {0x86, 'P', 'W', 'R', 'B', 0x0a, 0x80}));
  // Its interrupt: the GED GSI, edge, active high, exclusive, consumer.
  CHECK(Contains(d, {0x89, 0x06, 0x00, 0x03, 0x01, static_cast<uint8_t>(kGedGsi), 0, 0, 0}));
  // Not one of the virtio-mmio GSIs.
  for (uint32_t gsi : kVirtioMmioGsis) CHECK(gsi != kGedGsi);
}

TEST_CASE("DSDT describes the pvpanic port as QEMU does (QEMU0001)", "[acpi]") {
  Bytes d = BuildDsdt(AcpiConfig{});
  CHECK(Contains(d, {'P', 'E', 'V', 'T'}));
  CHECK(Contains(d, {0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0}));
  // IO (Decode16, 0x505, 0x505, 1, 1): the port Linux's pvpanic driver writes.
  const auto lo = static_cast<uint8_t>(kPvpanicPort & 0xff);
  const auto hi = static_cast<uint8_t>(kPvpanicPort >> 8);
  CHECK(Contains(d, {0x47, 0x01, lo, hi, lo, hi, 0x01, 0x01}));
}

// ---- WriteAcpiTables ----------------------------------------------------------

std::unique_ptr<GuestMemory> Guest(uint64_t size) {
  auto mem = GuestMemory::Create({{0, size}});
  REQUIRE(mem.ok());
  return std::move(mem).value();
}

Bytes ReadGuest(const GuestMemory& mem, uint64_t addr, uint64_t len) {
  Bytes out(len);
  REQUIRE(mem.Read(GuestAddress{addr}, absl::MakeSpan(out)).ok());
  return out;
}

struct FoundTable {
  uint64_t addr;
  Bytes bytes;
};

// Reads a table the way a guest does (header first, then its length) and
// checks it lies in the ACPI area, aligned, with a good checksum.
FoundTable ReadTable(const GuestMemory& mem, uint64_t addr) {
  INFO("table at 0x" << std::hex << addr);
  CHECK(addr % 16 == 0);
  REQUIRE(addr >= kAcpiTablesAddr);
  REQUIRE(addr + 36 <= kAcpiTablesEnd);
  uint32_t len = Le32(ReadGuest(mem, addr, 36), 4);
  REQUIRE(len >= 36);
  REQUIRE(addr + len <= kAcpiTablesEnd);
  Bytes t = ReadGuest(mem, addr, len);
  CHECK(Sum(t, t.size()) == 0);
  return {addr, t};
}

// Walks RSDP -> XSDT -> tables (-> DSDT); returns the tables by signature.
std::map<std::string, FoundTable> WalkFromRsdp(const GuestMemory& mem, uint64_t rsdp_addr) {
  Bytes rsdp = ReadGuest(mem, rsdp_addr, 36);
  REQUIRE(Str(rsdp, 0, 8) == "RSD PTR ");
  REQUIRE(Sum(rsdp, 20) == 0);
  REQUIRE(Sum(rsdp, 36) == 0);
  std::map<std::string, FoundTable> tables;
  FoundTable xsdt = ReadTable(mem, Le64(rsdp, 24));
  REQUIRE(Str(xsdt.bytes, 0, 4) == "XSDT");
  REQUIRE((xsdt.bytes.size() - 36) % 8 == 0);
  tables["XSDT"] = xsdt;
  for (size_t at = 36; at < xsdt.bytes.size(); at += 8) {
    FoundTable t = ReadTable(mem, Le64(xsdt.bytes, at));
    std::string sig = Str(t.bytes, 0, 4);
    CHECK(tables.count(sig) == 0);
    tables[sig] = t;
  }
  REQUIRE(tables.count("FACP") == 1);
  FoundTable dsdt = ReadTable(mem, Le64(tables["FACP"].bytes, 140));
  CHECK(Le32(tables["FACP"].bytes, 40) == dsdt.addr);
  tables["DSDT"] = dsdt;
  return tables;
}

void CheckNoOverlap(const std::map<std::string, FoundTable>& tables) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges = {{kAcpiRsdpAddr, kAcpiRsdpAddr + 36}};
  for (const auto& [sig, t] : tables) ranges.push_back({t.addr, t.addr + t.bytes.size()});
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) CHECK(ranges[i - 1].second <= ranges[i].first);
}

TEST_CASE("WriteAcpiTables lays out a table set a guest can walk", "[acpi]") {
  const uint32_t num_cpus = GENERATE(1u, 4u, 255u);
  const bool pci = GENERATE(false, true);
  INFO(num_cpus << " vCPUs, pci " << pci);
  auto mem = Guest(16 << 20);
  AcpiConfig cfg;
  cfg.num_cpus = num_cpus;
  cfg.pci_host_bridge = pci;
  absl::StatusOr<uint64_t> rsdp = WriteAcpiTables(*mem, cfg);
  REQUIRE(rsdp.ok());
  CHECK(*rsdp == kAcpiRsdpAddr);

  std::map<std::string, FoundTable> tables = WalkFromRsdp(*mem, *rsdp);
  CHECK(tables.size() == (pci ? 5u : 4u));
  CHECK(tables.count("APIC") == 1);
  CHECK(tables.count("MCFG") == (pci ? 1u : 0u));
  CheckNoOverlap(tables);
  // The guest sees exactly what the pure builders produce.
  CHECK(tables["DSDT"].bytes == BuildDsdt(cfg));
  CHECK(tables["APIC"].bytes == BuildMadt(cfg));
  CHECK(tables["FACP"].bytes == BuildFadt(cfg, tables["DSDT"].addr));
  CHECK(tables["DSDT"].addr == kAcpiTablesAddr);
}

TEST_CASE("WriteAcpiTables puts the virtio-mmio devices in the guest's DSDT", "[acpi]") {
  auto mem = Guest(16 << 20);
  AcpiConfig cfg;
  cfg.num_cpus = 2;
  cfg.virtio_mmio = LayoutSlots(3);
  REQUIRE(WriteAcpiTables(*mem, cfg).ok());
  std::map<std::string, FoundTable> tables = WalkFromRsdp(*mem, kAcpiRsdpAddr);
  CheckNoOverlap(tables);
  CHECK(tables["DSDT"].bytes == BuildDsdt(cfg));
  CHECK(Count(tables["DSDT"].bytes, kVirtioMmioHid) == 3);
  // The rest of the table set does not depend on the slots.
  CHECK(tables["APIC"].bytes == BuildMadt(cfg));
  CHECK(tables.count("MCFG") == 0);
}

TEST_CASE("WriteAcpiTables rejects virtio-mmio slots the DSDT cannot describe", "[acpi]") {
  auto mem = Guest(16 << 20);
  AcpiConfig cfg;
  cfg.virtio_mmio = LayoutSlots(2);
  SECTION("empty window") { cfg.virtio_mmio[1].size = 0; }
  SECTION("window above 4 GiB") { cfg.virtio_mmio[1].base = 0x100000000; }
  SECTION("window crossing 4 GiB") {
    cfg.virtio_mmio[1].base = 0xfffff000;
    cfg.virtio_mmio[1].size = 0x2000;
  }
  SECTION("size wrapping around") { cfg.virtio_mmio[1].size = ~uint64_t{0}; }
  SECTION("GSI past the I/O APIC") { cfg.virtio_mmio[1].gsi = kIoapicPins; }
  SECTION("more slots than VRxx names") {
    cfg.virtio_mmio.resize(kMaxVirtioMmioSlots + 1, cfg.virtio_mmio[0]);
  }
  CHECK(WriteAcpiTables(*mem, cfg).status().code() == absl::StatusCode::kInvalidArgument);
  Bytes area = ReadGuest(*mem, kAcpiRsdpAddr, kAcpiTablesEnd - kAcpiRsdpAddr);
  CHECK(std::all_of(area.begin(), area.end(), [](uint8_t b) { return b == 0; }));
}

TEST_CASE("WriteAcpiTables accepts a slot ending exactly at 4 GiB and 256 slots", "[acpi]") {
  auto mem = Guest(16 << 20);
  AcpiConfig cfg;
  cfg.virtio_mmio.push_back({0xfffff000, 0x1000, kIoapicPins - 1});
  CHECK(WriteAcpiTables(*mem, cfg).ok());
  cfg.virtio_mmio.clear();
  for (size_t i = 0; i < kMaxVirtioMmioSlots; ++i) {
    cfg.virtio_mmio.push_back({0xd0000000 + i * 0x1000, 0x1000, 5});
  }
  REQUIRE(WriteAcpiTables(*mem, cfg).ok());
  Bytes dsdt = WalkFromRsdp(*mem, kAcpiRsdpAddr)["DSDT"].bytes;
  CHECK(Count(dsdt, kVirtioMmioHid) == kMaxVirtioMmioSlots);
  CHECK(Contains(dsdt, {'V', 'R', 'F', 'F', 0x08, '_', 'H', 'I', 'D'}));
  CheckSbScopeEndsTable(dsdt);
}

TEST_CASE("WriteAcpiTables clears tables left from an earlier write", "[acpi]") {
  auto mem = Guest(16 << 20);
  AcpiConfig cfg;
  cfg.num_cpus = 255;
  cfg.pci_host_bridge = true;
  REQUIRE(WriteAcpiTables(*mem, cfg).ok());
  Bytes area = ReadGuest(*mem, kAcpiRsdpAddr, kAcpiTablesEnd - kAcpiRsdpAddr);
  REQUIRE(Contains(area, {'M', 'C', 'F', 'G'}));

  cfg.num_cpus = 1;
  cfg.pci_host_bridge = false;
  REQUIRE(WriteAcpiTables(*mem, cfg).ok());
  area = ReadGuest(*mem, kAcpiRsdpAddr, kAcpiTablesEnd - kAcpiRsdpAddr);
  CHECK_FALSE(Contains(area, {'M', 'C', 'F', 'G'}));
  CHECK(WalkFromRsdp(*mem, kAcpiRsdpAddr)["APIC"].bytes.size() == 44 + 8 + 12 + 2 * 10 + 6);
}

TEST_CASE("WriteAcpiTables rejects bad configs and too little RAM", "[acpi]") {
  auto mem = Guest(16 << 20);
  AcpiConfig cfg;
  cfg.num_cpus = 0;
  CHECK(WriteAcpiTables(*mem, cfg).status().code() == absl::StatusCode::kInvalidArgument);
  cfg.num_cpus = kMaxCpus + 1;
  CHECK(WriteAcpiTables(*mem, cfg).status().code() == absl::StatusCode::kInvalidArgument);
  // Nothing was written for a rejected config.
  Bytes area = ReadGuest(*mem, kAcpiRsdpAddr, kAcpiTablesEnd - kAcpiRsdpAddr);
  CHECK(std::all_of(area.begin(), area.end(), [](uint8_t b) { return b == 0; }));

  // A guest whose RAM ends below the BIOS area has no room for the tables.
  auto small = Guest(512 << 10);
  cfg.num_cpus = 1;
  absl::StatusOr<uint64_t> rsdp = WriteAcpiTables(*small, cfg);
  CHECK_FALSE(rsdp.ok());
}

TEST_CASE("HPET table: block ID, base address and minimum tick where the spec puts them",
          "[acpi]") {
  AcpiConfig cfg;
  cfg.hpet_block_id = 0x8086a201;
  cfg.hpet_min_tick = 10000;
  Bytes h = BuildHpet(cfg);
  REQUIRE(h.size() == 56);
  CHECK(Le32(h, 36) == 0x8086a201);
  CHECK(h[40] == 0);   // system memory
  CHECK(h[41] == 64);  // register width
  CHECK(Le64(h, 44) == kHpetAddr);
  CHECK(h[52] == 0);  // HPET number
  CHECK(Le16(h, 53) == 10000);
  CHECK(h[55] == 0);
  // Only a VM with an HPET lists the table.
  auto mem = Guest(16 << 20);
  CHECK(WalkFromRsdp(*mem, *WriteAcpiTables(*mem, cfg)).count("HPET") == 1);
  cfg.hpet_block_id = 0;
  CHECK(WalkFromRsdp(*mem, *WriteAcpiTables(*mem, cfg)).count("HPET") == 0);
}

TEST_CASE("A full FADT: FACS, PM1a blocks, the PM timer, no sleep registers", "[acpi]") {
  AcpiConfig cfg;
  cfg.hardware_reduced = false;
  const uint64_t dsdt = 0xe0080, facs = 0xe0040;
  Bytes f = BuildFadt(cfg, dsdt, facs);
  CHECK(Le32(f, 36) == facs);   // FIRMWARE_CTRL
  CHECK(Le64(f, 132) == facs);  // X_FIRMWARE_CTRL
  CHECK(Le32(f, 48) == 0);      // no SMI_CMD: always in ACPI mode
  CHECK(Le32(f, 56) == kAcpiPm1aEventPort);
  CHECK(Le32(f, 64) == kAcpiPm1aControlPort);
  CHECK(Le32(f, 76) == kAcpiPmTimerPort);
  CHECK(kAcpiPmTimerPort == 0x608);  // where QEMU has it
  CHECK(f[88] == 4);
  CHECK(f[89] == 2);
  CHECK(f[91] == 4);
  uint32_t flags = Le32(f, 112);
  CHECK((flags & (1u << 20)) == 0);  // not hardware-reduced
  CHECK((flags & (1u << 8)) != 0);   // 32-bit PM timer
  CheckGas(f, 148, 1, 32, 2, kAcpiPm1aEventPort);
  CheckGas(f, 172, 1, 16, 2, kAcpiPm1aControlPort);
  CheckGas(f, 208, 1, 32, 3, kAcpiPmTimerPort);
  CHECK(Le64(f, 244 + 4) == 0);  // no SLEEP_CONTROL_REG
  CHECK(Le64(f, 256 + 4) == 0);
  CHECK(Sum(f, f.size()) == 0);

  Bytes s = BuildFacs();
  REQUIRE(s.size() == 64);
  CHECK(Str(s, 0, 4) == "FACS");
  CHECK(Le32(s, 4) == 64);
  CHECK(Le32(s, 12) == 0);  // no waking vector until the guest writes one
  CHECK(s[32] == 2);

  // The guest reaches it from the FADT, 64-byte aligned.
  auto mem = Guest(16 << 20);
  std::map<std::string, FoundTable> tables = WalkFromRsdp(*mem, *WriteAcpiTables(*mem, cfg));
  uint64_t facs_addr = Le64(tables["FACP"].bytes, 132);
  CHECK(facs_addr % 64 == 0);
  CHECK(ReadGuest(*mem, facs_addr, 64) == BuildFacs());
  CHECK(tables["FACP"].bytes == BuildFadt(cfg, tables["DSDT"].addr, facs_addr));
}

}  // namespace
}  // namespace mote::x86::acpi
