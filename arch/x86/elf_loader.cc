#include "arch/x86/elf_loader.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_format.h"
#include "arch/x86/boot_params.h"
#include "arch/x86/layout.h"
#include "arch/x86/memory_map.h"
#include "vmm/base/status_macros.h"

namespace mote::x86 {
namespace {

// Kernel note segments are a few hundred bytes; this only bounds the buffer.
constexpr uint64_t kMaxNoteSegmentBytes = 1 << 20;

absl::Status Invalid(const ImageFile& file, const std::string& problem) {
  return file.Error(absl::StatusCode::kInvalidArgument, problem);
}

template <typename Ehdr, typename Phdr>
absl::Status ParseHeaders(const ImageFile& file, ElfImage* image) {
  Ehdr ehdr;
  MOTE_RETURN_IF_ERROR(
      file.ReadAt(0, absl::MakeSpan(reinterpret_cast<uint8_t*>(&ehdr), sizeof(ehdr))));
  const char* cls = image->is_64bit ? "ELF64" : "ELF32";
  if (ehdr.e_type != ET_EXEC) {
    return Invalid(file,
                   absl::StrFormat("%s type %d is not an executable (ET_EXEC)", cls, ehdr.e_type));
  }
  const uint16_t want_machine = image->is_64bit ? EM_X86_64 : EM_386;
  if (ehdr.e_machine != want_machine) {
    return Invalid(
        file, absl::StrFormat("%s machine %d is not x86 (expected %s = %d)", cls, ehdr.e_machine,
                              image->is_64bit ? "EM_X86_64" : "EM_386", want_machine));
  }
  image->machine = ehdr.e_machine;
  image->entry = ehdr.e_entry;
  if (ehdr.e_phnum == 0) return Invalid(file, "ELF has no program headers");
  if (ehdr.e_phnum == PN_XNUM) return Invalid(file, "ELF has too many program headers");
  if (ehdr.e_phentsize != sizeof(Phdr)) {
    return Invalid(file, absl::StrFormat("ELF program header size %d (expected %d)",
                                         ehdr.e_phentsize, sizeof(Phdr)));
  }
  // phnum < 2^16 and sizeof(Phdr) <= 56: the product cannot overflow, the sum can.
  const uint64_t table_bytes = uint64_t{ehdr.e_phnum} * sizeof(Phdr);
  std::vector<Phdr> phdrs(ehdr.e_phnum);
  MOTE_RETURN_IF_ERROR(file.ReadAt(
      ehdr.e_phoff, absl::MakeSpan(reinterpret_cast<uint8_t*>(phdrs.data()), table_bytes)));

  for (size_t i = 0; i < phdrs.size(); ++i) {
    const Phdr& ph = phdrs[i];
    if (ph.p_type != PT_LOAD && ph.p_type != PT_NOTE) continue;
    ElfSegment seg{ph.p_offset, ph.p_filesz, ph.p_memsz, ph.p_paddr, ph.p_align};
    const char* type = ph.p_type == PT_LOAD ? "PT_LOAD" : "PT_NOTE";
    uint64_t file_end;
    if (!CheckedAdd(seg.file_offset, seg.file_size, &file_end) || file_end > file.size()) {
      return Invalid(
          file,
          absl::StrFormat("truncated: segment %d (%s) file range [0x%x, 0x%x) is beyond "
                          "the end of the file (0x%x bytes)",
                          i, type, seg.file_offset, seg.file_offset + seg.file_size, file.size()));
    }
    if (ph.p_type == PT_NOTE) {
      image->notes.push_back(seg);
      continue;
    }
    if (seg.file_size > seg.mem_size) {
      return Invalid(file, absl::StrFormat("segment %d: p_filesz 0x%x is larger than p_memsz 0x%x",
                                           i, seg.file_size, seg.mem_size));
    }
    if (seg.mem_size > 0) image->loads.push_back(seg);
  }
  if (image->loads.empty()) return Invalid(file, "ELF has no loadable (PT_LOAD) segments");
  return absl::OkStatus();
}

uint64_t AlignUp(uint64_t value, uint64_t align) { return (value + align - 1) & ~(align - 1); }

// Scans one note segment for XEN_ELFNOTE_PHYS32_ENTRY.
absl::StatusOr<std::optional<uint32_t>> ScanNotes(const ImageFile& file, const ElfSegment& seg) {
  if (seg.file_size > kMaxNoteSegmentBytes) {
    return Invalid(
        file, absl::StrFormat("PT_NOTE segment of %d bytes is implausibly large", seg.file_size));
  }
  std::vector<uint8_t> notes(seg.file_size);
  MOTE_RETURN_IF_ERROR(file.ReadAt(seg.file_offset, absl::MakeSpan(notes)));
  // Notes are 4-byte aligned in practice even in ELF64, except segments that
  // say 8 (GNU property notes).
  const uint64_t align = seg.align == 8 ? 8 : 4;
  uint64_t pos = 0;
  while (pos + 12 <= notes.size()) {
    uint32_t word[3];  // namesz, descsz, type
    std::memcpy(word, notes.data() + pos, sizeof(word));
    const uint64_t name_at = pos + 12;
    const uint64_t desc_at = name_at + AlignUp(word[0], align);
    const uint64_t next = desc_at + AlignUp(word[1], align);
    if (desc_at + word[1] > notes.size()) {
      return Invalid(file,
                     absl::StrFormat("malformed ELF note at offset 0x%x", seg.file_offset + pos));
    }
    if (word[0] == 4 && std::memcmp(notes.data() + name_at, "Xen", 4) == 0 &&
        word[2] == kXenElfNotePhys32Entry) {
      if (word[1] != 4 && word[1] != 8) {
        return Invalid(file,
                       absl::StrFormat("PVH entry note has %d bytes (expected 4 or 8)", word[1]));
      }
      uint64_t entry = 0;  // little-endian, either width
      std::memcpy(&entry, notes.data() + desc_at, word[1]);
      if (entry > UINT32_MAX) {
        return Invalid(file, absl::StrFormat("PVH entry 0x%x is above 4 GiB", entry));
      }
      return std::optional<uint32_t>(static_cast<uint32_t>(entry));
    }
    pos = next;
  }
  return std::optional<uint32_t>();
}

// The boot information PVH and plain ELF64 kernels get: initrd below the
// hole and above the kernel, hvm_start_info, command line.
absl::StatusOr<BootInfo> LoadInitrdAndStartInfo(const GuestMemory& mem,
                                                const KernelLoadRequest& req,
                                                const LoadedSegments& loaded) {
  const uint64_t limit = std::min(LowRamEnd(req.ram_bytes), kMmioHoleStart);
  MOTE_ASSIGN_OR_RETURN(InitrdPlacement initrd, LoadInitrd(mem, req, limit, loaded.low_end));
  BootInfo info{req.ram_bytes,
                initrd.addr,
                initrd.size,
                req.acpi_rsdp_addr,
                loaded.placement.cmdline,
                loaded.placement.boot_info};
  MOTE_RETURN_IF_ERROR(WritePvhStartInfo(mem, info));
  MOTE_RETURN_IF_ERROR(WriteCmdline(mem, info.cmdline_addr, req.cmdline));
  return info;
}

}  // namespace

bool HasElfMagic(absl::Span<const uint8_t> probe) {
  return probe.size() >= SELFMAG && std::memcmp(probe.data(), ELFMAG, SELFMAG) == 0;
}

absl::StatusOr<ElfImage> ParseElf(const ImageFile& file) {
  unsigned char ident[EI_NIDENT];
  MOTE_RETURN_IF_ERROR(file.ReadAt(0, absl::MakeSpan(ident, EI_NIDENT)));
  if (std::memcmp(ident, ELFMAG, SELFMAG) != 0) return Invalid(file, "not an ELF file");
  if (ident[EI_DATA] != ELFDATA2LSB) return Invalid(file, "ELF is not little-endian");
  ElfImage image;
  switch (ident[EI_CLASS]) {
    case ELFCLASS64:
      image.is_64bit = true;
      MOTE_RETURN_IF_ERROR((ParseHeaders<Elf64_Ehdr, Elf64_Phdr>(file, &image)));
      break;
    case ELFCLASS32:
      MOTE_RETURN_IF_ERROR((ParseHeaders<Elf32_Ehdr, Elf32_Phdr>(file, &image)));
      break;
    default:
      return Invalid(file, absl::StrFormat("unknown ELF class %d", ident[EI_CLASS]));
  }
  return image;
}

absl::StatusOr<std::optional<uint32_t>> FindPvhEntry(const ImageFile& file, const ElfImage& image) {
  for (const ElfSegment& seg : image.notes) {
    MOTE_ASSIGN_OR_RETURN(std::optional<uint32_t> entry, ScanNotes(file, seg));
    if (entry.has_value()) return entry;
  }
  return std::optional<uint32_t>();
}

absl::StatusOr<LoadedSegments> LoadElfSegments(const GuestMemory& mem, const ImageFile& file,
                                               const ElfImage& image, uint64_t entry,
                                               const BootInfoNeeds& needs) {
  LoadedSegments loaded;
  const std::vector<LowRange> fixed = FixedLowStructures(needs.mode);
  std::vector<LowRange> segments;
  bool entry_found = false;
  for (size_t i = 0; i < image.loads.size(); ++i) {
    const ElfSegment& seg = image.loads[i];
    uint64_t end;
    if (!CheckedAdd(seg.paddr, seg.mem_size, &end)) {
      return Invalid(file,
                     absl::StrFormat("segment at 0x%x + 0x%x overflows", seg.paddr, seg.mem_size));
    }
    if (std::optional<LowRange> hit = FindLowCollision(fixed, seg.paddr, end)) {
      return Invalid(file, absl::StrFormat("segment [0x%x, 0x%x) overlaps %s at [0x%x, 0x%x)",
                                           seg.paddr, end, hit->name, hit->start, hit->end));
    }
    if (!mem.GetSlice(GuestAddress{seg.paddr}, seg.mem_size).ok()) {
      return Invalid(file, absl::StrFormat("segment [0x%x, 0x%x) is outside guest RAM (%d bytes)",
                                           seg.paddr, end, mem.TotalSize()));
    }
    for (size_t j = 0; j < i; ++j) {
      const ElfSegment& other = image.loads[j];
      if (seg.paddr < other.paddr + other.mem_size && other.paddr < end) {
        return Invalid(
            file, absl::StrFormat("segments [0x%x, 0x%x) and [0x%x, 0x%x) overlap", other.paddr,
                                  other.paddr + other.mem_size, seg.paddr, end));
      }
    }
    if (entry >= seg.paddr && entry < end) entry_found = true;
    segments.push_back({"a kernel segment", seg.paddr, end});
    loaded.end = std::max(loaded.end, end);
    if (seg.paddr < kMmioHoleStart) loaded.low_end = std::max(loaded.low_end, end);
  }
  if (!entry_found) {
    return Invalid(file,
                   absl::StrFormat("entry point 0x%x is outside every loaded segment (by physical "
                                   "address)",
                                   entry));
  }
  absl::StatusOr<BootInfoPlacement> placement = PlaceBootInfo(needs, segments);
  if (!placement.ok()) return Invalid(file, std::string(placement.status().message()));
  loaded.placement = *placement;
  for (const ElfSegment& seg : image.loads) {
    MOTE_RETURN_IF_ERROR(file.CopyToGuest(mem, seg.file_offset, seg.file_size, seg.paddr));
    MOTE_ASSIGN_OR_RETURN(
        absl::Span<uint8_t> bss,
        mem.GetSlice(GuestAddress{seg.paddr + seg.file_size}, seg.mem_size - seg.file_size));
    if (!bss.empty()) std::memset(bss.data(), 0, bss.size());
  }
  return loaded;
}

absl::StatusOr<BootSetup> LoadPvhElf(const GuestMemory& mem, const ImageFile& file,
                                     const ElfImage& image, uint32_t entry,
                                     const KernelLoadRequest& req) {
  MOTE_ASSIGN_OR_RETURN(
      LoadedSegments loaded,
      LoadElfSegments(mem, file, image, entry, {EntryMode::kPvh32, req.cmdline.size() + 1}));
  MOTE_RETURN_IF_ERROR(LoadInitrdAndStartInfo(mem, req, loaded).status());
  BootSetup setup;
  setup.mode = EntryMode::kPvh32;
  setup.entry = entry;
  setup.rbx = loaded.placement.boot_info;
  setup.kernel_end = loaded.end;
  setup.format_name = image.is_64bit ? "ELF64 PVH" : "ELF32 PVH";
  return setup;
}

absl::StatusOr<BootSetup> LoadPlainElf64(const GuestMemory& mem, const ImageFile& file,
                                         const ElfImage& image, const KernelLoadRequest& req) {
  if (!image.is_64bit || image.machine != EM_X86_64) {
    return Invalid(file, "not an x86-64 ELF");
  }
  MOTE_ASSIGN_OR_RETURN(
      LoadedSegments loaded,
      LoadElfSegments(mem, file, image, image.entry, {EntryMode::kElf64, req.cmdline.size() + 1}));
  MOTE_ASSIGN_OR_RETURN(BootInfo info, LoadInitrdAndStartInfo(mem, req, loaded));
  BootParams params = {};
  params.hdr = SyntheticSetupHeader();
  FillZeroPage(info, &params);
  MOTE_RETURN_IF_ERROR(mem.WriteObj(GuestAddress{kZeroPageAddr}, params));
  BootSetup setup;
  setup.mode = EntryMode::kElf64;
  setup.entry = image.entry;
  setup.rdi = loaded.placement.boot_info;
  setup.rsi = kZeroPageAddr;
  setup.kernel_end = loaded.end;
  setup.format_name = "ELF64";
  return setup;
}

}  // namespace mote::x86
