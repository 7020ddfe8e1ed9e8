// StateFile: the device and CPU state of one VM as a list of named,
// individually versioned sections, and its on-disk encoding (docs/snapshot.md):
//   "MOTESNAP" | u32 format version | u32 section count |
//   sections: u16 name length, name, u32 version, u64 length, bytes |
//   u32 CRC-32 of everything before it.
// Parse treats its input as hostile: every length is checked, a wrong
// checksum or a newer format is refused (RestoreFailure codes).
// Value type; thread-compatible.
#ifndef MOTE_VMM_SNAPSHOT_STATE_FILE_H_
#define MOTE_VMM_SNAPSHOT_STATE_FILE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace mote {

inline constexpr uint32_t kStateFormatVersion = 1;

struct StateSection {
  std::string name;  // "vcpu/0", "pio/0x3f8/serial", ...
  uint32_t version = 0;
  std::vector<uint8_t> bytes;
};

struct StateFile {
  uint32_t format_version = kStateFormatVersion;
  std::vector<StateSection> sections;

  void Add(std::string name, uint32_t version, std::vector<uint8_t> bytes);
  // The section named `name`, or null.
  const StateSection* Find(std::string_view name) const;

  std::vector<uint8_t> Encode() const;
  static absl::StatusOr<StateFile> Parse(absl::Span<const uint8_t> bytes);
};

}  // namespace mote

#endif  // MOTE_VMM_SNAPSHOT_STATE_FILE_H_
