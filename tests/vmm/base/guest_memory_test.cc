#include "vmm/base/guest_memory.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

namespace mote {
namespace {

std::unique_ptr<GuestMemory> TwoRegions() {
  // 64 KiB at 0 and 16 KiB at 1 MiB, with a gap between them.
  auto mem = GuestMemory::Create({{0, 0x10000}, {0x100000, 0x4000}});
  REQUIRE(mem.ok());
  return std::move(*mem);
}

TEST_CASE("GuestMemory reads back what it wrote, in each region", "[guest_memory]") {
  auto mem = TwoRegions();
  REQUIRE(mem->WriteObj(GuestAddress{0x1000}, uint64_t{0x1122334455667788}).ok());
  REQUIRE(mem->WriteObj(GuestAddress{0x100ff8}, uint32_t{0xcafef00d}).ok());
  CHECK(*mem->ReadObj<uint64_t>(GuestAddress{0x1000}) == 0x1122334455667788);
  CHECK(*mem->ReadObj<uint32_t>(GuestAddress{0x100ff8}) == 0xcafef00d);
  CHECK(mem->TotalSize() == 0x14000);
  // Fresh memory reads as zero without anyone having written it.
  CHECK(*mem->ReadObj<uint64_t>(GuestAddress{0x103ff8}) == 0);
}

TEST_CASE("GuestMemory marks the pages it hands out while tracking, by file offset",
          "[guest_memory]") {
  auto mem = TwoRegions();
  REQUIRE(mem->WriteObj(GuestAddress{0x2000}, uint32_t{1}).ok());
  CHECK(mem->TakeWrittenPages() == std::vector<uint64_t>{0});  // not tracking yet
  mem->SetWriteTracking(true);
  REQUIRE(mem->WriteObj(GuestAddress{0x2000}, uint32_t{1}).ok());
  // Across a page boundary: both pages.
  REQUIRE(mem->WriteObj(GuestAddress{0x4ffc}, uint64_t{1}).ok());
  // The second region starts at file page 16 (64 KiB in).
  REQUIRE(mem->GetSlice(GuestAddress{0x101000}, 1).ok());
  std::vector<uint64_t> pages = mem->TakeWrittenPages();
  REQUIRE(pages.size() == 1);
  CHECK(pages[0] == ((1ull << 2) | (1ull << 4) | (1ull << 5) | (1ull << 17)));
  CHECK(mem->TakeWrittenPages() == std::vector<uint64_t>{0});  // taking clears
  mem->SetWriteTracking(false);
  REQUIRE(mem->WriteObj(GuestAddress{0x2000}, uint32_t{1}).ok());
  CHECK(mem->TakeWrittenPages() == std::vector<uint64_t>{0});
}

TEST_CASE("GuestMemory refuses accesses outside RAM", "[guest_memory]") {
  auto mem = TwoRegions();
  SECTION("in the gap") {
    CHECK(absl::IsOutOfRange(mem->ReadObj<uint8_t>(GuestAddress{0x10000}).status()));
  }
  SECTION("straddling the end of a region") {
    CHECK(absl::IsOutOfRange(mem->ReadObj<uint32_t>(GuestAddress{0xfffe}).status()));
    CHECK(absl::IsOutOfRange(mem->GetSlice(GuestAddress{0xff00}, 0x200).status()));
  }
  SECTION("past the last region") {
    CHECK(!mem->WriteObj(GuestAddress{0x104000}, uint8_t{1}).ok());
  }
  SECTION("with an address + length that overflows 64 bits") {
    uint64_t max = std::numeric_limits<uint64_t>::max();
    CHECK(absl::IsOutOfRange(mem->GetSlice(GuestAddress{max - 4}, 16).status()));
    CHECK(absl::IsOutOfRange(mem->GetSlice(GuestAddress{0x1000}, max).status()));
  }
  SECTION("a range spanning two regions is refused even if both ends are RAM") {
    CHECK(!mem->GetSlice(GuestAddress{0x0}, 0x104000).ok());
  }
}

TEST_CASE("GuestMemory slices alias guest RAM", "[guest_memory]") {
  auto mem = TwoRegions();
  auto slice = mem->GetSlice(GuestAddress{0x100000}, 4);
  REQUIRE(slice.ok());
  (*slice)[0] = 0xab;
  CHECK(*mem->ReadObj<uint8_t>(GuestAddress{0x100000}) == 0xab);
  CHECK(mem->GetSlice(GuestAddress{0x4000}, 0).ok());  // empty slice inside RAM is fine
}

TEST_CASE("GuestMemory rejects bad layouts", "[guest_memory]") {
  CHECK(!GuestMemory::Create({}).ok());
  CHECK(!GuestMemory::Create({{0, 0}}).ok());
  CHECK(!GuestMemory::Create({{0, 0x1800}}).ok());                    // not page-sized
  CHECK(!GuestMemory::Create({{0x800, 0x1000}}).ok());                // not page-aligned
  CHECK(!GuestMemory::Create({{0, 0x2000}, {0x1000, 0x1000}}).ok());  // overlap
  CHECK(!GuestMemory::Create({{0xfffffffffffff000, 0x2000}}).ok());   // wraps
  // Huge pages need 2 MiB alignment (checked before anything is reserved).
  CHECK(GuestMemory::Create({{0, 0x101000}}, GuestMemory::Pages::kHuge2M).status().message() ==
        "guest memory: region 0x0+0x101000 is empty or not aligned to 2048 KiB");
  auto unsorted = GuestMemory::Create({{0x100000, 0x1000}, {0, 0x1000}});
  REQUIRE(unsorted.ok());
  CHECK((*unsorted)->regions()[0].guest_base == 0);
}

TEST_CASE("GuestMemory starts its RAM on a 2 MiB host boundary", "[guest_memory]") {
  // Transparent huge pages (and 2 MiB EPT/NPT entries) need it. Plain mmap
  // gives 4 KiB alignment (newer kernels align anonymous mappings whose
  // length is a multiple of 2 MiB, hence the odd 4 KiB at the end).
  std::vector<std::unique_ptr<GuestMemory>> keep;
  for (int i = 0; i < 5; ++i) {
    auto mem = GuestMemory::Create({{0, 6 << 20}, {8 << 20, 0x1000}});
    REQUIRE(mem.ok());
    for (const GuestMemory::Region& r : (*mem)->regions()) {
      CHECK(reinterpret_cast<uintptr_t>(r.host) % GuestMemory::kHugePageSize == 0);
    }
    // Still all usable, to the last byte.
    REQUIRE((*mem)->WriteObj(GuestAddress{(8 << 20) + 0xff8}, uint64_t{0x55aa}).ok());
    keep.push_back(std::move(*mem));
  }
}

}  // namespace
}  // namespace mote
