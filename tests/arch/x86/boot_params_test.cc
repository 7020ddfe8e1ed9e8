#include "arch/x86/boot_params.h"

#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "arch/x86/layout.h"
#include "arch/x86/memory_map.h"
#include "tests/support/loader_test_util.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {
namespace {

using testing::kMiB;

// Reads a T at a byte offset of an object, the way the kernel sees it.
template <typename T, typename Obj>
T At(const Obj& obj, size_t offset) {
  T value;
  std::memcpy(&value, reinterpret_cast<const uint8_t*>(&obj) + offset, sizeof(T));
  return value;
}

constexpr size_t HdrOffset(size_t field_offset) { return offsetof(BootParams, hdr) + field_offset; }

TEST_CASE("setup header fields sit at their boot.rst offsets", "[boot_params]") {
  CHECK(HdrOffset(offsetof(SetupHeader, setup_sects)) == 0x1f1);
  CHECK(HdrOffset(offsetof(SetupHeader, vid_mode)) == 0x1fa);
  CHECK(HdrOffset(offsetof(SetupHeader, boot_flag)) == 0x1fe);
  CHECK(HdrOffset(offsetof(SetupHeader, jump)) == 0x200);
  CHECK(HdrOffset(offsetof(SetupHeader, header)) == 0x202);
  CHECK(HdrOffset(offsetof(SetupHeader, version)) == 0x206);
  CHECK(HdrOffset(offsetof(SetupHeader, type_of_loader)) == 0x210);
  CHECK(HdrOffset(offsetof(SetupHeader, loadflags)) == 0x211);
  CHECK(HdrOffset(offsetof(SetupHeader, code32_start)) == 0x214);
  CHECK(HdrOffset(offsetof(SetupHeader, ramdisk_image)) == 0x218);
  CHECK(HdrOffset(offsetof(SetupHeader, ramdisk_size)) == 0x21c);
  CHECK(HdrOffset(offsetof(SetupHeader, heap_end_ptr)) == 0x224);
  CHECK(HdrOffset(offsetof(SetupHeader, cmd_line_ptr)) == 0x228);
  CHECK(HdrOffset(offsetof(SetupHeader, initrd_addr_max)) == 0x22c);
  CHECK(HdrOffset(offsetof(SetupHeader, kernel_alignment)) == 0x230);
  CHECK(HdrOffset(offsetof(SetupHeader, relocatable_kernel)) == 0x234);
  CHECK(HdrOffset(offsetof(SetupHeader, xloadflags)) == 0x236);
  CHECK(HdrOffset(offsetof(SetupHeader, cmdline_size)) == 0x238);
  CHECK(HdrOffset(offsetof(SetupHeader, setup_data)) == 0x250);
  CHECK(HdrOffset(offsetof(SetupHeader, pref_address)) == 0x258);
  CHECK(HdrOffset(offsetof(SetupHeader, init_size)) == 0x260);
  CHECK(HdrOffset(offsetof(SetupHeader, kernel_info_offset)) == 0x268);
  CHECK(offsetof(BootParams, ext_cmd_line_ptr) == 0x0c8);
  CHECK(offsetof(BootParams, ext_ramdisk_size) == 0x0c4);
  CHECK(sizeof(BootParams) == 4096);
}

TEST_CASE("FillZeroPage writes the loader fields at their offsets", "[boot_params]") {
  BootParams params = {};
  params.hdr.version = 0x020f;
  params.hdr.loadflags = kLoadFlagLoadedHigh;
  params.hdr.cmdline_size = 2047;              // a kernel field: must survive
  const uint64_t initrd_addr = 0x1'2345'6000;  // above 4 GiB: exercises the ext_ fields
  const uint64_t initrd_size = 0x1'0000'1000;
  FillZeroPage(BootInfo{5ull << 30, initrd_addr, initrd_size, kAcpiRsdpAddr}, &params);

  CHECK(At<uint8_t>(params, 0x210) == 0xff);  // type_of_loader
  CHECK(At<uint8_t>(params, 0x211) == (kLoadFlagLoadedHigh | kLoadFlagCanUseHeap));
  CHECK(At<uint16_t>(params, 0x224) == 0xfe00);  // heap_end_ptr
  CHECK(At<uint16_t>(params, 0x1fa) == 0xffff);  // vid_mode "normal"
  CHECK(At<uint32_t>(params, 0x228) == kCmdlineAddr);
  CHECK(At<uint32_t>(params, 0x0c8) == 0);  // ext_cmd_line_ptr
  CHECK(At<uint32_t>(params, 0x218) == 0x23456000);
  CHECK(At<uint32_t>(params, 0x0c0) == 0x1);
  CHECK(At<uint32_t>(params, 0x21c) == 0x1000);
  CHECK(At<uint32_t>(params, 0x0c4) == 0x1);
  CHECK(At<uint64_t>(params, 0x070) == kAcpiRsdpAddr);
  CHECK(At<uint32_t>(params, 0x238) == 2047);
  CHECK(At<uint8_t>(params, 0x1ef) == 0);  // sentinel

  const std::vector<E820Entry> map = BuildE820(5ull << 30);
  REQUIRE(size_t{At<uint8_t>(params, 0x1e8)} == map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    INFO("e820 entry " << i);
    const size_t off = 0x2d0 + i * 20;
    CHECK(At<uint64_t>(params, off) == uint64_t{map[i].addr});
    CHECK(At<uint64_t>(params, off + 8) == uint64_t{map[i].size});
    CHECK(At<uint32_t>(params, off + 16) == uint32_t{map[i].type});
  }
  CHECK(At<uint64_t>(params, 0x2d0 + 20 * 5) == 0x100000000);  // RAM above 4 GiB
}

TEST_CASE("FillZeroPage leaves acpi_rsdp_addr alone before protocol 2.14", "[boot_params]") {
  BootParams params = {};
  params.hdr.version = 0x020d;
  FillZeroPage(BootInfo{128 * kMiB, 0, 0, kAcpiRsdpAddr}, &params);
  CHECK(At<uint64_t>(params, 0x070) == 0);
  CHECK(At<uint32_t>(params, 0x218) == 0);  // no initrd
  CHECK(At<uint32_t>(params, 0x21c) == 0);
  CHECK(At<uint8_t>(params, 0x1e8) == 5);
}

TEST_CASE("SyntheticSetupHeader looks like a 2.15 kernel's", "[boot_params]") {
  BootParams params = {};
  params.hdr = SyntheticSetupHeader();
  CHECK(At<uint16_t>(params, 0x1fe) == 0xaa55);
  CHECK(At<uint32_t>(params, 0x202) == 0x53726448);
  CHECK(At<uint16_t>(params, 0x206) == 0x020f);
  CHECK(At<uint32_t>(params, 0x238) == kCmdlineMax - 1);
}

TEST_CASE("WritePvhStartInfo fills hvm_start_info, modlist and memmap", "[boot_params]") {
  auto mem_or = GuestMemory::Create(RamRegions(128 * kMiB));
  REQUIRE(mem_or.ok());
  const GuestMemory& mem = **mem_or;
  const uint64_t ram = 128 * kMiB;

  SECTION("with an initrd") {
    REQUIRE(WritePvhStartInfo(mem, BootInfo{ram, 0x7000000, 0x12345, kAcpiRsdpAddr}).ok());
    auto page = mem.ReadObj<std::array<uint8_t, 4096>>(GuestAddress{kBootInfoAddr});
    REQUIRE(page.ok());
    CHECK(At<uint32_t>(*page, 0) == 0x336ec578);  // magic
    CHECK(At<uint32_t>(*page, 4) == 1);           // version
    CHECK(At<uint32_t>(*page, 8) == 0);           // flags
    CHECK(At<uint32_t>(*page, 12) == 1);          // nr_modules
    const uint64_t modlist = At<uint64_t>(*page, 16);
    CHECK(At<uint64_t>(*page, 24) == kCmdlineAddr);
    CHECK(At<uint64_t>(*page, 32) == kAcpiRsdpAddr);
    const uint64_t memmap = At<uint64_t>(*page, 40);
    const uint32_t entries = At<uint32_t>(*page, 48);
    CHECK(At<uint32_t>(*page, 52) == 0);

    // Everything lives inside the boot info page.
    REQUIRE(modlist >= kBootInfoAddr + 56);
    REQUIRE(modlist + 32 <= kBootInfoAddr + kBootInfoSize);
    auto module = mem.ReadObj<HvmModlistEntry>(GuestAddress{modlist});
    REQUIRE(module.ok());
    CHECK(module->paddr == 0x7000000);
    CHECK(module->size == 0x12345);
    CHECK(module->cmdline_paddr == 0);

    const std::vector<E820Entry> map = BuildE820(ram);
    REQUIRE(entries == map.size());
    REQUIRE(memmap + entries * 24 <= kBootInfoAddr + kBootInfoSize);
    for (size_t i = 0; i < map.size(); ++i) {
      auto e = mem.ReadObj<HvmMemmapTableEntry>(GuestAddress{memmap + i * 24});
      REQUIRE(e.ok());
      CHECK(e->addr == uint64_t{map[i].addr});
      CHECK(e->size == uint64_t{map[i].size});
      CHECK(e->type == uint32_t{map[i].type});
      CHECK(e->reserved == 0);
    }
  }
  SECTION("without an initrd there is no module list") {
    REQUIRE(WritePvhStartInfo(mem, BootInfo{ram, 0, 0, 0}).ok());
    auto start = mem.ReadObj<HvmStartInfo>(GuestAddress{kBootInfoAddr});
    REQUIRE(start.ok());
    CHECK(start->nr_modules == 0);
    CHECK(start->modlist_paddr == 0);
    CHECK(start->rsdp_paddr == 0);
    CHECK(start->memmap_entries == 5);
  }
}

}  // namespace
}  // namespace mote::x86
