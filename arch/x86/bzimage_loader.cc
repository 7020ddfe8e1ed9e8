#include "arch/x86/bzimage_loader.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "arch/x86/boot_params.h"
#include "arch/x86/layout.h"
#include "arch/x86/memory_map.h"
#include "vmm/base/status_macros.h"

namespace mote::x86 {
namespace {

constexpr uint64_t kSectorSize = 512;
constexpr uint8_t kDefaultSetupSects = 4;  // boot.rst: 0 means 4
constexpr uint32_t kHeaderMagicOffset = 0x202;
constexpr uint32_t kJumpOffset = 0x200;
constexpr uint8_t kShortJumpOpcode = 0xeb;
constexpr uint32_t kDefaultInitrdAddrMax = 0x37ffffff;  // protocols < 2.03
// Through cmdline_size, the newest field a 2.06 header must have.
constexpr uint32_t kMinHeaderEnd =
    offsetof(BootParams, hdr) + offsetof(SetupHeader, cmdline_size) + 4;

std::string ProtocolName(uint16_t version) {
  return absl::StrFormat("%d.%02d", version >> 8, version & 0xff);
}

// Where the kernel will run from after it relocates itself, per boot.rst's
// init_size description; [start, start + init_size) must be free RAM.
absl::StatusOr<uint64_t> RuntimeStart(const ImageFile& kernel, const SetupHeader& hdr) {
  // A plain copy: the packed field may be misaligned, and std::max and the
  // conditional below would bind references to it.
  const uint64_t pref_address = hdr.pref_address;
  if (hdr.relocatable_kernel == 0) {
    return pref_address != 0 ? pref_address : kKernelLoadAddr;
  }
  const uint64_t align = hdr.kernel_alignment == 0 ? 1 : hdr.kernel_alignment;
  if ((align & (align - 1)) != 0) {
    return kernel.Error(absl::StatusCode::kInvalidArgument,
                        absl::StrFormat("kernel_alignment 0x%x is not a power of two", align));
  }
  const uint64_t load = std::max<uint64_t>(kKernelLoadAddr, pref_address);
  uint64_t start;
  if (!CheckedAdd(load, align - 1, &start)) {
    return kernel.Error(absl::StatusCode::kInvalidArgument, "pref_address overflows");
  }
  return start & ~(align - 1);
}

}  // namespace

bool HasBzImageMagic(absl::Span<const uint8_t> probe) {
  if (probe.size() < kHeaderMagicOffset + 4) return false;
  uint32_t magic;
  std::memcpy(&magic, probe.data() + kHeaderMagicOffset, sizeof(magic));
  return magic == kHdrSMagic;
}

absl::StatusOr<BootSetup> LoadBzImage(const GuestMemory& mem, const ImageFile& kernel,
                                      const KernelLoadRequest& req) {
  const auto invalid = [&kernel](const std::string& problem) {
    return kernel.Error(absl::StatusCode::kInvalidArgument, problem);
  };
  // The header's length is given by the short jump at 0x200 over it.
  uint8_t jump[2];
  MOTE_RETURN_IF_ERROR(kernel.ReadAt(kJumpOffset, absl::MakeSpan(jump)));
  if (jump[0] != kShortJumpOpcode) {
    return invalid(
        absl::StrFormat("bzImage setup header has no short jump at 0x200 (0x%02x)", jump[0]));
  }
  const uint32_t header_end = std::min<uint32_t>(kHeaderMagicOffset + jump[1], kSetupHeaderLimit);
  if (header_end < kMinHeaderEnd) {
    return invalid(
        absl::StrFormat("bzImage setup header ends at 0x%x, before cmdline_size", header_end));
  }
  BootParams params = {};
  MOTE_RETURN_IF_ERROR(kernel.ReadAt(
      kSetupHeaderOffset, absl::MakeSpan(reinterpret_cast<uint8_t*>(&params) + kSetupHeaderOffset,
                                         header_end - kSetupHeaderOffset)));
  const SetupHeader hdr = params.hdr;
  // Plain copies of the packed fields that are passed by reference below
  // (StrFormat): a packed field may be misaligned for its type.
  const uint32_t cmdline_size = hdr.cmdline_size;
  const uint32_t init_size = hdr.init_size;
  const std::string protocol = ProtocolName(hdr.version);

  if (hdr.version < kMinBootProtocol) {
    return invalid("bzImage boot protocol " + protocol + " is too old (mote needs 2.06 or newer)");
  }
  if ((hdr.loadflags & kLoadFlagLoadedHigh) == 0) {
    return invalid("zImage (kernel loaded low at 0x10000) is not supported; use a bzImage");
  }
  if (hdr.version < kBootProtocol64Bit || (hdr.xloadflags & kXlfKernel64) == 0) {
    return invalid("bzImage (boot protocol " + protocol +
                   ") has no 64-bit entry point (needs protocol 2.12+ with XLF_KERNEL_64)");
  }
  if (req.cmdline.size() > cmdline_size) {
    return invalid(absl::StrFormat("command line is %d bytes; this kernel accepts at most %d",
                                   req.cmdline.size(), cmdline_size));
  }

  const uint64_t setup_sects = hdr.setup_sects == 0 ? kDefaultSetupSects : hdr.setup_sects;
  const uint64_t kernel_offset = (setup_sects + 1) * kSectorSize;
  if (kernel_offset >= kernel.size()) {
    return invalid(absl::StrFormat(
        "truncated: no protected-mode kernel after %d setup sectors (file is %d bytes)",
        setup_sects, kernel.size()));
  }
  const uint64_t kernel_bytes = kernel.size() - kernel_offset;
  const uint64_t low_end = LowRamEnd(req.ram_bytes);

  // Loading at 1 MiB, as kvmtool and Firecracker do: the 64-bit entry of a
  // relocatable kernel moves the decompressor to its runtime start by itself,
  // so pref_address and kernel_alignment only decide where that window is.
  uint64_t image_end;
  if (!CheckedAdd(kKernelLoadAddr, kernel_bytes, &image_end) || image_end > low_end) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("kernel %s (%d bytes at 0x%x) does not fit in %d bytes of RAM",
                        req.kernel_path, kernel_bytes, kKernelLoadAddr, req.ram_bytes));
  }
  MOTE_ASSIGN_OR_RETURN(const uint64_t runtime_start, RuntimeStart(kernel, hdr));
  uint64_t window_end;
  if (!CheckedAdd(runtime_start, init_size, &window_end) || window_end > low_end) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "kernel %s is too large for %d bytes of RAM: it runs at 0x%x and needs init_size "
        "0x%x bytes there (up to 0x%x, but RAM below the MMIO hole ends at 0x%x)",
        req.kernel_path, req.ram_bytes, runtime_start, init_size, window_end, low_end));
  }
  const uint64_t kernel_end = std::max(image_end, window_end);

  MOTE_RETURN_IF_ERROR(kernel.CopyToGuest(mem, kernel_offset, kernel_bytes, kKernelLoadAddr));

  const uint64_t initrd_addr_max =
      hdr.initrd_addr_max != 0 ? hdr.initrd_addr_max : kDefaultInitrdAddrMax;
  const uint64_t initrd_limit = std::min({initrd_addr_max + 1, low_end, kMmioHoleStart});
  MOTE_ASSIGN_OR_RETURN(InitrdPlacement initrd, LoadInitrd(mem, req, initrd_limit, kernel_end));

  FillZeroPage(BootInfo{req.ram_bytes, initrd.addr, initrd.size, req.acpi_rsdp_addr}, &params);
  MOTE_RETURN_IF_ERROR(mem.WriteObj(GuestAddress{kZeroPageAddr}, params));
  MOTE_RETURN_IF_ERROR(WriteCmdline(mem, kCmdlineAddr, req.cmdline));

  BootSetup setup;
  setup.mode = EntryMode::kLinux64;
  setup.entry = kKernelLoadAddr + kEntry64Offset;
  setup.rsi = kZeroPageAddr;
  setup.kernel_end = kernel_end;
  setup.format_name = "bzImage (boot protocol " + protocol + ")";
  return setup;
}

}  // namespace mote::x86
