// Bus: non-overlapping address ranges (I/O ports or MMIO) mapped to devices.
// A device sees offsets from the start of its range, never absolute addresses.
// Unmapped reads return all-ones; unmapped writes are counted and ignored.
// Thread-safety: Insert/Remove happen before vCPUs run; Read/Write may then be
// called from any vCPU thread concurrently (devices lock their own state).
#ifndef MOTE_VMM_BASE_BUS_H_
#define MOTE_VMM_BASE_BUS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "vmm/base/state_stream.h"

namespace mote {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // `data.size()` is the access width (1, 2, 4 or 8 for PIO/MMIO exits).
  // Guest mistakes are handled (and rate-limit logged) inside the device.
  virtual void Read(uint64_t offset, absl::Span<uint8_t> data) = 0;
  virtual void Write(uint64_t offset, absl::Span<const uint8_t> data) = 0;

  // Snapshot and migration (docs/snapshot.md): the device's state in its own
  // encoding, whose layout is state_version(). 0, the default: the device
  // cannot be saved, and a snapshot of a VM holding it is refused, naming
  // it. Both run with the vCPUs stopped, on the event-loop thread; Restore
  // checks every value (the bytes may be hostile) and runs before the guest.
  virtual uint32_t state_version() const { return 0; }
  virtual void SaveState(StateWriter& out) { (void)out; }
  virtual absl::Status RestoreState(StateReader& in) {
    (void)in;
    return absl::UnimplementedError("this device cannot be restored");
  }
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  // InvalidArgument on len 0 or wrap-around, AlreadyExists on overlap.
  absl::Status Insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t len);
  absl::Status Remove(uint64_t base);

  // Dispatch an access; false when no device covers all of [addr, addr+size).
  // An unmapped read fills `data` with 0xff.
  bool Read(uint64_t addr, absl::Span<uint8_t> data) const;
  bool Write(uint64_t addr, absl::Span<const uint8_t> data) const;

  uint64_t unmapped_writes() const { return unmapped_writes_.load(std::memory_order_relaxed); }
  uint64_t unmapped_reads() const { return unmapped_reads_.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }

 private:
  struct Entry {
    uint64_t len;
    std::shared_ptr<BusDevice> device;
  };
  // Finds the device covering [addr, addr+size) and the offset into it.
  const Entry* Find(uint64_t addr, uint64_t size, uint64_t* offset) const;

  std::string name_;
  std::map<uint64_t, Entry> entries_;  // keyed by base
  mutable std::atomic<uint64_t> unmapped_writes_{0};
  mutable std::atomic<uint64_t> unmapped_reads_{0};
};

}  // namespace mote

#endif  // MOTE_VMM_BASE_BUS_H_
