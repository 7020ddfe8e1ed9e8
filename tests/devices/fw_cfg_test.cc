#include "devices/fw_cfg.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/fakes.h"

namespace mote {
namespace {

using testing::ReadByte;
using testing::WriteByte;

constexpr uint64_t kRamSize = 64 << 10;
// Where the tests put a DMA access structure and its buffer.
constexpr uint64_t kAccessAt = 0x1000, kBufferAt = 0x2000;

std::unique_ptr<GuestMemory> MakeRam(std::vector<MemoryRegionSpec> regions = {{0, kRamSize}}) {
  auto mem = GuestMemory::Create(regions);
  REQUIRE(mem.ok());
  return std::move(*mem);
}

FwCfgContents Contents() {
  FwCfgContents c;
  c.cpus = 3;
  c.max_cpus = 8;
  c.ram_bytes = uint64_t{5} << 32 | 0x1234;
  c.cmdline = "console=ttyS0 quiet";
  c.files = {{"opt/org.mote/b", {'b', 'e', 'e'}},
             {"opt/a", {1, 2, 3, 4, 5}},
             {"etc/config", std::vector<uint8_t>(300, 0x5a)}};
  return c;
}

std::shared_ptr<FwCfg> Make(const GuestMemory* mem, FwCfgContents contents = Contents()) {
  auto dev = FwCfg::Create(std::move(contents), mem);
  REQUIRE(dev.ok());
  return *dev;
}

void Select(FwCfg& dev, uint16_t key) {
  uint8_t bytes[2] = {static_cast<uint8_t>(key), static_cast<uint8_t>(key >> 8)};
  dev.Write(FwCfg::kSelectorOffset, absl::Span<const uint8_t>(bytes, 2));
}

// `n` bytes from the data port, one access each, as a byte-wide driver reads.
std::vector<uint8_t> ReadData(FwCfg& dev, size_t n) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i < n; ++i) out.push_back(ReadByte(dev, FwCfg::kDataOffset));
  return out;
}

std::vector<uint8_t> Item(FwCfg& dev, uint16_t key, size_t n) {
  Select(dev, key);
  return ReadData(dev, n);
}

uint64_t Le(const std::vector<uint8_t>& bytes) {
  uint64_t v = 0;
  for (size_t i = bytes.size(); i-- > 0;) v = (v << 8) | bytes[i];
  return v;
}

uint64_t Be(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

std::vector<uint8_t> BeBytes(uint64_t value, int n) {
  std::vector<uint8_t> out;
  for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
  return out;
}

// The directory as a guest driver parses it.
struct DirEntry {
  uint32_t size;
  uint16_t select;
  std::string name;
};

std::vector<DirEntry> ReadDirectory(FwCfg& dev) {
  Select(dev, FwCfg::kFileDirKey);
  std::vector<uint8_t> count = ReadData(dev, 4);
  std::vector<DirEntry> entries;
  for (uint64_t i = 0; i < Be(count.data(), 4); ++i) {
    std::vector<uint8_t> e = ReadData(dev, 64);
    CHECK(Be(e.data() + 6, 2) == 0);  // reserved
    const char* name = reinterpret_cast<const char*>(e.data() + 8);
    entries.push_back({static_cast<uint32_t>(Be(e.data(), 4)),
                       static_cast<uint16_t>(Be(e.data() + 4, 2)),
                       std::string(name, strnlen(name, 56))});
  }
  return entries;
}

std::optional<DirEntry> FindFile(FwCfg& dev, const std::string& name) {
  for (const DirEntry& e : ReadDirectory(dev)) {
    if (e.name == name) return e;
  }
  return std::nullopt;
}

// Triggers a DMA with the access structure at `access`, as Linux's driver
// does: the high half of the address, then the low half, each big-endian.
void TriggerDma(FwCfg& dev, uint64_t access) {
  std::vector<uint8_t> high = BeBytes(access >> 32, 4), low = BeBytes(access & 0xffffffff, 4);
  dev.Write(FwCfg::kDmaOffset, high);
  dev.Write(FwCfg::kDmaOffset + 4, low);
}

void PutAccess(const GuestMemory& mem, uint64_t at, uint32_t control, uint32_t length,
               uint64_t address) {
  std::vector<uint8_t> raw = BeBytes(control, 4);
  for (uint8_t b : BeBytes(length, 4)) raw.push_back(b);
  for (uint8_t b : BeBytes(address, 8)) raw.push_back(b);
  // A byte at a time: a structure may straddle two RAM regions.
  for (size_t i = 0; i < raw.size(); ++i) {
    REQUIRE(mem.Write(GuestAddress{at + i}, absl::MakeConstSpan(&raw[i], 1)).ok());
  }
}

uint32_t Control(const GuestMemory& mem, uint64_t at = kAccessAt) {
  uint8_t raw[4];
  REQUIRE(mem.Read(GuestAddress{at}, absl::Span<uint8_t>(raw, 4)).ok());
  return static_cast<uint32_t>(Be(raw, 4));
}

std::vector<uint8_t> Guest(const GuestMemory& mem, uint64_t at, size_t n) {
  std::vector<uint8_t> out(n);
  REQUIRE(mem.Read(GuestAddress{at}, absl::MakeSpan(out)).ok());
  return out;
}

void Fill(const GuestMemory& mem, uint64_t at, size_t n, uint8_t value) {
  REQUIRE(mem.Write(GuestAddress{at}, std::vector<uint8_t>(n, value)).ok());
}

// A DMA of `control` with `length` bytes into kBufferAt; returns the control word.
uint32_t Dma(FwCfg& dev, const GuestMemory& mem, uint32_t control, uint32_t length,
             uint64_t address = kBufferAt) {
  PutAccess(mem, kAccessAt, control, length, address);
  TriggerDma(dev, kAccessAt);
  return Control(mem);
}

uint32_t SelectRead(uint16_t key) {
  return uint32_t{key} << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead;
}

TEST_CASE("fw_cfg: signature, feature bitmap, CPUs, RAM size and command line", "[fw_cfg]") {
  auto mem = MakeRam();
  auto dev = Make(mem.get());
  CHECK(Item(*dev, FwCfg::kSignatureKey, 4) == std::vector<uint8_t>{'Q', 'E', 'M', 'U'});
  CHECK(Le(Item(*dev, FwCfg::kIdKey, 4)) == (FwCfg::kFeatureTraditional | FwCfg::kFeatureDma));
  CHECK(Le(Item(*dev, FwCfg::kNbCpusKey, 2)) == 3);
  CHECK(Le(Item(*dev, FwCfg::kMaxCpusKey, 2)) == 8);
  CHECK(Le(Item(*dev, FwCfg::kRamSizeKey, 8)) == (uint64_t{5} << 32 | 0x1234));
  std::string cmdline = "console=ttyS0 quiet";
  CHECK(Le(Item(*dev, FwCfg::kCmdlineSizeKey, 4)) == cmdline.size() + 1);
  std::vector<uint8_t> data = Item(*dev, FwCfg::kCmdlineDataKey, cmdline.size() + 1);
  CHECK(std::string(data.begin(), data.end()) == cmdline + std::string(1, '\0'));

  // Without guest memory there is no DMA interface, and the bitmap says so.
  auto plain = Make(nullptr);
  CHECK(!plain->dma_enabled());
  CHECK(Le(Item(*plain, FwCfg::kIdKey, 4)) == FwCfg::kFeatureTraditional);
  // max_cpus 0 means "as many as cpus".
  FwCfgContents c = Contents();
  c.max_cpus = 0;
  auto same = Make(nullptr, c);
  CHECK(Le(Item(*same, FwCfg::kMaxCpusKey, 2)) == 3);
}

TEST_CASE("fw_cfg: the directory lists files sorted by name, keys from 0x20", "[fw_cfg]") {
  auto dev = Make(nullptr);
  std::vector<DirEntry> dir = ReadDirectory(*dev);
  REQUIRE(dir.size() == 3);
  CHECK(dir[0].name == "etc/config");
  CHECK(dir[0].select == 0x20);
  CHECK(dir[0].size == 300);
  CHECK(dir[1].name == "opt/a");
  CHECK(dir[1].select == 0x21);
  CHECK(dir[1].size == 5);
  CHECK(dir[2].name == "opt/org.mote/b");
  CHECK(dir[2].select == 0x22);
  CHECK(dir[2].size == 3);

  std::optional<DirEntry> b = FindFile(*dev, "opt/org.mote/b");
  REQUIRE(b.has_value());
  CHECK(Item(*dev, b->select, b->size) == std::vector<uint8_t>{'b', 'e', 'e'});
  std::optional<DirEntry> config = FindFile(*dev, "etc/config");
  REQUIRE(config.has_value());
  CHECK(Item(*dev, config->select, config->size) == std::vector<uint8_t>(300, 0x5a));
  CHECK(!FindFile(*dev, "opt/missing").has_value());

  // With no files the directory is a zero count.
  FwCfgContents c = Contents();
  c.files.clear();
  auto empty = Make(nullptr, c);
  CHECK(Item(*empty, FwCfg::kFileDirKey, 8) == std::vector<uint8_t>(8, 0));
}

TEST_CASE("fw_cfg: data port protocol: past the end, unknown keys, reselecting, wide reads",
          "[fw_cfg]") {
  auto dev = Make(nullptr);
  // Past the end of an item: zeros, however long one keeps reading.
  CHECK(Item(*dev, FwCfg::kSignatureKey, 8) ==
        std::vector<uint8_t>{'Q', 'E', 'M', 'U', 0, 0, 0, 0});
  // Unknown keys, generic and arch-specific, read as zeros.
  CHECK(Item(*dev, 0x0123, 4) == std::vector<uint8_t>(4, 0));
  CHECK(Item(*dev, 0x3fff, 4) == std::vector<uint8_t>(4, 0));
  CHECK(Item(*dev, FwCfg::kArchLocal | FwCfg::kSignatureKey, 4) == std::vector<uint8_t>(4, 0));
  // The write-channel bit names the same (read-only) item.
  CHECK(Item(*dev, FwCfg::kWriteChannel | FwCfg::kSignatureKey, 4) ==
        std::vector<uint8_t>{'Q', 'E', 'M', 'U'});

  // Selecting, even the same key, starts the item again.
  Select(*dev, FwCfg::kSignatureKey);
  CHECK(ReadData(*dev, 2) == std::vector<uint8_t>{'Q', 'E'});
  Select(*dev, FwCfg::kSignatureKey);
  CHECK(ReadData(*dev, 1) == std::vector<uint8_t>{'Q'});
  // Writes to the data port change nothing and do not move the offset.
  WriteByte(*dev, FwCfg::kDataOffset, 'X');
  CHECK(ReadData(*dev, 1) == std::vector<uint8_t>{'E'});
  // A one-byte write to the selector is not a selection.
  WriteByte(*dev, FwCfg::kSelectorOffset, FwCfg::kIdKey);
  CHECK(ReadData(*dev, 1) == std::vector<uint8_t>{'M'});

  // Wider data reads return the next bytes in stream order.
  Select(*dev, FwCfg::kSignatureKey);
  uint8_t wide[4] = {};
  dev->Read(FwCfg::kDataOffset, absl::Span<uint8_t>(wide, 4));
  CHECK(std::string(reinterpret_cast<char*>(wide), 4) == "QEMU");
  Select(*dev, FwCfg::kSignatureKey);
  CHECK(ReadByte(*dev, FwCfg::kDataOffset) == 'Q');
  uint8_t eight[8];
  dev->Read(FwCfg::kDataOffset, absl::Span<uint8_t>(eight, 8));
  CHECK(std::vector<uint8_t>(eight, eight + 8) ==
        std::vector<uint8_t>{'E', 'M', 'U', 0, 0, 0, 0, 0});

  // The selector is write-only and ports 2, 3 are nothing: all-ones.
  CHECK(ReadByte(*dev, FwCfg::kSelectorOffset) == 0xff);
  CHECK(ReadByte(*dev, 2) == 0xff);
  CHECK(ReadByte(*dev, 3) == 0xff);
  // No DMA interface without guest memory: its register reads all-ones.
  CHECK(ReadByte(*dev, FwCfg::kDmaOffset) == 0xff);
}

TEST_CASE("fw_cfg: the DMA address register reads as \"QEMU CFG\"", "[fw_cfg]") {
  auto mem = MakeRam();
  auto dev = Make(mem.get());
  uint8_t reg[8];
  dev->Read(FwCfg::kDmaOffset, absl::Span<uint8_t>(reg, 8));
  CHECK(Be(reg, 8) == FwCfg::kDmaSignature);
  CHECK(std::string(reinterpret_cast<char*>(reg), 8) == "QEMU CFG");
  uint8_t low[4];
  dev->Read(FwCfg::kDmaOffset + 4, absl::Span<uint8_t>(low, 4));
  CHECK(std::string(reinterpret_cast<char*>(low), 4) == " CFG");
  CHECK(ReadByte(*dev, FwCfg::kDmaOffset + 7) == 'G');
}

TEST_CASE("fw_cfg: DMA select and read, continuing, and past the end", "[fw_cfg]") {
  auto mem = MakeRam();
  auto dev = Make(mem.get());
  Fill(*mem, kBufferAt, 64, 0xaa);
  CHECK(Dma(*dev, *mem, SelectRead(FwCfg::kSignatureKey), 4) == 0);
  CHECK(Guest(*mem, kBufferAt, 5) == std::vector<uint8_t>{'Q', 'E', 'M', 'U', 0xaa});

  // A DMA selection is a selection: the data port now reads the same item
  // from the start, and a read without select continues where it stopped.
  CHECK(Dma(*dev, *mem, uint32_t{0x21} << 16 | FwCfg::kDmaSelect, 0) == 0);
  CHECK(ReadData(*dev, 2) == std::vector<uint8_t>{1, 2});
  CHECK(Dma(*dev, *mem, FwCfg::kDmaRead, 2) == 0);
  CHECK(Guest(*mem, kBufferAt, 2) == std::vector<uint8_t>{3, 4});
  // Past the end: the rest of the item, then zeros.
  Fill(*mem, kBufferAt, 64, 0xaa);
  CHECK(Dma(*dev, *mem, FwCfg::kDmaRead, 6) == 0);
  CHECK(Guest(*mem, kBufferAt, 7) == std::vector<uint8_t>{5, 0, 0, 0, 0, 0, 0xaa});
  // An unknown key reads as zeros too.
  Fill(*mem, kBufferAt, 64, 0xaa);
  CHECK(Dma(*dev, *mem, SelectRead(0x1234), 16) == 0);
  std::vector<uint8_t> zeros(16, 0);
  zeros.push_back(0xaa);
  CHECK(Guest(*mem, kBufferAt, 17) == zeros);
  // The register is back to 0 after an operation: a lone low-half write
  // uses a high half of 0.
  PutAccess(*mem, kAccessAt, SelectRead(FwCfg::kSignatureKey), 4, kBufferAt);
  dev->Write(FwCfg::kDmaOffset + 4, BeBytes(kAccessAt, 4));
  CHECK(Control(*mem) == 0);
  CHECK(Guest(*mem, kBufferAt, 4) == std::vector<uint8_t>{'Q', 'E', 'M', 'U'});
  // One 8-byte write of the whole address starts it as well.
  Fill(*mem, kBufferAt, 64, 0);
  PutAccess(*mem, kAccessAt + 0x100, SelectRead(FwCfg::kNbCpusKey), 2, kBufferAt);
  dev->Write(FwCfg::kDmaOffset, BeBytes(kAccessAt + 0x100, 8));
  CHECK(Control(*mem, kAccessAt + 0x100) == 0);
  CHECK(Guest(*mem, kBufferAt, 2) == std::vector<uint8_t>{3, 0});
}

TEST_CASE("fw_cfg: DMA skip, and a file found through the directory", "[fw_cfg]") {
  auto mem = MakeRam();
  auto dev = Make(mem.get());
  // Read the directory by DMA, as OVMF and Linux do, and find the file in it.
  CHECK(Dma(*dev, *mem, SelectRead(FwCfg::kFileDirKey), 4 + 3 * 64) == 0);
  std::vector<uint8_t> dir = Guest(*mem, kBufferAt, 4 + 3 * 64);
  REQUIRE(Be(dir.data(), 4) == 3);
  std::optional<uint16_t> key;
  for (int i = 0; i < 3; ++i) {
    const uint8_t* e = dir.data() + 4 + 64 * i;
    if (std::string(reinterpret_cast<const char*>(e + 8)) == "opt/a") {
      key = static_cast<uint16_t>(Be(e + 4, 2));
    }
  }
  REQUIRE(key.has_value());
  CHECK(Dma(*dev, *mem, uint32_t{*key} << 16 | FwCfg::kDmaSelect | FwCfg::kDmaSkip, 2) == 0);
  CHECK(Dma(*dev, *mem, FwCfg::kDmaRead, 3) == 0);
  CHECK(Guest(*mem, kBufferAt, 3) == std::vector<uint8_t>{3, 4, 5});
  // Skipping past the end stops there, without an error.
  CHECK(Dma(*dev, *mem, uint32_t{*key} << 16 | FwCfg::kDmaSelect | FwCfg::kDmaSkip, 100) == 0);
  CHECK(ReadData(*dev, 1) == std::vector<uint8_t>{0});
  // Skip and select go through the data port's offset as well.
  Select(*dev, *key);
  CHECK(Dma(*dev, *mem, FwCfg::kDmaSkip, 4) == 0);
  CHECK(ReadData(*dev, 2) == std::vector<uint8_t>{5, 0});
}

TEST_CASE("fw_cfg: DMA crosses adjacent RAM regions page by page", "[fw_cfg]") {
  auto mem = MakeRam({{0, 0x10000}, {0x10000, 0x10000}});
  auto dev = Make(mem.get());
  uint64_t at = 0x10000 - 100;  // etc/config's 300 bytes straddle the two regions
  CHECK(Dma(*dev, *mem, SelectRead(0x20), 300, at) == 0);
  CHECK(Guest(*mem, at, 100) == std::vector<uint8_t>(100, 0x5a));
  CHECK(Guest(*mem, 0x10000, 200) == std::vector<uint8_t>(200, 0x5a));
  // So may the access structure itself.
  PutAccess(*mem, 0x10000 - 8, SelectRead(FwCfg::kSignatureKey), 4, kBufferAt);
  TriggerDma(*dev, 0x10000 - 8);
  CHECK(Control(*mem, 0x10000 - 8) == 0);
  CHECK(Guest(*mem, kBufferAt, 4) == std::vector<uint8_t>{'Q', 'E', 'M', 'U'});
}

TEST_CASE("fw_cfg: DMA to bad addresses, writes and huge zero fills set the error bit",
          "[fw_cfg]") {
  auto mem = MakeRam();
  auto dev = Make(mem.get());
  // Buffer outside RAM, or running off its end.
  CHECK(Dma(*dev, *mem, SelectRead(FwCfg::kSignatureKey), 4, kRamSize) == FwCfg::kDmaError);
  CHECK(Dma(*dev, *mem, SelectRead(0x20), 300, kRamSize - 100) == FwCfg::kDmaError);
  CHECK(Guest(*mem, kRamSize - 100, 100) == std::vector<uint8_t>(100, 0x5a));  // what fitted
  CHECK(Dma(*dev, *mem, SelectRead(0x20), 300, 0xffffffffffffff00) == FwCfg::kDmaError);
  CHECK(Dma(*dev, *mem, SelectRead(0x1234), 0xffffffff, kBufferAt) == FwCfg::kDmaError);
  // Zeros past the end only up to the cap.
  CHECK(Dma(*dev, *mem, SelectRead(0x1234), 0x1000, kBufferAt) == 0);
  auto big = MakeRam({{0, 4 << 20}});
  auto dev2 = Make(big.get());
  CHECK(Dma(*dev2, *big, SelectRead(0x1234), FwCfg::kMaxDmaZeroFill, kBufferAt) == 0);
  CHECK(Dma(*dev2, *big, SelectRead(0x1234), FwCfg::kMaxDmaZeroFill + 1, kBufferAt) ==
        FwCfg::kDmaError);

  // Nothing is writable: a DMA write fails (a zero-length one does nothing)
  // and leaves the item as it was.
  CHECK(Dma(*dev, *mem, uint32_t{0x21} << 16 | FwCfg::kDmaSelect | FwCfg::kDmaWrite, 2) ==
        FwCfg::kDmaError);
  CHECK(Dma(*dev, *mem, FwCfg::kDmaWrite, 0) == 0);
  CHECK(Item(*dev, 0x21, 5) == std::vector<uint8_t>{1, 2, 3, 4, 5});

  // An access structure outside RAM: nothing to report the error in, and
  // nothing breaks; the device keeps working.
  std::vector<uint8_t> before = Guest(*mem, 0, kRamSize);
  TriggerDma(*dev, kRamSize + 0x1000);
  TriggerDma(*dev, uint64_t{0xffffffff} << 32 | 0xfffffff8);
  CHECK(Guest(*mem, 0, kRamSize) == before);
  // One that straddles the end of RAM cannot be read, but its control word
  // can be written, and says so.
  PutAccess(*mem, kRamSize - 16, SelectRead(FwCfg::kSignatureKey), 4, kBufferAt);
  TriggerDma(*dev, kRamSize - 8);
  CHECK(Control(*mem, kRamSize - 8) == FwCfg::kDmaError);
  CHECK(Dma(*dev, *mem, SelectRead(FwCfg::kSignatureKey), 4) == 0);
  // Odd writes to the register neither start a DMA nor break it.
  std::vector<uint8_t> two = {0, 0};
  dev->Write(FwCfg::kDmaOffset + 6, two);
  dev->Write(FwCfg::kDmaOffset + 1, BeBytes(kAccessAt, 4));
  CHECK(Dma(*dev, *mem, SelectRead(FwCfg::kSignatureKey), 4) == 0);
}

TEST_CASE("fw_cfg: Create rejects bad contents", "[fw_cfg]") {
  auto with_file = [](std::string name, size_t copies = 1) {
    FwCfgContents c = Contents();
    for (size_t i = 0; i < copies; ++i) c.files.push_back({name, {1}});
    return FwCfg::Create(c, nullptr).status();
  };
  CHECK(with_file(std::string(55, 'n')).ok());
  CHECK(absl::IsInvalidArgument(with_file(std::string(56, 'n'))));
  CHECK(absl::IsInvalidArgument(with_file("")));
  CHECK(absl::IsInvalidArgument(with_file(std::string("opt/a\0b", 7))));
  CHECK(absl::IsInvalidArgument(with_file("opt/a")));       // already in Contents()
  CHECK(absl::IsInvalidArgument(with_file("opt/new", 2)));  // twice
  CHECK(with_file("no-opt-prefix").ok());                   // allowed, like QEMU (which warns)

  FwCfgContents c = Contents();
  c.cpus = 0;
  CHECK(absl::IsInvalidArgument(FwCfg::Create(c, nullptr).status()));
  c.cpus = 9;
  CHECK(absl::IsInvalidArgument(FwCfg::Create(c, nullptr).status()));  // above max_cpus 8
  c = Contents();
  c.cmdline = std::string("a\0b", 3);
  CHECK(absl::IsInvalidArgument(FwCfg::Create(c, nullptr).status()));
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    std::string name = "/tmp/mote-fw_cfg-test-XXXXXX";
    int fd = mkstemp(name.data());
    REQUIRE(fd >= 0);
    path_ = name;
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_CASE("fw_cfg: a file item is read whole; errors name the file and the item", "[fw_cfg]") {
  TempFile file(std::string("file\0contents", 13));
  auto f = ReadFwCfgFile(file.path(), "opt/blob");
  REQUIRE(f.ok());
  CHECK(std::string(f->begin(), f->end()) == std::string("file\0contents", 13));
  absl::Status s = ReadFwCfgFile("/nonexistent/mote-fw-cfg", "opt/a").status();
  CHECK(absl::IsNotFound(s));
  CHECK(Message(s) ==
        "cannot read fw_cfg file /nonexistent/mote-fw-cfg (for opt/a): No such file or directory");
  s = ReadFwCfgFile("/tmp", "opt/a").status();
  CHECK_THAT(Message(s), Catch::Contains("/tmp") && Catch::Contains("Is a directory"));
}

TEST_CASE("fw_cfg: names are checked", "[fw_cfg]") {
  CHECK(ValidateFwCfgName("opt/org.mote/x").ok());
  CHECK(ValidateFwCfgName(std::string(55, 'n')).ok());
  CHECK(Message(ValidateFwCfgName(std::string(56, 'n'))) ==
        "fw_cfg file name \"" + std::string(56, 'n') + "\" is 56 bytes long; the most is 55");
  CHECK(!ValidateFwCfgName("").ok());
  CHECK(!ValidateFwCfgName(std::string("a\0b", 3)).ok());
}

std::vector<uint8_t> Save(FwCfg& dev) {
  StateWriter out;
  dev.SaveState(out);
  return out.Take();
}

absl::Status Restore(FwCfg& dev, absl::Span<const uint8_t> bytes) {
  StateReader in(bytes, "fw_cfg");
  return dev.RestoreState(in);
}

TEST_CASE("fw_cfg snapshot: selector, read offset and the DMA address's high half come back",
          "[fw_cfg][snapshot]") {
  // RAM above 4 GiB too, so the high half of the DMA address matters.
  constexpr uint64_t kHigh = uint64_t{1} << 32;
  auto mem = MakeRam({{0, kRamSize}, {kHigh, kRamSize}});
  auto dev = Make(mem.get());
  CHECK(dev->state_version() == 1);
  Select(*dev, 0x21);  // opt/a: 1 2 3 4 5
  CHECK(ReadData(*dev, 2) == std::vector<uint8_t>{1, 2});
  dev->Write(FwCfg::kDmaOffset, BeBytes(1, 4));  // the high half, then the snapshot
  std::vector<uint8_t> state = Save(*dev);

  auto copy = Make(mem.get());
  REQUIRE(Restore(*copy, state).ok());
  // The data port reads on from where it was.
  CHECK(ReadData(*copy, 4) == std::vector<uint8_t>{3, 4, 5, 0});
  // The low half completes the address written before the snapshot.
  PutAccess(*mem, kHigh + kAccessAt, SelectRead(FwCfg::kSignatureKey), 4, kHigh + kBufferAt);
  copy->Write(FwCfg::kDmaOffset + 4, BeBytes(kAccessAt, 4));
  CHECK(Control(*mem, kHigh + kAccessAt) == 0);
  CHECK(Guest(*mem, kHigh + kBufferAt, 4) == std::vector<uint8_t>{'Q', 'E', 'M', 'U'});

  // The write channel bit is kept with the selector; an unknown key reads zeros.
  Select(*dev, 0x4000 | FwCfg::kCmdlineDataKey);
  CHECK(ReadData(*dev, 8) == std::vector<uint8_t>{'c', 'o', 'n', 's', 'o', 'l', 'e', '='});
  REQUIRE(Restore(*copy, Save(*dev)).ok());
  CHECK(ReadData(*copy, 5) == std::vector<uint8_t>{'t', 't', 'y', 'S', '0'});
  Select(*dev, 0x1234);
  REQUIRE(Restore(*copy, Save(*dev)).ok());
  CHECK(ReadData(*copy, 2) == std::vector<uint8_t>{0, 0});
}

TEST_CASE("fw_cfg snapshot: truncated, out-of-range or foreign state is refused, unchanged",
          "[fw_cfg][snapshot]") {
  auto mem = MakeRam();
  auto dev = Make(mem.get());
  std::vector<uint8_t> good = Save(*dev);
  REQUIRE(good.size() == 22);  // item count, selector, offset, DMA address

  auto target = Make(mem.get());
  Select(*target, 0x21);
  CHECK(ReadData(*target, 1) == std::vector<uint8_t>{1});
  for (size_t n = 0; n < good.size(); ++n) {
    CHECK(Restore(*target, absl::MakeConstSpan(good.data(), n)).code() ==
          absl::StatusCode::kDataLoss);
  }
  auto state = [](uint32_t items, uint16_t selector, uint64_t offset, uint64_t dma) {
    StateWriter w;
    w.U32(items);
    w.U16(selector);
    w.U64(offset);
    w.U64(dma);
    return w.Take();
  };
  auto message = [&](const std::vector<uint8_t>& bad) {
    absl::Status s = Restore(*target, bad);
    CHECK(s.code() == absl::StatusCode::kDataLoss);
    return std::string(s.message());
  };
  uint32_t items = static_cast<uint32_t>(good[0] | good[1] << 8 | good[2] << 16 | good[3] << 24);
  CHECK(items == 11);  // 8 fixed ones and 3 files
  CHECK(message(state(items + 1, 0x21, 0, 0)).find("items") != std::string::npos);
  CHECK(message(state(items, 0x21, 6, 0)).find("offset") != std::string::npos);
  CHECK(message(state(items, 0x1234, 1, 0)).find("offset") != std::string::npos);
  CHECK(message(state(items, 0x21, ~uint64_t{0}, 0)).find("offset") != std::string::npos);
  CHECK(message(state(items, 0x21, 0, 0x1000)).find("DMA") != std::string::npos);
  // The end of an item is a fine place to be.
  auto other = Make(mem.get());
  CHECK(Restore(*other, state(items, 0x21, 5, uint64_t{7} << 32)).ok());
  CHECK(ReadData(*other, 1) == std::vector<uint8_t>{0});
  // Without the DMA interface, no DMA address either.
  auto no_dma = Make(nullptr);
  CHECK(Restore(*no_dma, state(items, 0, 0, uint64_t{1} << 32)).code() ==
        absl::StatusCode::kDataLoss);
  CHECK(Restore(*no_dma, state(items, 0, 0, 0)).ok());
  // The target reads on from where it was.
  CHECK(ReadData(*target, 2) == std::vector<uint8_t>{2, 3});
}

}  // namespace
}  // namespace mote
