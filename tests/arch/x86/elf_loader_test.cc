#include "arch/x86/elf_loader.h"

#include <catch2/catch.hpp>
#include <elf.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arch/x86/boot_params.h"
#include "arch/x86/kernel_loader.h"
#include "arch/x86/layout.h"
#include "arch/x86/memory_map.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

class TempFile {
 public:
  explicit TempFile(const std::vector<uint8_t>& bytes) {
    char name[] = "/tmp/mote-elf-test-XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    path_ = name;
    REQUIRE(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    close(fd);
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Segment {
  Segment(uint32_t t, uint64_t p, std::vector<uint8_t> d, uint64_t m = 0)
      : type(t), paddr(p), data(std::move(d)), mem_size(m) {}
  uint32_t type;
  uint64_t paddr;
  std::vector<uint8_t> data;
  uint64_t mem_size;  // 0: data.size()
  std::optional<uint64_t> file_size;  // overrides data.size() in the header only
  uint64_t align = 4;
};

// An ELF executable: headers, program headers, then each segment's data.
struct ElfSpec {
  bool is_64bit = true;
  uint16_t machine = EM_X86_64;
  uint16_t type = ET_EXEC;
  uint64_t entry = 0;
  std::vector<Segment> segments;

  std::vector<uint8_t> Build() const {
    const size_t ehdr_size = is_64bit ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    const size_t phdr_size = is_64bit ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    std::vector<uint8_t> out(ehdr_size + phdr_size * segments.size());
    std::vector<uint64_t> offsets;
    for (const Segment& s : segments) {
      out.resize((out.size() + 15) & ~size_t{15});
      offsets.push_back(out.size());
      out.insert(out.end(), s.data.begin(), s.data.end());
    }
    unsigned char ident[EI_NIDENT] = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3,
                                      static_cast<unsigned char>(is_64bit ? ELFCLASS64 : ELFCLASS32),
                                      ELFDATA2LSB, EV_CURRENT};
    if (is_64bit) {
      Elf64_Ehdr eh = {};
      std::memcpy(eh.e_ident, ident, EI_NIDENT);
      eh.e_type = type;
      eh.e_machine = machine;
      eh.e_version = EV_CURRENT;
      eh.e_entry = entry;
      eh.e_phoff = ehdr_size;
      eh.e_ehsize = static_cast<uint16_t>(ehdr_size);
      eh.e_phentsize = static_cast<uint16_t>(phdr_size);
      eh.e_phnum = static_cast<uint16_t>(segments.size());
      std::memcpy(out.data(), &eh, sizeof(eh));
      for (size_t i = 0; i < segments.size(); ++i) {
        const Segment& s = segments[i];
        Elf64_Phdr ph = {};
        ph.p_type = s.type;
        ph.p_offset = offsets[i];
        ph.p_paddr = s.paddr;
        ph.p_vaddr = s.paddr + 0xffffffff80000000;  // like vmlinux: only p_paddr matters
        ph.p_filesz = s.file_size.value_or(s.data.size());
        ph.p_memsz = s.mem_size ? s.mem_size : s.data.size();
        ph.p_align = s.align;
        std::memcpy(out.data() + ehdr_size + i * phdr_size, &ph, sizeof(ph));
      }
    } else {
      Elf32_Ehdr eh = {};
      std::memcpy(eh.e_ident, ident, EI_NIDENT);
      eh.e_type = type;
      eh.e_machine = machine;
      eh.e_version = EV_CURRENT;
      eh.e_entry = static_cast<uint32_t>(entry);
      eh.e_phoff = static_cast<uint32_t>(ehdr_size);
      eh.e_ehsize = static_cast<uint16_t>(ehdr_size);
      eh.e_phentsize = static_cast<uint16_t>(phdr_size);
      eh.e_phnum = static_cast<uint16_t>(segments.size());
      std::memcpy(out.data(), &eh, sizeof(eh));
      for (size_t i = 0; i < segments.size(); ++i) {
        const Segment& s = segments[i];
        Elf32_Phdr ph = {};
        ph.p_type = s.type;
        ph.p_offset = static_cast<uint32_t>(offsets[i]);
        ph.p_paddr = static_cast<uint32_t>(s.paddr);
        ph.p_vaddr = static_cast<uint32_t>(s.paddr);
        ph.p_filesz = static_cast<uint32_t>(s.file_size.value_or(s.data.size()));
        ph.p_memsz = static_cast<uint32_t>(s.mem_size ? s.mem_size : s.data.size());
        ph.p_align = static_cast<uint32_t>(s.align);
        std::memcpy(out.data() + ehdr_size + i * phdr_size, &ph, sizeof(ph));
      }
    }
    return out;
  }
};

// One ELF note: name (NUL included), type, descriptor; 4-byte padded.
std::vector<uint8_t> Note(const std::string& name, uint32_t type, std::vector<uint8_t> desc) {
  const size_t desc_at = 12 + ((name.size() + 1 + 3) & ~size_t{3});
  // Sized up front and filled with memcpy: g++ 12 -O2 warns falsely on
  // vector::insert into a just-sized vector (-Warray-bounds).
  std::vector<uint8_t> out(desc_at + ((desc.size() + 3) & ~size_t{3}), 0);
  const uint32_t words[3] = {static_cast<uint32_t>(name.size() + 1),
                             static_cast<uint32_t>(desc.size()), type};
  std::memcpy(out.data(), words, sizeof(words));
  std::memcpy(out.data() + 12, name.data(), name.size());
  if (!desc.empty()) std::memcpy(out.data() + desc_at, desc.data(), desc.size());
  return out;
}

std::vector<uint8_t> LittleEndian(uint64_t value, size_t bytes) {
  std::vector<uint8_t> out(bytes);
  std::memcpy(out.data(), &value, bytes);
  return out;
}

// A GNU build-id note followed by the PVH entry note, as in a vmlinux.
std::vector<uint8_t> PvhNotes(uint64_t entry, size_t desc_bytes) {
  std::vector<uint8_t> notes = Note("GNU", 3, std::vector<uint8_t>(20, 0xab));
  const std::vector<uint8_t> pvh = Note("Xen", 18, LittleEndian(entry, desc_bytes));
  notes.insert(notes.end(), pvh.begin(), pvh.end());
  return notes;
}

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(i * 13 + seed);
  return out;
}

struct Fixture {
  explicit Fixture(uint64_t ram = 128 * kMiB) : ram_bytes(ram) {
    auto m = GuestMemory::Create(RamRegions(ram));
    REQUIRE(m.ok());
    mem = std::move(*m);
  }
  absl::StatusOr<BootSetup> Load(const ElfSpec& spec, const std::string& initrd = "") {
    TempFile kernel(spec.Build());
    kernel_path = kernel.path();
    return LoadKernel(*mem, KernelLoadRequest{kernel.path(), initrd, "root=/dev/vda", ram_bytes,
                                              kAcpiRsdpAddr});
  }
  std::vector<uint8_t> ReadGuest(uint64_t gpa, size_t n) const {
    std::vector<uint8_t> out(n);
    REQUIRE(mem->Read(GuestAddress{gpa}, absl::MakeSpan(out)).ok());
    return out;
  }
  uint64_t ram_bytes;
  std::unique_ptr<GuestMemory> mem;
  std::string kernel_path;
};

bool Contains(const absl::Status& s, const std::string& text) {
  return std::string(s.message()).find(text) != std::string::npos;
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
  CHECK(params->hdr.header == kHdrSMagic);
  CHECK(params->hdr.boot_flag == kBootFlagMagic);
  CHECK(params->hdr.type_of_loader == 0xff);
  CHECK(params->hdr.cmd_line_ptr == kCmdlineAddr);
  CHECK(params->hdr.ramdisk_size == 100);
  auto module = f.mem->ReadObj<HvmModlistEntry>(GuestAddress{start->modlist_paddr});
  REQUIRE(module.ok());
  CHECK(params->hdr.ramdisk_image == module->paddr);
  CHECK(params->acpi_rsdp_addr == kAcpiRsdpAddr);
  CHECK(params->e820_entries == 5);
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

TEST_CASE("ELF segments that cannot be loaded are rejected", "[elf]") {
  Fixture f;
  ElfSpec spec;
  spec.entry = 0x1000000;
  spec.segments = {{PT_LOAD, 0x1000000, Pattern(0x1000, 1)}};
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
  SECTION("in the boot structures below 1 MiB") {
    spec.segments[0].paddr = 0x8000;
    spec.entry = 0x8000;
    expected = "below 1 MiB";
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
  ElfSpec spec;
  spec.entry = 0x1000000;
  spec.segments = {{PT_LOAD, 0x1000000, Pattern(0x1000, 1)}};
  std::vector<uint8_t> image = spec.Build();
  SECTION("inside the program headers") { image.resize(sizeof(Elf64_Ehdr) + 10); }
  SECTION("inside the ELF header") { image.resize(40); }
  TempFile kernel(image);
  auto setup = LoadKernel(*f.mem, KernelLoadRequest{kernel.path(), "", "", f.ram_bytes, 0});
  REQUIRE_FALSE(setup.ok());
  INFO(setup.status().ToString());
  CHECK(Contains(setup.status(), "truncated"));
}

TEST_CASE("big-endian ELF is rejected", "[elf]") {
  Fixture f;
  ElfSpec spec;
  spec.entry = 0x1000000;
  spec.segments = {{PT_LOAD, 0x1000000, Pattern(0x1000, 1)}};
  std::vector<uint8_t> image = spec.Build();
  image[EI_DATA] = ELFDATA2MSB;
  TempFile kernel(image);
  auto setup = LoadKernel(*f.mem, KernelLoadRequest{kernel.path(), "", "", f.ram_bytes, 0});
  REQUIRE_FALSE(setup.ok());
  CHECK(Contains(setup.status(), "not little-endian"));
}

}  // namespace
}  // namespace mote::x86
