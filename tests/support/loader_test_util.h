// Helpers shared by the x86 kernel loader tests (bzImage, ELF, Multiboot and
// the LoadKernel front end): temporary image files, ELF and Multiboot image
// builders, and a guest-memory fixture that loads an image through LoadKernel.
// Header-only (everything inline): only the unit test binary uses it.
#ifndef MOTE_TESTS_SUPPORT_LOADER_TEST_UTIL_H_
#define MOTE_TESTS_SUPPORT_LOADER_TEST_UTIL_H_

#include <elf.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arch/x86/elf_loader.h"
#include "arch/x86/kernel_loader.h"
#include "arch/x86/memory_map.h"
#include "arch/x86/multiboot.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86::testing {

inline constexpr uint64_t kMiB = 1ull << 20;
inline constexpr uint64_t kGiB = 1ull << 30;

// A file with the given bytes, optionally extended (sparsely) to `size` so a
// test can offer a huge image without writing it. Removed on destruction.
// Named /tmp/mote-<kTag>-test-XXXXXX after the test file that made it, so a
// leftover file says where it came from. A test file picks its tag once:
//   constexpr char kTempTag[] = "elf";
//   using TempFile = testing::TempFile<kTempTag>;
template <const char* kTag>
class TempFile {
 public:
  explicit TempFile(const std::vector<uint8_t>& bytes, uint64_t size = 0) {
    std::string name = std::string("/tmp/mote-") + kTag + "-test-XXXXXX";
    const int fd = mkstemp(name.data());
    REQUIRE(fd >= 0);
    path_ = name;
    REQUIRE(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    if (size > bytes.size()) REQUIRE(ftruncate(fd, static_cast<off_t>(size)) == 0);
    close(fd);
  }
  ~TempFile() { unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Loaders report errors as text; tests match on a fragment of it.
inline bool Contains(const absl::Status& s, const std::string& text) {
  return std::string(s.message()).find(text) != std::string::npos;
}

// `value` as `bytes` little-endian bytes (x86 is little-endian).
inline std::vector<uint8_t> LittleEndian(uint64_t value, size_t bytes) {
  std::vector<uint8_t> out(bytes);
  std::memcpy(out.data(), &value, bytes);
  return out;
}

// One ELF note: name (NUL included), type, descriptor; 4-byte padded.
inline std::vector<uint8_t> Note(const std::string& name, uint32_t type,
                                 const std::vector<uint8_t>& desc) {
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

// A GNU build-id note followed by the PVH entry note, as in a vmlinux, so the
// loader has to walk past a note it does not care about.
inline std::vector<uint8_t> PvhNotes(uint64_t entry, size_t desc_bytes) {
  std::vector<uint8_t> notes = Note("GNU", 3, std::vector<uint8_t>(20, 0xab));
  const std::vector<uint8_t> pvh =
      Note("Xen", kXenElfNotePhys32Entry, LittleEndian(entry, desc_bytes));
  notes.insert(notes.end(), pvh.begin(), pvh.end());
  return notes;
}

// The 12-byte Multiboot header; `good_checksum` false breaks the checksum so
// the header must not be recognised.
inline std::vector<uint8_t> MultibootHeaderBytes(uint32_t flags, bool good_checksum = true) {
  const uint32_t words[3] = {
      kMultibootHeaderMagic, flags,
      static_cast<uint32_t>(0u - kMultibootHeaderMagic - flags) + (good_checksum ? 0u : 1u)};
  std::vector<uint8_t> out(sizeof(words));
  std::memcpy(out.data(), words, sizeof(words));
  return out;
}

// An ELF executable: headers, program headers, then each segment's data.
struct ElfSpec {
  struct Segment {
    Segment(uint32_t t, uint64_t p, std::vector<uint8_t> d, uint64_t m = 0)
        : type(t), paddr(p), data(std::move(d)), mem_size(m) {}
    uint32_t type;
    uint64_t paddr;
    std::vector<uint8_t> data;
    uint64_t mem_size;                  // 0: data.size()
    std::optional<uint64_t> file_size;  // overrides data.size() in the header only
    // Where the data goes in the file; unset: the next 16-byte boundary.
    // Multiboot tests pin it because the header's file offset is what the
    // 8 KiB search sees.
    std::optional<uint64_t> file_offset;
    uint64_t align = 4;
  };

  bool is_64bit = true;
  uint16_t machine = EM_X86_64;
  uint16_t type = ET_EXEC;
  uint64_t entry = 0;
  // p_vaddr - p_paddr. Unset: like vmlinux (ELF64 linked at
  // 0xffffffff80000000 + paddr; ELF32 at paddr), which shows that only p_paddr
  // matters to the loader.
  std::optional<uint64_t> vaddr_offset;
  std::vector<Segment> segments;

  std::vector<uint8_t> Build() const {
    return is_64bit ? BuildAs<Elf64_Ehdr, Elf64_Phdr>(0xffffffff80000000)
                    : BuildAs<Elf32_Ehdr, Elf32_Phdr>(0);
  }

 private:
  // ELF32 and ELF64 differ only in field widths, hence one template; the
  // casts narrow to the ELF32 widths and are no-ops for ELF64.
  template <typename Ehdr, typename Phdr>
  std::vector<uint8_t> BuildAs(uint64_t default_vaddr_offset) const {
    std::vector<uint8_t> out(sizeof(Ehdr) + sizeof(Phdr) * segments.size());
    std::vector<uint64_t> offsets;
    for (const Segment& s : segments) {
      out.resize(s.file_offset ? std::max<size_t>(out.size(), *s.file_offset)
                               : (out.size() + 15) & ~size_t{15});
      offsets.push_back(out.size());
      out.insert(out.end(), s.data.begin(), s.data.end());
    }
    Ehdr eh = {};
    const unsigned char ident[EI_NIDENT] = {
        ELFMAG0,
        ELFMAG1,
        ELFMAG2,
        ELFMAG3,
        static_cast<unsigned char>(is_64bit ? ELFCLASS64 : ELFCLASS32),
        ELFDATA2LSB,
        EV_CURRENT};
    std::memcpy(eh.e_ident, ident, EI_NIDENT);
    eh.e_type = type;
    eh.e_machine = machine;
    eh.e_version = EV_CURRENT;
    eh.e_entry = static_cast<decltype(eh.e_entry)>(entry);
    eh.e_phoff = sizeof(Ehdr);
    eh.e_ehsize = static_cast<uint16_t>(sizeof(Ehdr));
    eh.e_phentsize = static_cast<uint16_t>(sizeof(Phdr));
    eh.e_phnum = static_cast<uint16_t>(segments.size());
    std::memcpy(out.data(), &eh, sizeof(eh));
    using Word = decltype(Phdr{}.p_paddr);  // Elf32_Addr or Elf64_Addr
    for (size_t i = 0; i < segments.size(); ++i) {
      const Segment& s = segments[i];
      Phdr ph = {};
      ph.p_type = s.type;
      ph.p_offset = static_cast<Word>(offsets[i]);
      ph.p_paddr = static_cast<Word>(s.paddr);
      ph.p_vaddr = static_cast<Word>(s.paddr + vaddr_offset.value_or(default_vaddr_offset));
      ph.p_filesz = static_cast<Word>(s.file_size.value_or(s.data.size()));
      ph.p_memsz = static_cast<Word>(s.mem_size ? s.mem_size : s.data.size());
      ph.p_align = static_cast<Word>(s.align);
      std::memcpy(out.data() + sizeof(Ehdr) + i * sizeof(Phdr), &ph, sizeof(ph));
    }
    return out;
  }
};

// Reads a T from guest memory; a failed read fails the test.
template <typename T>
T ReadGuestObj(const GuestMemory& mem, uint64_t gpa) {
  auto value = mem.ReadObj<T>(GuestAddress{gpa});
  REQUIRE(value.ok());
  return *value;
}

// Guest RAM of a given size (laid out as the VMM does) and a way to boot an
// image in it through LoadKernel, the loaders' one entry point. Test files
// wrap LoadImage with their own format's builder and command line; kTag names
// the kernel's temporary file as for TempFile.
template <const char* kTag>
struct LoaderFixture {
  explicit LoaderFixture(uint64_t ram) : ram_bytes(ram) {
    auto m = GuestMemory::Create(RamRegions(ram));
    REQUIRE(m.ok());
    mem = std::move(*m);
  }

  // Writes `image` to a temporary file and loads it. The file's path is kept
  // in kernel_path because errors must name it, and the file is gone by then.
  absl::StatusOr<BootSetup> LoadImage(const std::vector<uint8_t>& image, const std::string& initrd,
                                      const std::string& cmdline, uint64_t acpi_rsdp_addr) {
    TempFile<kTag> kernel(image);
    kernel_path = kernel.path();
    return LoadKernel(*mem,
                      KernelLoadRequest{kernel.path(), initrd, cmdline, ram_bytes, acpi_rsdp_addr});
  }

  template <typename T>
  T Read(uint64_t gpa) const {
    return ReadGuestObj<T>(*mem, gpa);
  }
  std::vector<uint8_t> ReadGuest(uint64_t gpa, size_t n) const {
    std::vector<uint8_t> out(n);
    REQUIRE(mem->Read(GuestAddress{gpa}, absl::MakeSpan(out)).ok());
    return out;
  }
  // A NUL-terminated string in guest memory (command lines, module names).
  std::string ReadString(uint64_t gpa) const {
    std::string s;
    for (char c; (c = static_cast<char>(Read<uint8_t>(gpa))) != 0; ++gpa) s.push_back(c);
    return s;
  }

  uint64_t ram_bytes;
  std::unique_ptr<GuestMemory> mem;
  std::string kernel_path;
};

}  // namespace mote::x86::testing

#endif  // MOTE_TESTS_SUPPORT_LOADER_TEST_UTIL_H_
