// StateWriter and StateReader: the byte encoding of saved VM state
// (snapshots and migration, docs/snapshot.md). Little-endian integers and
// length-prefixed byte strings, nothing else: each device writes its fields
// in a fixed order and reads them back in the same order.
// A StateReader is for hostile bytes (a snapshot file may be corrupt or made
// up): a read past the end, or a length that does not fit, sets a sticky
// error and returns zeros from then on, so a device reads all its fields and
// checks status() once, then checks the values it got before using them.
// Thread-safety: none; one owner.
#ifndef MOTE_VMM_BASE_STATE_STREAM_H_
#define MOTE_VMM_BASE_STATE_STREAM_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace mote {

class StateWriter {
 public:
  void U8(uint8_t v) { Raw(&v, 1); }
  void U16(uint16_t v) { Raw(&v, 2); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  // A u32 length, then the bytes.
  void Bytes(absl::Span<const uint8_t> bytes);
  void String(std::string_view s);
  // A KVM structure as it is in memory (fixed size: its size is checked on
  // reading).
  template <typename T>
  void Struct(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    Bytes(absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> Take() { return std::move(bytes_); }

 private:
  void Raw(const void* p, size_t n);
  std::vector<uint8_t> bytes_;
};

class StateReader {
 public:
  // `what` names the state in errors ("serial@0x3f8").
  StateReader(absl::Span<const uint8_t> bytes, std::string what)
      : bytes_(bytes), what_(std::move(what)) {}

  uint8_t U8();
  uint16_t U16();
  uint32_t U32();
  uint64_t U64();
  bool Bool() { return U8() != 0; }
  // At most `max_len` bytes; longer is an error.
  std::vector<uint8_t> Bytes(size_t max_len);
  std::string String(size_t max_len);
  // Exactly sizeof(T) bytes, or an error (and a zeroed T).
  template <typename T>
  T Struct() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memset(&value, 0, sizeof(T));
    std::vector<uint8_t> raw = Bytes(sizeof(T));
    if (raw.size() != sizeof(T)) {
      Fail("a structure of " + std::to_string(raw.size()) + " bytes, want " +
           std::to_string(sizeof(T)));
    } else {
      std::memcpy(&value, raw.data(), sizeof(T));
    }
    return value;
  }

  // Marks the state bad (a value out of range): the first reason is kept.
  void Fail(std::string_view why);
  // OK, or DataLoss naming the state and the first problem. With
  // `want_end`, bytes left over are a problem too.
  absl::Status status(bool want_end = true) const;
  bool ok() const { return error_.empty(); }
  size_t remaining() const { return bytes_.size() - pos_; }

 private:
  bool Take(void* out, size_t n);
  absl::Span<const uint8_t> bytes_;
  size_t pos_ = 0;
  std::string what_;
  std::string error_;
};

// CRC-32 (IEEE 802.3, as zlib's crc32), continuing from `crc`.
uint32_t Crc32(absl::Span<const uint8_t> bytes, uint32_t crc = 0);

}  // namespace mote

#endif  // MOTE_VMM_BASE_STATE_STREAM_H_
