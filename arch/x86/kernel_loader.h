// Loads a guest kernel (and initrd and command line) into guest memory and
// says how to enter it. LoadKernel detects the format: a Linux bzImage, an ELF
// with a Xen PVH note, a Multiboot v1 ELF, or a plain x86-64 ELF. Also holds
// the building blocks the format loaders share (file reads straight into guest
// memory, initrd placement, the command line).
// Called by the Vm before its vCPUs run; thread-compatible (one load at a time
// per GuestMemory).
#ifndef MOTE_ARCH_X86_KERNEL_LOADER_H_
#define MOTE_ARCH_X86_KERNEL_LOADER_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "vmm/base/fd.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86 {

enum class EntryMode { kLinux64, kPvh32, kMultiboot32, kElf64 };

// True for the modes entered in long mode (identity page tables, a stack).
inline bool Is64Bit(EntryMode mode) {
  return mode == EntryMode::kLinux64 || mode == EntryMode::kElf64;
}

struct BootSetup {
  EntryMode mode = EntryMode::kLinux64;
  uint64_t entry = 0;       // RIP (EIP in the 32-bit modes)
  uint64_t rsi = 0;         // kLinux64 and kElf64: zero page address (kZeroPageAddr)
  uint64_t rbx = 0;         // kPvh32: hvm_start_info; kMultiboot32: multiboot info
  uint64_t rax = 0;         // kMultiboot32: 0x2BADB002
  uint64_t rdi = 0;         // kElf64: hvm_start_info
  uint64_t kernel_end = 0;  // exclusive end of the highest guest address the image uses
  std::string format_name;  // "bzImage (boot protocol 2.15)", "ELF64 PVH", ...
};

struct KernelLoadRequest {
  std::string kernel_path;
  std::string initrd_path;      // empty: none
  std::string cmdline;          // without NUL
  uint64_t ram_bytes = 0;       // GuestMemory was created with RamRegions(ram_bytes)
  uint64_t acpi_rsdp_addr = 0;  // 0: none
};

// Detects the kernel's format and loads it. Writes only the image, the boot
// structures (zero page / start_info / multiboot info), the command line at
// kCmdlineAddr and the initrd; every other byte of guest memory is left alone.
absl::StatusOr<BootSetup> LoadKernel(const GuestMemory& mem, const KernelLoadRequest& req);

// ---- Shared by the format loaders ------------------------------------------------

inline constexpr uint64_t kPageSize = 4096;

// A kernel or initrd opened for loading. Reads go with pread straight into
// guest memory, so big files are never staged in a host buffer. Every error
// names the file: "<what> <path>: <problem>".
class ImageFile {
 public:
  // what: "kernel" or "initrd", for messages. Fails on a missing, unreadable
  // or non-regular file.
  static absl::StatusOr<ImageFile> Open(const std::string& path, const std::string& what);

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }

  // An error whose message names this file.
  absl::Status Error(absl::StatusCode code, const std::string& problem) const;

  // Exactly out.size() bytes at `offset`; InvalidArgument if the file is shorter.
  absl::Status ReadAt(uint64_t offset, absl::Span<uint8_t> out) const;
  // File bytes [offset, offset + len) to guest [gpa, gpa + len).
  absl::Status CopyToGuest(const GuestMemory& mem, uint64_t offset, uint64_t len,
                           uint64_t gpa) const;

 private:
  ImageFile(FileDescriptor fd, std::string path, std::string what, uint64_t size)
      : fd_(std::move(fd)), path_(std::move(path)), what_(std::move(what)), size_(size) {}

  FileDescriptor fd_;
  std::string path_;
  std::string what_;
  uint64_t size_;
};

// *sum = a + b; false on overflow. Loader arithmetic on numbers that come from
// a file goes through this.
inline bool CheckedAdd(uint64_t a, uint64_t b, uint64_t* sum) {
  return !__builtin_add_overflow(a, b, sum);
}

struct InitrdPlacement {
  uint64_t addr = 0;
  uint64_t size = 0;  // 0: no initrd
};

// Loads req.initrd_path (if set) at the highest page-aligned address whose
// end is <= `limit` and whose start is >= `floor` (the kernel's end).
absl::StatusOr<InitrdPlacement> LoadInitrd(const GuestMemory& mem, const KernelLoadRequest& req,
                                           uint64_t limit, uint64_t floor);

// Copies the command line and its NUL to `addr` (kCmdlineAddr unless a low
// kernel is there). The caller has checked its length against the format's limit.
absl::Status WriteCmdline(const GuestMemory& mem, uint64_t addr, const std::string& cmdline);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_KERNEL_LOADER_H_
