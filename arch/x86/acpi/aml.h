// A small writer for ACPI Machine Language (AML, ACPI 6.x chapter 20) and
// for the resource descriptors (chapter 6.4) that go into _CRS buffers: just
// the subset mote's DSDT needs. Every function returns the encoded bytes of
// one complete term, so terms nest by value and each container computes its
// PkgLength from the finished body:
//
//   Device("COM1", {Name("_HID", EisaId("PNP0501")),
//                   Name("_CRS", ResourceTemplate({IoPort(0x3f8, 0x3f8, 1, 8)}))})
//
// Names and arguments come from mote's own code, never from the guest: an
// invalid name or out-of-range argument is a programming error (assert).
// Pure functions without state; safe from any thread.
#ifndef MOTE_ARCH_X86_ACPI_AML_H_
#define MOTE_ARCH_X86_ACPI_AML_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace mote::x86::acpi::aml {

using Bytes = std::vector<uint8_t>;

// ---- Encodings (exposed for tests) ------------------------------------------

// PkgLength for a package whose contents after the PkgLength are
// `body_length` bytes. The encoded value counts its own 1-4 bytes too, so the
// smallest encoding that fits body + itself is chosen (max 2^28 - 1).
Bytes PkgLength(size_t body_length);

// True for a NameString mote can encode: an optional root prefix '\' or
// parent prefixes '^', then zero or more dot-separated segments of 1-4
// characters [A-Z0-9_] not starting with a digit. Segments are padded with
// '_' ("RTC" is the NameSeg "RTC_"). "\" alone is the root.
bool IsValidNamePath(std::string_view path);
Bytes NameString(std::string_view path);

// ---- Data objects --------------------------------------------------------------

// ZeroOp/OneOp for 0 and 1, else the smallest of Byte/Word/DWord/QWord.
Bytes Integer(uint64_t value);
// A NUL-terminated ASCII string (StringPrefix).
Bytes String(std::string_view text);
// A compressed EISA id such as "PNP0A03" (3 letters, 4 hex digits) as the
// DWord integer _HID/_CID expect.
Bytes EisaId(std::string_view id);
// A fixed Package of at most 255 already-encoded data objects.
Bytes Package(const std::vector<Bytes>& elements);
// A Buffer holding `data` (BufferSize is data.size()).
Bytes Buffer(const Bytes& data);

// ---- Named objects, scopes and methods --------------------------------------

Bytes Name(std::string_view path, const Bytes& object);
Bytes Scope(std::string_view path, const std::vector<Bytes>& terms);
Bytes Device(std::string_view path, const std::vector<Bytes>& terms);
// arg_count 0..7; serialized methods take a mutex around their body.
Bytes Method(std::string_view path, uint8_t arg_count, bool serialized,
             const std::vector<Bytes>& terms);
Bytes Return(const Bytes& value);
// Notify(path, value): e.g. 0x80 to a power button means "pressed".
Bytes Notify(std::string_view path, uint64_t value);

// ---- Resource descriptors (for ResourceTemplate) -------------------------------

// Wraps descriptors in a Buffer and appends the End Tag. The End Tag's
// checksum byte makes the descriptors plus the tag sum to zero (a zero
// checksum would also be accepted; a real one costs nothing).
Bytes ResourceTemplate(const std::vector<Bytes>& descriptors);

// I/O Port descriptor with 16-bit decode (ASL: IO (Decode16, ...)).
Bytes IoPort(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);
// IRQ descriptor without flags (ASL: IRQNoFlags () {...}): edge-triggered,
// active-high, exclusive, ISA IRQs 0-15.
Bytes IrqNoFlags(const std::vector<uint8_t>& irqs);

enum class Trigger : uint8_t { kLevel = 0, kEdge = 1 };
enum class Polarity : uint8_t { kActiveHigh = 0, kActiveLow = 1 };
// Extended Interrupt descriptor for one GSI, consumed by the device
// (ASL: Interrupt (ResourceConsumer, ...)).
Bytes ExtendedInterrupt(uint32_t gsi, Trigger trigger, Polarity polarity, bool shared);

// 32-bit fixed memory range (ASL: Memory32Fixed), e.g. to reserve the ECAM.
Bytes Memory32Fixed(uint32_t base, uint32_t length, bool writable);

// Address Space descriptors as a host bridge produces them (ResourceProducer,
// positive decode, fixed min and max, length = max - min + 1, granularity
// and translation 0).
Bytes WordBusNumber(uint16_t min, uint16_t max);
Bytes WordIo(uint16_t min, uint16_t max);  // EntireRange
enum class Cacheability : uint8_t {
  kNonCacheable = 0,
  kCacheable = 1,
  kWriteCombining = 2,
  kPrefetchable = 3
};
Bytes DWordMemory(uint32_t min, uint32_t max, Cacheability cacheability, bool writable);
Bytes QWordMemory(uint64_t min, uint64_t max, Cacheability cacheability, bool writable);

}  // namespace mote::x86::acpi::aml

#endif  // MOTE_ARCH_X86_ACPI_AML_H_
