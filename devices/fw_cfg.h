// FwCfg: QEMU's firmware-configuration device (docs/specs/fw_cfg.rst in
// QEMU) on the x86 I/O ports 0x510..0x51b, as one bus range of kPortCount
// ports: offset 0 the 16-bit selector (write), offset 1 the data byte
// (read), offsets 4..11 the big-endian 64-bit DMA address register. It offers
// the signature, the feature bitmap, the CPU counts, the RAM size, the kernel
// command line and a directory of named, read-only files (sorted by name, at
// keys from 0x20 up, as QEMU lays them out); there are no writable or
// arch-specific (0x8000) items. Guests read it bytewise through the data port
// or with the DMA interface, whose every guest-memory access goes through
// GuestMemory and ends in the control word's error bit when it fails.
// Built by the Vm at startup (Create); the items never change afterwards.
// Thread-safety: Read/Write from any vCPU thread (internal mutex; a DMA runs
// under it, so it is atomic with respect to other accesses).
#ifndef MOTE_DEVICES_FW_CFG_H_
#define MOTE_DEVICES_FW_CFG_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vmm/base/bus.h"
#include "vmm/base/guest_memory.h"
#include "vmm/base/logging.h"
#include "vmm/base/mutex.h"

namespace mote {

// One named item of the file directory. Names should start with "opt/" (QEMU
// reserves the rest for itself and warns about them; "opt/RFQDN/..." avoids
// clashes); any valid name is accepted here: non-empty, at most
// FwCfg::kMaxNameLength bytes, no NUL byte, unique.
struct FwCfgFile {
  std::string name;
  std::vector<uint8_t> data;  // at most FwCfg::kMaxItemSize bytes
};

struct FwCfgContents {
  uint16_t cpus = 1;      // FW_CFG_NB_CPUS: the CPUs running at boot, >= 1
  uint16_t max_cpus = 0;  // FW_CFG_MAX_CPUS: >= cpus; 0 means the same as cpus
  uint64_t ram_bytes = 0;
  std::string cmdline;  // no NUL byte; the device adds the terminating one
  std::vector<FwCfgFile> files;
};

class FwCfg : public BusDevice {
 public:
  // How many ports the one range covers (x86::kFwCfgPort on).
  static constexpr uint64_t kPortCount = 12;  // 0x510..0x51b
  // Offsets within the range.
  static constexpr uint64_t kSelectorOffset = 0;  // 16-bit little-endian write
  static constexpr uint64_t kDataOffset = 1;      // read-only byte stream
  static constexpr uint64_t kDmaOffset = 4;       // 8 bytes, big-endian; 0x518 is its low half

  // Selector keys (QEMU's FW_CFG_*).
  static constexpr uint16_t kSignatureKey = 0x0000;    // "QEMU"
  static constexpr uint16_t kIdKey = 0x0001;           // feature bitmap, le32
  static constexpr uint16_t kRamSizeKey = 0x0003;      // le64
  static constexpr uint16_t kNbCpusKey = 0x0005;       // le16
  static constexpr uint16_t kMaxCpusKey = 0x000f;      // le16
  static constexpr uint16_t kCmdlineSizeKey = 0x0014;  // le32, strlen + 1
  static constexpr uint16_t kCmdlineDataKey = 0x0015;  // the command line and its NUL
  static constexpr uint16_t kFileDirKey = 0x0019;      // be32 count, then kDirEntrySize each
  static constexpr uint16_t kFileFirstKey = 0x0020;    // files, in name order
  // Selector bits: "write channel" (ignored: nothing is writable) and
  // "arch-specific" (part of the key; no such items here). The rest is the key.
  static constexpr uint16_t kWriteChannel = 0x4000;
  static constexpr uint16_t kArchLocal = 0x8000;
  static constexpr uint16_t kKeyMask = 0x3fff;

  // FW_CFG_ID bits.
  static constexpr uint32_t kFeatureTraditional = 0x01;
  static constexpr uint32_t kFeatureDma = 0x02;

  // The DMA access (FWCfgDmaAccess, all big-endian): be32 control, be32
  // length, be64 address. Control bits (FW_CFG_DMA_CTL_*); the upper 16 bits
  // of control are the key to select with kDmaSelect.
  static constexpr size_t kDmaAccessSize = 16;
  static constexpr uint32_t kDmaError = 0x01;
  static constexpr uint32_t kDmaRead = 0x02;
  static constexpr uint32_t kDmaSkip = 0x04;
  static constexpr uint32_t kDmaSelect = 0x08;
  static constexpr uint32_t kDmaWrite = 0x10;
  // What a read of the DMA address register returns ("QEMU CFG", big-endian).
  static constexpr uint64_t kDmaSignature = 0x51454d5520434647;
  // A DMA read past the end of an item (or of an unknown key) fills zeros,
  // as QEMU does, up to this many bytes per operation; longer ones set the
  // error bit instead, so one guest exit stays short.
  static constexpr uint64_t kMaxDmaZeroFill = 1 << 20;

  // The file directory entry: be32 size, be16 select, be16 reserved, then
  // the NUL-padded name in kNameField bytes.
  static constexpr size_t kDirEntrySize = 64;
  static constexpr size_t kNameField = 56;
  static constexpr size_t kMaxNameLength = kNameField - 1;  // the NUL must fit
  static constexpr size_t kMaxFiles = kKeyMask + 1 - kFileFirstKey;
  static constexpr uint64_t kMaxItemSize = 0xffffffff;  // the directory's size is be32

  // InvalidArgument for bad contents (CPU counts, a NUL in the command line,
  // a bad, duplicate or oversized file). `memory` (may be null: no DMA
  // interface, FW_CFG_ID says so) must outlive the device.
  static absl::StatusOr<std::shared_ptr<FwCfg>> Create(FwCfgContents contents,
                                                       const GuestMemory* memory);

  // Accesses are decoded by the offset they start at. Offset 0: a 2-byte
  // write selects (other widths are ignored; reads give all-ones). Offset 1:
  // an N-byte read returns the next N bytes of the item in stream order (0
  // past its end or for an unknown key); writes are ignored. Offsets 2, 3:
  // nothing. Offsets 4..11: reads give the bytes of kDmaSignature at those
  // register positions; a 4-byte write at 4 sets the high half, a 4-byte
  // write at 8 sets the low half and starts the DMA at the full address, and
  // an 8-byte write at 4 does both; the register is 0 after each operation.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  bool dma_enabled() const { return memory_ != nullptr; }

  // The selector, the read offset into its item and the DMA address
  // register (its high half, the only part kept between writes). The items
  // are not saved: they are rebuilt from the VM's configuration, and a
  // restore checks only that their number is the same and that the offset
  // lies within the selected item.
  uint32_t state_version() const override { return 1; }
  void SaveState(StateWriter& out) override;
  absl::Status RestoreState(StateReader& in) override;

 private:
  FwCfg(std::map<uint16_t, std::vector<uint8_t>> items, const GuestMemory* memory)
      : items_(std::move(items)), memory_(memory) {}

  void Select(uint16_t selector) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteDmaRegister(uint64_t reg_offset, absl::Span<const uint8_t> data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunDma(uint64_t access_address) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Each false on a failed guest-memory access or a refused request.
  bool DmaRead(uint64_t address, uint32_t length) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool DmaZeroFill(uint64_t address, uint64_t length) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t Remaining() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Keyed by selector without kWriteChannel. Immutable after Create.
  const std::map<uint16_t, std::vector<uint8_t>> items_;
  const GuestMemory* const memory_;
  RateLimiter log_limiter_;

  Mutex mu_;
  uint16_t selector_ ABSL_GUARDED_BY(mu_) = 0;
  const std::vector<uint8_t>* current_ ABSL_GUARDED_BY(mu_) = nullptr;  // null: unknown key
  uint64_t offset_ ABSL_GUARDED_BY(mu_) = 0;                            // <= current_->size()
  uint64_t dma_address_ ABSL_GUARDED_BY(mu_) = 0;
};

// The contents of the file at `path`, for the item `name`; errors name both
// and say why ("cannot read fw_cfg file /x (for opt/a): No such file or
// directory"), or that it is over kMaxItemSize.
absl::StatusOr<std::vector<uint8_t>> ReadFwCfgFile(const std::string& path,
                                                   const std::string& name);

// OK if `name` may name a file item (see FwCfgFile), else InvalidArgument.
absl::Status ValidateFwCfgName(std::string_view name);

}  // namespace mote

#endif  // MOTE_DEVICES_FW_CFG_H_
