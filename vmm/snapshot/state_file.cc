#include "vmm/snapshot/state_file.h"

#include <cstring>
#include <set>

#include "absl/strings/str_format.h"
#include "vmm/base/state_stream.h"
#include "vmm/snapshot/restore_error.h"

namespace mote {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'T', 'E', 'S', 'N', 'A', 'P'};
constexpr size_t kMaxSections = 4096;
constexpr size_t kMaxNameLength = 256;

absl::Status Corrupt(const std::string& why) {
  return RestoreError(RestoreFailure::kCorrupt, "state file: " + why);
}

}  // namespace

void StateFile::Add(std::string name, uint32_t version, std::vector<uint8_t> bytes) {
  sections.push_back({std::move(name), version, std::move(bytes)});
}

const StateSection* StateFile::Find(std::string_view name) const {
  for (const StateSection& s : sections) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::vector<uint8_t> StateFile::Encode() const {
  std::vector<uint8_t> out(kMagic, kMagic + sizeof(kMagic));
  auto put = [&out](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  uint32_t count = static_cast<uint32_t>(sections.size());
  put(&format_version, 4);
  put(&count, 4);
  for (const StateSection& s : sections) {
    uint16_t name_len = static_cast<uint16_t>(s.name.size());
    uint64_t len = s.bytes.size();
    put(&name_len, 2);
    put(s.name.data(), s.name.size());
    put(&s.version, 4);
    put(&len, 8);
    put(s.bytes.data(), s.bytes.size());
  }
  uint32_t crc = Crc32(out);
  put(&crc, 4);
  return out;
}

absl::StatusOr<StateFile> StateFile::Parse(absl::Span<const uint8_t> bytes) {
  if (bytes.size() < sizeof(kMagic) + 12 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic))) {
    return Corrupt("not a mote state file (no MOTESNAP header)");
  }
  absl::Span<const uint8_t> body = bytes.first(bytes.size() - 4);
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + body.size(), 4);
  StateFile file;
  std::memcpy(&file.format_version, bytes.data() + sizeof(kMagic), 4);
  if (file.format_version > kStateFormatVersion) {
    return RestoreError(RestoreFailure::kNewerFormat,
                        absl::StrFormat("state file: format version %d, this mote reads up to %d "
                                        "(written by a newer mote)",
                                        file.format_version, kStateFormatVersion));
  }
  if (uint32_t crc = Crc32(body); crc != stored_crc) {
    return Corrupt(absl::StrFormat("checksum 0x%08x, the file says 0x%08x (truncated or corrupt)",
                                   crc, stored_crc));
  }
  if (file.format_version == 0) return Corrupt("format version 0");
  size_t pos = sizeof(kMagic) + 4;
  auto take = [&](void* out, size_t n) {
    if (body.size() - pos < n) return false;
    std::memcpy(out, body.data() + pos, n);
    pos += n;
    return true;
  };
  uint32_t count = 0;
  if (!take(&count, 4)) return Corrupt("truncated");
  if (count > kMaxSections) return Corrupt(absl::StrFormat("%d sections", count));
  std::set<std::string> names;
  for (uint32_t i = 0; i < count; ++i) {
    StateSection s;
    uint16_t name_len = 0;
    uint64_t len = 0;
    if (!take(&name_len, 2) || name_len == 0 || name_len > kMaxNameLength ||
        body.size() - pos < name_len) {
      return Corrupt(absl::StrFormat("section %d: bad name", i));
    }
    s.name.assign(reinterpret_cast<const char*>(body.data() + pos), name_len);
    pos += name_len;
    if (!take(&s.version, 4) || !take(&len, 8) || len > body.size() - pos) {
      return Corrupt(absl::StrFormat("section %s: truncated", s.name));
    }
    s.bytes.assign(body.begin() + pos, body.begin() + pos + len);
    pos += len;
    if (!names.insert(s.name).second) return Corrupt("section " + s.name + " twice");
    file.sections.push_back(std::move(s));
  }
  if (pos != body.size())
    return Corrupt(absl::StrFormat("%d bytes after the last section", body.size() - pos));
  return file;
}

}  // namespace mote
