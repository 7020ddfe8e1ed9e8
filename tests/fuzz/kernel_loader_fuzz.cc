// Fuzz target: the kernel loaders (arch/x86/), one format per binary, chosen
// at build time by MOTE_FUZZ_LOADER:
//   0 bzImage (LoadBzImage), 1 ELF64 with a PVH note (ParseElf, FindPvhEntry,
//   LoadPvhElf), 2 plain ELF64 (LoadPlainElf64), 3 Multiboot v1
//   (FindMultibootHeader, CheckMultibootHeader, LoadMultibootElf);
// each binary also runs LoadKernel's format detection on the same bytes.
// The input is the kernel file: truncated headers, segments past the end of
// the file or of RAM, overlapping segments, entries outside every segment,
// setup sizes and offsets that overflow. The loaders read it with pread from
// a memfd, as they read a real file.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "arch/x86/bzimage_loader.h"
#include "arch/x86/elf_loader.h"
#include "arch/x86/kernel_loader.h"
#include "arch/x86/memory_map.h"
#include "arch/x86/multiboot.h"
#include "tests/fuzz/fuzz_support.h"

#ifndef MOTE_FUZZ_LOADER
#error "MOTE_FUZZ_LOADER selects the loader (0..3)"
#endif

using namespace mote;

namespace {

constexpr uint64_t kRamBytes = 64 << 20;

// A file the loaders can open by path: /proc/self/fd/N of a memfd.
struct MemFile {
  explicit MemFile(const char* name) : fd(memfd_create(name, MFD_CLOEXEC)) {
    if (fd < 0) abort();
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  void Set(const uint8_t* data, size_t size) {
    if (ftruncate(fd, 0) != 0) abort();
    if (size > 0 && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) abort();
  }
  int fd;
  std::string path;
};

struct Fixture {
  Fixture() : kernel("kernel"), initrd("initrd") {
    auto m = GuestMemory::Create(x86::RamRegions(kRamBytes));
    if (!m.ok()) abort();
    mem = std::move(*m);
    static const uint8_t kInitrd[] = "070701 an initrd of a few bytes";
    initrd.Set(kInitrd, sizeof(kInitrd));
    req.kernel_path = kernel.path;
    req.initrd_path = initrd.path;
    req.cmdline = "console=ttyS0 test=hello";
    req.ram_bytes = kRamBytes;
  }
  MemFile kernel;
  MemFile initrd;
  std::unique_ptr<GuestMemory> mem;
  x86::KernelLoadRequest req;
};

void LoadAs(const Fixture& f, const x86::ImageFile& file, const uint8_t* data, size_t size) {
  absl::Span<const uint8_t> probe(data, size);
  switch (MOTE_FUZZ_LOADER) {
    case 0:
      (void)x86::LoadBzImage(*f.mem, file, f.req);
      break;
    case 1:
    case 2: {
      auto image = x86::ParseElf(file);
      if (!image.ok()) return;
      if (MOTE_FUZZ_LOADER == 2) {
        (void)x86::LoadPlainElf64(*f.mem, file, *image, f.req);
        return;
      }
      auto entry = x86::FindPvhEntry(file, *image);
      if (entry.ok() && entry->has_value())
        (void)x86::LoadPvhElf(*f.mem, file, *image, **entry, f.req);
      break;
    }
    default: {
      std::optional<x86::MultibootHeader> header = x86::FindMultibootHeader(probe);
      if (!header.has_value() || !x86::CheckMultibootHeader(file, *header).ok()) return;
      auto image = x86::ParseElf(file);
      if (image.ok()) (void)x86::LoadMultibootElf(*f.mem, file, *image, *header, f.req);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  static Fixture* f = new Fixture();  // one RAM for the process: loaders only write it
  f->kernel.Set(data, size);
  auto file = x86::ImageFile::Open(f->kernel.path, "kernel");
  if (!file.ok()) return 0;
  LoadAs(*f, *file, data, size);
  (void)x86::LoadKernel(*f->mem, f->req);
  return 0;
}
