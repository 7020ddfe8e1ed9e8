#include "arch/x86/bzimage_loader.h"

#include <array>
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
using testing::kGiB;
using testing::kMiB;

// Temporary files from this test are /tmp/mote-bzimage-test-*.
constexpr char kTempTag[] = "bzimage";
using TempFile = testing::TempFile<kTempTag>;

// Setup header fields are little-endian at fixed offsets (boot.rst).
template <typename T>
void Put(std::vector<uint8_t>& image, size_t offset, T value) {
  std::memcpy(image.data() + offset, &value, sizeof(T));
}

// A field of the zero page, by its boot.rst offset.
template <typename T>
T ZeroPageField(const GuestMemory& mem, uint64_t offset) {
  return testing::ReadGuestObj<T>(mem, kZeroPageAddr + offset);
}

// A bzImage with a valid 2.15 setup header: 4 setup sectors of 0xff filler
// (so stray copies show), then a protected-mode kernel of patterned bytes.
struct FakeBzImage {
  uint8_t setup_sects = 4;
  uint8_t jump_opcode = 0xeb;
  uint8_t jump_length = 0x6a;  // header runs to 0x26c
  uint16_t version = 0x020f;
  uint8_t loadflags = kLoadFlagLoadedHigh;
  uint16_t xloadflags = kXlfKernel64 | kXlfCanBeLoadedAbove4G;
  uint32_t cmdline_size = 2047;
  uint32_t initrd_addr_max = 0x7fffffff;
  uint32_t kernel_alignment = 0x200000;
  uint8_t relocatable = 1;
  uint64_t pref_address = 0x1000000;
  uint32_t init_size = 0x800000;
  uint64_t kernel_bytes = 0x10000;

  uint64_t KernelOffset() const {
    return (uint64_t{setup_sects == 0 ? 4u : setup_sects} + 1) * 512;
  }
  static uint8_t KernelByte(uint64_t i) { return static_cast<uint8_t>(i * 7 + 3); }

  std::vector<uint8_t> Build() const {
    std::vector<uint8_t> image(KernelOffset() + kernel_bytes, 0xff);
    std::memset(image.data() + 0x1f1, 0, 0x290 - 0x1f1);
    Put<uint8_t>(image, 0x1f1, setup_sects);
    Put<uint16_t>(image, 0x1fc, 0x0301);  // root_dev: copied through untouched
    Put<uint16_t>(image, 0x1fe, 0xaa55);
    Put<uint8_t>(image, 0x200, jump_opcode);
    Put<uint8_t>(image, 0x201, jump_length);
    Put<uint32_t>(image, 0x202, 0x53726448);
    Put<uint16_t>(image, 0x206, version);
    Put<uint8_t>(image, 0x211, loadflags);
    Put<uint32_t>(image, 0x214, 0x100000);  // code32_start
    Put<uint32_t>(image, 0x22c, initrd_addr_max);
    Put<uint32_t>(image, 0x230, kernel_alignment);
    Put<uint8_t>(image, 0x234, relocatable);
    Put<uint16_t>(image, 0x236, xloadflags);
    Put<uint32_t>(image, 0x238, cmdline_size);
    Put<uint64_t>(image, 0x258, pref_address);
    Put<uint32_t>(image, 0x260, init_size);
    for (uint64_t i = 0; i < kernel_bytes; ++i) image[KernelOffset() + i] = KernelByte(i);
    return image;
  }
};

struct Fixture : testing::LoaderFixture<kTempTag> {
  explicit Fixture(uint64_t ram) : LoaderFixture(ram) {}
  absl::StatusOr<BootSetup> Load(const FakeBzImage& fake, const std::string& initrd = "",
                                 const std::string& cmdline = "console=ttyS0") {
    return LoadImage(fake.Build(), initrd, cmdline, kAcpiRsdpAddr);
  }
};

TEST_CASE("bzImage loads at 1 MiB with a complete zero page", "[bzimage]") {
  Fixture f(128 * kMiB);
  FakeBzImage fake;
  auto setup = f.Load(fake);
  REQUIRE(setup.ok());
  CHECK(setup->mode == EntryMode::kLinux64);
  CHECK(setup->entry == 0x100200);
  CHECK(setup->rsi == kZeroPageAddr);
  CHECK(setup->format_name == "bzImage (boot protocol 2.15)");
  // Runtime window: max(1 MiB, pref_address) aligned, plus init_size.
  CHECK(setup->kernel_end == 0x1000000 + 0x800000);

  std::vector<uint8_t> loaded(fake.kernel_bytes);
  REQUIRE(f.mem->Read(GuestAddress{kKernelLoadAddr}, absl::MakeSpan(loaded)).ok());
  for (uint64_t i = 0; i < loaded.size(); ++i) {
    if (loaded[i] != FakeBzImage::KernelByte(i)) FAIL("kernel byte " << i << " differs");
  }

  const GuestMemory& mem = *f.mem;
  // The kernel's own header, copied through.
  CHECK(ZeroPageField<uint8_t>(mem, 0x1f1) == 4);
  CHECK(ZeroPageField<uint16_t>(mem, 0x1fc) == 0x0301);
  CHECK(ZeroPageField<uint16_t>(mem, 0x1fe) == 0xaa55);
  CHECK(ZeroPageField<uint32_t>(mem, 0x202) == 0x53726448);
  CHECK(ZeroPageField<uint16_t>(mem, 0x206) == 0x020f);
  CHECK(ZeroPageField<uint32_t>(mem, 0x238) == 2047);
  CHECK(ZeroPageField<uint64_t>(mem, 0x258) == 0x1000000);
  // Bytes of the boot sector outside the header are not copied.
  CHECK(ZeroPageField<uint8_t>(mem, 0x1ef) == 0);  // sentinel
  CHECK(ZeroPageField<uint8_t>(mem, 0x1f0) == 0);
  CHECK(ZeroPageField<uint8_t>(mem, 0x26c) == 0);
  // Loader fields.
  CHECK(ZeroPageField<uint8_t>(mem, 0x210) == 0xff);
  CHECK(ZeroPageField<uint8_t>(mem, 0x211) == 0x81);
  CHECK(ZeroPageField<uint16_t>(mem, 0x224) == 0xfe00);
  CHECK(ZeroPageField<uint16_t>(mem, 0x1fa) == 0xffff);
  CHECK(ZeroPageField<uint32_t>(mem, 0x228) == kCmdlineAddr);
  CHECK(ZeroPageField<uint32_t>(mem, 0x0c8) == 0);
  CHECK(ZeroPageField<uint32_t>(mem, 0x218) == 0);  // no initrd
  CHECK(ZeroPageField<uint32_t>(mem, 0x21c) == 0);
  CHECK(ZeroPageField<uint64_t>(mem, 0x070) == kAcpiRsdpAddr);
  const std::vector<E820Entry> map = BuildE820(128 * kMiB);
  REQUIRE(size_t{ZeroPageField<uint8_t>(mem, 0x1e8)} == map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    CHECK(ZeroPageField<uint64_t>(mem, 0x2d0 + 20 * i) == uint64_t{map[i].addr});
    CHECK(ZeroPageField<uint64_t>(mem, 0x2d0 + 20 * i + 8) == uint64_t{map[i].size});
    CHECK(ZeroPageField<uint32_t>(mem, 0x2d0 + 20 * i + 16) == uint32_t{map[i].type});
  }

  std::array<char, 15> cmdline;
  REQUIRE(mem.Read(GuestAddress{kCmdlineAddr},
                   absl::MakeSpan(reinterpret_cast<uint8_t*>(cmdline.data()), cmdline.size()))
              .ok());
  CHECK(std::string(cmdline.data()) == "console=ttyS0");
  CHECK(cmdline[13] == '\0');
}

TEST_CASE("bzImage initrd goes to the top of low RAM, page aligned", "[bzimage]") {
  std::vector<uint8_t> initrd_bytes(0x12345);
  for (size_t i = 0; i < initrd_bytes.size(); ++i) initrd_bytes[i] = static_cast<uint8_t>(i ^ 0x5a);
  TempFile initrd(initrd_bytes);

  SECTION("128 MiB guest") {
    Fixture f(128 * kMiB);
    auto setup = f.Load(FakeBzImage{}, initrd.path());
    REQUIRE(setup.ok());
    const uint32_t addr = ZeroPageField<uint32_t>(*f.mem, 0x218);
    CHECK(ZeroPageField<uint32_t>(*f.mem, 0x21c) == initrd_bytes.size());
    CHECK(ZeroPageField<uint32_t>(*f.mem, 0x0c0) == 0);
    CHECK(ZeroPageField<uint32_t>(*f.mem, 0x0c4) == 0);
    CHECK(addr % 4096 == 0);
    CHECK(addr == ((128 * kMiB - initrd_bytes.size()) & ~0xfffull));
    CHECK(addr >= setup->kernel_end);
    std::vector<uint8_t> loaded(initrd_bytes.size());
    REQUIRE(f.mem->Read(GuestAddress{addr}, absl::MakeSpan(loaded)).ok());
    CHECK(loaded == initrd_bytes);
  }
  SECTION("5 GiB guest: below initrd_addr_max") {
    Fixture f(5 * kGiB);
    REQUIRE(f.Load(FakeBzImage{}, initrd.path()).ok());
    const uint64_t addr = ZeroPageField<uint32_t>(*f.mem, 0x218);
    CHECK(addr == ((0x80000000 - initrd_bytes.size()) & ~0xfffull));
    CHECK(ZeroPageField<uint32_t>(*f.mem, 0x0c0) == 0);
  }
  SECTION("5 GiB guest, initrd_addr_max 4 GiB: below the MMIO hole") {
    Fixture f(5 * kGiB);
    FakeBzImage fake;
    fake.initrd_addr_max = 0xffffffff;
    REQUIRE(f.Load(fake, initrd.path()).ok());
    const uint64_t addr = ZeroPageField<uint32_t>(*f.mem, 0x218);
    CHECK(addr == ((kMmioHoleStart - initrd_bytes.size()) & ~0xfffull));
    std::vector<uint8_t> loaded(initrd_bytes.size());
    REQUIRE(f.mem->Read(GuestAddress{addr}, absl::MakeSpan(loaded)).ok());
    CHECK(loaded == initrd_bytes);
  }
}

TEST_CASE("bzImage header variants", "[bzimage]") {
  Fixture f(128 * kMiB);
  SECTION("setup_sects 0 means 4") {
    FakeBzImage fake;
    fake.setup_sects = 0;
    REQUIRE(f.Load(fake).ok());
    auto first = f.mem->ReadObj<uint8_t>(GuestAddress{kKernelLoadAddr});
    REQUIRE(first.ok());
    CHECK(*first == FakeBzImage::KernelByte(0));
  }
  SECTION("protocol 2.13 gets no acpi_rsdp_addr") {
    FakeBzImage fake;
    fake.version = 0x020d;
    auto setup = f.Load(fake);
    REQUIRE(setup.ok());
    CHECK(setup->format_name == "bzImage (boot protocol 2.13)");
    CHECK(ZeroPageField<uint64_t>(*f.mem, 0x070) == 0);
  }
  SECTION("non-relocatable kernel runs at pref_address") {
    FakeBzImage fake;
    fake.relocatable = 0;
    fake.pref_address = 0x2000000;
    auto setup = f.Load(fake);
    REQUIRE(setup.ok());
    CHECK(setup->kernel_end == 0x2000000 + 0x800000);
  }
  SECTION("a command line exactly cmdline_size long is accepted") {
    FakeBzImage fake;
    fake.cmdline_size = 16;
    REQUIRE(f.Load(fake, "", std::string(16, 'x')).ok());
  }
}

TEST_CASE("bzImage rejects what it cannot boot", "[bzimage]") {
  Fixture f(128 * kMiB);
  FakeBzImage fake;
  std::string expected;
  absl::StatusCode code = absl::StatusCode::kInvalidArgument;
  SECTION("protocol too old") {
    fake.version = 0x0205;
    expected = "boot protocol 2.05 is too old";
  }
  SECTION("no 64-bit entry point (xloadflags)") {
    fake.xloadflags = 0;
    expected = "no 64-bit entry point";
  }
  SECTION("no 64-bit entry point (protocol 2.11)") {
    fake.version = 0x020b;
    expected = "no 64-bit entry point";
  }
  SECTION("zImage") {
    fake.loadflags = 0;
    expected = "zImage";
  }
  SECTION("no short jump over the header") {
    fake.jump_opcode = 0x90;
    expected = "no short jump";
  }
  SECTION("header too short") {
    fake.jump_length = 0x20;
    expected = "before cmdline_size";
  }
  SECTION("command line longer than cmdline_size") {
    fake.cmdline_size = 8;
    expected = "this kernel accepts at most 8";
  }
  SECTION("relocatable kernel too large for RAM") {
    fake.init_size = 0x8000000;  // 128 MiB from 16 MiB
    code = absl::StatusCode::kResourceExhausted;
    expected = "too large for 134217728 bytes of RAM";
  }
  SECTION("kernel_alignment not a power of two") {
    fake.kernel_alignment = 0x300000;
    expected = "not a power of two";
  }
  SECTION("no protected-mode kernel") {
    fake.kernel_bytes = 0;
    expected = "truncated: no protected-mode kernel after 4 setup sectors";
  }
  auto setup = f.Load(fake);
  REQUIRE_FALSE(setup.ok());
  INFO(setup.status().ToString());
  CHECK(setup.status().code() == code);
  CHECK(Contains(setup.status(), expected));
  CHECK(Contains(setup.status(), f.kernel_path));
}

TEST_CASE("bzImage truncated inside the setup header", "[bzimage]") {
  Fixture f(128 * kMiB);
  std::vector<uint8_t> image = FakeBzImage{}.Build();
  image.resize(0x240);
  TempFile kernel(image);
  auto setup = LoadKernel(*f.mem, KernelLoadRequest{kernel.path(), "", "", f.ram_bytes, 0});
  REQUIRE_FALSE(setup.ok());
  INFO(setup.status().ToString());
  CHECK(Contains(setup.status(), "truncated"));
  CHECK(Contains(setup.status(), kernel.path()));
}

TEST_CASE("bzImage protected-mode kernel larger than RAM", "[bzimage]") {
  Fixture f(2 * kMiB);
  FakeBzImage fake;
  fake.kernel_bytes = 2 * kMiB;
  auto setup = f.Load(fake);
  REQUIRE_FALSE(setup.ok());
  CHECK(setup.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(Contains(setup.status(), "does not fit in 2097152 bytes of RAM"));
}

TEST_CASE("bzImage initrd that does not fit", "[bzimage]") {
  SECTION("larger than RAM (sparse file, never read)") {
    Fixture f(128 * kMiB);
    TempFile initrd({1, 2, 3}, 200 * kMiB);
    auto setup = f.Load(FakeBzImage{}, initrd.path());
    REQUIRE_FALSE(setup.ok());
    INFO(setup.status().ToString());
    CHECK(setup.status().code() == absl::StatusCode::kResourceExhausted);
    CHECK(Contains(setup.status(), "initrd " + initrd.path() +
                                       " (209715200 bytes) does not fit "
                                       "below 0x8000000 in 134217728 bytes of RAM"));
  }
  SECTION("fits in RAM but would overlap the kernel's runtime window") {
    Fixture f(32 * kMiB);  // kernel window ends at 24 MiB
    TempFile initrd({1}, 9 * kMiB);
    auto setup = f.Load(FakeBzImage{}, initrd.path());
    REQUIRE_FALSE(setup.ok());
    CHECK(Contains(setup.status(), "does not fit below 0x2000000"));
  }
  SECTION("exactly fills the space above the kernel") {
    Fixture f(32 * kMiB);
    TempFile initrd({1}, 8 * kMiB);
    auto setup = f.Load(FakeBzImage{}, initrd.path());
    REQUIRE(setup.ok());
    CHECK(ZeroPageField<uint32_t>(*f.mem, 0x218) == 24 * kMiB);
  }
  SECTION("missing initrd file") {
    Fixture f(128 * kMiB);
    auto setup = f.Load(FakeBzImage{}, "/nonexistent/initrd.img");
    REQUIRE_FALSE(setup.ok());
    CHECK(setup.status().code() == absl::StatusCode::kNotFound);
    CHECK(Contains(setup.status(), "initrd /nonexistent/initrd.img"));
  }
}

}  // namespace
}  // namespace mote::x86
