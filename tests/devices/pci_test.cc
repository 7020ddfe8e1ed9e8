#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "devices/pci/config_space.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci_root.h"
#include "tests/support/recording_msi_router.h"
#include "vmm/base/state_stream.h"

namespace mote::pci {
namespace {

uint32_t Read32(const PciConfigSpace& c, uint32_t offset) {
  uint32_t v;
  c.Read(offset, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
  return v;
}
void Write32(PciConfigSpace& c, uint32_t offset, uint32_t v) {
  c.Write(offset, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
}

constexpr PciIdentity kIdentity = {.vendor = 0x1af4,
                                   .device = 0x1042,
                                   .revision = 1,
                                   .class_code = 0x018000,
                                   .subsystem_vendor = 0x1af4,
                                   .subsystem = 0x1100};

TEST_CASE("PCI config space: identity and read-only header", "[pci]") {
  PciConfigSpace c(kIdentity);
  CHECK(Read32(c, 0x00) == 0x10421af4);
  CHECK(Read32(c, 0x08) == 0x01800001);  // class 01/80/00, revision 1
  CHECK(Read32(c, 0x2c) == 0x11001af4);
  Write32(c, 0x00, 0);
  Write32(c, 0x08, 0xffffffff);
  CHECK(Read32(c, 0x00) == 0x10421af4);
  CHECK(Read32(c, 0x08) == 0x01800001);
  // Command: only memory, bus master and INTx disable stick.
  Write32(c, 0x04, 0xffffffff);
  CHECK(c.command() == (kCommandMemory | kCommandBusMaster | kCommandIntxDisable));
  CHECK(c.Get8(0x3d) == 0);  // no interrupt pin: MSI-X only
}

TEST_CASE("PCI config space: BAR sizing protocol", "[pci]") {
  PciConfigSpace c(kIdentity);
  c.AddMemoryBar32(0, 0x8000, 0xc0008000);
  CHECK(Read32(c, 0x10) == 0xc0008000);
  Write32(c, 0x10, 0xffffffff);
  CHECK(Read32(c, 0x10) == 0xffff8000);  // size = ~value + 1
  Write32(c, 0x10, 0xc0010123);          // low bits are read-only type bits
  CHECK(*c.BarAddress(0) == 0xc0010000);
  // BARs that do not exist read 0 and stay 0 (sizing gives "absent").
  Write32(c, 0x14, 0xffffffff);
  CHECK(Read32(c, 0x14) == 0);
  CHECK(!c.BarAddress(1).has_value());
  Write32(c, 0x30, 0xfffff800);  // no expansion ROM
  CHECK(Read32(c, 0x30) == 0);
}

TEST_CASE("PCI config space: capability list", "[pci]") {
  PciConfigSpace c(kIdentity);
  CHECK((Read32(c, 0x04) >> 16 & 0x10) == 0);
  uint8_t body1[] = {1, 2, 3};
  uint8_t body2[] = {4, 5, 6, 7, 8, 9};
  uint8_t writable2[] = {0, 0xff, 0, 0, 0, 0};
  uint8_t first = c.AddCapability(0x09, body1);
  uint8_t second = c.AddCapability(0x11, body2, writable2);
  CHECK((Read32(c, 0x04) >> 16 & 0x10) == 0x10);  // status: capabilities list
  CHECK(c.Get8(0x34) == first);
  CHECK(c.Get8(first) == 0x09);
  CHECK(c.Get8(first + 1) == second);
  CHECK(second % 4 == 0);
  CHECK(c.Get8(second) == 0x11);
  CHECK(c.Get8(second + 1) == 0);  // end of list
  uint8_t v[2] = {0xee, 0xee};
  c.Write(second + 2, absl::MakeConstSpan(v, 2));
  CHECK(c.Get8(second + 2) == 4);     // read-only byte
  CHECK(c.Get8(second + 3) == 0xee);  // the writable one
}

// A function as PciTransport builds one: a BAR and two capabilities.
void BuildFunction(PciConfigSpace& c) {
  c.AddMemoryBar32(0, 0x8000, 0xc0008000);
  uint8_t body[] = {1, 2, 3, 4, 5, 6};
  uint8_t writable[] = {0, 0xff, 0, 0, 0, 0};
  c.AddCapability(0x09, body);
  c.AddCapability(0x11, body, writable);
}

std::vector<uint8_t> SavedConfig(const PciConfigSpace& c) {
  StateWriter out;
  c.SaveState(out);
  return out.Take();
}

TEST_CASE("PCI config space: saved bytes restore into a function built the same way",
          "[pci][snapshot]") {
  PciConfigSpace c(kIdentity);
  BuildFunction(c);
  Write32(c, 0x04, kCommandMemory | kCommandBusMaster);
  Write32(c, 0x10, 0xc0100000);  // the guest moved BAR0
  Write32(c, 0x3c, 0x0b);        // interrupt line, scratch for the OS
  uint8_t cap2 = c.Get8(c.Get8(0x34) + 1);
  uint8_t v = 0x77;
  c.Write(cap2 + 3, absl::MakeConstSpan(&v, 1));
  c.Set32(0x200, 0xdeadbeef);  // a device-side register beyond the header
  std::vector<uint8_t> saved = SavedConfig(c);

  PciConfigSpace r(kIdentity);
  BuildFunction(r);
  StateReader in(saved, "pci");
  REQUIRE(r.RestoreState(in).ok());
  CHECK(in.status().ok());
  for (uint32_t offset = 0; offset < kConfigSpaceSize; offset += 4) {
    INFO("offset 0x" << std::hex << offset);
    CHECK(Read32(r, offset) == Read32(c, offset));
  }
  CHECK(*r.BarAddress(0) == 0xc0100000);
  CHECK(r.command() == (kCommandMemory | kCommandBusMaster));
  // The write mask and BAR size come from construction, as before.
  Write32(r, 0x00, 0);
  CHECK(Read32(r, 0x00) == 0x10421af4);
  Write32(r, 0x10, 0xffffffff);
  CHECK(Read32(r, 0x10) == 0xffff8000);
}

TEST_CASE("PCI config space: refuses the bytes of a different function", "[pci][snapshot]") {
  PciConfigSpace c(kIdentity);
  BuildFunction(c);
  std::vector<uint8_t> saved = SavedConfig(c);
  auto restore = [&](PciConfigSpace& target, const std::vector<uint8_t>& bytes) {
    uint32_t before = Read32(target, 0x10);
    StateReader in(bytes, "pci");
    absl::Status s = target.RestoreState(in);
    CHECK(Read32(target, 0x10) == before);  // nothing taken
    return s;
  };
  SECTION("another device ID") {
    PciIdentity other = kIdentity;
    other.device = 0x1041;
    PciConfigSpace r(other);
    BuildFunction(r);
    absl::Status s = restore(r, saved);
    CHECK(!s.ok());
    CHECK_THAT(std::string(s.message()), Catch::Contains("a different PCI function"));
  }
  SECTION("another class") {
    PciIdentity other = kIdentity;
    other.class_code = 0x020000;
    PciConfigSpace r(other);
    BuildFunction(r);
    CHECK(!restore(r, saved).ok());
  }
  SECTION("another capability list") {
    PciConfigSpace r(kIdentity);
    r.AddMemoryBar32(0, 0x8000, 0xc0008000);
    uint8_t body[] = {1, 2, 3, 4, 5, 6};
    r.AddCapability(0x09, body);
    CHECK(!restore(r, saved).ok());
  }
  SECTION("a BAR address the built BAR's size cannot hold") {
    PciConfigSpace small(kIdentity);
    small.AddMemoryBar32(0, 0x4000, 0xc0004000);  // 16 KiB, so 16 KiB aligned
    uint8_t body[] = {1, 2, 3, 4, 5, 6};
    uint8_t writable[] = {0, 0xff, 0, 0, 0, 0};
    small.AddCapability(0x09, body);
    small.AddCapability(0x11, body, writable);
    PciConfigSpace r(kIdentity);
    BuildFunction(r);
    CHECK(!restore(r, SavedConfig(small)).ok());
  }
  SECTION("a BAR holding bits a guest cannot write") {
    PciConfigSpace r(kIdentity);
    BuildFunction(r);
    std::vector<uint8_t> bad = saved;
    bad[4 + 0x10] = 0x08;  // prefetchable
    CHECK(!restore(r, bad).ok());
    bad = saved;
    bad[4 + 0x11] = 0x81;  // 0xc0008100: not aligned to the 32 KiB size
    CHECK(!restore(r, bad).ok());
  }
  SECTION("truncated, or a different length") {
    PciConfigSpace r(kIdentity);
    BuildFunction(r);
    CHECK(!restore(r, std::vector<uint8_t>(saved.begin(), saved.end() - 1)).ok());
    std::vector<uint8_t> short_space = {0x00, 0x01, 0, 0};  // a 256-byte space
    short_space.resize(4 + 256);
    CHECK(!restore(r, short_space).ok());
  }
}

// Mechanism #1 and ECAM see the same functions.
TEST_CASE("PCI root: configuration mechanism #1 and ECAM", "[pci]") {
  PciRoot root;
  auto ports = root.config_ports();
  auto ecam = root.ecam();
  auto out32 = [&](uint64_t port, uint32_t v) {
    ports->Write(port, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  };
  auto in = [&](uint64_t port, size_t size) {
    uint32_t v = 0;
    ports->Read(port, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&v), size));
    return v;
  };
  auto ecam32 = [&](uint64_t offset) {
    uint32_t v = 0;
    ecam->Read(offset, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  };
  out32(0, 0x80000000);  // 00:00.0, register 0
  CHECK(in(0, 4) == 0x80000000);
  CHECK(in(4, 4) == 0x00081b36);  // the host bridge
  out32(0, 0x80000008);
  CHECK(in(4 + 3, 1) == 0x06);  // class: bridge
  CHECK(ecam32(0x8) >> 24 == 0x06);
  CHECK(ecam32(0x0) == 0x00081b36);
  out32(0, 0x80000800);  // 00:01.0: empty slot
  CHECK(in(4, 4) == 0xffffffff);
  CHECK(ecam32(1 << 15) == 0xffffffff);
  out32(0, 0x80000100);  // 00:00.1: no such function
  CHECK(in(4, 4) == 0xffffffff);
  out32(0, 0x80010000);  // bus 1 does not exist
  CHECK(in(4, 4) == 0xffffffff);
  out32(0, 0x00000000);  // enable bit clear
  CHECK(in(4, 4) == 0xffffffff);
  CHECK(ecam32(1 << 20) == 0xffffffff);  // beyond the one bus
  uint32_t odd = 0;
  ecam->Read(1, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&odd), 2));  // misaligned
  CHECK(odd == 0xffff);
}

TEST_CASE("PCI root: slots fill in order and run out", "[pci]") {
  class Dummy : public PciDevice {
   public:
    void ReadConfig(uint32_t, absl::Span<uint8_t> d) override {
      std::fill(d.begin(), d.end(), 0x11);
    }
    void WriteConfig(uint32_t, absl::Span<const uint8_t>) override {}
    bool ReadBar(uint64_t addr, absl::Span<uint8_t> d) override {
      if (addr != 0xc0000000) return false;
      std::fill(d.begin(), d.end(), 0x22);
      return true;
    }
    bool WriteBar(uint64_t, absl::Span<const uint8_t>) override { return false; }
  };
  PciRoot root;
  for (int slot = 1; slot < kSlotCount; ++slot) {
    auto s = root.AddDevice(std::make_shared<Dummy>());
    REQUIRE(s.ok());
    CHECK(*s == slot);
  }
  CHECK(!root.AddDevice(std::make_shared<Dummy>()).ok());
  auto window = root.bar_window(0xc0000000);
  uint8_t b = 0;
  window->Read(0, absl::MakeSpan(&b, 1));
  CHECK(b == 0x22);
  window->Read(0x100, absl::MakeSpan(&b, 1));
  CHECK(b == 0xff);  // nobody decodes it
}

using testing::RecordingRouter;

void WriteEntry(MsixVectors& m, uint16_t vector, uint64_t address, uint32_t data, bool masked) {
  uint32_t words[4] = {static_cast<uint32_t>(address), static_cast<uint32_t>(address >> 32), data,
                       masked ? 1u : 0u};
  for (int i = 0; i < 4; ++i) {
    m.WriteTable(vector * 16 + i * 4,
                 absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&words[i]), 4));
  }
}

uint32_t ReadPba(MsixVectors& m) {
  uint32_t v = 0;
  m.ReadPba(0, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
  return v;
}

TEST_CASE("MSI-X: nothing is delivered while disabled", "[pci_msix]") {
  RecordingRouter router;
  MsixVectors m(3, &router);
  WriteEntry(m, 1, 0xfee00000, 0x41, false);
  CHECK(!m.Signal(1));
  CHECK(router.fired.empty());
  CHECK(router.routes.empty());
  CHECK(ReadPba(m) == 0);
}

TEST_CASE("MSI-X: routes once, then fires", "[pci_msix]") {
  RecordingRouter router;
  MsixVectors m(3, &router);
  m.SetControl(kMsixControlEnable);
  WriteEntry(m, 1, 0xfee01000, 0x41, false);
  REQUIRE(!router.routes.empty());
  CHECK(router.routes.back().vector == 1);
  CHECK(router.routes.back().address == 0xfee01000);
  CHECK(router.routes.back().data == 0x41);
  size_t routes = router.routes.size();
  CHECK(m.Signal(1));
  CHECK(m.Signal(1));
  CHECK(router.fired == std::vector<uint16_t>{1, 1});
  CHECK(router.routes.size() == routes);  // unchanged message: no new route
  CHECK(m.Signal(7));                     // no such vector: ignored
  CHECK(router.fired.size() == 2);
}

TEST_CASE("MSI-X: a masked vector is pending until unmasked", "[pci_msix]") {
  RecordingRouter router;
  MsixVectors m(3, &router);
  m.SetControl(kMsixControlEnable);
  WriteEntry(m, 2, 0xfee00000, 0x50, true);
  CHECK(router.routes.empty());  // masked entries are not routed
  m.Signal(2);
  CHECK(router.fired.empty());
  CHECK(ReadPba(m) == 0x4);
  // The guest retargets the masked entry, then unmasks it.
  WriteEntry(m, 2, 0xfee02000, 0x51, false);
  REQUIRE(router.routes.size() == 1);
  CHECK(router.routes[0].address == 0xfee02000);
  CHECK(router.routes[0].data == 0x51);
  CHECK(router.fired == std::vector<uint16_t>{2});
  CHECK(ReadPba(m) == 0);
}

TEST_CASE("MSI-X: the function mask holds every vector", "[pci_msix]") {
  RecordingRouter router;
  MsixVectors m(2, &router);
  m.SetControl(kMsixControlEnable | kMsixControlFunctionMask);
  WriteEntry(m, 0, 0xfee00000, 0x30, false);
  m.Signal(0);
  CHECK(router.fired.empty());
  m.SetControl(kMsixControlEnable);
  CHECK(router.fired == std::vector<uint16_t>{0});
}

TEST_CASE("MSI-X: table reads, odd accesses and reset", "[pci_msix]") {
  RecordingRouter router;
  MsixVectors m(2, &router);
  uint32_t control = 0;
  m.ReadTable(12, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&control), 4));
  CHECK(control == 1);  // entries start masked
  WriteEntry(m, 1, 0x1234567800ull, 0x99, true);
  uint64_t address = 0;
  m.ReadTable(16, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&address), 8));
  CHECK(address == 0x1234567800ull);
  uint16_t half = 0xffff;
  m.WriteTable(16, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&half), 2));
  m.ReadTable(16, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&address), 8));
  CHECK(address == 0x1234567800ull);  // 2-byte writes are ignored
  uint32_t beyond = 0xdead;
  m.WriteTable(64, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&beyond), 4));
  m.Reset();
  CHECK(!m.enabled());
  m.ReadTable(16, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&address), 8));
  CHECK(address == 0);
}

std::vector<uint8_t> SavedMsix(MsixVectors& m) {
  StateWriter out;
  m.SaveState(out);
  return out.Take();
}

uint32_t TableWord(MsixVectors& m, uint64_t offset) {
  uint32_t v = 0;
  m.ReadTable(offset, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
  return v;
}

TEST_CASE("MSI-X: a restored table routes its deliverable vectors again", "[pci_msix][snapshot]") {
  RecordingRouter router;
  MsixVectors m(4, &router);
  m.SetControl(kMsixControlEnable);
  WriteEntry(m, 0, 0xfee01000, 0x41, false);
  WriteEntry(m, 1, 0xfee02000, 0x42, true);  // masked, and signalled: pending
  WriteEntry(m, 2, 0x1fee03000, 0x43, false);
  CHECK(m.Signal(1));
  REQUIRE(ReadPba(m) == 0x2);
  std::vector<uint8_t> saved = SavedMsix(m);

  RecordingRouter fresh;  // a new VM: no GSI routes yet
  MsixVectors r(4, &fresh);
  StateReader in(saved, "msix");
  REQUIRE(r.RestoreState(in).ok());
  CHECK(in.status().ok());
  CHECK(r.enabled());
  CHECK(!r.function_masked());
  REQUIRE(fresh.routes.size() == 2);
  CHECK(fresh.routes[0].vector == 0);
  CHECK(fresh.routes[0].address == 0xfee01000);
  CHECK(fresh.routes[0].data == 0x41);
  CHECK(fresh.routes[1].vector == 2);
  CHECK(fresh.routes[1].address == 0x1fee03000);
  CHECK(fresh.routes[1].data == 0x43);
  CHECK(fresh.fired.empty());  // the pending vector is still masked
  CHECK(ReadPba(r) == 0x2);
  for (uint64_t offset = 0; offset < 4 * kMsixEntrySize; offset += 4) {
    CHECK(TableWord(r, offset) == TableWord(m, offset));
  }
  // Delivery works as before the save: unmasking sends what was pending.
  WriteEntry(r, 1, 0xfee02000, 0x42, false);
  CHECK(fresh.routes.back().vector == 1);
  CHECK(fresh.fired == std::vector<uint16_t>{1});
  CHECK(r.Signal(0));
  CHECK(fresh.fired == std::vector<uint16_t>{1, 0});
}

TEST_CASE("MSI-X: a restored table with the function masked routes nothing yet",
          "[pci_msix][snapshot]") {
  RecordingRouter router;
  MsixVectors m(2, &router);
  m.SetControl(kMsixControlEnable | kMsixControlFunctionMask);
  WriteEntry(m, 0, 0xfee01000, 0x41, false);
  m.Signal(0);
  std::vector<uint8_t> saved = SavedMsix(m);
  RecordingRouter fresh;
  MsixVectors r(2, &fresh);
  StateReader in(saved, "msix");
  REQUIRE(r.RestoreState(in).ok());
  CHECK(r.function_masked());
  CHECK(fresh.routes.empty());
  CHECK(fresh.fired.empty());
  r.SetControl(kMsixControlEnable);
  REQUIRE(fresh.routes.size() == 1);
  CHECK(fresh.fired == std::vector<uint16_t>{0});
}

TEST_CASE("MSI-X: hostile saved state is refused and changes nothing", "[pci_msix][snapshot]") {
  RecordingRouter router;
  MsixVectors m(2, &router);
  m.SetControl(kMsixControlEnable);
  WriteEntry(m, 0, 0xfee01000, 0x41, false);
  std::vector<uint8_t> saved = SavedMsix(m);
  RecordingRouter fresh;
  auto refused = [&](MsixVectors& target, std::vector<uint8_t> bytes) {
    StateReader in(bytes, "msix");
    bool ok = target.RestoreState(in).ok();
    CHECK(fresh.routes.empty());
    CHECK(!target.enabled());
    CHECK(TableWord(target, 0) == 0);
    return !ok;
  };
  MsixVectors r(2, &fresh);
  for (size_t n = 0; n < saved.size(); ++n) {
    INFO(n << " bytes");
    CHECK(refused(r, std::vector<uint8_t>(saved.begin(), saved.begin() + n)));
  }
  MsixVectors three(3, &fresh);
  CHECK(refused(three, saved));  // another table size
  std::vector<uint8_t> reserved = saved;
  reserved[2 + 12 + 1] = 0x80;  // vector 0's control: a reserved bit
  CHECK(refused(r, reserved));
}

}  // namespace
}  // namespace mote::pci
