#include "arch/x86/elf_loader.h"

#include <elf.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "arch/x86/boot_params.h"
#include "arch/x86/kernel_loader.h"
#include "arch/x86/layout.h"
#include "arch/x86/memory_map.h"
#include "tests/support/loader_test_util.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {
namespace {

using testing::Contains;
using testing::ElfSpec;
using testing::kGiB;
using testing::kMiB;
using testing::LittleEndian;
using testing::Note;
using testing::PvhNotes;

// Temporary files from this test are /tmp/mote-elf-test-*.
constexpr char kTempTag[] = "elf";
using TempFile = testing::TempFile<kTempTag>;

// Bytes that differ per segment (by seed), so a misplaced copy shows.
std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(i * 13 + seed);
  return out;
}

struct Fixture : testing::LoaderFixture<kTempTag> {
  explicit Fixture(uint64_t ram = 128 * kMiB) : LoaderFixture(ram) {}
  absl::StatusOr<BootSetup> Load(const ElfSpec& spec, const std::string& initrd = "") {
    return LoadImage(spec.Build(), initrd, "root=/dev/vda", kAcpiRsdpAddr);
  }
};

// The smallest loadable ELF64: one 4 KiB PT_LOAD at 16 MiB, entered at its
// start; tests break one thing about it at a time.
ElfSpec OneSegmentElf() {
  ElfSpec spec;
  spec.entry = 0x1000000;
  spec.segments = {{PT_LOAD, 0x1000000, Pattern(0x1000, 1)}};
  return spec;
}

// text at 16 MiB, data + bss at 17 MiB, and the PVH notes.
ElfSpec PvhKernel(bool is_64bit, uint64_t pvh_entry = 0x1000040) {
  ElfSpec spec;
  spec.is_64bit = is_64bit;
  spec.machine = is_64bit ? EM_X86_64 : EM_386;
  spec.entry = 0x1000000;
  spec.segments = {
      {PT_LOAD, 0x1000000, Pattern(0x3000, 1)},
      {PT_LOAD, 0x1100000, Pattern(0x100, 2), 0x2000},
      {PT_NOTE, 0, PvhNotes(pvh_entry, is_64bit ? 8 : 4)},
  };
  return spec;
}

TEST_CASE("ELF64 with a PVH note loads segments and hvm_start_info", "[elf]") {
  Fixture f;
  // Stale bytes where the bss goes: the loader must zero them.
  REQUIRE(f.mem->Write(GuestAddress{0x1100100}, std::vector<uint8_t>(0x1f00, 0xaa)).ok());
  std::vector<uint8_t> initrd_bytes = Pattern(0x5000, 9);
  TempFile initrd(initrd_bytes);

  auto setup = f.Load(PvhKernel(true), initrd.path());
  REQUIRE(setup.ok());
  CHECK(setup->mode == EntryMode::kPvh32);
  CHECK(setup->entry == 0x1000040);
  CHECK(setup->rbx == kBootInfoAddr);
  CHECK(setup->kernel_end == 0x1102000);
  CHECK(setup->format_name == "ELF64 PVH");

  CHECK(f.ReadGuest(0x1000000, 0x3000) == Pattern(0x3000, 1));
  CHECK(f.ReadGuest(0x1100000, 0x100) == Pattern(0x100, 2));
  CHECK(f.ReadGuest(0x1100100, 0x1f00) == std::vector<uint8_t>(0x1f00, 0));

  auto start = f.mem->ReadObj<HvmStartInfo>(GuestAddress{kBootInfoAddr});
  REQUIRE(start.ok());
  CHECK(start->magic == 0x336ec578);
  CHECK(start->version == 1);
  CHECK(start->cmdline_paddr == kCmdlineAddr);
  CHECK(start->rsdp_paddr == kAcpiRsdpAddr);
  CHECK(start->memmap_entries == BuildE820(f.ram_bytes).size());
  REQUIRE(start->nr_modules == 1);
  auto module = f.mem->ReadObj<HvmModlistEntry>(GuestAddress{start->modlist_paddr});
  REQUIRE(module.ok());
  CHECK(module->size == initrd_bytes.size());
  CHECK(module->paddr % 4096 == 0);
  CHECK(module->paddr >= setup->kernel_end);
  CHECK(module->paddr + module->size <= f.ram_bytes);
  CHECK(module->paddr == ((f.ram_bytes - initrd_bytes.size()) & ~0xfffull));
  CHECK(f.ReadGuest(module->paddr, initrd_bytes.size()) == initrd_bytes);

  const std::vector<uint8_t> cmdline = f.ReadGuest(kCmdlineAddr, 14);
  CHECK(std::string(cmdline.begin(), cmdline.end()) == std::string("root=/dev/vda\0", 14));
}

TEST_CASE("ELF32 with a 4-byte PVH note", "[elf]") {
  Fixture f;
  auto setup = f.Load(PvhKernel(false, 0x1000010));
  REQUIRE(setup.ok());
  CHECK(setup->mode == EntryMode::kPvh32);
  CHECK(setup->entry == 0x1000010);
  CHECK(setup->format_name == "ELF32 PVH");
  auto start = f.mem->ReadObj<HvmStartInfo>(GuestAddress{kBootInfoAddr});
  REQUIRE(start.ok());
  CHECK(start->nr_modules == 0);
  CHECK(start->modlist_paddr == 0);
}

TEST_CASE("plain ELF64 enters at e_entry with start_info and a zero page", "[elf]") {
  Fixture f;
  ElfSpec spec = PvhKernel(true);
  spec.segments.pop_back();  // no notes
  spec.entry = 0x1000100;
  TempFile initrd(Pattern(100, 3));
  auto setup = f.Load(spec, initrd.path());
  REQUIRE(setup.ok());
  CHECK(setup->mode == EntryMode::kElf64);
  CHECK(setup->entry == 0x1000100);
  CHECK(setup->rdi == kBootInfoAddr);
  CHECK(setup->rsi == kZeroPageAddr);
  CHECK(setup->format_name == "ELF64");

  auto start = f.mem->ReadObj<HvmStartInfo>(GuestAddress{kBootInfoAddr});
  REQUIRE(start.ok());
  CHECK(start->magic == kHvmStartMagic);
  CHECK(start->nr_modules == 1);
  auto params = f.mem->ReadObj<BootParams>(GuestAddress{kZeroPageAddr});
  REQUIRE(params.ok());
  CHECK(+params->hdr.header == kHdrSMagic);
  CHECK(+params->hdr.boot_flag == kBootFlagMagic);
  CHECK(+params->hdr.type_of_loader == 0xff);
  CHECK(+params->hdr.cmd_line_ptr == kCmdlineAddr);
  CHECK(+params->hdr.ramdisk_size == 100);
  auto module = f.mem->ReadObj<HvmModlistEntry>(GuestAddress{start->modlist_paddr});
  REQUIRE(module.ok());
  CHECK(+params->hdr.ramdisk_image == +module->paddr);
  CHECK(+params->acpi_rsdp_addr == kAcpiRsdpAddr);
  CHECK(+params->e820_entries == 5);
}

TEST_CASE("ELF64 segment in RAM above 4 GiB", "[elf]") {
  Fixture f(5 * kGiB);
  ElfSpec spec;
  spec.entry = 0x1000000;
  spec.segments = {{PT_LOAD, 0x1000000, Pattern(0x1000, 1)},
                   {PT_LOAD, kHighRamStart + 0x1000, Pattern(0x1000, 2)}};
  TempFile initrd(Pattern(0x2000, 3));
  auto setup = f.Load(spec, initrd.path());
  REQUIRE(setup.ok());
  CHECK(setup->kernel_end == kHighRamStart + 0x2000);
  CHECK(f.ReadGuest(kHighRamStart + 0x1000, 0x1000) == Pattern(0x1000, 2));
  // The initrd still goes below the hole.
  auto start = f.mem->ReadObj<HvmStartInfo>(GuestAddress{kBootInfoAddr});
  REQUIRE(start.ok());
  auto module = f.mem->ReadObj<HvmModlistEntry>(GuestAddress{start->modlist_paddr});
  REQUIRE(module.ok());
  CHECK(module->paddr == kMmioHoleStart - 0x2000);
}

TEST_CASE("A PVH kernel may live below 1 MiB, clear of mote's structures", "[elf]") {
  Fixture f;
  ElfSpec spec;
  spec.is_64bit = false;
  spec.machine = EM_386;
  spec.entry = 0x8000;
  spec.segments = {{PT_LOAD, 0x8000, Pattern(0x1000, 4)}, {PT_NOTE, 0, PvhNotes(0x8010, 4)}};
  SECTION("at 0x8000: PVH kernels bring their own stack") {
    auto setup = f.Load(spec);
    REQUIRE(setup.ok());
    CHECK(setup->entry == 0x8010);
    CHECK(f.ReadGuest(0x8000, 0x1000) == Pattern(0x1000, 4));
  }
  SECTION("over the start_info's usual place, which moves out of its way") {
    spec.segments[0].paddr = 0x6000;
    spec.segments[1] = {PT_NOTE, 0, PvhNotes(0x6010, 4)};
    auto setup = f.Load(spec);
    REQUIRE(setup.ok());
    CHECK(f.ReadGuest(0x6000, 0x1000) == Pattern(0x1000, 4));
    CHECK(setup->rbx == 0x1000);  // the lowest free page
    auto start = f.mem->ReadObj<HvmStartInfo>(GuestAddress{setup->rbx});
    REQUIRE(start.ok());
    CHECK(start->magic == kHvmStartMagic);
    CHECK(start->memmap_paddr == setup->rbx + kPvhMemmapOffset);
    CHECK(f.ReadString(start->cmdline_paddr) == "root=/dev/vda");
  }
}

TEST_CASE("ELF segments that cannot be loaded are rejected", "[elf]") {
  Fixture f;
  ElfSpec spec = OneSegmentElf();
  std::string expected;
  SECTION("file range beyond the end of the file") {
    spec.segments[0].file_size = 0x100000;
    spec.segments[0].mem_size = 0x100000;
    expected = "truncated: segment 0 (PT_LOAD) file range";
  }
  SECTION("note segment beyond the end of the file") {
    spec.segments.push_back({PT_NOTE, 0, PvhNotes(0x1000000, 8)});
    spec.segments[1].file_size = 0x10000;
    expected = "segment 1 (PT_NOTE)";
  }
  SECTION("outside guest RAM") {
    spec.segments[0].paddr = 0x7fff800;  // runs past 128 MiB
    spec.entry = 0x7fff800;
    expected = "segment [0x7fff800, 0x8000800) is outside guest RAM";
  }
  SECTION("on the 64-bit entry's boot stack below 1 MiB") {
    spec.segments[0].paddr = 0x8000;
    spec.entry = 0x8000;
    expected = "segment [0x8000, 0x9000) overlaps the boot stack at [0x8000, 0x9000)";
  }
  SECTION("on the 64-bit entry's page tables") {
    spec.segments[0].paddr = 0xe000;
    spec.entry = 0xe000;
    expected = "segment [0xe000, 0xf000) overlaps the boot page tables at [0x9000, 0xf000)";
  }
  SECTION("overlapping segments") {
    spec.segments.push_back({PT_LOAD, 0x1000800, Pattern(0x100, 2)});
    expected = "overlap";
  }
  SECTION("bss overlapping the next segment") {
    spec.segments[0].mem_size = 0x3000;
    spec.segments.push_back({PT_LOAD, 0x1002000, Pattern(0x100, 2)});
    expected = "overlap";
  }
  SECTION("entry outside every segment") {
    spec.entry = 0x2000000;
    expected = "entry point 0x2000000 is outside every loaded segment";
  }
  SECTION("entry given as a virtual address") {
    spec.entry = 0xffffffff81000000;
    expected = "entry point 0xffffffff81000000";
  }
  SECTION("p_filesz larger than p_memsz") {
    spec.segments[0].mem_size = 0x800;
    expected = "p_filesz 0x1000 is larger than p_memsz 0x800";
  }
  SECTION("segment address overflows") {
    spec.segments[0].paddr = 0xfffffffffffff000;
    spec.segments[0].mem_size = 0x2000;
    expected = "overflows";
  }
  SECTION("no PT_LOAD") {
    spec.segments[0].type = PT_NULL;
    expected = "no loadable (PT_LOAD) segments";
  }
  SECTION("wrong machine") {
    spec.machine = EM_AARCH64;
    expected = "ELF64 machine 183 is not x86 (expected EM_X86_64 = 62)";
  }
  SECTION("ELF32 for x86-64") {
    spec.is_64bit = false;
    expected = "ELF32 machine 62 is not x86 (expected EM_386 = 3)";
  }
  SECTION("not an executable") {
    spec.type = ET_DYN;
    expected = "not an executable (ET_EXEC)";
  }
  SECTION("32-bit ELF with no way in") {
    spec.is_64bit = false;
    spec.machine = EM_386;
    expected = "32-bit ELF without a PVH note or Multiboot header";
  }
  SECTION("PVH entry above 4 GiB") {
    spec.segments.push_back({PT_NOTE, 0, PvhNotes(0x100000000, 8)});
    expected = "PVH entry 0x100000000 is above 4 GiB";
  }
  SECTION("PVH note with an odd descriptor size") {
    spec.segments.push_back({PT_NOTE, 0, Note("Xen", 18, {1, 0})});
    expected = "PVH entry note has 2 bytes";
  }
  SECTION("malformed note") {
    std::vector<uint8_t> bad = Note("Xen", 18, LittleEndian(0x1000000, 4));
    const uint32_t huge = 0x1000;
    std::memcpy(bad.data() + 4, &huge, 4);  // descsz runs past the segment
    spec.segments.push_back({PT_NOTE, 0, bad});
    expected = "malformed ELF note";
  }
  INFO("expected error: " << expected);
  auto setup = f.Load(spec);
  REQUIRE_FALSE(setup.ok());
  INFO(setup.status().ToString());
  CHECK(setup.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Contains(setup.status(), expected));
  CHECK(Contains(setup.status(), "kernel " + f.kernel_path));
}

TEST_CASE("ELF segment straddling the MMIO hole", "[elf]") {
  Fixture f(5 * kGiB);
  ElfSpec spec;
  spec.entry = kMmioHoleStart - 0x1000;
  spec.segments = {{PT_LOAD, kMmioHoleStart - 0x1000, Pattern(0x1000, 1), 0x2000}};
  auto setup = f.Load(spec);
  REQUIRE_FALSE(setup.ok());
  CHECK(Contains(setup.status(), "outside guest RAM"));
}

TEST_CASE("truncated ELF headers", "[elf]") {
  Fixture f;
  std::vector<uint8_t> image = OneSegmentElf().Build();
  SECTION("inside the program headers") { image.resize(sizeof(Elf64_Ehdr) + 10); }
  SECTION("inside the ELF header") { image.resize(40); }
  auto setup = f.LoadImage(image, "", "", 0);
  REQUIRE_FALSE(setup.ok());
  INFO(setup.status().ToString());
  CHECK(Contains(setup.status(), "truncated"));
}

TEST_CASE("big-endian ELF is rejected", "[elf]") {
  Fixture f;
  std::vector<uint8_t> image = OneSegmentElf().Build();
  image[EI_DATA] = ELFDATA2MSB;
  auto setup = f.LoadImage(image, "", "", 0);
  REQUIRE_FALSE(setup.ok());
  CHECK(Contains(setup.status(), "not little-endian"));
}

}  // namespace
}  // namespace mote::x86
