// Fuzz target: the snapshot state file's parser (vmm/snapshot/state_file.cc),
// the first thing `mote run --restore` reads from a file that may be
// corrupt or made up. Input: u8 flags, then the file. With flags bit 0 the
// target appends the right CRC-32, so inputs get past the checksum and reach
// the section parser. A file that parses must encode back to the same bytes
// and parse again to the same sections; a section's bytes then go through a
// StateReader as a device would read them.
#include <cstdlib>
#include <vector>

#include "tests/fuzz/fuzz_support.h"
#include "vmm/base/state_stream.h"
#include "vmm/snapshot/state_file.h"

using namespace mote;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  if (size == 0) return 0;
  std::vector<uint8_t> file(data + 1, data + size);
  if (data[0] & 1) {
    uint32_t crc = Crc32(file);
    const auto* b = reinterpret_cast<const uint8_t*>(&crc);
    file.insert(file.end(), b, b + 4);
  }
  absl::StatusOr<StateFile> parsed = StateFile::Parse(file);
  if (!parsed.ok()) return 0;
  std::vector<uint8_t> again = parsed->Encode();
  if (again != file) std::abort();
  absl::StatusOr<StateFile> reparsed = StateFile::Parse(again);
  if (!reparsed.ok() || reparsed->sections.size() != parsed->sections.size()) std::abort();
  for (const StateSection& s : parsed->sections) {
    StateReader in(s.bytes, s.name);
    while (in.ok() && in.remaining() > 0) {
      switch (in.U8() % 5) {
        case 0:
          (void)in.U16();
          break;
        case 1:
          (void)in.U32();
          break;
        case 2:
          (void)in.U64();
          break;
        case 3:
          (void)in.Bytes(64);
          break;
        default:
          (void)in.String(16);
          break;
      }
    }
    (void)in.status();
  }
  return 0;
}
