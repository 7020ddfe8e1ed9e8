#include "arch/x86/acpi/aml.h"

#include <cassert>

#include "arch/x86/acpi/le_bytes.h"

namespace mote::x86::acpi::aml {
namespace {

// AML opcodes and prefixes (ACPI 6.x section 20.3).
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kRootChar = 0x5c;
constexpr uint8_t kParentPrefixChar = 0x5e;
constexpr uint8_t kNullName = 0x00;
constexpr uint8_t kReturnOp = 0xa4;
constexpr uint8_t kNotifyOp = 0x86;

// Resource descriptor tags (section 6.4). Small items carry their length in
// the low 3 bits of the tag byte; large items have a 16-bit length after it.
constexpr uint8_t kIrqNoFlagsTag = 0x22;  // small item 0x04, length 2
constexpr uint8_t kIoPortTag = 0x47;      // small item 0x08, length 7
constexpr uint8_t kEndTag = 0x79;         // small item 0x0f, length 1
constexpr uint8_t kMemory32FixedTag = 0x86;
constexpr uint8_t kDWordAddressTag = 0x87;
constexpr uint8_t kWordAddressTag = 0x88;
constexpr uint8_t kExtendedInterruptTag = 0x89;
constexpr uint8_t kQWordAddressTag = 0x8a;

// Address Space descriptor fields.
constexpr uint8_t kResourceTypeMemory = 0;
constexpr uint8_t kResourceTypeIo = 1;
constexpr uint8_t kResourceTypeBusNumber = 2;
// General flags: bit 0 clear = producer (a bridge window), bit 1 clear =
// positive decode, bits 2/3 = minimum/maximum address fixed.
constexpr uint8_t kProducerFixedRange = 0x0c;
constexpr uint8_t kIoRangeEntire = 0x03;

constexpr size_t kNameSegLength = 4;

void Append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

Bytes Concat(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const Bytes& part : parts) Append(out, part);
  return out;
}

// opcode(s) PkgLength body: the shape of every AML container.
Bytes WithPkgLength(const Bytes& opcode, const Bytes& body) {
  Bytes out = opcode;
  Append(out, PkgLength(body.size()));
  Append(out, body);
  return out;
}

bool IsLeadNameChar(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsLeadNameChar(c) || (c >= '0' && c <= '9'); }

// Splits "A.BB.CCC" into segments; an empty string has no segments.
std::vector<std::string_view> SplitSegments(std::string_view path) {
  std::vector<std::string_view> segments;
  if (path.empty()) return segments;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    segments.push_back(path.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return segments;
}

size_t PrefixLength(std::string_view path) {
  if (!path.empty() && path[0] == '\\') return 1;
  size_t n = 0;
  while (n < path.size() && path[n] == '^') ++n;
  return n;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

template <typename T>
Bytes AddressSpace(uint8_t tag, uint8_t resource_type, uint8_t type_flags, T min, T max) {
  assert(min <= max);
  Bytes out{tag};
  // Fixed fields after the length: type, general flags, type flags, then
  // granularity, minimum, maximum, translation offset and length.
  AppendLe<uint16_t>(out, static_cast<uint16_t>(3 + 5 * sizeof(T)));
  out.push_back(resource_type);
  out.push_back(kProducerFixedRange);
  out.push_back(type_flags);
  AppendLe<T>(out, 0);
  AppendLe<T>(out, min);
  AppendLe<T>(out, max);
  AppendLe<T>(out, 0);
  AppendLe<T>(out, static_cast<T>(max - min + 1));
  return out;
}

uint8_t MemoryTypeFlags(Cacheability cacheability, bool writable) {
  // Bit 0 read/write, bits 1-2 cacheability; memory type 0 (AddressRangeMemory).
  return static_cast<uint8_t>((static_cast<uint8_t>(cacheability) << 1) | (writable ? 1 : 0));
}

}  // namespace

Bytes PkgLength(size_t body_length) {
  // One byte holds 6 bits; each following byte adds 8 bits to a 4-bit lead.
  for (size_t n = 1; n <= 4; ++n) {
    size_t total = body_length + n;
    size_t limit = n == 1 ? 0x3f : (size_t{1} << (4 + 8 * (n - 1))) - 1;
    if (total > limit) continue;
    if (n == 1) return Bytes{static_cast<uint8_t>(total)};
    Bytes out{static_cast<uint8_t>(((n - 1) << 6) | (total & 0x0f))};
    for (size_t i = 1; i < n; ++i) out.push_back(static_cast<uint8_t>(total >> (4 + 8 * (i - 1))));
    return out;
  }
  assert(false && "AML package longer than 2^28 - 1 bytes");
  return Bytes{};
}

bool IsValidNamePath(std::string_view path) {
  if (path.empty()) return false;
  size_t prefix = PrefixLength(path);
  std::string_view rest = path.substr(prefix);
  if (rest.empty()) return prefix > 0;
  std::vector<std::string_view> segments = SplitSegments(rest);
  if (segments.size() > 255) return false;
  for (std::string_view segment : segments) {
    if (segment.empty() || segment.size() > kNameSegLength) return false;
    if (!IsLeadNameChar(segment[0])) return false;
    for (char c : segment) {
      if (!IsNameChar(c)) return false;
    }
  }
  return true;
}

Bytes NameString(std::string_view path) {
  assert(IsValidNamePath(path));
  size_t prefix = PrefixLength(path);
  Bytes out;
  for (size_t i = 0; i < prefix; ++i) {
    out.push_back(path[i] == '\\' ? kRootChar : kParentPrefixChar);
  }
  std::vector<std::string_view> segments = SplitSegments(path.substr(prefix));
  if (segments.empty()) {
    out.push_back(kNullName);
    return out;
  }
  if (segments.size() == 2) {
    out.push_back(kDualNamePrefix);
  } else if (segments.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segments.size()));
  }
  for (std::string_view segment : segments) {
    for (size_t i = 0; i < kNameSegLength; ++i) {
      out.push_back(static_cast<uint8_t>(i < segment.size() ? segment[i] : '_'));
    }
  }
  return out;
}

Bytes Integer(uint64_t value) {
  if (value == 0) return Bytes{kZeroOp};
  if (value == 1) return Bytes{kOneOp};
  Bytes out;
  if (value <= 0xff) {
    out.push_back(kBytePrefix);
    AppendLe<uint8_t>(out, static_cast<uint8_t>(value));
  } else if (value <= 0xffff) {
    out.push_back(kWordPrefix);
    AppendLe<uint16_t>(out, static_cast<uint16_t>(value));
  } else if (value <= 0xffffffff) {
    out.push_back(kDWordPrefix);
    AppendLe<uint32_t>(out, static_cast<uint32_t>(value));
  } else {
    out.push_back(kQWordPrefix);
    AppendLe<uint64_t>(out, value);
  }
  return out;
}

Bytes String(std::string_view text) {
  Bytes out{kStringPrefix};
  for (char c : text) {
    assert(c > 0 && c <= 0x7f);  // AML strings are ASCII without NUL
    out.push_back(static_cast<uint8_t>(c));
  }
  out.push_back(0);
  return out;
}

Bytes EisaId(std::string_view id) {
  assert(id.size() == 7);
  uint32_t letters = 0;
  for (size_t i = 0; i < 3; ++i) {
    assert(id[i] >= 'A' && id[i] <= 'Z');
    letters = (letters << 5) | static_cast<uint32_t>(id[i] - 'A' + 1);
  }
  uint32_t product = 0;
  for (size_t i = 3; i < 7; ++i) {
    assert(HexDigit(id[i]) >= 0);
    product = (product << 4) | static_cast<uint32_t>(HexDigit(id[i]));
  }
  // 15 bits of letters then 16 bits of product number, stored big-endian:
  // the firmware world reads this DWord byte by byte.
  Bytes out{kDWordPrefix};
  out.push_back(static_cast<uint8_t>(letters >> 8));
  out.push_back(static_cast<uint8_t>(letters));
  out.push_back(static_cast<uint8_t>(product >> 8));
  out.push_back(static_cast<uint8_t>(product));
  return out;
}

Bytes Package(const std::vector<Bytes>& elements) {
  assert(elements.size() <= 255);  // larger needs VarPackageOp
  Bytes body{static_cast<uint8_t>(elements.size())};
  Append(body, Concat(elements));
  return WithPkgLength(Bytes{kPackageOp}, body);
}

Bytes Buffer(const Bytes& data) {
  Bytes body = Integer(data.size());
  Append(body, data);
  return WithPkgLength(Bytes{kBufferOp}, body);
}

Bytes Name(std::string_view path, const Bytes& object) {
  Bytes out{kNameOp};
  Append(out, NameString(path));
  Append(out, object);
  return out;
}

Bytes Scope(std::string_view path, const std::vector<Bytes>& terms) {
  Bytes body = NameString(path);
  Append(body, Concat(terms));
  return WithPkgLength(Bytes{kScopeOp}, body);
}

Bytes Device(std::string_view path, const std::vector<Bytes>& terms) {
  Bytes body = NameString(path);
  Append(body, Concat(terms));
  return WithPkgLength(Bytes{kExtOpPrefix, kDeviceOp}, body);
}

Bytes Method(std::string_view path, uint8_t arg_count, bool serialized,
             const std::vector<Bytes>& terms) {
  assert(arg_count <= 7);
  Bytes body = NameString(path);
  // MethodFlags: bits 0-2 argument count, bit 3 serialized, sync level 0.
  body.push_back(static_cast<uint8_t>(arg_count | (serialized ? 0x08 : 0)));
  Append(body, Concat(terms));
  return WithPkgLength(Bytes{kMethodOp}, body);
}

Bytes Return(const Bytes& value) {
  Bytes out{kReturnOp};
  Append(out, value);
  return out;
}

Bytes Notify(std::string_view path, uint64_t value) {
  Bytes out{kNotifyOp};
  Append(out, NameString(path));
  Append(out, Integer(value));
  return out;
}

Bytes ResourceTemplate(const std::vector<Bytes>& descriptors) {
  Bytes data = Concat(descriptors);
  data.push_back(kEndTag);
  uint8_t sum = 0;
  for (uint8_t b : data) sum = static_cast<uint8_t>(sum + b);
  data.push_back(static_cast<uint8_t>(0x100 - sum));
  return Buffer(data);
}

Bytes IoPort(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  Bytes out{kIoPortTag, 0x01};  // information bit 0: decodes 16 address bits
  AppendLe<uint16_t>(out, min);
  AppendLe<uint16_t>(out, max);
  out.push_back(alignment);
  out.push_back(length);
  return out;
}

Bytes IrqNoFlags(const std::vector<uint8_t>& irqs) {
  uint16_t mask = 0;
  for (uint8_t irq : irqs) {
    assert(irq < 16);
    mask = static_cast<uint16_t>(mask | (1u << irq));
  }
  Bytes out{kIrqNoFlagsTag};
  AppendLe<uint16_t>(out, mask);
  return out;
}

Bytes ExtendedInterrupt(uint32_t gsi, Trigger trigger, Polarity polarity, bool shared) {
  Bytes out{kExtendedInterruptTag};
  AppendLe<uint16_t>(out, 6);  // flags, count, one DWord
  // Bit 0 consumer, bit 1 edge, bit 2 active-low, bit 3 shared.
  out.push_back(static_cast<uint8_t>(0x01 | (static_cast<uint8_t>(trigger) << 1) |
                                     (static_cast<uint8_t>(polarity) << 2) | (shared ? 0x08 : 0)));
  out.push_back(1);
  AppendLe<uint32_t>(out, gsi);
  return out;
}

Bytes Memory32Fixed(uint32_t base, uint32_t length, bool writable) {
  Bytes out{kMemory32FixedTag};
  AppendLe<uint16_t>(out, 9);
  out.push_back(writable ? 1 : 0);
  AppendLe<uint32_t>(out, base);
  AppendLe<uint32_t>(out, length);
  return out;
}

Bytes WordBusNumber(uint16_t min, uint16_t max) {
  return AddressSpace<uint16_t>(kWordAddressTag, kResourceTypeBusNumber, 0, min, max);
}

Bytes WordIo(uint16_t min, uint16_t max) {
  return AddressSpace<uint16_t>(kWordAddressTag, kResourceTypeIo, kIoRangeEntire, min, max);
}

Bytes DWordMemory(uint32_t min, uint32_t max, Cacheability cacheability, bool writable) {
  return AddressSpace<uint32_t>(kDWordAddressTag, kResourceTypeMemory,
                                MemoryTypeFlags(cacheability, writable), min, max);
}

Bytes QWordMemory(uint64_t min, uint64_t max, Cacheability cacheability, bool writable) {
  return AddressSpace<uint64_t>(kQWordAddressTag, kResourceTypeMemory,
                                MemoryTypeFlags(cacheability, writable), min, max);
}

}  // namespace mote::x86::acpi::aml
