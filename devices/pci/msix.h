// MsixVectors: the MSI-X table and pending-bit array of one function (PCI
// 3.0, 6.8.2) and the masking rules that decide whether a signalled vector
// reaches the guest now or waits as a pending bit. The platform side
// (MsiRouter: a KVM GSI route and an irqfd per vector in mote) is told a
// vector's message only when the vector can be delivered, so a guest that
// rewrites a masked entry costs nothing.
// Thread-safety: all calls from any thread; one lock inside.
#ifndef MOTE_DEVICES_PCI_MSIX_H_
#define MOTE_DEVICES_PCI_MSIX_H_

#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "vmm/base/state_stream.h"

namespace mote::pci {

inline constexpr uint16_t kMsixEntrySize = 16;
inline constexpr uint16_t kMsixControlEnable = 1u << 15, kMsixControlFunctionMask = 1u << 14;

class MsiRouter {
 public:
  virtual ~MsiRouter() = default;
  // From now on, Fire(vector) delivers this message.
  virtual void Route(uint16_t vector, uint64_t address, uint32_t data) = 0;
  virtual void Fire(uint16_t vector) = 0;
};

class MsixVectors {
 public:
  // Every entry starts masked, as after reset. `router` outlives this.
  MsixVectors(uint16_t count, MsiRouter* router);

  uint16_t count() const { return static_cast<uint16_t>(entries_.size()); }
  // Offsets are relative to the table / PBA start; 4- and 8-byte aligned
  // accesses only (6.8.2.9), others read as zero and are ignored.
  void ReadTable(uint64_t offset, absl::Span<uint8_t> data);
  void WriteTable(uint64_t offset, absl::Span<const uint8_t> data);
  void ReadPba(uint64_t offset, absl::Span<uint8_t> data);
  // The Message Control register's enable and function-mask bits.
  void SetControl(uint16_t control);
  bool enabled();
  bool function_masked();

  // Delivers `vector` now, or leaves it pending while masked. False (and
  // nothing recorded) while MSI-X is disabled: the function would use INTx.
  bool Signal(uint16_t vector);
  // Back to the reset state: disabled, every entry masked, nothing pending.
  void Reset();

  // Snapshot: each entry's four words and pending bit, and the enable and
  // function-mask bits. RestoreState checks everything before it changes
  // anything, then tells the router every deliverable entry's message again
  // (a new VM has no GSI routes yet) and fires what is pending there; an
  // entry still masked stays pending, as it was.
  void SaveState(StateWriter& out);
  absl::Status RestoreState(StateReader& in);

 private:
  struct Entry {
    uint32_t words[4] = {0, 0, 0, 1};  // address low, address high, data, vector control
    bool pending = false;
    bool routed = false;  // the router has this entry's current message
    uint64_t routed_address = 0;
    uint32_t routed_data = 0;
  };
  bool Deliverable(const Entry& e) const;
  // Routes a deliverable entry whose message changed and fires what was pending.
  void Sync(uint16_t vector);

  MsiRouter* const router_;
  std::mutex mu_;
  std::vector<Entry> entries_;
  bool enabled_ = false, function_masked_ = false;
};

}  // namespace mote::pci

#endif  // MOTE_DEVICES_PCI_MSIX_H_
