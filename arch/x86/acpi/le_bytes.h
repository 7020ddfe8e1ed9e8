// Little-endian byte helpers for the ACPI builders: every multi-byte field in
// ACPI tables and AML is little-endian and usually unaligned, so fields are
// written and read byte by byte rather than through packed structs.
// Header only; pure functions, safe from any thread.
#ifndef MOTE_ARCH_X86_ACPI_LE_BYTES_H_
#define MOTE_ARCH_X86_ACPI_LE_BYTES_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/types/span.h"

namespace mote::x86::acpi {

template <typename T>
void AppendLe(std::vector<uint8_t>& out, T value) {
  static_assert(std::is_unsigned_v<T>);
  for (size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<uint8_t>(value >> (8 * i)));
  }
}

// Overwrites sizeof(T) bytes at `offset`, which must lie inside `out`.
template <typename T>
void StoreLe(std::vector<uint8_t>& out, size_t offset, T value) {
  static_assert(std::is_unsigned_v<T>);
  assert(offset + sizeof(T) <= out.size());
  for (size_t i = 0; i < sizeof(T); ++i) {
    out[offset + i] = static_cast<uint8_t>(value >> (8 * i));
  }
}

// Reads sizeof(T) bytes at `offset`, which must lie inside `in`.
template <typename T>
T LoadLe(absl::Span<const uint8_t> in, size_t offset) {
  static_assert(std::is_unsigned_v<T>);
  assert(offset + sizeof(T) <= in.size());
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    value = static_cast<T>(value | static_cast<T>(static_cast<T>(in[offset + i]) << (8 * i)));
  }
  return value;
}

// Writes `text` into a fixed-width field at `offset`, padded with `pad`.
inline void StoreAscii(std::vector<uint8_t>& out, size_t offset, std::string_view text,
                       size_t width, char pad = ' ') {
  assert(text.size() <= width && offset + width <= out.size());
  for (size_t i = 0; i < width; ++i) {
    out[offset + i] = static_cast<uint8_t>(i < text.size() ? text[i] : pad);
  }
}

}  // namespace mote::x86::acpi

#endif  // MOTE_ARCH_X86_ACPI_LE_BYTES_H_
