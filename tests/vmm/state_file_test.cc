#include "vmm/snapshot/state_file.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "vmm/base/state_stream.h"
#include "vmm/snapshot/restore_error.h"

namespace mote {
namespace {

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

StateFile TwoSections() {
  StateFile file;
  file.Add("machine", 1, Bytes("abc"));
  file.Add("pio/0x3f8/serial", 2, Bytes(std::string(1000, 'x')));
  return file;
}

TEST_CASE("CRC-32 is zlib's", "[state_file]") {
  CHECK(Crc32(Bytes("123456789")) == 0xcbf43926u);
  CHECK(Crc32(Bytes("")) == 0);
  CHECK(Crc32(Bytes("6789"), Crc32(Bytes("12345"))) == 0xcbf43926u);
}

TEST_CASE("A state file encodes and parses back, section by section", "[state_file]") {
  std::vector<uint8_t> encoded = TwoSections().Encode();
  auto parsed = StateFile::Parse(encoded);
  REQUIRE(parsed.ok());
  CHECK(parsed->format_version == kStateFormatVersion);
  REQUIRE(parsed->sections.size() == 2);
  CHECK(parsed->Find("pio/0x3f8/serial")->version == 2);
  CHECK(parsed->Find("pio/0x3f8/serial")->bytes.size() == 1000);
  CHECK(parsed->Find("machine")->bytes == Bytes("abc"));
  CHECK(parsed->Find("vcpu/0") == nullptr);
  CHECK(parsed->Encode() == encoded);
}

TEST_CASE("Every flipped bit and every truncation is refused as corrupt", "[state_file]") {
  std::vector<uint8_t> good = TwoSections().Encode();
  for (size_t i = 0; i < good.size(); i += 7) {
    std::vector<uint8_t> bad = good;
    bad[i] ^= 0x10;
    auto parsed = StateFile::Parse(bad);
    INFO(i);
    REQUIRE_FALSE(parsed.ok());
    // The version field: a bigger number reads as "newer".
    int code = RestoreExitCode(parsed.status());
    CHECK((code == static_cast<int>(RestoreFailure::kCorrupt) ||
           code == static_cast<int>(RestoreFailure::kNewerFormat)));
  }
  for (size_t len = 0; len < good.size(); len += 5) {
    auto parsed = StateFile::Parse(absl::Span<const uint8_t>(good.data(), len));
    REQUIRE_FALSE(parsed.ok());
    CHECK(RestoreExitCode(parsed.status()) == static_cast<int>(RestoreFailure::kCorrupt));
  }
}

TEST_CASE("A newer format is refused as such, before its checksum", "[state_file]") {
  StateFile file = TwoSections();
  file.format_version = kStateFormatVersion + 1;
  auto parsed = StateFile::Parse(file.Encode());
  REQUIRE_FALSE(parsed.ok());
  CHECK(RestoreExitCode(parsed.status()) == static_cast<int>(RestoreFailure::kNewerFormat));
  CHECK(std::string(parsed.status().message()).find("newer mote") != std::string::npos);
}

TEST_CASE("A section named twice is refused", "[state_file]") {
  StateFile file = TwoSections();
  file.Add("machine", 1, {});
  CHECK_FALSE(StateFile::Parse(file.Encode()).ok());
}

TEST_CASE("StateReader's errors stick and name the state", "[state_file]") {
  StateWriter out;
  out.U32(7);
  out.String("hello");
  out.U64(1ull << 40);
  std::vector<uint8_t> bytes = out.Take();
  {
    StateReader in(bytes, "dev");
    CHECK(in.U32() == 7);
    CHECK(in.String(16) == "hello");
    CHECK(in.U64() == 1ull << 40);
    CHECK(in.status().ok());
  }
  {
    StateReader in(bytes, "dev");
    CHECK(in.U32() == 7);
    CHECK(in.String(3).empty());  // longer than allowed
    CHECK(in.U64() == 0);         // and everything after reads as zero
    CHECK(std::string(in.status().message()) == "dev: a length of 5 bytes, at most 3 allowed");
  }
  {
    StateReader in(absl::Span<const uint8_t>(bytes.data(), 6), "dev");
    CHECK(in.U32() == 7);
    CHECK(in.String(16).empty());
    CHECK(std::string(in.status().message()) == "dev: truncated");
  }
  {
    StateReader in(bytes, "dev");
    (void)in.U32();
    CHECK(std::string(in.status().message()).find("bytes left over") != std::string::npos);
    CHECK(in.status(/*want_end=*/false).ok());
  }
}

}  // namespace
}  // namespace mote
