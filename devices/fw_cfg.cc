#include "devices/fw_cfg.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "vmm/base/fd.h"
#include "vmm/base/status_macros.h"

namespace mote {
namespace {

// Guest memory is touched a page at a time, so a transfer may run across
// adjacent RAM regions and fails at the first page that is not RAM.
constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kDmaRegisterSize = 8;

void PutLe(std::vector<uint8_t>& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void PutBe(std::vector<uint8_t>& out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

uint64_t GetBe(const uint8_t* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | in[i];
  return value;
}

std::vector<uint8_t> Le(uint64_t value, int bytes) {
  std::vector<uint8_t> out;
  PutLe(out, value, bytes);
  return out;
}

uint64_t ToPageEnd(uint64_t address) { return kPageSize - (address & (kPageSize - 1)); }

// GuestMemory's accessors a page at a time; the first failure stops them.
absl::Status CopyToGuest(const GuestMemory& memory, uint64_t address,
                         absl::Span<const uint8_t> data) {
  while (!data.empty()) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(data.size(), ToPageEnd(address)));
    MOTE_RETURN_IF_ERROR(memory.Write(GuestAddress{address}, data.subspan(0, chunk)));
    data.remove_prefix(chunk);
    address += chunk;
  }
  return absl::OkStatus();
}

absl::Status CopyFromGuest(const GuestMemory& memory, uint64_t address, absl::Span<uint8_t> out) {
  while (!out.empty()) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(out.size(), ToPageEnd(address)));
    MOTE_RETURN_IF_ERROR(memory.Read(GuestAddress{address}, out.subspan(0, chunk)));
    out.remove_prefix(chunk);
    address += chunk;
  }
  return absl::OkStatus();
}

// The name as the error messages quote it (absl::string_view is not
// std::string_view in this Abseil).
std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

}  // namespace

absl::StatusOr<std::vector<uint8_t>> ReadFwCfgFile(const std::string& path,
                                                   const std::string& name) {
  std::string what = "cannot read fw_cfg file " + path + " (for " + name + ")";
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return ErrnoToStatus(errno, what);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, what);
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > FwCfg::kMaxItemSize) {
    return absl::InvalidArgumentError(absl::StrCat("fw_cfg file ", path, " is ", st.st_size,
                                                   " bytes; an item holds at most ",
                                                   FwCfg::kMaxItemSize));
  }
  std::vector<uint8_t> data;
  if (S_ISREG(st.st_mode)) data.reserve(static_cast<size_t>(st.st_size));
  std::array<uint8_t, 64 * 1024> buffer;
  for (;;) {
    ssize_t n = read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, what);
    if (n == 0) break;
    data.insert(data.end(), buffer.begin(), buffer.begin() + n);
    if (data.size() > FwCfg::kMaxItemSize) {
      return absl::InvalidArgumentError(absl::StrCat("fw_cfg file ", path,
                                                     " is longer than an item may be (",
                                                     FwCfg::kMaxItemSize, " bytes)"));
    }
  }
  return data;
}

absl::Status ValidateFwCfgName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("an fw_cfg file name must not be empty");
  if (name.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("an fw_cfg file name must not contain a NUL byte");
  }
  if (name.size() > FwCfg::kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrCat("fw_cfg file name ", Quoted(name), " is ",
                                                   name.size(), " bytes long; the most is ",
                                                   FwCfg::kMaxNameLength));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<FwCfg>> FwCfg::Create(FwCfgContents contents,
                                                     const GuestMemory* memory) {
  uint16_t max_cpus = contents.max_cpus == 0 ? contents.cpus : contents.max_cpus;
  if (contents.cpus == 0 || max_cpus < contents.cpus) {
    return absl::InvalidArgumentError(
        absl::StrCat("fw_cfg: need 1 <= cpus (", contents.cpus, ") <= max_cpus (", max_cpus, ")"));
  }
  if (contents.cmdline.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("fw_cfg: the kernel command line contains a NUL byte");
  }
  if (contents.cmdline.size() >= kMaxItemSize) {
    return absl::InvalidArgumentError("fw_cfg: the kernel command line is too long");
  }
  if (contents.files.size() > kMaxFiles) {
    return absl::InvalidArgumentError(
        absl::StrCat("fw_cfg: ", contents.files.size(), " files; the most is ", kMaxFiles));
  }
  std::set<std::string> names;
  for (const FwCfgFile& file : contents.files) {
    MOTE_RETURN_IF_ERROR(ValidateFwCfgName(file.name));
    if (!names.insert(file.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("fw_cfg: two files are named ", Quoted(file.name)));
    }
    if (file.data.size() > kMaxItemSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("fw_cfg: file ", Quoted(file.name), " is ", file.data.size(),
                       " bytes; an item holds at most ", kMaxItemSize));
    }
  }

  std::map<uint16_t, std::vector<uint8_t>> items;
  items[kSignatureKey] = {'Q', 'E', 'M', 'U'};
  items[kIdKey] = Le(kFeatureTraditional | (memory != nullptr ? kFeatureDma : 0), 4);
  items[kRamSizeKey] = Le(contents.ram_bytes, 8);
  items[kNbCpusKey] = Le(contents.cpus, 2);
  items[kMaxCpusKey] = Le(max_cpus, 2);
  items[kCmdlineSizeKey] = Le(contents.cmdline.size() + 1, 4);
  std::vector<uint8_t> cmdline(contents.cmdline.begin(), contents.cmdline.end());
  cmdline.push_back(0);
  items[kCmdlineDataKey] = std::move(cmdline);

  // QEMU keeps the directory sorted by name (strcmp order, which is
  // std::string's for names without NULs) and numbers the keys in that order.
  std::sort(contents.files.begin(), contents.files.end(),
            [](const FwCfgFile& a, const FwCfgFile& b) { return a.name < b.name; });
  std::vector<uint8_t> dir;
  dir.reserve(4 + kDirEntrySize * contents.files.size());
  PutBe(dir, contents.files.size(), 4);
  uint16_t key = kFileFirstKey;
  for (FwCfgFile& file : contents.files) {
    PutBe(dir, file.data.size(), 4);
    PutBe(dir, key, 2);
    PutBe(dir, 0, 2);
    size_t name_at = dir.size();
    dir.resize(name_at + kNameField, 0);
    std::memcpy(dir.data() + name_at, file.name.data(), file.name.size());
    items[key++] = std::move(file.data);
  }
  items[kFileDirKey] = std::move(dir);
  return std::shared_ptr<FwCfg>(new FwCfg(std::move(items), memory));
}

void FwCfg::Select(uint16_t selector) {
  selector_ = selector;
  offset_ = 0;
  // Nothing is writable, so the write channel reads the same item.
  auto it = items_.find(static_cast<uint16_t>(selector & ~kWriteChannel));
  current_ = it == items_.end() ? nullptr : &it->second;
}

uint64_t FwCfg::Remaining() const { return current_ == nullptr ? 0 : current_->size() - offset_; }

void FwCfg::Read(uint64_t offset, absl::Span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
  if (data.empty()) return;
  MutexLock lock(&mu_);
  if (offset == kDataOffset) {
    for (uint8_t& byte : data) {
      if (Remaining() == 0) {
        byte = 0;
      } else {
        byte = (*current_)[offset_++];
      }
    }
  } else if (offset >= kDmaOffset && offset < kDmaOffset + kDmaRegisterSize && dma_enabled()) {
    for (size_t i = 0; i < data.size(); ++i) {
      uint64_t reg_byte = offset - kDmaOffset + i;
      if (reg_byte >= kDmaRegisterSize) break;
      data[i] = static_cast<uint8_t>(kDmaSignature >> (8 * (kDmaRegisterSize - 1 - reg_byte)));
    }
  }
}

void FwCfg::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (data.empty()) return;
  MutexLock lock(&mu_);
  if (offset == kSelectorOffset && data.size() == 2) {
    Select(static_cast<uint16_t>(data[0] | (data[1] << 8)));
  } else if (offset >= kDmaOffset && offset < kDmaOffset + kDmaRegisterSize && dma_enabled()) {
    WriteDmaRegister(offset - kDmaOffset, data);
  } else {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::debug,
                     "fw_cfg: ignored {}-byte write at port offset {}", data.size(), offset);
  }
}

void FwCfg::WriteDmaRegister(uint64_t reg_offset, absl::Span<const uint8_t> data) {
  if (reg_offset == 0 && data.size() == 4) {
    dma_address_ = (GetBe(data.data(), 4) << 32) | (dma_address_ & 0xffffffff);
    return;
  }
  uint64_t address;
  if (reg_offset == 4 && data.size() == 4) {
    address = (dma_address_ & ~uint64_t{0xffffffff}) | GetBe(data.data(), 4);
  } else if (reg_offset == 0 && data.size() == 8) {
    address = GetBe(data.data(), 8);
  } else {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::debug,
                     "fw_cfg: ignored {}-byte write at DMA register byte {}", data.size(),
                     reg_offset);
    return;
  }
  dma_address_ = 0;
  RunDma(address);
}

void FwCfg::SaveState(StateWriter& out) {
  MutexLock lock(&mu_);
  out.U32(static_cast<uint32_t>(items_.size()));
  out.U16(selector_);
  out.U64(offset_);
  out.U64(dma_address_);
}

absl::Status FwCfg::RestoreState(StateReader& in) {
  uint32_t item_count = in.U32();
  uint16_t selector = in.U16();
  uint64_t offset = in.U64();
  uint64_t dma_address = in.U64();
  if (absl::Status s = in.status(); !s.ok()) return s;
  if (item_count != items_.size()) {
    in.Fail(absl::StrCat("saved with ", item_count, " items, this device has ", items_.size(),
                         " (a different configuration?)"));
  }
  auto it = items_.find(static_cast<uint16_t>(selector & ~kWriteChannel));
  const std::vector<uint8_t>* current = it == items_.end() ? nullptr : &it->second;
  uint64_t size = current == nullptr ? 0 : current->size();
  if (offset > size) {
    in.Fail(absl::StrCat("read offset ", offset, " is past the end of item 0x", absl::Hex(selector),
                         " (", size, " bytes)"));
  }
  if ((dma_address & 0xffffffff) != 0 || (!dma_enabled() && dma_address != 0)) {
    in.Fail(absl::StrCat("DMA address register 0x", absl::Hex(dma_address),
                         dma_enabled() ? " has a low half (it starts the DMA, never kept)"
                                       : " set without the DMA interface"));
  }
  if (absl::Status s = in.status(); !s.ok()) return s;

  MutexLock lock(&mu_);
  selector_ = selector;
  current_ = current;
  offset_ = offset;
  dma_address_ = dma_address;
  return absl::OkStatus();
}

void FwCfg::RunDma(uint64_t access_address) {
  std::array<uint8_t, kDmaAccessSize> raw{};
  uint32_t result = kDmaError;
  if (absl::Status s = CopyFromGuest(*memory_, access_address, absl::MakeSpan(raw)); !s.ok()) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "fw_cfg: DMA access structure: {}",
                     s.ToString());
  } else {
    uint32_t control = static_cast<uint32_t>(GetBe(raw.data(), 4));
    uint32_t length = static_cast<uint32_t>(GetBe(raw.data() + 4, 4));
    uint64_t address = GetBe(raw.data() + 8, 8);
    if (control & kDmaSelect) Select(static_cast<uint16_t>(control >> 16));
    // One operation, in QEMU's order of precedence: read, write, skip.
    bool ok = true;
    if (control & kDmaRead) {
      ok = DmaRead(address, length);
    } else if (control & kDmaWrite) {
      // No item is writable (all are read-only to the guest, as externally
      // provided ones are in QEMU); a write of nothing does nothing.
      ok = length == 0;
    } else if (control & kDmaSkip) {
      offset_ += std::min<uint64_t>(length, Remaining());
    }
    result = ok ? 0 : kDmaError;
  }
  std::array<uint8_t, 4> done = {static_cast<uint8_t>(result >> 24),
                                 static_cast<uint8_t>(result >> 16),
                                 static_cast<uint8_t>(result >> 8), static_cast<uint8_t>(result)};
  if (absl::Status s = CopyToGuest(*memory_, access_address, done); !s.ok()) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "fw_cfg: DMA control word: {}",
                     s.ToString());
  }
}

bool FwCfg::DmaRead(uint64_t address, uint32_t length) {
  if (length == 0) return true;
  if (address > UINT64_MAX - (length - 1)) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                     "fw_cfg: DMA read of {} bytes at 0x{:x} wraps around", length, address);
    return false;
  }
  uint64_t left = length;
  while (left > 0 && Remaining() > 0) {
    uint64_t chunk = std::min({left, Remaining(), ToPageEnd(address)});
    absl::Status s =
        CopyToGuest(*memory_, address, absl::MakeConstSpan(current_->data() + offset_, chunk));
    if (!s.ok()) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "fw_cfg: DMA read of item 0x{:x}: {}",
                       selector_, s.ToString());
      return false;
    }
    offset_ += chunk;
    address += chunk;
    left -= chunk;
  }
  return DmaZeroFill(address, left);
}

bool FwCfg::DmaZeroFill(uint64_t address, uint64_t length) {
  if (length == 0) return true;
  if (length > kMaxDmaZeroFill) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                     "fw_cfg: refused a DMA read of {} bytes past the end of item 0x{:x}", length,
                     selector_);
    return false;
  }
  static constexpr std::array<uint8_t, kPageSize> kZeros{};
  while (length > 0) {
    uint64_t chunk = std::min(length, ToPageEnd(address));
    absl::Status s = CopyToGuest(*memory_, address, absl::MakeConstSpan(kZeros.data(), chunk));
    if (!s.ok()) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "fw_cfg: DMA read of item 0x{:x}: {}",
                       selector_, s.ToString());
      return false;
    }
    address += chunk;
    length -= chunk;
  }
  return true;
}

}  // namespace mote
