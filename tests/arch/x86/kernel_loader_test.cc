#include "arch/x86/kernel_loader.h"

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "arch/x86/boot_params.h"
#include "arch/x86/elf_loader.h"
#include "arch/x86/layout.h"
#include "arch/x86/memory_map.h"
#include "arch/x86/multiboot.h"
#include "tests/support/loader_test_util.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {
namespace {

using testing::Contains;
using testing::kMiB;

// Temporary files from this test are /tmp/mote-kernel-loader-test-*.
constexpr char kTempTag[] = "kernel-loader";
using TempFile = testing::TempFile<kTempTag>;

constexpr uint64_t kKernelAddr = 0x1000000;

// A small x86-64 ELF: one PT_LOAD of 0x1000 bytes at 16 MiB (optionally
// starting with a Multiboot header) and optionally a PVH note. Without the
// note its program header is PT_NULL, so the file is otherwise the same.
std::vector<uint8_t> TinyElf64(bool pvh_note, bool multiboot_header) {
  std::vector<uint8_t> text(0x1000, 0x90);
  if (multiboot_header) {
    const std::vector<uint8_t> mb = testing::MultibootHeaderBytes(0);
    std::memcpy(text.data(), mb.data(), mb.size());
  }
  testing::ElfSpec spec;
  spec.entry = kKernelAddr + 0x80;
  spec.segments = {
      {PT_LOAD, kKernelAddr, std::move(text)},
      {pvh_note ? uint32_t{PT_NOTE} : uint32_t{PT_NULL}, 0,
       testing::Note("Xen", kXenElfNotePhys32Entry, testing::LittleEndian(kKernelAddr + 0x40, 4))},
  };
  return spec.Build();
}

struct Fixture : testing::LoaderFixture<kTempTag> {
  explicit Fixture(uint64_t ram = 64 * kMiB) : LoaderFixture(ram) {}
  KernelLoadRequest Request(const std::string& kernel) const {
    return KernelLoadRequest{kernel, "", "console=ttyS0", ram_bytes, 0};
  }
};

TEST_CASE("LoadKernel reports unusable kernel files by name", "[kernel_loader]") {
  Fixture f;
  SECTION("missing") {
    auto setup = LoadKernel(*f.mem, f.Request("/nonexistent/vmlinuz"));
    REQUIRE_FALSE(setup.ok());
    CHECK(setup.status().code() == absl::StatusCode::kNotFound);
    CHECK(Contains(setup.status(), "kernel /nonexistent/vmlinuz"));
  }
  SECTION("a directory") {
    auto setup = LoadKernel(*f.mem, f.Request("/tmp"));
    REQUIRE_FALSE(setup.ok());
    CHECK(setup.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Contains(setup.status(), "kernel /tmp: not a regular file"));
  }
  SECTION("empty") {
    TempFile kernel({});
    auto setup = LoadKernel(*f.mem, f.Request(kernel.path()));
    REQUIRE_FALSE(setup.ok());
    CHECK(setup.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Contains(setup.status(), "kernel " + kernel.path() + ": file is empty"));
  }
  SECTION("garbage") {
    std::vector<uint8_t> junk(10000);
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<uint8_t>(i * 31 + 7);
    TempFile kernel(junk);
    auto setup = LoadKernel(*f.mem, f.Request(kernel.path()));
    REQUIRE_FALSE(setup.ok());
    CHECK(setup.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Contains(setup.status(), kernel.path()));
    CHECK(Contains(setup.status(),
                   "not a known kernel format (expected bzImage, ELF with PVH "
                   "note, Multiboot or x86-64 ELF)"));
  }
  SECTION("a few bytes") {
    TempFile kernel({0x7f, 'E'});
    auto setup = LoadKernel(*f.mem, f.Request(kernel.path()));
    REQUIRE_FALSE(setup.ok());
    CHECK(Contains(setup.status(), "not a known kernel format"));
  }
  SECTION("a FIFO is refused, not waited on") {
    const std::string fifo = "/tmp/mote-kernel-loader-test-fifo-" + std::to_string(getpid());
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    auto setup = LoadKernel(*f.mem, f.Request(fifo));
    unlink(fifo.c_str());
    REQUIRE_FALSE(setup.ok());
    CHECK(Contains(setup.status(), "not a regular file"));
  }
  SECTION("no path") {
    auto setup = LoadKernel(*f.mem, f.Request(""));
    REQUIRE_FALSE(setup.ok());
    CHECK(setup.status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("LoadKernel checks the command line", "[kernel_loader]") {
  Fixture f;
  TempFile kernel(TinyElf64(false, false));
  KernelLoadRequest req = f.Request(kernel.path());
  SECTION("the longest allowed") {
    req.cmdline = std::string(kCmdlineMax - 1, 'a');
    REQUIRE(LoadKernel(*f.mem, req).ok());
    auto last = f.mem->ReadObj<uint8_t>(GuestAddress{kCmdlineAddr + kCmdlineMax - 1});
    REQUIRE(last.ok());
    CHECK(*last == 0);
  }
  SECTION("one byte too long") {
    req.cmdline = std::string(kCmdlineMax, 'a');
    auto setup = LoadKernel(*f.mem, req);
    REQUIRE_FALSE(setup.ok());
    CHECK(setup.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Contains(setup.status(), "command line is 65536 bytes; mote allows at most 65535"));
  }
  SECTION("embedded NUL") {
    req.cmdline = std::string("a\0b", 3);
    auto setup = LoadKernel(*f.mem, req);
    REQUIRE_FALSE(setup.ok());
    CHECK(Contains(setup.status(), "NUL"));
  }
}

TEST_CASE("LoadKernel checks the initrd file", "[kernel_loader]") {
  Fixture f;
  TempFile kernel(TinyElf64(true, false));
  KernelLoadRequest req = f.Request(kernel.path());
  SECTION("empty") {
    TempFile initrd({});
    req.initrd_path = initrd.path();
    auto setup = LoadKernel(*f.mem, req);
    REQUIRE_FALSE(setup.ok());
    CHECK(Contains(setup.status(), "initrd " + initrd.path() + ": file is empty"));
  }
  SECTION("missing") {
    req.initrd_path = "/nonexistent/initrd";
    auto setup = LoadKernel(*f.mem, req);
    REQUIRE_FALSE(setup.ok());
    CHECK(setup.status().code() == absl::StatusCode::kNotFound);
    CHECK(Contains(setup.status(), "initrd /nonexistent/initrd"));
  }
}

TEST_CASE("LoadKernel refuses guests below 1 MiB of RAM", "[kernel_loader]") {
  Fixture f(512 * 1024);
  TempFile kernel(TinyElf64(false, false));
  auto setup = LoadKernel(*f.mem, f.Request(kernel.path()));
  REQUIRE_FALSE(setup.ok());
  CHECK(Contains(setup.status(), "too small"));
}

TEST_CASE("LoadKernel prefers PVH over Multiboot over plain ELF64", "[kernel_loader]") {
  Fixture f;
  SECTION("PVH note and Multiboot header") {
    TempFile kernel(TinyElf64(true, true));
    auto setup = LoadKernel(*f.mem, f.Request(kernel.path()));
    REQUIRE(setup.ok());
    CHECK(setup->mode == EntryMode::kPvh32);
    CHECK(setup->entry == kKernelAddr + 0x40);
  }
  SECTION("Multiboot header only") {
    TempFile kernel(TinyElf64(false, true));
    auto setup = LoadKernel(*f.mem, f.Request(kernel.path()));
    REQUIRE(setup.ok());
    CHECK(setup->mode == EntryMode::kMultiboot32);
    CHECK(setup->entry == kKernelAddr + 0x80);
  }
  SECTION("neither") {
    TempFile kernel(TinyElf64(false, false));
    auto setup = LoadKernel(*f.mem, f.Request(kernel.path()));
    REQUIRE(setup.ok());
    CHECK(setup->mode == EntryMode::kElf64);
    CHECK(setup->entry == kKernelAddr + 0x80);
  }
}

TEST_CASE("LoadKernel leaves the rest of guest memory alone", "[kernel_loader]") {
  Fixture f;
  // Not the image, the boot info/zero page/cmdline/modules, nor the initrd.
  const std::vector<uint64_t> canaries = {0x0,      0x500,     0x5ff8,    0x8000,   0x1f000,
                                          0x40000,  0x9f000,   0xe0000,   0xfff00,  0x100000,
                                          0xfff000, 0x1001000, 0x2000000, 0x3000000};
  for (uint64_t gpa : canaries) {
    REQUIRE(f.mem->WriteObj<uint64_t>(GuestAddress{gpa}, 0x5555aaaa5555aaaaull).ok());
  }
  TempFile kernel(TinyElf64(false, false));
  TempFile initrd(std::vector<uint8_t>(0x1000, 1));
  KernelLoadRequest req = f.Request(kernel.path());
  req.initrd_path = initrd.path();
  REQUIRE(LoadKernel(*f.mem, req).ok());
  for (uint64_t gpa : canaries) {
    INFO("canary at 0x" << std::hex << gpa);
    auto v = f.mem->ReadObj<uint64_t>(GuestAddress{gpa});
    REQUIRE(v.ok());
    CHECK(*v == 0x5555aaaa5555aaaaull);
  }
}

TEST_CASE("LoadInitrd places the initrd at the highest page that fits", "[kernel_loader]") {
  Fixture f;
  TempFile initrd(std::vector<uint8_t>(0x2001, 7));
  KernelLoadRequest req = f.Request("unused");
  req.initrd_path = initrd.path();
  SECTION("below an unaligned limit") {
    auto placed = LoadInitrd(*f.mem, req, 0x3000fff, 0x1000000);
    REQUIRE(placed.ok());
    CHECK(placed->addr == 0x2ffd000);  // 0x3000000 - 0x2001, rounded down
    CHECK(placed->size == 0x2001);
    auto last = f.mem->ReadObj<uint8_t>(GuestAddress{placed->addr + 0x2000});
    REQUIRE(last.ok());
    CHECK(*last == 7);
  }
  SECTION("exactly above the floor") {
    auto placed = LoadInitrd(*f.mem, req, 0x1004000, 0x1000001);
    REQUIRE(placed.ok());
    CHECK(placed->addr == 0x1001000);
  }
  SECTION("no room above the floor") {
    auto placed = LoadInitrd(*f.mem, req, 0x1004000, 0x1001001);
    REQUIRE_FALSE(placed.ok());
    CHECK(placed.status().code() == absl::StatusCode::kResourceExhausted);
    CHECK(Contains(placed.status(), "initrd " + initrd.path() +
                                        " (8193 bytes) does not fit "
                                        "below 0x1004000 in 67108864 bytes of RAM"));
  }
  SECTION("floor above the limit") {
    CHECK_FALSE(LoadInitrd(*f.mem, req, 0x1000000, 0x2000000).ok());
  }
  SECTION("no initrd requested") {
    req.initrd_path = "";
    auto placed = LoadInitrd(*f.mem, req, 0x1000000, 0);
    REQUIRE(placed.ok());
    CHECK(placed->size == 0);
  }
}

TEST_CASE("ImageFile reads are bounded by the file and guest memory", "[kernel_loader]") {
  Fixture f;
  TempFile file(std::vector<uint8_t>(100, 3));
  auto image = ImageFile::Open(file.path(), "kernel");
  REQUIRE(image.ok());
  CHECK(image->size() == 100);
  uint8_t buf[16];
  CHECK(image->ReadAt(84, absl::MakeSpan(buf)).ok());
  absl::Status s = image->ReadAt(85, absl::MakeSpan(buf));
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Contains(s, "kernel " + file.path() + ": truncated"));
  CHECK_FALSE(image->ReadAt(~0ull - 4, absl::MakeSpan(buf)).ok());  // offset overflow
  CHECK(image->CopyToGuest(*f.mem, 0, 100, 0x100000).ok());
  CHECK_FALSE(image->CopyToGuest(*f.mem, 0, 100, f.ram_bytes - 50).ok());
  CHECK_FALSE(image->CopyToGuest(*f.mem, 50, 51, 0x100000).ok());
}

}  // namespace
}  // namespace mote::x86
