#include "arch/x86/kernel_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_format.h"
#include "arch/x86/bzimage_loader.h"
#include "arch/x86/elf_loader.h"
#include "arch/x86/layout.h"
#include "arch/x86/multiboot.h"
#include "vmm/base/status_macros.h"

namespace mote::x86 {
namespace {

// pread moves at most ~2 GiB per call on Linux; stay well below.
constexpr uint64_t kMaxReadChunk = 1ull << 30;

// Reads exactly dst.size() bytes at `offset`, retrying short reads.
absl::Status PreadAll(int fd, uint64_t offset, absl::Span<uint8_t> dst, bool* eof) {
  *eof = false;
  uint64_t done = 0;
  while (done < dst.size()) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(dst.size() - done, kMaxReadChunk));
    const ssize_t n = pread(fd, dst.data() + done, want, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "pread");
    }
    if (n == 0) {
      *eof = true;  // the file shrank after we sized it
      return absl::OkStatus();
    }
    done += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ImageFile> ImageFile::Open(const std::string& path, const std::string& what) {
  // O_NONBLOCK so that a FIFO given by mistake is refused below instead of
  // blocking the open; it changes nothing for regular files.
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.ok()) return ErrnoToStatus(errno, what + " " + path);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, what + " " + path + ": fstat");
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(what + " " + path + ": not a regular file");
  }
  return ImageFile(std::move(fd), path, what, static_cast<uint64_t>(st.st_size));
}

absl::Status ImageFile::Error(absl::StatusCode code, const std::string& problem) const {
  return absl::Status(code, what_ + " " + path_ + ": " + problem);
}

absl::Status ImageFile::ReadAt(uint64_t offset, absl::Span<uint8_t> out) const {
  uint64_t end;
  if (!CheckedAdd(offset, out.size(), &end) || end > size_) {
    return Error(absl::StatusCode::kInvalidArgument,
                 absl::StrFormat("truncated: needs bytes [0x%x, 0x%x) but the file has 0x%x",
                                 offset, offset + out.size(), size_));
  }
  bool eof;
  absl::Status s = PreadAll(fd_.get(), offset, out, &eof);
  if (!s.ok()) return Error(s.code(), std::string(s.message()));
  if (eof) return Error(absl::StatusCode::kDataLoss, "file shrank while being read");
  return absl::OkStatus();
}

absl::Status ImageFile::CopyToGuest(const GuestMemory& mem, uint64_t offset, uint64_t len,
                                    uint64_t gpa) const {
  if (len == 0) return absl::OkStatus();
  uint64_t end;
  if (!CheckedAdd(offset, len, &end) || end > size_) {
    return Error(absl::StatusCode::kInvalidArgument,
                 absl::StrFormat("truncated: needs bytes [0x%x, 0x%x) but the file has 0x%x",
                                 offset, offset + len, size_));
  }
  absl::StatusOr<absl::Span<uint8_t>> slice = mem.GetSlice(GuestAddress{gpa}, len);
  if (!slice.ok()) return Error(slice.status().code(), std::string(slice.status().message()));
  return ReadAt(offset, *slice);
}

absl::StatusOr<InitrdPlacement> LoadInitrd(const GuestMemory& mem, const KernelLoadRequest& req,
                                           uint64_t limit, uint64_t floor) {
  if (req.initrd_path.empty()) return InitrdPlacement{};
  MOTE_ASSIGN_OR_RETURN(ImageFile initrd, ImageFile::Open(req.initrd_path, "initrd"));
  const uint64_t size = initrd.size();
  if (size == 0) return initrd.Error(absl::StatusCode::kInvalidArgument, "file is empty");
  const uint64_t top = limit & ~(kPageSize - 1);
  uint64_t aligned_floor;
  if (!CheckedAdd(floor, kPageSize - 1, &aligned_floor)) aligned_floor = ~0ull;
  aligned_floor &= ~(kPageSize - 1);
  if (size > top || ((top - size) & ~(kPageSize - 1)) < aligned_floor) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "initrd %s (%d bytes) does not fit below 0x%x in %d bytes of RAM (the kernel uses "
        "memory up to 0x%x)",
        req.initrd_path, size, limit, req.ram_bytes, floor));
  }
  const uint64_t addr = (top - size) & ~(kPageSize - 1);
  MOTE_RETURN_IF_ERROR(initrd.CopyToGuest(mem, 0, size, addr));
  return InitrdPlacement{addr, size};
}

absl::Status WriteCmdline(const GuestMemory& mem, uint64_t addr, const std::string& cmdline) {
  MOTE_ASSIGN_OR_RETURN(absl::Span<uint8_t> dst,
                        mem.GetSlice(GuestAddress{addr}, cmdline.size() + 1));
  std::memcpy(dst.data(), cmdline.data(), cmdline.size());
  dst[cmdline.size()] = 0;
  return absl::OkStatus();
}

absl::StatusOr<BootSetup> LoadKernel(const GuestMemory& mem, const KernelLoadRequest& req) {
  if (req.kernel_path.empty()) return absl::InvalidArgumentError("no kernel path given");
  if (req.ram_bytes < kLowMemEnd) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "guest RAM (%d bytes) is too small to boot a kernel (at least 1 MiB)", req.ram_bytes));
  }
  MOTE_ASSIGN_OR_RETURN(ImageFile kernel, ImageFile::Open(req.kernel_path, "kernel"));
  if (kernel.size() == 0) return kernel.Error(absl::StatusCode::kInvalidArgument, "file is empty");
  if (req.cmdline.size() > kCmdlineMax - 1) {
    return kernel.Error(absl::StatusCode::kInvalidArgument,
                        absl::StrFormat("command line is %d bytes; mote allows at most %d",
                                        req.cmdline.size(), kCmdlineMax - 1));
  }
  if (req.cmdline.find('\0') != std::string::npos) {
    return kernel.Error(absl::StatusCode::kInvalidArgument, "command line contains a NUL byte");
  }

  // Every format is recognised from the first 8 KiB (the Multiboot search window).
  std::vector<uint8_t> probe(std::min<uint64_t>(kernel.size(), kMultibootSearchBytes));
  MOTE_RETURN_IF_ERROR(kernel.ReadAt(0, absl::MakeSpan(probe)));

  if (HasBzImageMagic(probe)) return LoadBzImage(mem, kernel, req);
  const std::optional<MultibootHeader> multiboot = FindMultibootHeader(probe);
  if (HasElfMagic(probe)) {
    MOTE_ASSIGN_OR_RETURN(ElfImage image, ParseElf(kernel));
    MOTE_ASSIGN_OR_RETURN(std::optional<uint32_t> pvh_entry, FindPvhEntry(kernel, image));
    if (pvh_entry.has_value()) return LoadPvhElf(mem, kernel, image, *pvh_entry, req);
    if (multiboot.has_value()) return LoadMultibootElf(mem, kernel, image, *multiboot, req);
    if (image.is_64bit) return LoadPlainElf64(mem, kernel, image, req);
    return kernel.Error(absl::StatusCode::kInvalidArgument,
                        "32-bit ELF without a PVH note or Multiboot header: mote has no way "
                        "to enter it");
  }
  if (multiboot.has_value()) {
    MOTE_RETURN_IF_ERROR(CheckMultibootHeader(kernel, *multiboot));
    return kernel.Error(absl::StatusCode::kInvalidArgument,
                        "has a Multiboot header but is not an ELF file (and does not use the "
                        "a.out kludge)");
  }
  return kernel.Error(absl::StatusCode::kInvalidArgument,
                      "not a known kernel format (expected bzImage, ELF with PVH note, "
                      "Multiboot or x86-64 ELF)");
}

}  // namespace mote::x86
