#include "virtio/queue.h"

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"

namespace mote::virtio {
namespace {

// Offsets inside the available and used rings (2.7.6, 2.7.8).
constexpr uint64_t kRingIdxOffset = 2;
constexpr uint64_t kRingEntriesOffset = 4;

// A 16-bit ring index that the guest reads or writes concurrently. Plain
// memcpy may split a 2-byte access in two (glibc does for tiny sizes), and a
// torn avail idx would look like a corrupt ring; so indices are accessed as
// atomics on the host mapping, which needs natural alignment.
absl::StatusOr<uint16_t*> RingIndex(const GuestMemory& mem, uint64_t gpa) {
  MOTE_ASSIGN_OR_RETURN(absl::Span<uint8_t> bytes, mem.GetSlice(GuestAddress{gpa}, 2));
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(uint16_t) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: ring index at 0x%x is misaligned", gpa));
  }
  return reinterpret_cast<uint16_t*>(bytes.data());
}

uint16_t LoadIndex(uint16_t* p, std::memory_order order) {
  return std::atomic_ref<uint16_t>(*p).load(order);
}

void StoreIndex(uint16_t* p, uint16_t value, std::memory_order order) {
  std::atomic_ref<uint16_t>(*p).store(value, order);
}

absl::Status CheckArea(const GuestMemory& mem, const char* what, uint64_t gpa, uint64_t bytes,
                       uint64_t align) {
  if (gpa % align != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: %s at 0x%x is not %d-byte aligned", what, gpa, align));
  }
  if (!mem.GetSlice(GuestAddress{gpa}, bytes).ok()) {
    return absl::OutOfRangeError(absl::StrFormat(
        "virtqueue: %s 0x%x+0x%x is not inside one guest RAM region", what, gpa, bytes));
  }
  return absl::OkStatus();
}

bool NoOverflow(uint64_t gpa, uint64_t bytes) {
  return gpa <= std::numeric_limits<uint64_t>::max() - bytes;
}

// vring_need_event (2.7.10): true if `event` is among the indices in
// [old_idx, new_idx), all in 16-bit wrapping arithmetic.
bool NeedEvent(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

// Used entries we stop counting at: past 2^16 the 16-bit comparison in
// NeedEvent is meaningless, and an interrupt is then always sent.
constexpr uint32_t kUsedCountSaturation = 1u << 16;

}  // namespace

Queue::Queue(uint16_t max_size)
    : max_size_(max_size == 0 ? 1 : std::bit_floor(max_size)), size_(max_size_) {}

void Queue::Reset() {
  size_ = max_size_;
  desc_table_ = avail_ring_ = used_ring_ = 0;
  ready_ = event_idx_ = indirect_ = false;
  next_avail_ = next_used_ = 0;
  used_since_signal_ = 0;
}

void Queue::RestoreIndices(uint16_t next_avail, uint16_t next_used) {
  next_avail_ = next_avail;
  next_used_ = next_used;
  used_since_signal_ = 0;
}

void Queue::SaveState(StateWriter& out) const {
  out.U16(size_);
  out.U64(desc_table_);
  out.U64(avail_ring_);
  out.U64(used_ring_);
  out.Bool(ready_);
  out.Bool(event_idx_);
  out.Bool(indirect_);
  out.U16(next_avail_);
  out.U16(next_used_);
  out.U32(used_since_signal_);
}

absl::Status Queue::RestoreState(StateReader& in, const GuestMemory& mem) {
  Queue q(max_size_);
  q.size_ = in.U16();
  q.desc_table_ = in.U64();
  q.avail_ring_ = in.U64();
  q.used_ring_ = in.U64();
  q.ready_ = in.Bool();
  q.event_idx_ = in.Bool();
  q.indirect_ = in.Bool();
  q.next_avail_ = in.U16();
  q.next_used_ = in.U16();
  q.used_since_signal_ = in.U32();
  if (!in.ok()) return in.status(/*want_end=*/false);
  if (q.ready_) {
    if (absl::Status s = q.Validate(mem); !s.ok()) in.Fail(std::string(s.message()));
  }
  if (q.used_since_signal_ > kUsedCountSaturation) {
    in.Fail(absl::StrFormat("virtqueue: %d used entries since the last interrupt, at most %d",
                            q.used_since_signal_, kUsedCountSaturation));
  }
  if (!in.ok()) return in.status(/*want_end=*/false);
  *this = q;
  return absl::OkStatus();
}

absl::Status Queue::Validate(const GuestMemory& mem) const {
  if (size_ == 0 || !std::has_single_bit(size_) || size_ > max_size_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: size %d is not a power of two in 1..%d", size_, max_size_));
  }
  MOTE_RETURN_IF_ERROR(CheckArea(mem, "descriptor table", desc_table_, DescTableBytes(size_), 16));
  MOTE_RETURN_IF_ERROR(CheckArea(mem, "available ring", avail_ring_, AvailRingBytes(size_), 2));
  MOTE_RETURN_IF_ERROR(CheckArea(mem, "used ring", used_ring_, UsedRingBytes(size_), 4));
  return absl::OkStatus();
}

absl::Status Queue::CheckUsable() const {
  if (!ready_) return absl::FailedPreconditionError("virtqueue: not ready");
  // The transport validates at QueueReady, but the driver may rewrite the
  // configuration afterwards; these checks keep every offset computation
  // below (index & (size - 1), base + offset) well-defined regardless.
  if (size_ == 0 || !std::has_single_bit(size_) || size_ > max_size_) {
    return absl::FailedPreconditionError(absl::StrFormat("virtqueue: bad size %d", size_));
  }
  if (!NoOverflow(desc_table_, DescTableBytes(size_)) ||
      !NoOverflow(avail_ring_, AvailRingBytes(size_)) ||
      !NoOverflow(used_ring_, UsedRingBytes(size_))) {
    return absl::FailedPreconditionError("virtqueue: a ring wraps the address space");
  }
  return absl::OkStatus();
}

absl::Status Queue::PublishAvailEvent(const GuestMemory& mem) {
  // avail_event sits after the used ring's entries (2.7.8).
  MOTE_ASSIGN_OR_RETURN(uint16_t * avail_event,
                        RingIndex(mem, used_ring_ + kRingEntriesOffset + 8ull * size_));
  StoreIndex(avail_event, next_avail_, std::memory_order_relaxed);
  return absl::OkStatus();
}

bool Queue::HasAvailable(const GuestMemory& mem) const {
  if (!CheckUsable().ok()) return false;
  absl::StatusOr<uint16_t*> avail_idx = RingIndex(mem, avail_ring_ + kRingIdxOffset);
  return avail_idx.ok() && LoadIndex(*avail_idx, std::memory_order_acquire) != next_avail_;
}

absl::StatusOr<PopResult> Queue::Pop(const GuestMemory& mem) {
  MOTE_RETURN_IF_ERROR(CheckUsable());
  MOTE_ASSIGN_OR_RETURN(uint16_t * avail_idx_ptr, RingIndex(mem, avail_ring_ + kRingIdxOffset));
  // Acquire: the ring entries and descriptors the driver wrote before it
  // bumped idx are read only after this load.
  uint16_t avail_idx = LoadIndex(avail_idx_ptr, std::memory_order_acquire);
  if (avail_idx == next_avail_ && event_idx_) {
    // Going idle: ask for a notification at the next entry, then look again.
    // Store-then-load needs a full fence; it pairs with the driver's barrier
    // between writing avail idx and reading avail_event, so either we see
    // the new entry or the driver sees our avail_event and notifies.
    MOTE_RETURN_IF_ERROR(PublishAvailEvent(mem));
    std::atomic_thread_fence(std::memory_order_seq_cst);
    avail_idx = LoadIndex(avail_idx_ptr, std::memory_order_acquire);
  }
  uint16_t pending = static_cast<uint16_t>(avail_idx - next_avail_);
  if (pending == 0) return PopResult{};
  if (pending > size_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue: avail idx %d is %d entries ahead of the device, more than the size %d",
        avail_idx, pending, size_));
  }
  // size_ is a power of two, so masking equals "modulo size" even across the
  // 16-bit wrap of the free-running index.
  uint64_t slot = next_avail_ & (size_ - 1);
  MOTE_ASSIGN_OR_RETURN(
      uint16_t head,
      mem.ReadObj<uint16_t>(GuestAddress{avail_ring_ + kRingEntriesOffset + 2 * slot}));
  if (head >= size_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: avail ring entry %d names head %d, outside a table of %d",
                        next_avail_, head, size_));
  }
  // Consumed whatever the chain holds: a bad chain must not be seen again.
  ++next_avail_;
  if (event_idx_) MOTE_RETURN_IF_ERROR(PublishAvailEvent(mem));

  PopResult result;
  result.chain.head = head;
  MOTE_ASSIGN_OR_RETURN(bool good, Collect(mem, head, result.chain, result.error));
  if (good) {
    result.status = PopStatus::kChain;
  } else {
    result.status = PopStatus::kBadChain;
    result.chain = DescriptorChain();  // nothing of a bad chain may be used
    result.chain.head = head;
  }
  return result;
}

absl::StatusOr<bool> Queue::Collect(const GuestMemory& mem, uint16_t head, DescriptorChain& chain,
                                    std::string& error) const {
  // Where descriptors come from: the queue's table, or (after an INDIRECT
  // descriptor) an indirect table already checked to lie in guest RAM.
  absl::Span<const uint8_t> indirect_table;
  uint32_t table_entries = size_;
  bool in_indirect = false;
  bool seen_writable = false;
  // Buffers seen so far, in the main table and an indirect table together.
  // Capping them at size_ ends any loop; the one INDIRECT descriptor a chain
  // may hold is not a buffer, hence the extra step in the hard bound below,
  // which keeps the walk finite even if a rule above it were wrong.
  uint32_t buffers = 0;
  uint16_t index = head;

  auto fail = [&](const std::string& rule) {
    error = absl::StrFormat("chain %d, %s %d: %s", head,
                            in_indirect ? "indirect entry" : "descriptor", index, rule);
    return false;
  };

  for (uint32_t step = 0; step <= uint32_t{size_} + 1; ++step) {
    Descriptor desc;
    if (in_indirect) {
      std::memcpy(&desc, indirect_table.data() + sizeof(Descriptor) * index, sizeof(desc));
    } else {
      // The table is part of the ring: if it is not in RAM, nothing is usable.
      MOTE_ASSIGN_OR_RETURN(desc, mem.ReadObj<Descriptor>(GuestAddress{
                                      desc_table_ + sizeof(Descriptor) * uint64_t{index}}));
    }

    if (desc.flags & kDescFlagIndirect) {
      if (in_indirect) return fail("nested indirect table");
      if (!indirect_) return fail("INDIRECT flag without VIRTIO_F_INDIRECT_DESC negotiated");
      if (desc.flags & kDescFlagNext) return fail("INDIRECT together with NEXT");
      if (desc.len == 0 || desc.len % sizeof(Descriptor) != 0) {
        return fail(
            absl::StrFormat("indirect table length %d is not a non-zero multiple of 16", desc.len));
      }
      uint32_t entries = desc.len / sizeof(Descriptor);
      if (entries > size_) {
        return fail(absl::StrFormat("indirect table of %d entries exceeds the queue size %d",
                                    entries, size_));
      }
      absl::StatusOr<absl::Span<uint8_t>> table = mem.GetSlice(GuestAddress{desc.addr}, desc.len);
      if (!table.ok()) {
        return fail(
            absl::StrFormat("indirect table 0x%x+0x%x is outside guest RAM", desc.addr, desc.len));
      }
      // The indirect descriptor's own WRITE flag means nothing (2.7.5.3.2).
      indirect_table = *table;
      table_entries = entries;
      in_indirect = true;
      index = 0;
      continue;
    }

    if (++buffers > size_) {
      return fail(absl::StrFormat("chain longer than the queue size %d (a loop?)", size_));
    }
    bool writable = desc.flags & kDescFlagWrite;
    if (writable) {
      seen_writable = true;
    } else if (seen_writable) {
      return fail("readable buffer after a writable one");
    }
    absl::StatusOr<absl::Span<uint8_t>> buffer = mem.GetSlice(GuestAddress{desc.addr}, desc.len);
    if (!buffer.ok()) {
      return fail(absl::StrFormat("buffer 0x%x+0x%x is not inside one guest RAM region", desc.addr,
                                  desc.len));
    }
    // Each len is < 2^32 and there are at most 32768 of them: no uint64 overflow.
    uint64_t& total = writable ? chain.writable_bytes : chain.readable_bytes;
    total += desc.len;
    if (total > std::numeric_limits<uint32_t>::max()) {
      return fail(absl::StrFormat("%s part exceeds 4 GiB", writable ? "writable" : "readable"));
    }
    (writable ? chain.writable : chain.readable).push_back(*buffer);

    if (!(desc.flags & kDescFlagNext)) return true;
    if (desc.next >= table_entries) {
      return fail(
          absl::StrFormat("next %d is outside a table of %d entries", desc.next, table_entries));
    }
    index = desc.next;
  }
  return fail("chain longer than the queue size");
}

absl::Status Queue::AddUsed(const GuestMemory& mem, uint16_t head, uint32_t len) {
  MOTE_RETURN_IF_ERROR(CheckUsable());
  if (head >= size_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: AddUsed head %d >= size %d", head, size_));
  }
  uint64_t slot = next_used_ & (size_ - 1);
  MOTE_RETURN_IF_ERROR(
      mem.WriteObj(GuestAddress{used_ring_ + kRingEntriesOffset + sizeof(UsedElement) * slot},
                   UsedElement{.id = head, .len = len}));
  MOTE_ASSIGN_OR_RETURN(uint16_t * used_idx, RingIndex(mem, used_ring_ + kRingIdxOffset));
  ++next_used_;
  // Release: the driver that sees the new idx also sees the element.
  StoreIndex(used_idx, next_used_, std::memory_order_release);
  if (used_since_signal_ < kUsedCountSaturation) ++used_since_signal_;
  return absl::OkStatus();
}

absl::StatusOr<bool> Queue::NeedsInterrupt(const GuestMemory& mem) {
  MOTE_RETURN_IF_ERROR(CheckUsable());
  // Our used idx store must be visible before we read the driver's
  // suppression fields (store-then-load: a full fence), pairing with the
  // driver's barrier between updating used_event/flags and re-reading used idx.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint32_t added = used_since_signal_;
  if (event_idx_) {
    // used_event sits after the available ring's entries (2.7.6).
    MOTE_ASSIGN_OR_RETURN(uint16_t * used_event,
                          RingIndex(mem, avail_ring_ + kRingEntriesOffset + 2ull * size_));
    uint16_t event = LoadIndex(used_event, std::memory_order_relaxed);
    used_since_signal_ = 0;
    if (added == 0) return false;
    if (added >= kUsedCountSaturation) return true;
    return NeedEvent(event, next_used_, static_cast<uint16_t>(next_used_ - added));
  }
  MOTE_ASSIGN_OR_RETURN(uint16_t * flags, RingIndex(mem, avail_ring_));
  bool suppressed = LoadIndex(flags, std::memory_order_relaxed) & kAvailFlagNoInterrupt;
  used_since_signal_ = 0;
  return added != 0 && !suppressed;
}

}  // namespace mote::virtio
