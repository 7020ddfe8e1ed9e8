// CollectDirtyRing: how mote reads one vCPU's KVM dirty ring, driven with a
// ring laid out as KVM lays it out.
#include "vmm/dirty_ring.h"

#include <catch2/catch.hpp>
#include <utility>
#include <vector>

namespace mote {
namespace {

using Marks = std::vector<std::pair<uint32_t, uint64_t>>;

Marks Collect(std::vector<kvm_dirty_gfn>& ring, uint32_t* next, uint32_t* taken) {
  Marks marks;
  *taken = CollectDirtyRing(ring.data(), static_cast<uint32_t>(ring.size()), next,
                            [&](uint32_t slot, uint64_t offset) {
                              marks.push_back({slot, offset});
                            });
  return marks;
}

void Publish(std::vector<kvm_dirty_gfn>& ring, uint32_t at, uint32_t slot, uint64_t offset) {
  kvm_dirty_gfn& gfn = ring[at % ring.size()];
  gfn.slot = slot;
  gfn.offset = offset;
  gfn.flags = KVM_DIRTY_GFN_F_DIRTY;
}

TEST_CASE("dirty ring: published entries are taken in order and handed back", "[dirty_ring]") {
  std::vector<kvm_dirty_gfn> ring(8);
  Publish(ring, 0, 0, 5);
  Publish(ring, 1, 1, 7);
  uint32_t next = 0, taken = 0;
  CHECK(Collect(ring, &next, &taken) == Marks{{0, 5}, {1, 7}});
  CHECK(taken == 2);
  CHECK(next == 2);
  CHECK(ring[0].flags == KVM_DIRTY_GFN_F_RESET);
  CHECK(ring[1].flags == KVM_DIRTY_GFN_F_RESET);
  CHECK(ring[2].flags == 0);
  // Nothing new: nothing taken, the position stays.
  CHECK(Collect(ring, &next, &taken).empty());
  CHECK(next == 2);
}

TEST_CASE("dirty ring: stops at an entry KVM has not published yet", "[dirty_ring]") {
  std::vector<kvm_dirty_gfn> ring(8);
  Publish(ring, 0, 0, 1);
  Publish(ring, 2, 0, 3);  // entry 1 is still being written
  uint32_t next = 0, taken = 0;
  CHECK(Collect(ring, &next, &taken) == Marks{{0, 1}});
  Publish(ring, 1, 0, 2);
  CHECK(Collect(ring, &next, &taken) == Marks{{0, 2}, {0, 3}});
  CHECK(next == 3);
}

TEST_CASE("dirty ring: wraps round, and a full ring is read once, not forever", "[dirty_ring]") {
  std::vector<kvm_dirty_gfn> ring(4);
  uint32_t next = 6, taken = 0;  // KVM's index runs on past the ring's size
  for (uint32_t i = 0; i < 4; ++i) Publish(ring, 6 + i, 0, 100 + i);
  CHECK(Collect(ring, &next, &taken) == Marks{{0, 100}, {0, 101}, {0, 102}, {0, 103}});
  CHECK(taken == 4);
  CHECK(next == 10);
  // Handed back (RESET) entries are not dirty: not taken again.
  CHECK(Collect(ring, &next, &taken).empty());
}

}  // namespace
}  // namespace mote
