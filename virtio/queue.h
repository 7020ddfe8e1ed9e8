// Queue: the device side of one virtio split virtqueue (virtio 1.2, 2.7): it
// takes descriptor chains from the available ring, validates each chain as a
// whole, and returns them to the driver through the used ring. It knows rings,
// not devices: what a chain means is the device's business.
// Owned by a transport (virtio-mmio or virtio-pci), which writes the
// configuration the driver chose; devices get a Queue* when activated.
// Thread-safety: none inside. A Queue is used by one thread at a time: the
// transport (under its lock) before activation, the event-loop thread after.
// Guest RAM is shared with the guest, so everything read from the rings is
// treated as hostile and read once.
#ifndef MOTE_VIRTIO_QUEUE_H_
#define MOTE_VIRTIO_QUEUE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "vmm/base/guest_memory.h"
#include "vmm/base/state_stream.h"

namespace mote::virtio {

// virtq_desc.flags
inline constexpr uint16_t kDescFlagNext = 1;
inline constexpr uint16_t kDescFlagWrite = 2;
inline constexpr uint16_t kDescFlagIndirect = 4;
// virtq_avail.flags (ignored by the device when EVENT_IDX is negotiated)
inline constexpr uint16_t kAvailFlagNoInterrupt = 1;

// The largest queue a split ring allows (2.7: Queue Size is at most 32768).
inline constexpr uint16_t kMaxQueueSize = 32768;

// Wire layouts, little-endian; mote runs on little-endian hosts only.
struct Descriptor {
  uint64_t addr = 0;
  uint32_t len = 0;
  uint16_t flags = 0;
  uint16_t next = 0;
};
static_assert(sizeof(Descriptor) == 16);

struct UsedElement {
  uint32_t id = 0;   // head of the chain (a uint32 only for padding)
  uint32_t len = 0;  // bytes the device wrote into the chain's writable part
};
static_assert(sizeof(UsedElement) == 8);

// Byte sizes of the three areas for a queue of `size` entries, including the
// trailing used_event / avail_event fields (always reserved, used only with
// EVENT_IDX).
inline constexpr uint64_t DescTableBytes(uint16_t size) { return 16ull * size; }
inline constexpr uint64_t AvailRingBytes(uint16_t size) { return 6 + 2ull * size; }
inline constexpr uint64_t UsedRingBytes(uint16_t size) { return 6 + 8ull * size; }

// A validated chain: every buffer lies inside one guest RAM region; readable
// (driver->device) parts come before writable (device->driver) parts in the
// chain. One span per descriptor, in chain order; zero-length buffers appear
// as empty spans. The spans alias guest RAM, which the guest may still change:
// a device copies out what it must check before it acts on it.
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<absl::Span<uint8_t>> readable;
  std::vector<absl::Span<uint8_t>> writable;
  uint64_t readable_bytes = 0;  // each total is at most UINT32_MAX
  uint64_t writable_bytes = 0;
};

enum class PopStatus { kEmpty, kChain, kBadChain };

struct PopResult {
  PopStatus status = PopStatus::kEmpty;
  DescriptorChain chain;  // kChain: complete; kBadChain: only chain.head is meaningful
  std::string error;      // kBadChain: what rule the chain broke (for a rate-limited log)
};

class Queue {
 public:
  // `max_size` is what the device offers (QueueNumMax): a power of two,
  // 1..32768; anything else is clamped to a valid value (a device bug, not
  // the guest's).
  explicit Queue(uint16_t max_size);

  uint16_t max_size() const { return max_size_; }

  // Configuration written by the driver through the transport. Setters store
  // what the driver wrote; Validate() says whether it is usable.
  void set_size(uint16_t size) { size_ = size; }
  uint16_t size() const { return size_; }
  void set_desc_table(uint64_t gpa) { desc_table_ = gpa; }
  void set_avail_ring(uint64_t gpa) { avail_ring_ = gpa; }
  void set_used_ring(uint64_t gpa) { used_ring_ = gpa; }
  uint64_t desc_table() const { return desc_table_; }
  uint64_t avail_ring() const { return avail_ring_; }
  uint64_t used_ring() const { return used_ring_; }
  void set_ready(bool ready) { ready_ = ready; }
  bool ready() const { return ready_; }
  // Negotiated features, set by the transport before the device is activated.
  void set_event_idx(bool negotiated) { event_idx_ = negotiated; }  // VIRTIO_F_RING_EVENT_IDX
  void set_indirect(bool negotiated) { indirect_ = negotiated; }    // VIRTIO_F_INDIRECT_DESC
  bool event_idx() const { return event_idx_; }
  bool indirect() const { return indirect_; }

  // OK if size is a power of two <= max_size and the three areas are aligned
  // (16/2/4) and each lies inside one guest RAM region. The transport calls it
  // when the driver sets QueueReady and refuses to make the queue ready if not.
  absl::Status Validate(const GuestMemory& mem) const;

  // The next available chain, validated as a whole before anything of it is
  // returned. kBadChain: the chain starting at chain.head breaks a rule; the
  // entry is consumed (the next Pop moves on) and the device completes it with
  // an error status if it can, else AddUsed(head, 0).
  // An error Status means the ring itself cannot be trusted (avail idx more
  // than `size` ahead of the device, a head index >= size, a ring outside
  // guest RAM) or the queue is not ready: the device must then set
  // DEVICE_NEEDS_RESET and stop using the queue.
  // With EVENT_IDX, it also publishes avail_event so the driver notifies when
  // it adds the next chain; on kEmpty it re-checks after publishing, so a
  // chain that races with going idle is not missed.
  absl::StatusOr<PopResult> Pop(const GuestMemory& mem);
  // Gives back the chain the last Pop returned, which the device cannot
  // take yet (a rate limit): the next Pop returns it again. The driver may
  // not notify for it, so the device must come back by itself.
  void UndoPop() { --next_avail_; }

  // Whether the driver has made a chain available that Pop has not taken (a
  // cheap look at avail idx, for polling; false when the queue is unusable).
  bool HasAvailable(const GuestMemory& mem) const;

  // Puts (head, len) in the used ring and publishes the new used idx with
  // release ordering. `head` must be < size (InvalidArgument otherwise).
  absl::Status AddUsed(const GuestMemory& mem, uint16_t head, uint32_t len);

  // Whether the driver wants an interrupt for the used buffers added since the
  // last call (false if there were none): VIRTQ_AVAIL_F_NO_INTERRUPT without
  // EVENT_IDX, used_event with it (vring_need_event). Call it once after a
  // batch of AddUsed calls.
  absl::StatusOr<bool> NeedsInterrupt(const GuestMemory& mem);

  // Back to the state after construction: not ready, size = max_size,
  // addresses 0, indices 0, no features.
  void Reset();

  // The device's cursors: the next avail ring entry it will read and the next
  // used idx it will publish. RestoreIndices sets both (snapshot restore,
  // tests that start near the 16-bit wrap); the rings must already agree.
  uint16_t next_avail() const { return next_avail_; }
  uint16_t next_used() const { return next_used_; }
  void RestoreIndices(uint16_t next_avail, uint16_t next_used);

  // Snapshot: the driver's configuration (size, ring addresses, ready), the
  // negotiated ring features and the device's cursors. RestoreState changes
  // nothing unless all of it is acceptable: a ready queue must pass
  // Validate(mem); a queue that is not ready keeps whatever size the driver
  // wrote (it is only a register until QueueReady checks it).
  void SaveState(StateWriter& out) const;
  absl::Status RestoreState(StateReader& in, const GuestMemory& mem);

 private:
  // FailedPrecondition unless the queue is ready with a usable size, so that
  // no ring arithmetic ever sees a size of 0 or a non-power of two.
  absl::Status CheckUsable() const;
  // Follows the chain at `head`; on a broken rule, returns the rule in
  // *error and false. A descriptor table outside RAM is a ring error (Status).
  absl::StatusOr<bool> Collect(const GuestMemory& mem, uint16_t head, DescriptorChain& chain,
                               std::string& error) const;
  // Writes avail_event = next_avail_ (EVENT_IDX only).
  absl::Status PublishAvailEvent(const GuestMemory& mem);

  uint16_t max_size_;
  uint16_t size_;
  uint64_t desc_table_ = 0;
  uint64_t avail_ring_ = 0;
  uint64_t used_ring_ = 0;
  bool ready_ = false;
  bool event_idx_ = false;
  bool indirect_ = false;
  uint16_t next_avail_ = 0;
  uint16_t next_used_ = 0;
  // Used entries added since NeedsInterrupt last ran (saturating at 2^16):
  // the ones an interrupt would announce.
  uint32_t used_since_signal_ = 0;
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_QUEUE_H_
