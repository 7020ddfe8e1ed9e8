// The 36-byte header every ACPI system description table except the RSDP
// starts with (ACPI 6.x section 5.2.6), and the checksum rule. Internal to
// arch/x86/acpi. Header only; pure functions, safe from any thread.
#ifndef MOTE_ARCH_X86_ACPI_SDT_H_
#define MOTE_ARCH_X86_ACPI_SDT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "arch/x86/acpi/le_bytes.h"

namespace mote::x86::acpi {

inline constexpr size_t kSdtHeaderSize = 36;
inline constexpr size_t kSdtLengthOffset = 4;
inline constexpr size_t kSdtChecksumOffset = 9;

// Identity of the "firmware": same in every table so a guest's acpidump
// shows which VMM built them.
inline constexpr std::string_view kOemId = "MOTE  ";         // 6 bytes
inline constexpr std::string_view kOemTableId = "MOTEVM  ";  // 8 bytes
inline constexpr uint32_t kOemRevision = 1;
inline constexpr std::string_view kCreatorId = "MOTE";  // 4 bytes
inline constexpr uint32_t kCreatorRevision = 1;

// The byte that makes `bytes` sum to zero (mod 256) when stored in a
// checksum field that currently holds 0.
inline uint8_t ChecksumByte(absl::Span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
  return static_cast<uint8_t>(0x100 - sum);
}

// A zero-filled table of `size` bytes (at least the header) whose header is
// complete except for length and checksum, which FinishSdt fills in.
inline std::vector<uint8_t> NewSdt(std::string_view signature, uint8_t revision,
                                   size_t size = kSdtHeaderSize) {
  std::vector<uint8_t> table(size < kSdtHeaderSize ? kSdtHeaderSize : size, 0);
  StoreAscii(table, 0, signature, 4);
  table[8] = revision;
  StoreAscii(table, 10, kOemId, 6);
  StoreAscii(table, 16, kOemTableId, 8);
  StoreLe<uint32_t>(table, 24, kOemRevision);
  StoreAscii(table, 28, kCreatorId, 4);
  StoreLe<uint32_t>(table, 32, kCreatorRevision);
  return table;
}

// Call once the table has its final size.
inline void FinishSdt(std::vector<uint8_t>& table) {
  StoreLe<uint32_t>(table, kSdtLengthOffset, static_cast<uint32_t>(table.size()));
  table[kSdtChecksumOffset] = 0;
  table[kSdtChecksumOffset] = ChecksumByte(table);
}

}  // namespace mote::x86::acpi

#endif  // MOTE_ARCH_X86_ACPI_SDT_H_
