// TestVirtqueue: the guest driver's side of one split virtqueue, for unit
// tests of Queue and of virtio devices. It lays out a descriptor table, an
// available ring and a used ring in a GuestMemory, hands buffers
// to the device the way a driver would, and reads back what the device
// returned. It also writes raw, deliberately broken descriptors and ring
// entries for adversarial tests.
//
//   auto mem = *GuestMemory::Create({{0, 1 << 20}});
//   Queue queue(256);
//   TestVirtqueue vq(*mem, 256);      // rings at 0x1000.., data area after them
//   vq.Configure(queue);              // size, addresses, ready: what a transport would set
//   uint64_t out = vq.Alloc(64);
//   uint16_t head = vq.AddChain({{vq.AllocBytes("request"), 7, false}, {out, 64, true}});
//   ... device: queue.Pop(*mem), queue.AddUsed(*mem, head, n) ...
//   std::optional<UsedElement> used = vq.TakeUsed();
//
// Misuse of the helper itself (out of descriptors or data space, an access
// outside RAM) throws std::runtime_error, which Catch2 reports as a failure.
// Header-only; single-threaded: it plays a driver that never runs
// concurrently with the device under test.
#ifndef MOTE_TESTS_SUPPORT_TEST_VIRTQUEUE_H_
#define MOTE_TESTS_SUPPORT_TEST_VIRTQUEUE_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "virtio/queue.h"
#include "virtio/virtio_device.h"
#include "vmm/base/guest_memory.h"

namespace mote::virtio::testing {

// One buffer of a chain as the driver describes it.
struct Buffer {
  uint64_t gpa = 0;
  uint32_t len = 0;
  bool writable = false;  // device-writable (VIRTQ_DESC_F_WRITE)
};

// The transport's side of a device under test: counts what the device signals.
class FakeInterrupt : public VirtioInterrupt {
 public:
  void SignalUsedBuffers(uint16_t queue) override {
    ++used;
    last_queue = queue;
  }
  void SignalNeedsReset() override { ++needs_reset; }
  int used = 0, needs_reset = 0;
  uint16_t last_queue = 0;
};

class TestVirtqueue {
 public:
  // Where the rings live, and the range [data_begin, data_end) from which
  // Alloc() hands out buffers and indirect tables.
  struct Layout {
    uint64_t desc_table = 0;
    uint64_t avail_ring = 0;
    uint64_t used_ring = 0;
    uint64_t data_begin = 0;
    uint64_t data_end = 0;
  };

  // The rings packed from `base` (aligned as the spec requires) and the data
  // area from the next page after them up to the end of base's RAM region.
  static Layout DefaultLayout(const GuestMemory& mem, uint16_t size, uint64_t base = 0x1000) {
    Layout l;
    l.desc_table = AlignUp(base, 16);
    l.avail_ring = l.desc_table + DescTableBytes(size);
    l.used_ring = AlignUp(l.avail_ring + AvailRingBytes(size), 4);
    l.data_begin = AlignUp(l.used_ring + UsedRingBytes(size), 4096);
    l.data_end = l.data_begin;
    for (const GuestMemory::Region& r : mem.regions()) {
      if (base >= r.guest_base && base < r.guest_base + r.size) l.data_end = r.guest_base + r.size;
    }
    if (l.data_end <= l.data_begin) throw std::runtime_error("TestVirtqueue: no room for rings");
    return l;
  }

  // Lays out a queue of `size` entries (the caller picks a power of two) and
  // zeroes its rings. The rings need not be valid: tests may pass a broken
  // layout on purpose.
  TestVirtqueue(const GuestMemory& mem, uint16_t size, uint64_t base = 0x1000)
      : TestVirtqueue(mem, size, DefaultLayout(mem, size, base)) {}
  TestVirtqueue(const GuestMemory& mem, uint16_t size, const Layout& layout)
      : mem_(mem), size_(size), layout_(layout), next_data_(layout.data_begin) {
    if (size_ == 0) throw std::runtime_error("TestVirtqueue: size 0");
    Zero(layout_.desc_table, DescTableBytes(size_));
    Zero(layout_.avail_ring, AvailRingBytes(size_));
    Zero(layout_.used_ring, UsedRingBytes(size_));
    for (uint32_t i = 0; i < size_; ++i) free_.push_back(static_cast<uint16_t>(i));
  }

  const Layout& layout() const { return layout_; }
  uint16_t size() const { return size_; }

  // Sets what a transport would after the driver's register writes.
  void Configure(Queue& queue, bool ready = true) const {
    queue.set_size(size_);
    queue.set_desc_table(layout_.desc_table);
    queue.set_avail_ring(layout_.avail_ring);
    queue.set_used_ring(layout_.used_ring);
    queue.set_ready(ready);
  }

  // Moves both free-running indices (driver and `queue`, if given) to `idx`,
  // as if idx chains had already gone round; for tests of the 16-bit wrap.
  void StartIndicesAt(uint16_t idx, Queue* queue) {
    Put<uint16_t>(layout_.avail_ring + 2, idx);
    Put<uint16_t>(layout_.used_ring + 2, idx);
    avail_idx_ = used_seen_ = idx;
    if (queue != nullptr) queue->RestoreIndices(idx, idx);
  }

  // ---- Data area: a bump allocator over [data_begin, data_end). ----

  uint64_t Alloc(uint64_t len, uint64_t align = 16) {
    uint64_t gpa = AlignUp(next_data_, align);
    if (gpa > layout_.data_end || len > layout_.data_end - gpa) {
      throw std::runtime_error("TestVirtqueue: data area exhausted");
    }
    next_data_ = gpa + len;
    return gpa;
  }
  // Allocates a buffer holding `bytes` and returns its address.
  uint64_t AllocBytes(absl::Span<const uint8_t> bytes) {
    uint64_t gpa = Alloc(bytes.size());
    WriteBytes(gpa, bytes);
    return gpa;
  }
  uint64_t AllocBytes(std::string_view text) { return AllocBytes(AsBytes(text)); }
  // Rewinds the allocator (for long tests that reuse the area).
  void ResetData() { next_data_ = layout_.data_begin; }

  void WriteBytes(uint64_t gpa, absl::Span<const uint8_t> bytes) const {
    Check(mem_.Write(GuestAddress{gpa}, bytes).ok(), "write outside guest RAM");
  }
  void WriteBytes(uint64_t gpa, std::string_view text) const { WriteBytes(gpa, AsBytes(text)); }
  std::vector<uint8_t> ReadBytes(uint64_t gpa, uint64_t len) const {
    std::vector<uint8_t> out(len);
    Check(mem_.Read(GuestAddress{gpa}, absl::Span<uint8_t>(out)).ok(), "read outside guest RAM");
    return out;
  }
  std::string ReadString(uint64_t gpa, uint64_t len) const {
    std::vector<uint8_t> bytes = ReadBytes(gpa, len);
    return std::string(bytes.begin(), bytes.end());
  }

  // ---- Descriptors. ----

  // Raw access to the queue's descriptor table; bypasses the allocator that
  // WriteChain uses (a raw chain is best built on a fresh TestVirtqueue).
  void WriteDescriptor(uint16_t index, const Descriptor& desc) const {
    Put(layout_.desc_table + sizeof(Descriptor) * uint64_t{index}, desc);
  }
  Descriptor ReadDescriptor(uint16_t index) const {
    return Get<Descriptor>(layout_.desc_table + sizeof(Descriptor) * uint64_t{index});
  }

  // `buffers` as descriptors linked through next = i + 1 (NEXT on all but the
  // last): the contents of an indirect table, or a raw chain to tamper with.
  static std::vector<Descriptor> Linked(const std::vector<Buffer>& buffers) {
    std::vector<Descriptor> descs;
    for (size_t i = 0; i < buffers.size(); ++i) {
      Descriptor d{.addr = buffers[i].gpa, .len = buffers[i].len};
      if (buffers[i].writable) d.flags |= kDescFlagWrite;
      if (i + 1 < buffers.size()) {
        d.flags |= kDescFlagNext;
        d.next = static_cast<uint16_t>(i + 1);
      }
      descs.push_back(d);
    }
    return descs;
  }

  // Writes `buffers` as a direct chain in free descriptors (not necessarily
  // contiguous, as a real driver's free list) and returns its head; the
  // descriptors are freed again when TakeUsed sees the head come back.
  uint16_t WriteChain(const std::vector<Buffer>& buffers) {
    if (buffers.empty()) throw std::runtime_error("TestVirtqueue: empty chain");
    if (buffers.size() > free_.size()) {
      throw std::runtime_error("TestVirtqueue: out of descriptors");
    }
    std::vector<uint16_t> indices(free_.begin(), free_.begin() + buffers.size());
    free_.erase(free_.begin(), free_.begin() + buffers.size());
    std::vector<Descriptor> descs = Linked(buffers);
    for (size_t i = 0; i < descs.size(); ++i) {
      if (descs[i].flags & kDescFlagNext) descs[i].next = indices[i + 1];
      WriteDescriptor(indices[i], descs[i]);
    }
    in_flight_[indices[0]] = indices;
    return indices[0];
  }
  // Writes `table` to the data area and returns its address (len = 16 * entries).
  uint64_t WriteIndirectTable(const std::vector<Descriptor>& table) {
    uint64_t gpa = Alloc(sizeof(Descriptor) * table.size());
    for (size_t i = 0; i < table.size(); ++i) Put(gpa + sizeof(Descriptor) * i, table[i]);
    return gpa;
  }
  // One INDIRECT descriptor pointing at a table holding `buffers`; returns its
  // head. (The queue accepts it only after set_indirect(true).)
  uint16_t WriteIndirectChain(const std::vector<Buffer>& buffers) {
    uint64_t table = WriteIndirectTable(Linked(buffers));
    uint16_t head =
        WriteChain({{table, static_cast<uint32_t>(sizeof(Descriptor) * buffers.size())}});
    Descriptor d = ReadDescriptor(head);
    d.flags = kDescFlagIndirect;
    WriteDescriptor(head, d);
    return head;
  }
  // Write a chain and publish it in one step; return the head.
  uint16_t AddChain(const std::vector<Buffer>& buffers) { return Publish(WriteChain(buffers)); }
  uint16_t AddIndirectChain(const std::vector<Buffer>& buffers) {
    return Publish(WriteIndirectChain(buffers));
  }
  size_t free_descriptors() const { return free_.size(); }

  // ---- Available ring. ----

  // Puts `head` (any value, valid or not) in the next available slot and
  // bumps avail idx, as a driver does; returns head.
  uint16_t Publish(uint16_t head) {
    WriteAvailEntry(avail_idx_, head);
    SetAvailIdx(static_cast<uint16_t>(avail_idx_ + 1));
    return head;
  }
  // Raw: the ring slot for free-running index `idx` (taken modulo size).
  void WriteAvailEntry(uint16_t idx, uint16_t head) const {
    Put<uint16_t>(layout_.avail_ring + 4 + 2ull * (idx % size_), head);
  }
  // Raw: sets avail idx, e.g. to jump further ahead than the ring holds.
  void SetAvailIdx(uint16_t idx) {
    avail_idx_ = idx;
    Put<uint16_t>(layout_.avail_ring + 2, idx);
  }
  uint16_t avail_idx() const { return avail_idx_; }
  // VIRTQ_AVAIL_F_NO_INTERRUPT (honoured by the device only without EVENT_IDX).
  void SetNoInterrupt(bool no_interrupt) const {
    Put<uint16_t>(layout_.avail_ring, no_interrupt ? kAvailFlagNoInterrupt : 0);
  }
  // used_event (EVENT_IDX): interrupt me once used idx moves past this value.
  void SetUsedEvent(uint16_t idx) const {
    Put<uint16_t>(layout_.avail_ring + 4 + 2ull * size_, idx);
  }
  // avail_event (EVENT_IDX): the avail index at which the device asks to be notified.
  uint16_t AvailEvent() const { return Get<uint16_t>(layout_.used_ring + 4 + 8ull * size_); }

  // ---- Used ring. ----

  uint16_t UsedIdx() const { return Get<uint16_t>(layout_.used_ring + 2); }
  uint16_t UsedFlags() const { return Get<uint16_t>(layout_.used_ring); }
  // The element at free-running index `idx` (taken modulo size).
  UsedElement UsedAt(uint16_t idx) const {
    return Get<UsedElement>(layout_.used_ring + 4 + sizeof(UsedElement) * (idx % size_));
  }
  // The next used element the driver has not consumed yet, if the device
  // published one; frees the descriptors of a chain WriteChain made.
  std::optional<UsedElement> TakeUsed() {
    if (UsedIdx() == used_seen_) return std::nullopt;
    UsedElement e = UsedAt(used_seen_++);
    if (auto it = in_flight_.find(static_cast<uint16_t>(e.id)); it != in_flight_.end()) {
      free_.insert(free_.end(), it->second.begin(), it->second.end());
      in_flight_.erase(it);
    }
    return e;
  }
  // Used elements published and not yet taken.
  uint16_t PendingUsed() const { return static_cast<uint16_t>(UsedIdx() - used_seen_); }

 private:
  static uint64_t AlignUp(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }
  static absl::Span<const uint8_t> AsBytes(std::string_view text) {
    return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  }
  static void Check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("TestVirtqueue: ") + what);
  }
  template <typename T>
  void Put(uint64_t gpa, const T& value) const {
    Check(mem_.WriteObj(GuestAddress{gpa}, value).ok(), "write outside guest RAM");
  }
  template <typename T>
  T Get(uint64_t gpa) const {
    absl::StatusOr<T> v = mem_.ReadObj<T>(GuestAddress{gpa});
    Check(v.ok(), "read outside guest RAM");
    return *v;
  }
  // Best effort: a deliberately misplaced ring is simply not cleared.
  void Zero(uint64_t gpa, uint64_t len) const {
    absl::StatusOr<absl::Span<uint8_t>> s = mem_.GetSlice(GuestAddress{gpa}, len);
    if (s.ok()) std::fill(s->begin(), s->end(), 0);
  }

  const GuestMemory& mem_;
  uint16_t size_;
  Layout layout_;
  uint64_t next_data_;
  uint16_t avail_idx_ = 0;  // the driver's copy of avail idx
  uint16_t used_seen_ = 0;  // used entries consumed by TakeUsed
  std::deque<uint16_t> free_;
  std::map<uint16_t, std::vector<uint16_t>> in_flight_;  // head -> its descriptors
};

}  // namespace mote::virtio::testing

#endif  // MOTE_TESTS_SUPPORT_TEST_VIRTQUEUE_H_
