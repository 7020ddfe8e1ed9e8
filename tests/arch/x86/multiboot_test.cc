#include "arch/x86/multiboot.h"

#include <elf.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arch/x86/kernel_loader.h"
#include "arch/x86/layout.h"
#include "arch/x86/memory_map.h"
#include "tests/support/loader_test_util.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {
namespace {

using testing::Contains;
using testing::kGiB;
using testing::kMiB;
using testing::MultibootHeaderBytes;

// Temporary files from this test are /tmp/mote-multiboot-test-*.
constexpr char kTempTag[] = "multiboot";
using TempFile = testing::TempFile<kTempTag>;

constexpr uint64_t kSegmentFileOffset = 0x100;
constexpr uint64_t kLoadAddr = 0x100000;

// An ELF (32- or 64-bit) with one PT_LOAD segment at 1 MiB whose bytes are
// 0x90 filler with `header` placed at `header_at` inside the segment.
struct MultibootElf {
  bool is_64bit = false;
  std::vector<uint8_t> header = MultibootHeaderBytes(kMultibootMemoryInfo);
  uint64_t header_at = 0x20;
  uint64_t load_addr = kLoadAddr;
  uint64_t entry = kLoadAddr + 0x40;
  uint64_t segment_bytes = 0x1000;
  uint64_t bss_bytes = 0x1000;

  std::vector<uint8_t> Build() const {
    std::vector<uint8_t> text(segment_bytes, 0x90);
    std::memcpy(text.data() + header_at, header.data(), header.size());
    testing::ElfSpec spec;
    spec.is_64bit = is_64bit;
    spec.machine = is_64bit ? EM_X86_64 : EM_386;
    spec.entry = entry;
    spec.vaddr_offset = 0;  // Multiboot kernels are linked where they load
    spec.segments = {{PT_LOAD, load_addr, std::move(text), segment_bytes + bss_bytes}};
    // Fixed, so the header's file offset (what the 8 KiB search sees) is
    // header_at + kSegmentFileOffset whatever the ELF class.
    spec.segments[0].file_offset = kSegmentFileOffset;
    return spec.Build();
  }
};

struct Fixture : testing::LoaderFixture<kTempTag> {
  explicit Fixture(uint64_t ram = 128 * kMiB) : LoaderFixture(ram) {}
  absl::StatusOr<BootSetup> Load(const std::vector<uint8_t>& image,
                                 const std::string& initrd = "") {
    return LoadImage(image, initrd, "quiet", 0);
  }
};

TEST_CASE("FindMultibootHeader scans 4-byte aligned words in the first 8 KiB", "[multiboot]") {
  std::vector<uint8_t> probe(8192, 0);
  const std::vector<uint8_t> header = MultibootHeaderBytes(0x3);
  SECTION("found at an aligned offset") {
    std::memcpy(probe.data() + 0x1000, header.data(), header.size());
    const std::optional<MultibootHeader> found = FindMultibootHeader(probe);
    REQUIRE(found.has_value());
    CHECK(found->offset == 0x1000);
    CHECK(found->flags == 0x3);
  }
  SECTION("the last place it fits") {
    std::memcpy(probe.data() + 8192 - 12, header.data(), header.size());
    CHECK(FindMultibootHeader(probe).has_value());
  }
  SECTION("not at an unaligned offset") {
    std::memcpy(probe.data() + 0x1002, header.data(), header.size());
    CHECK_FALSE(FindMultibootHeader(probe).has_value());
  }
  SECTION("not with a bad checksum") {
    const std::vector<uint8_t> bad = MultibootHeaderBytes(0x3, false);
    std::memcpy(probe.data() + 0x40, bad.data(), bad.size());
    CHECK_FALSE(FindMultibootHeader(probe).has_value());
  }
  SECTION("not beyond 8 KiB") {
    probe.resize(9000, 0);
    std::memcpy(probe.data() + 8192, header.data(), header.size());
    CHECK_FALSE(FindMultibootHeader(probe).has_value());
  }
}

TEST_CASE("ELF32 Multiboot kernel with an initrd module", "[multiboot]") {
  Fixture f;
  std::vector<uint8_t> initrd_bytes(0x3000, 0x42);
  TempFile initrd(initrd_bytes);
  REQUIRE(f.mem->Write(GuestAddress{kLoadAddr + 0x1000}, std::vector<uint8_t>(0x1000, 0xee)).ok());
  MultibootElf elf;
  elf.header = MultibootHeaderBytes(kMultibootPageAlignModules | kMultibootMemoryInfo);
  auto setup = f.Load(elf.Build(), initrd.path());
  REQUIRE(setup.ok());
  CHECK(setup->mode == EntryMode::kMultiboot32);
  CHECK(setup->entry == kLoadAddr + 0x40);
  CHECK(setup->rax == 0x2badb002);
  CHECK(setup->rbx == kBootInfoAddr);
  CHECK(setup->kernel_end == kLoadAddr + 0x2000);
  CHECK(setup->format_name == "ELF32 Multiboot");
  CHECK(f.Read<uint32_t>(kLoadAddr + 0x20) == kMultibootHeaderMagic);
  CHECK(f.Read<uint64_t>(kLoadAddr + 0x1ff8) == 0);  // bss zeroed

  // multiboot_info, by the spec's offsets.
  const uint64_t info = kBootInfoAddr;
  CHECK(f.Read<uint32_t>(info + 0) == ((1u << 0) | (1u << 2) | (1u << 3) | (1u << 6) | (1u << 9)));
  CHECK(f.Read<uint32_t>(info + 4) == 639);                         // mem_lower, KiB
  CHECK(f.Read<uint32_t>(info + 8) == (128 * kMiB - kMiB) / 1024);  // mem_upper, KiB
  CHECK(f.Read<uint32_t>(info + 16) == kCmdlineAddr);
  CHECK(f.ReadString(kCmdlineAddr) == "quiet");
  CHECK(f.Read<uint32_t>(info + 20) == 1);  // mods_count
  const uint32_t mods = f.Read<uint32_t>(info + 24);
  CHECK(mods == kBootModulesAddr);
  const uint32_t mod_start = f.Read<uint32_t>(mods);
  const uint32_t mod_end = f.Read<uint32_t>(mods + 4);
  CHECK(mod_start % 4096 == 0);
  CHECK(mod_end - mod_start == initrd_bytes.size());
  CHECK(mod_start >= setup->kernel_end);
  CHECK(mod_end <= 128 * kMiB);
  CHECK(f.Read<uint8_t>(mod_start) == 0x42);
  CHECK(f.ReadString(f.Read<uint32_t>(mods + 8)) == initrd.path());
  CHECK(f.ReadString(f.Read<uint32_t>(info + 64)) == "mote");  // boot_loader_name

  // The memory map: {size = 20, base, length, type} entries of 24 bytes.
  const std::vector<E820Entry> map = BuildE820(f.ram_bytes);
  const uint32_t mmap_length = f.Read<uint32_t>(info + 44);
  const uint32_t mmap_addr = f.Read<uint32_t>(info + 48);
  REQUIRE(mmap_length == map.size() * 24);
  CHECK(mmap_addr >= kBootInfoAddr + sizeof(MultibootInfo));
  CHECK(mmap_addr + mmap_length <= kBootInfoAddr + kBootInfoSize);
  for (size_t i = 0; i < map.size(); ++i) {
    const uint64_t e = mmap_addr + i * 24;
    CHECK(f.Read<uint32_t>(e) == 20);
    CHECK(f.Read<uint64_t>(e + 4) == uint64_t{map[i].addr});
    CHECK(f.Read<uint64_t>(e + 12) == uint64_t{map[i].size});
    CHECK(f.Read<uint32_t>(e + 20) == uint32_t{map[i].type});
  }
}

TEST_CASE("Multiboot without an initrd has no modules", "[multiboot]") {
  Fixture f;
  auto setup = f.Load(MultibootElf{}.Build());
  REQUIRE(setup.ok());
  CHECK((f.Read<uint32_t>(kBootInfoAddr) & kMultibootInfoMods) == 0);
  CHECK(f.Read<uint32_t>(kBootInfoAddr + 20) == 0);
}

TEST_CASE("Multiboot in an ELF64 file, and mem_upper for a big guest", "[multiboot]") {
  Fixture f(5 * kGiB);
  MultibootElf elf;
  elf.is_64bit = true;
  elf.header = MultibootHeaderBytes(kMultibootMemoryInfo | kMultibootVideoMode);
  auto setup = f.Load(elf.Build());
  REQUIRE(setup.ok());
  CHECK(setup->format_name == "ELF64 Multiboot");
  CHECK(setup->mode == EntryMode::kMultiboot32);
  CHECK(f.Read<uint32_t>(kBootInfoAddr + 8) == (kMmioHoleStart - kMiB) / 1024);
  CHECK(f.Read<uint32_t>(kBootInfoAddr + 44) == 6 * 24);  // RAM above 4 GiB listed
}

// An ELF whose one segment (4 KiB of text, 4 KiB of bss) loads at `addr`.
MultibootElf LowElf(uint64_t addr) {
  MultibootElf elf;
  elf.load_addr = addr;
  elf.entry = addr + 0x40;
  return elf;
}

TEST_CASE("Multiboot segments below 1 MiB load where mote writes nothing", "[multiboot]") {
  Fixture f;
  TempFile initrd(std::vector<uint8_t>(0x3000, 0x42));
  SECTION("at 0x8000, where real-mode test kernels link") {
    auto setup = f.Load(LowElf(0x8000).Build(), initrd.path());
    REQUIRE(setup.ok());
    CHECK(setup->entry == 0x8040);
    CHECK(setup->kernel_end == 0xa000);
    CHECK(f.Read<uint32_t>(0x8020) == kMultibootHeaderMagic);
    CHECK(f.Read<uint64_t>(0x9ff8) == 0);  // bss zeroed
    // The boot structures are where they always are...
    CHECK(setup->rbx == kBootInfoAddr);
    CHECK(f.ReadString(kCmdlineAddr) == "quiet");
    // ...and the initrd stays above 1 MiB, not just above the kernel.
    const uint32_t mod_start = f.Read<uint32_t>(f.Read<uint32_t>(kBootInfoAddr + 24));
    CHECK(mod_start >= kLowMemEnd);
    CHECK(f.Read<uint8_t>(mod_start) == 0x42);
  }
  SECTION("right after the GDT, up to the Multiboot information, and up to the EBDA") {
    CHECK(f.Load(LowElf(0x1000).Build()).ok());
    CHECK(f.Load(LowElf(kBootInfoAddr - 0x2000).Build()).ok());
    CHECK(f.Load(LowElf(kEbdaStart - 0x2000 - 0x400).Build()).ok());
  }
  SECTION("over the module list's place, when there is no initrd") {
    CHECK(f.Load(LowElf(kBootModulesAddr).Build()).ok());
  }
}

TEST_CASE("The Multiboot information, command line and module list move out of a kernel's way",
          "[multiboot]") {
  Fixture f;
  TempFile initrd(std::vector<uint8_t>(0x3000, 0x42));
  SECTION("the information page: to the lowest free page") {
    auto setup = f.Load(LowElf(0x5000).Build());  // [0x5000, 0x7000)
    REQUIRE(setup.ok());
    CHECK(setup->rbx == 0x1000);
    CHECK(f.Read<uint32_t>(0x5020) == kMultibootHeaderMagic);  // the kernel is intact
    CHECK(f.Read<uint32_t>(setup->rbx + 48) == setup->rbx + kMultibootMmapOffset);  // mmap_addr
    CHECK(f.ReadString(f.Read<uint32_t>(setup->rbx + 16)) == "quiet");
  }
  SECTION("the command line") {
    auto setup = f.Load(LowElf(kCmdlineAddr - 0x1000).Build());
    REQUIRE(setup.ok());
    CHECK(setup->rbx == kBootInfoAddr);
    const uint32_t cmdline = f.Read<uint32_t>(kBootInfoAddr + 16);
    CHECK(cmdline == 0x1000);
    CHECK(f.ReadString(cmdline) == "quiet");
  }
  SECTION("the module list, and the information page with it") {
    MultibootElf elf = LowElf(0x1000);
    elf.segment_bytes = 0x30000;  // [0x1000, 0x31000): the information page and both lists
    elf.bss_bytes = 0;
    auto setup = f.Load(elf.Build(), initrd.path());
    REQUIRE(setup.ok());
    CHECK(setup->rbx == 0x31000);
    const uint32_t mods = f.Read<uint32_t>(setup->rbx + 24);
    CHECK(mods == 0x33000);  // after the information page and the command line's page
    CHECK(f.ReadString(f.Read<uint32_t>(mods + 8)) == initrd.path());
    CHECK(f.Read<uint8_t>(f.Read<uint32_t>(mods)) == 0x42);
  }
}

TEST_CASE("A Multiboot segment over a fixed structure is refused, naming both", "[multiboot]") {
  Fixture f;
  TempFile initrd(std::vector<uint8_t>(0x3000, 0x42));
  std::string initrd_path;
  uint64_t addr = 0;
  std::string expected;
  SECTION("no room left for the information page") {
    MultibootElf elf = LowElf(0x1000);
    elf.segment_bytes = 0x9e000;  // up to 0x9f000: under a page left below the EBDA
    elf.bss_bytes = 0;
    auto setup = f.Load(elf.Build());
    REQUIRE_FALSE(setup.ok());
    CHECK(Contains(setup.status(),
                   "no room below 0x9fc00 for the Multiboot information (4096 bytes): its place "
                   "[0x6000, 0x7000) is taken by a kernel segment at [0x1000, 0x9f000)"));
    return;
  }
  SECTION("the GDT") {
    addr = 0;
    expected = "segment [0x0, 0x2000) overlaps the boot GDT and IDT at [0x500, 0x528)";
  }
  SECTION("the EBDA") {
    addr = kEbdaStart - 0x1000;
    expected = "overlaps the EBDA, VGA and BIOS area at [0x9fc00, 0xe0000)";
  }
  SECTION("the ACPI tables") {
    addr = 0xf0000;
    expected = "overlaps the ACPI tables at [0xe0000, 0xffff0)";
  }
  SECTION("from the reset vector across 1 MiB") {
    addr = 0xffff0;
    expected = "overlaps the reset vector at [0xffff0, 0x100000)";
  }
  INFO("expected error: " << expected);
  auto setup = f.Load(LowElf(addr).Build(), initrd_path);
  REQUIRE_FALSE(setup.ok());
  INFO(setup.status().ToString());
  CHECK(setup.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Contains(setup.status(), expected));
}

TEST_CASE("Multiboot images mote refuses", "[multiboot]") {
  Fixture f;
  MultibootElf elf;
  std::string expected;
  SECTION("a.out kludge in an ELF") {
    elf.header = MultibootHeaderBytes(kMultibootAoutKludge | kMultibootMemoryInfo);
    expected = "a.out kludge";
  }
  SECTION("unknown required feature") {
    elf.header = MultibootHeaderBytes(kMultibootMemoryInfo | (1u << 5));
    expected = "requires features mote does not provide (flags 0x20)";
  }
  SECTION("entry outside the segment") {
    elf.entry = 0x200000;
    expected = "entry point 0x200000 is outside every loaded segment";
  }
  SECTION("bad checksum: not Multiboot, and a 32-bit ELF has no other way in") {
    elf.header = MultibootHeaderBytes(kMultibootMemoryInfo, false);
    expected = "32-bit ELF without a PVH note or Multiboot header";
  }
  SECTION("header beyond the first 8 KiB") {
    elf.segment_bytes = 0x3000;
    elf.header_at = 0x2000;
    expected = "32-bit ELF without a PVH note or Multiboot header";
  }
  INFO("expected error: " << expected);
  auto setup = f.Load(elf.Build());
  REQUIRE_FALSE(setup.ok());
  INFO(setup.status().ToString());
  CHECK(setup.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Contains(setup.status(), expected));
  CHECK(Contains(setup.status(), f.kernel_path));
}

TEST_CASE("Multiboot header in a file that is not ELF", "[multiboot]") {
  Fixture f;
  std::vector<uint8_t> image(0x2000, 0x90);
  SECTION("with the a.out kludge") {
    const std::vector<uint8_t> h =
        MultibootHeaderBytes(kMultibootAoutKludge | kMultibootMemoryInfo);
    std::memcpy(image.data() + 0x40, h.data(), h.size());
    auto setup = f.Load(image);
    REQUIRE_FALSE(setup.ok());
    CHECK(Contains(setup.status(), "uses the a.out kludge (flag bit 16)"));
  }
  SECTION("without it") {
    const std::vector<uint8_t> h = MultibootHeaderBytes(kMultibootMemoryInfo);
    std::memcpy(image.data() + 0x40, h.data(), h.size());
    auto setup = f.Load(image);
    REQUIRE_FALSE(setup.ok());
    CHECK(Contains(setup.status(), "has a Multiboot header but is not an ELF file"));
  }
}

}  // namespace
}  // namespace mote::x86
