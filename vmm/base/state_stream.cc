#include "vmm/base/state_stream.h"

#include <array>

namespace mote {

void StateWriter::Raw(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  bytes_.insert(bytes_.end(), b, b + n);  // mote runs on little-endian hosts only
}

void StateWriter::Bytes(absl::Span<const uint8_t> bytes) {
  U32(static_cast<uint32_t>(bytes.size()));
  Raw(bytes.data(), bytes.size());
}

void StateWriter::String(std::string_view s) {
  Bytes(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

bool StateReader::Take(void* out, size_t n) {
  if (!ok() || remaining() < n) {
    Fail("truncated");
    std::memset(out, 0, n);
    return false;
  }
  std::memcpy(out, bytes_.data() + pos_, n);
  pos_ += n;
  return true;
}

uint8_t StateReader::U8() {
  uint8_t v;
  Take(&v, 1);
  return v;
}
uint16_t StateReader::U16() {
  uint16_t v;
  Take(&v, 2);
  return v;
}
uint32_t StateReader::U32() {
  uint32_t v;
  Take(&v, 4);
  return v;
}
uint64_t StateReader::U64() {
  uint64_t v;
  Take(&v, 8);
  return v;
}

std::vector<uint8_t> StateReader::Bytes(size_t max_len) {
  uint32_t len = U32();
  if (!ok()) return {};
  if (len > max_len || len > remaining()) {
    Fail(len > max_len ? "a length of " + std::to_string(len) + " bytes, at most " +
                             std::to_string(max_len) + " allowed"
                       : "truncated");
    return {};
  }
  std::vector<uint8_t> out(bytes_.begin() + pos_, bytes_.begin() + pos_ + len);
  pos_ += len;
  return out;
}

std::string StateReader::String(size_t max_len) {
  std::vector<uint8_t> raw = Bytes(max_len);
  return std::string(raw.begin(), raw.end());
}

void StateReader::Fail(std::string_view why) {
  if (error_.empty()) error_ = std::string(why);
}

absl::Status StateReader::status(bool want_end) const {
  if (!ok()) return absl::DataLossError(what_ + ": " + error_);
  if (want_end && remaining() != 0) {
    return absl::DataLossError(what_ + ": " + std::to_string(remaining()) +
                               " bytes left over (a different version of the state?)");
  }
  return absl::OkStatus();
}

namespace {

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

}  // namespace

uint32_t Crc32(absl::Span<const uint8_t> bytes, uint32_t crc) {
  crc = ~crc;
  for (uint8_t b : bytes) crc = kCrcTable[(crc ^ b) & 0xff] ^ (crc >> 8);
  return ~crc;
}

}  // namespace mote
