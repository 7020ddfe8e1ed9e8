#include "arch/x86/memory_map.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "arch/x86/layout.h"
#include "tests/support/loader_test_util.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {
namespace {

using testing::kGiB;
using testing::kMiB;

// A packed entry copied into plain values, so Catch2 can compare it.
struct Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  bool operator==(const Entry& o) const {
    return addr == o.addr && size == o.size && type == o.type;
  }
};

std::vector<Entry> Unpack(const std::vector<E820Entry>& map) {
  std::vector<Entry> out;
  for (const E820Entry& e : map) out.push_back(Entry{e.addr, e.size, e.type});
  return out;
}

}  // namespace
}  // namespace mote::x86

namespace Catch {
template <>
struct StringMaker<mote::x86::Entry> {
  static std::string convert(const mote::x86::Entry& e) {
    char buf[96];
    snprintf(buf, sizeof(buf), "{0x%llx, 0x%llx, %u}", static_cast<unsigned long long>(e.addr),
             static_cast<unsigned long long>(e.size), e.type);
    return buf;
  }
};
}  // namespace Catch

namespace mote::x86 {
namespace {

TEST_CASE("RamRegions below the hole is one region", "[memory_map]") {
  std::vector<MemoryRegionSpec> r = RamRegions(128 * kMiB);
  REQUIRE(r.size() == 1);
  CHECK(r[0].guest_base == 0);
  CHECK(r[0].size == 128 * kMiB);

  r = RamRegions(3 * kGiB);  // exactly up to the hole
  REQUIRE(r.size() == 1);
  CHECK(r[0].size == kMmioHoleStart);
  CHECK(RamRegions(0).empty());
}

TEST_CASE("RamRegions above the hole continues at 4 GiB", "[memory_map]") {
  const std::vector<MemoryRegionSpec> r = RamRegions(5 * kGiB);
  REQUIRE(r.size() == 2);
  CHECK(r[0].guest_base == 0);
  CHECK(r[0].size == kMmioHoleStart);
  CHECK(r[1].guest_base == kHighRamStart);
  CHECK(r[1].size == 2 * kGiB);
  CHECK(LowRamEnd(5 * kGiB) == kMmioHoleStart);
  CHECK(HighRamSize(5 * kGiB) == 2 * kGiB);
  CHECK(HighRamSize(3 * kGiB) == 0);
  CHECK(LowRamEnd(128 * kMiB) == 128 * kMiB);

  // GuestMemory accepts the layout and the hole is not backed.
  auto mem = GuestMemory::Create(r);
  REQUIRE(mem.ok());
  CHECK((*mem)->TotalSize() == 5 * kGiB);
  CHECK((*mem)->GetSlice(GuestAddress{kHighRamStart}, 4096).ok());
  CHECK((*mem)->GetSlice(GuestAddress{kHighRamStart + 2 * kGiB - 4096}, 4096).ok());
  CHECK_FALSE((*mem)->GetSlice(GuestAddress{kMmioHoleStart}, 1).ok());
}

TEST_CASE("E820 for a 128 MiB guest", "[memory_map]") {
  const std::vector<Entry> expected = {
      {0, 0x9fc00, kE820Ram},
      {0x9fc00, 0x400, kE820Reserved},
      {0xe0000, 0x20000, kE820Reserved},
      {0x100000, 127 * kMiB, kE820Ram},
      {0xe0000000, 0x100000, kE820Reserved},
  };
  CHECK(Unpack(BuildE820(128 * kMiB)) == expected);
}

TEST_CASE("E820 around the MMIO hole", "[memory_map]") {
  SECTION("exactly 3 GiB: low RAM ends at the hole, no high RAM") {
    const std::vector<Entry> map = Unpack(BuildE820(3 * kGiB));
    REQUIRE(map.size() == 5);
    CHECK(map[3] == Entry{kLowMemEnd, kMmioHoleStart - kLowMemEnd, kE820Ram});
    CHECK(map[4] == Entry{kPciEcamStart, kPciEcamSize, kE820Reserved});
  }
  SECTION("one page more: a 4 KiB RAM entry at 4 GiB") {
    const std::vector<Entry> map = Unpack(BuildE820(3 * kGiB + 4096));
    REQUIRE(map.size() == 6);
    CHECK(map[3] == Entry{kLowMemEnd, kMmioHoleStart - kLowMemEnd, kE820Ram});
    CHECK(map[5] == Entry{kHighRamStart, 4096, kE820Ram});
  }
  SECTION("4 GiB guest: 1 GiB remapped above 4 GiB") {
    const std::vector<Entry> expected = {
        {0, 0x9fc00, kE820Ram},
        {0x9fc00, 0x400, kE820Reserved},
        {0xe0000, 0x20000, kE820Reserved},
        {0x100000, kMmioHoleStart - 0x100000, kE820Ram},
        {0xe0000000, 0x100000, kE820Reserved},
        {0x100000000, kGiB, kE820Ram},
    };
    CHECK(Unpack(BuildE820(4 * kGiB)) == expected);
  }
}

TEST_CASE("E820 entries are sorted, disjoint and cover exactly the RAM", "[memory_map]") {
  for (uint64_t ram : {2 * kMiB, 64 * kMiB, 3 * kGiB - 4096, 3 * kGiB, 4 * kGiB, 64 * kGiB}) {
    INFO("ram " << ram);
    const std::vector<Entry> map = Unpack(BuildE820(ram));
    uint64_t ram_total = 0;
    for (size_t i = 0; i < map.size(); ++i) {
      CHECK(map[i].size > 0);
      if (i > 0) CHECK(map[i - 1].addr + map[i - 1].size <= map[i].addr);
      if (map[i].type == kE820Ram) ram_total += map[i].size;
    }
    // Everything but the EBDA..1 MiB window is usable RAM.
    CHECK(ram_total == ram - (kLowMemEnd - kEbdaStart));
  }
}

TEST_CASE("E820 for a guest smaller than the EBDA start clips the RAM", "[memory_map]") {
  const std::vector<Entry> map = Unpack(BuildE820(0x80000));
  REQUIRE_FALSE(map.empty());
  CHECK(map[0] == Entry{0, 0x80000, kE820Ram});
  for (const Entry& e : map) {
    if (e.type == kE820Ram) CHECK(e.addr + e.size <= 0x80000);
  }
}

}  // namespace
}  // namespace mote::x86
