#include "virtio/queue.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/test_virtqueue.h"
#include "vmm/base/guest_memory.h"

namespace mote::virtio {
namespace {

using Catch::Matchers::Contains;
using testing::Buffer;
using testing::TestVirtqueue;

constexpr uint16_t kSize = 16;
// Adversarial tests write raw descriptors here; TestVirtqueue's allocator
// hands out 0, 1, ... first, so the follow-up good chains do not collide.
constexpr uint16_t kRaw = 8;

std::unique_ptr<GuestMemory> MakeMemory(const std::vector<MemoryRegionSpec>& specs) {
  absl::StatusOr<std::unique_ptr<GuestMemory>> mem = GuestMemory::Create(specs);
  REQUIRE(mem.ok());
  return std::move(*mem);
}

std::string AsString(absl::Span<const uint8_t> span) {
  return std::string(span.begin(), span.end());
}

// One queue of kSize entries over 1 MiB of RAM, configured as a driver would.
struct QueueFixture {
  explicit QueueFixture(const std::vector<MemoryRegionSpec>& specs = {{0, 1 << 20}})
      : mem(MakeMemory(specs)), queue(kSize), vq(*mem, kSize) {
    vq.Configure(queue);
    REQUIRE(queue.Validate(*mem).ok());
  }

  PopResult MustPop() {
    absl::StatusOr<PopResult> r = queue.Pop(*mem);
    REQUIRE(r.ok());
    return std::move(*r);
  }

  // The next chain is `head` and breaks a rule whose description contains
  // `rule`; the queue then moves on and serves the following good chain.
  void ExpectBadChain(uint16_t head, const std::string& rule) {
    PopResult bad = MustPop();
    REQUIRE(bad.status == PopStatus::kBadChain);
    CHECK(bad.chain.head == head);
    CHECK_THAT(bad.error, Contains(rule));
    CHECK(bad.chain.readable.empty());
    CHECK(bad.chain.writable.empty());
    REQUIRE(queue.AddUsed(*mem, head, 0).ok());

    uint16_t good_head = vq.AddChain({{vq.AllocBytes("next"), 4, false}});
    PopResult good = MustPop();
    REQUIRE(good.status == PopStatus::kChain);
    CHECK(good.chain.head == good_head);
    CHECK(AsString(good.chain.readable.at(0)) == "next");
    CHECK(MustPop().status == PopStatus::kEmpty);
  }

  std::unique_ptr<GuestMemory> mem;
  Queue queue;
  TestVirtqueue vq;
};

TEST_CASE_METHOD(QueueFixture, "Queue splits a direct chain into readable and writable spans",
                 "[virtqueue]") {
  uint64_t hello = vq.AllocBytes("hello");
  uint64_t world = vq.AllocBytes("world!");
  uint64_t out = vq.Alloc(64);
  uint16_t head = vq.AddChain({{hello, 5, false}, {world, 6, false}, {out, 64, true}});

  PopResult r = MustPop();
  REQUIRE(r.status == PopStatus::kChain);
  CHECK(r.error.empty());
  const DescriptorChain& c = r.chain;
  CHECK(c.head == head);
  REQUIRE(c.readable.size() == 2);
  REQUIRE(c.writable.size() == 1);
  CHECK(AsString(c.readable[0]) == "hello");
  CHECK(AsString(c.readable[1]) == "world!");
  CHECK(c.readable_bytes == 11);
  CHECK(c.writable_bytes == 64);
  CHECK(c.writable[0].size() == 64);

  // The spans alias guest RAM: what the device writes, the driver reads.
  std::memcpy(c.writable[0].data(), "reply", 5);
  REQUIRE(queue.AddUsed(*mem, head, 5).ok());
  CHECK(vq.UsedIdx() == 1);
  std::optional<UsedElement> used = vq.TakeUsed();
  REQUIRE(used.has_value());
  CHECK(used->id == head);
  CHECK(used->len == 5);
  CHECK(vq.ReadString(out, 5) == "reply");
  CHECK(!vq.TakeUsed().has_value());

  CHECK(MustPop().status == PopStatus::kEmpty);
  CHECK(queue.next_avail() == 1);
  CHECK(queue.next_used() == 1);
}

TEST_CASE_METHOD(QueueFixture, "Queue pops chains in ring order and accepts edge shapes",
                 "[virtqueue]") {
  SECTION("several chains, completed out of order") {
    uint64_t a = vq.AllocBytes("a"), b = vq.AllocBytes("bb"), c = vq.Alloc(8);
    uint16_t h1 = vq.AddChain({{a, 1, false}});
    uint16_t h2 = vq.AddChain({{b, 2, false}});
    uint16_t h3 = vq.AddChain({{c, 8, true}});
    PopResult r1 = MustPop(), r2 = MustPop(), r3 = MustPop();
    CHECK(r1.chain.head == h1);
    CHECK(r2.chain.head == h2);
    CHECK(r3.chain.head == h3);
    CHECK(r3.chain.readable.empty());
    CHECK(r3.chain.writable_bytes == 8);
    REQUIRE(queue.AddUsed(*mem, h3, 8).ok());
    REQUIRE(queue.AddUsed(*mem, h1, 0).ok());
    CHECK(vq.TakeUsed()->id == h3);
    CHECK(vq.TakeUsed()->id == h1);
    CHECK(MustPop().status == PopStatus::kEmpty);
  }
  SECTION("zero-length buffers are allowed and kept in place") {
    uint64_t buf = vq.Alloc(16);
    vq.AddChain({{buf, 0, false}, {buf, 4, false}, {buf, 0, true}});
    PopResult r = MustPop();
    REQUIRE(r.status == PopStatus::kChain);
    REQUIRE(r.chain.readable.size() == 2);
    CHECK(r.chain.readable[0].empty());
    CHECK(r.chain.readable_bytes == 4);
    REQUIRE(r.chain.writable.size() == 1);
    CHECK(r.chain.writable_bytes == 0);
  }
  SECTION("a chain as long as the queue is accepted") {
    uint64_t buf = vq.Alloc(kSize);
    std::vector<Buffer> buffers;
    for (int i = 0; i < kSize; ++i) buffers.push_back({buf + i, 1, i >= kSize / 2});
    vq.AddChain(buffers);
    PopResult r = MustPop();
    REQUIRE(r.status == PopStatus::kChain);
    CHECK(r.chain.readable.size() == kSize / 2);
    CHECK(r.chain.writable.size() == kSize / 2);
  }
  SECTION("avail idx exactly `size` ahead is a full ring, not corruption") {
    // The zeroed ring names head 0 everywhere; descriptor 0 is a 0-byte buffer at 0.
    vq.SetAvailIdx(kSize);
    for (int i = 0; i < kSize; ++i) CHECK(MustPop().status == PopStatus::kChain);
    CHECK(MustPop().status == PopStatus::kEmpty);
  }
}

TEST_CASE_METHOD(QueueFixture, "Queue refuses buffers outside guest RAM", "[virtqueue]") {
  SECTION("address past the end of RAM") {
    vq.WriteDescriptor(kRaw, {.addr = 2 << 20, .len = 16});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "0x200000+0x10 is not inside one guest RAM region");
  }
  SECTION("buffer running off the end of RAM") {
    vq.WriteDescriptor(kRaw, {.addr = (1 << 20) - 8, .len = 16});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "not inside one guest RAM region");
  }
  SECTION("zero-length buffer outside RAM") {
    vq.WriteDescriptor(kRaw, {.addr = 4 << 20, .len = 0});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "not inside one guest RAM region");
  }
  SECTION("addr + len overflows 64 bits") {
    vq.WriteDescriptor(kRaw, {.addr = std::numeric_limits<uint64_t>::max() - 8, .len = 16});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "not inside one guest RAM region");
  }
  SECTION("a bad buffer late in the chain rejects the whole chain") {
    uint64_t ok = vq.Alloc(16);
    vq.WriteDescriptor(kRaw, {.addr = ok, .len = 16, .flags = kDescFlagNext, .next = kRaw + 1});
    vq.WriteDescriptor(kRaw + 1, {.addr = 0xfffff000, .len = 4096, .flags = kDescFlagWrite});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "descriptor 9: buffer 0xfffff000+0x1000");
  }
}

TEST_CASE("Queue refuses a buffer spanning two RAM regions", "[virtqueue]") {
  // 256 KiB at 0 and 256 KiB at 512 KiB, with a gap between them.
  QueueFixture f({{0, 0x40000}, {0x80000, 0x40000}});
  SECTION("running from the first region into the gap") {
    f.vq.WriteDescriptor(kRaw, {.addr = 0x3fff0, .len = 0x20});
    f.vq.Publish(kRaw);
    f.ExpectBadChain(kRaw, "not inside one guest RAM region");
  }
  SECTION("starting in one region and ending in the other") {
    f.vq.WriteDescriptor(kRaw, {.addr = 0x3f000, .len = 0x42000, .flags = kDescFlagWrite});
    f.vq.Publish(kRaw);
    f.ExpectBadChain(kRaw, "not inside one guest RAM region");
  }
  SECTION("each region on its own is fine") {
    f.vq.WriteDescriptor(kRaw, {.addr = 0x3fff0, .len = 0x10, .flags = kDescFlagNext, .next = 0});
    f.vq.WriteDescriptor(0, {.addr = 0x80000, .len = 0x40000, .flags = kDescFlagWrite});
    f.vq.Publish(kRaw);
    PopResult r = f.MustPop();
    REQUIRE(r.status == PopStatus::kChain);
    CHECK(r.chain.readable_bytes == 0x10);
    CHECK(r.chain.writable_bytes == 0x40000);
  }
}

TEST_CASE_METHOD(QueueFixture, "Queue refuses malformed direct chains", "[virtqueue]") {
  uint64_t buf = vq.Alloc(64);
  SECTION("a loop of two descriptors") {
    vq.WriteDescriptor(kRaw, {.addr = buf, .len = 8, .flags = kDescFlagNext, .next = kRaw + 1});
    vq.WriteDescriptor(kRaw + 1, {.addr = buf, .len = 8, .flags = kDescFlagNext, .next = kRaw});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "chain longer than the queue size 16 (a loop?)");
  }
  SECTION("a descriptor pointing at itself") {
    vq.WriteDescriptor(kRaw, {.addr = buf, .len = 8, .flags = kDescFlagNext, .next = kRaw});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "a loop?");
  }
  SECTION("next equal to the size") {
    vq.WriteDescriptor(kRaw, {.addr = buf, .len = 8, .flags = kDescFlagNext, .next = kSize});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "next 16 is outside a table of 16 entries");
  }
  SECTION("next far past the size") {
    vq.WriteDescriptor(kRaw, {.addr = buf, .len = 8, .flags = kDescFlagNext, .next = 0xffff});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "next 65535 is outside");
  }
  SECTION("a readable buffer after a writable one") {
    vq.WriteDescriptor(kRaw, {.addr = buf, .len = 8, .flags = kDescFlagNext, .next = kRaw + 1});
    vq.WriteDescriptor(
        kRaw + 1,
        {.addr = buf, .len = 8, .flags = kDescFlagWrite | kDescFlagNext, .next = kRaw + 2});
    vq.WriteDescriptor(kRaw + 2, {.addr = buf, .len = 8});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "chain 8, descriptor 10: readable buffer after a writable one");
  }
}

TEST_CASE("Queue refuses chains whose parts exceed 4 GiB", "[virtqueue]") {
  // A sparse 4 GiB + 64 KiB region: nothing is touched but the rings.
  QueueFixture f({{0, 0x100010000}});
  constexpr uint32_t kMax = std::numeric_limits<uint32_t>::max();
  SECTION("exactly UINT32_MAX bytes is fine") {
    f.vq.WriteDescriptor(kRaw, {.addr = 0x10000, .len = kMax, .flags = kDescFlagWrite});
    f.vq.Publish(kRaw);
    PopResult r = f.MustPop();
    REQUIRE(r.status == PopStatus::kChain);
    CHECK(r.chain.writable_bytes == kMax);
  }
  SECTION("writable part one byte past UINT32_MAX") {
    f.vq.WriteDescriptor(
        kRaw,
        {.addr = 0x10000, .len = kMax, .flags = kDescFlagWrite | kDescFlagNext, .next = kRaw + 1});
    f.vq.WriteDescriptor(kRaw + 1, {.addr = 0x10000, .len = 1, .flags = kDescFlagWrite});
    f.vq.Publish(kRaw);
    f.ExpectBadChain(kRaw, "writable part exceeds 4 GiB");
  }
  SECTION("readable part of 3 + 2 GiB") {
    f.vq.WriteDescriptor(
        kRaw, {.addr = 0x10000, .len = 0xc0000000, .flags = kDescFlagNext, .next = kRaw + 1});
    f.vq.WriteDescriptor(kRaw + 1, {.addr = 0x10000, .len = 0x80000000});
    f.vq.Publish(kRaw);
    f.ExpectBadChain(kRaw, "readable part exceeds 4 GiB");
  }
  SECTION("many large buffers through an indirect table") {
    f.queue.set_indirect(true);
    std::vector<Buffer> big(kSize, Buffer{0x10000, 0x40000000, true});
    uint16_t head = f.vq.AddIndirectChain(big);
    f.ExpectBadChain(head, "writable part exceeds 4 GiB");
  }
}

TEST_CASE_METHOD(QueueFixture, "Queue follows indirect tables when negotiated", "[virtqueue]") {
  queue.set_indirect(true);
  uint64_t req = vq.AllocBytes("request");
  uint64_t out = vq.Alloc(32);
  SECTION("a single indirect descriptor") {
    uint16_t head = vq.AddIndirectChain({{req, 7, false}, {out, 32, true}});
    PopResult r = MustPop();
    REQUIRE(r.status == PopStatus::kChain);
    CHECK(r.chain.head == head);
    REQUIRE(r.chain.readable.size() == 1);
    CHECK(AsString(r.chain.readable[0]) == "request");
    REQUIRE(r.chain.writable.size() == 1);
    CHECK(r.chain.writable_bytes == 32);
    std::memcpy(r.chain.writable[0].data(), "ok", 2);
    REQUIRE(queue.AddUsed(*mem, head, 2).ok());
    CHECK(vq.TakeUsed()->id == head);
    CHECK(vq.ReadString(out, 2) == "ok");
  }
  SECTION("the indirect descriptor's own WRITE flag is ignored") {
    uint16_t head = vq.WriteIndirectChain({{req, 7, false}});
    Descriptor d = vq.ReadDescriptor(head);
    d.flags |= kDescFlagWrite;
    vq.WriteDescriptor(head, d);
    vq.Publish(head);
    PopResult r = MustPop();
    REQUIRE(r.status == PopStatus::kChain);
    CHECK(r.chain.readable_bytes == 7);
    CHECK(r.chain.writable.empty());
  }
  SECTION("direct descriptors followed by one indirect descriptor") {
    uint64_t table =
        vq.WriteIndirectTable(TestVirtqueue::Linked({{req + 3, 4, false}, {out, 32, true}}));
    vq.WriteDescriptor(kRaw, {.addr = req, .len = 3, .flags = kDescFlagNext, .next = kRaw + 1});
    vq.WriteDescriptor(kRaw + 1, {.addr = table, .len = 32, .flags = kDescFlagIndirect});
    vq.Publish(kRaw);
    PopResult r = MustPop();
    REQUIRE(r.status == PopStatus::kChain);
    REQUIRE(r.chain.readable.size() == 2);
    CHECK(AsString(r.chain.readable[0]) == "req");
    CHECK(AsString(r.chain.readable[1]) == "uest");
    CHECK(r.chain.writable_bytes == 32);
  }
  SECTION("table entries chain through next in any order") {
    std::vector<Descriptor> table = {
        {.addr = req, .len = 1, .flags = kDescFlagNext, .next = 2},
        {.addr = out, .len = 4, .flags = kDescFlagWrite},
        {.addr = req + 1, .len = 2, .flags = kDescFlagNext, .next = 1},
    };
    uint64_t gpa = vq.WriteIndirectTable(table);
    vq.WriteDescriptor(kRaw, {.addr = gpa, .len = 48, .flags = kDescFlagIndirect});
    vq.Publish(kRaw);
    PopResult r = MustPop();
    REQUIRE(r.status == PopStatus::kChain);
    REQUIRE(r.chain.readable.size() == 2);
    CHECK(AsString(r.chain.readable[0]) == "r");
    CHECK(AsString(r.chain.readable[1]) == "eq");
    CHECK(r.chain.writable_bytes == 4);
  }
  SECTION("a full table of `size` entries") {
    std::vector<Buffer> buffers(kSize, Buffer{req, 1, false});
    vq.AddIndirectChain(buffers);
    PopResult r = MustPop();
    REQUIRE(r.status == PopStatus::kChain);
    CHECK(r.chain.readable.size() == kSize);
  }
}

TEST_CASE_METHOD(QueueFixture, "Queue refuses INDIRECT unless the feature was negotiated",
                 "[virtqueue]") {
  uint16_t head = vq.AddIndirectChain({{vq.Alloc(8), 8, false}});
  ExpectBadChain(head, "INDIRECT flag without VIRTIO_F_INDIRECT_DESC negotiated");
}

TEST_CASE_METHOD(QueueFixture, "Queue refuses malformed indirect tables", "[virtqueue]") {
  queue.set_indirect(true);
  uint64_t buf = vq.Alloc(64);
  // Two well-formed readable entries; sections break them or their descriptor.
  std::vector<Descriptor> entries = TestVirtqueue::Linked({{buf, 8, false}, {buf, 8, false}});
  uint64_t table = vq.WriteIndirectTable(entries);
  auto publish_indirect = [&](uint64_t addr, uint32_t len, uint16_t extra_flags = 0) {
    vq.WriteDescriptor(kRaw, {.addr = addr,
                              .len = len,
                              .flags = static_cast<uint16_t>(kDescFlagIndirect | extra_flags),
                              .next = kRaw + 1});
    vq.Publish(kRaw);
  };
  SECTION("the well-formed table itself is accepted") {
    publish_indirect(table, 32);
    PopResult r = MustPop();
    REQUIRE(r.status == PopStatus::kChain);
    CHECK(r.chain.readable_bytes == 16);
  }
  SECTION("length 0") {
    publish_indirect(table, 0);
    ExpectBadChain(kRaw, "indirect table length 0 is not a non-zero multiple of 16");
  }
  SECTION("length not a multiple of 16") {
    publish_indirect(table, 24);
    ExpectBadChain(kRaw, "length 24 is not a non-zero multiple of 16");
  }
  SECTION("more entries than the queue size") {
    uint64_t big = vq.WriteIndirectTable(std::vector<Descriptor>(kSize + 1));
    publish_indirect(big, 16 * (kSize + 1));
    ExpectBadChain(kRaw, "indirect table of 17 entries exceeds the queue size 16");
  }
  SECTION("table outside RAM") {
    publish_indirect(2 << 20, 32);
    ExpectBadChain(kRaw, "indirect table 0x200000+0x20 is outside guest RAM");
  }
  SECTION("table address + length overflows") {
    publish_indirect(std::numeric_limits<uint64_t>::max() - 15, 32);
    ExpectBadChain(kRaw, "is outside guest RAM");
  }
  SECTION("INDIRECT together with NEXT") {
    publish_indirect(table, 32, kDescFlagNext);
    ExpectBadChain(kRaw, "INDIRECT together with NEXT");
  }
  SECTION("a nested indirect table") {
    uint64_t inner = vq.WriteIndirectTable(entries);
    entries[1] = {.addr = inner, .len = 32, .flags = kDescFlagIndirect};
    publish_indirect(vq.WriteIndirectTable(entries), 32);
    ExpectBadChain(kRaw, "indirect entry 1: nested indirect table");
  }
  SECTION("a table whose entry points at the table itself") {
    Descriptor self{.addr = table, .len = 32, .flags = kDescFlagIndirect};
    REQUIRE(mem->WriteObj(GuestAddress{table}, self).ok());
    publish_indirect(table, 32);
    ExpectBadChain(kRaw, "indirect entry 0: nested indirect table");
  }
  SECTION("next outside the table") {
    entries[0].next = 2;
    publish_indirect(vq.WriteIndirectTable(entries), 32);
    ExpectBadChain(kRaw, "indirect entry 0: next 2 is outside a table of 2 entries");
  }
  SECTION("a loop inside the table") {
    entries[1].flags |= kDescFlagNext;
    entries[1].next = 0;
    publish_indirect(vq.WriteIndirectTable(entries), 32);
    ExpectBadChain(kRaw, "a loop?");
  }
  SECTION("direct descriptors plus the table longer than the queue") {
    uint64_t full = vq.WriteIndirectTable(
        TestVirtqueue::Linked(std::vector<Buffer>(kSize, Buffer{buf, 1, false})));
    vq.WriteDescriptor(kRaw, {.addr = buf, .len = 1, .flags = kDescFlagNext, .next = kRaw + 1});
    vq.WriteDescriptor(kRaw + 1, {.addr = full, .len = 16 * kSize, .flags = kDescFlagIndirect});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "chain longer than the queue size");
  }
  SECTION("a readable table entry after a writable direct descriptor") {
    vq.WriteDescriptor(
        kRaw, {.addr = buf, .len = 8, .flags = kDescFlagWrite | kDescFlagNext, .next = kRaw + 1});
    vq.WriteDescriptor(kRaw + 1, {.addr = table, .len = 32, .flags = kDescFlagIndirect});
    vq.Publish(kRaw);
    ExpectBadChain(kRaw, "readable buffer after a writable one");
  }
}

TEST_CASE_METHOD(QueueFixture, "Queue reports an untrustworthy ring as an error Status",
                 "[virtqueue]") {
  auto pop_error = [&]() {
    absl::StatusOr<PopResult> r = queue.Pop(*mem);
    REQUIRE(!r.ok());
    return r.status().ToString();
  };
  SECTION("a head index equal to the size") {
    vq.Publish(kSize);
    CHECK_THAT(pop_error(), Contains("names head 16, outside a table of 16"));
  }
  SECTION("a head index of 0xffff") {
    vq.Publish(0xffff);
    CHECK_THAT(pop_error(), Contains("head 65535"));
  }
  SECTION("avail idx more than `size` ahead of the device") {
    vq.SetAvailIdx(kSize + 1);
    CHECK_THAT(pop_error(), Contains("avail idx 17 is 17 entries ahead"));
  }
  SECTION("avail idx jumping far ahead") {
    vq.SetAvailIdx(0x8000);
    CHECK_THAT(pop_error(), Contains("ahead of the device"));
  }
  SECTION("avail idx moved backwards") {
    uint64_t buf = vq.Alloc(8);
    vq.AddChain({{buf, 8, false}});
    vq.AddChain({{buf, 8, false}});
    CHECK(MustPop().status == PopStatus::kChain);
    CHECK(MustPop().status == PopStatus::kChain);
    vq.SetAvailIdx(1);
    CHECK_THAT(pop_error(), Contains("65535 entries ahead"));
  }
  SECTION("the available ring outside RAM") {
    queue.set_avail_ring(2 << 20);
    pop_error();
  }
  SECTION("the descriptor table partly outside RAM") {
    queue.set_desc_table((1 << 20) - 64);  // entries 0..3 in RAM, kRaw is not
    vq.Publish(kRaw);
    pop_error();
  }
  SECTION("the used ring outside RAM") {
    queue.set_used_ring(2 << 20);
    CHECK(!queue.AddUsed(*mem, 0, 0).ok());
    queue.set_event_idx(true);
    pop_error();  // cannot publish avail_event
  }
  SECTION("a ring that wraps the address space") {
    queue.set_used_ring(std::numeric_limits<uint64_t>::max() - 64);
    pop_error();
    CHECK(!queue.AddUsed(*mem, 0, 0).ok());
  }
  SECTION("a size changed to a bad value after validation") {
    queue.set_size(3);
    CHECK_THAT(pop_error(), Contains("bad size 3"));
    queue.set_size(0);
    pop_error();
    CHECK(!queue.AddUsed(*mem, 0, 0).ok());
    CHECK(!queue.NeedsInterrupt(*mem).ok());
  }
}

TEST_CASE_METHOD(QueueFixture, "Queue refuses to run when not ready", "[virtqueue]") {
  queue.set_ready(false);
  absl::StatusOr<PopResult> r = queue.Pop(*mem);
  CHECK(absl::IsFailedPrecondition(r.status()));
  CHECK(absl::IsFailedPrecondition(queue.AddUsed(*mem, 0, 0)));
  CHECK(absl::IsFailedPrecondition(queue.NeedsInterrupt(*mem).status()));
}

TEST_CASE_METHOD(QueueFixture, "AddUsed refuses a head outside the table", "[virtqueue]") {
  CHECK(absl::IsInvalidArgument(queue.AddUsed(*mem, kSize, 0)));
  CHECK(vq.UsedIdx() == 0);
  CHECK(queue.next_used() == 0);
}

TEST_CASE_METHOD(QueueFixture, "Queue indices wrap around at 65535", "[virtqueue]") {
  vq.StartIndicesAt(65533, &queue);
  SECTION("one chain at a time") {
    for (uint32_t i = 0; i < 6; ++i) {
      std::string text = "chain" + std::to_string(i);
      uint16_t head = vq.AddChain({{vq.AllocBytes(text), 6, false}});
      PopResult r = MustPop();
      REQUIRE(r.status == PopStatus::kChain);
      CHECK(r.chain.head == head);
      CHECK(AsString(r.chain.readable.at(0)) == text);
      REQUIRE(queue.AddUsed(*mem, head, i).ok());
      std::optional<UsedElement> used = vq.TakeUsed();
      REQUIRE(used.has_value());
      CHECK(used->id == head);
      CHECK(used->len == i);
    }
    CHECK(vq.avail_idx() == 3);
    CHECK(vq.UsedIdx() == 3);
    CHECK(queue.next_avail() == 3);
    CHECK(queue.next_used() == 3);
  }
  SECTION("a batch straddling the wrap") {
    std::vector<uint16_t> heads;
    for (int i = 0; i < 5; ++i) heads.push_back(vq.AddChain({{vq.Alloc(4), 4, true}}));
    CHECK(vq.avail_idx() == 2);
    for (uint16_t head : heads) {
      PopResult r = MustPop();
      REQUIRE(r.status == PopStatus::kChain);
      CHECK(r.chain.head == head);
      REQUIRE(queue.AddUsed(*mem, head, 4).ok());
    }
    CHECK(MustPop().status == PopStatus::kEmpty);
    CHECK(vq.PendingUsed() == 5);
    for (uint16_t head : heads) CHECK(vq.TakeUsed()->id == head);
    CHECK(vq.UsedIdx() == 2);
  }
  SECTION("a jump past the size is still caught across the wrap") {
    vq.SetAvailIdx(static_cast<uint16_t>(65533 + kSize + 1));
    CHECK(!queue.Pop(*mem).ok());
  }
}

TEST_CASE("Queue stays in step with the driver over more than 2^16 chains", "[virtqueue]") {
  std::unique_ptr<GuestMemory> mem = MakeMemory({{0, 1 << 20}});
  Queue queue(4);
  TestVirtqueue vq(*mem, 4);
  vq.Configure(queue);
  uint64_t buf = vq.Alloc(8);
  uint32_t mismatches = 0;
  for (uint32_t i = 0; i < 70000; ++i) {
    uint16_t head = vq.AddChain({{buf, 8, (i & 1) != 0}});
    absl::StatusOr<PopResult> r = queue.Pop(*mem);
    if (!r.ok() || r->status != PopStatus::kChain || r->chain.head != head ||
        !queue.AddUsed(*mem, head, i & 0xff).ok()) {
      ++mismatches;
      break;
    }
    std::optional<UsedElement> used = vq.TakeUsed();
    if (!used || used->id != head || used->len != (i & 0xff)) ++mismatches;
  }
  CHECK(mismatches == 0);
  CHECK(queue.next_avail() == static_cast<uint16_t>(70000));
  CHECK(vq.UsedIdx() == static_cast<uint16_t>(70000));
  CHECK(vq.free_descriptors() == 4);
}

TEST_CASE("Queue::HasAvailable says whether Pop has a chain to take", "[virtqueue]") {
  std::unique_ptr<GuestMemory> mem = MakeMemory({{0, 1 << 20}});
  Queue queue(8);
  CHECK_FALSE(queue.HasAvailable(*mem));  // not ready: nothing to look at
  TestVirtqueue vq(*mem, 8);
  vq.Configure(queue);
  CHECK_FALSE(queue.HasAvailable(*mem));
  uint64_t buf = vq.Alloc(8);
  vq.AddChain({{buf, 8, false}});
  vq.AddChain({{buf, 8, true}});
  CHECK(queue.HasAvailable(*mem));
  REQUIRE(queue.Pop(*mem)->status == PopStatus::kChain);
  CHECK(queue.HasAvailable(*mem));
  REQUIRE(queue.Pop(*mem)->status == PopStatus::kChain);
  CHECK_FALSE(queue.HasAvailable(*mem));
}

TEST_CASE_METHOD(QueueFixture, "NeedsInterrupt without EVENT_IDX follows NO_INTERRUPT",
                 "[virtqueue]") {
  uint64_t buf = vq.Alloc(8);
  auto complete_one = [&]() {
    uint16_t head = vq.AddChain({{buf, 8, true}});
    REQUIRE(MustPop().status == PopStatus::kChain);
    REQUIRE(queue.AddUsed(*mem, head, 8).ok());
    vq.TakeUsed();
  };
  auto needs = [&]() {
    absl::StatusOr<bool> n = queue.NeedsInterrupt(*mem);
    REQUIRE(n.ok());
    return *n;
  };
  CHECK(!needs());  // nothing used yet
  complete_one();
  CHECK(needs());
  CHECK(!needs());  // already announced
  vq.SetNoInterrupt(true);
  complete_one();
  CHECK(!needs());
  vq.SetNoInterrupt(false);
  complete_one();
  complete_one();
  CHECK(needs());
  vq.SetUsedEvent(0x1234);  // ignored without EVENT_IDX
  complete_one();
  CHECK(needs());
}

TEST_CASE_METHOD(QueueFixture, "NeedsInterrupt with EVENT_IDX follows used_event", "[virtqueue]") {
  queue.set_event_idx(true);
  uint64_t buf = vq.Alloc(8);
  auto complete = [&](int n) {
    for (int i = 0; i < n; ++i) {
      uint16_t head = vq.AddChain({{buf, 8, true}});
      REQUIRE(MustPop().status == PopStatus::kChain);
      REQUIRE(queue.AddUsed(*mem, head, 8).ok());
      vq.TakeUsed();
    }
  };
  auto needs = [&]() {
    absl::StatusOr<bool> n = queue.NeedsInterrupt(*mem);
    REQUIRE(n.ok());
    return *n;
  };
  SECTION("interrupt when the entry at used_event is written") {
    vq.SetUsedEvent(0);
    CHECK(!needs());
    complete(1);  // entry 0 written: used idx 0 -> 1
    CHECK(needs());
    complete(1);  // entry 1: the driver asked for entry 0 only
    CHECK(!needs());
    vq.SetUsedEvent(3);
    complete(1);  // entry 2
    CHECK(!needs());
    complete(1);  // entry 3
    CHECK(needs());
  }
  SECTION("a batch that passes used_event interrupts once") {
    vq.SetUsedEvent(1);
    complete(3);  // entries 0, 1, 2
    CHECK(needs());
    CHECK(!needs());
  }
  SECTION("a batch that stops short of used_event does not") {
    vq.SetUsedEvent(5);
    complete(3);
    CHECK(!needs());
    complete(3);  // entries 3, 4, 5
    CHECK(needs());
  }
  SECTION("the NO_INTERRUPT flag is ignored") {
    vq.SetNoInterrupt(true);
    vq.SetUsedEvent(0);
    complete(1);
    CHECK(needs());
  }
  SECTION("across the 16-bit wrap") {
    vq.StartIndicesAt(65534, &queue);
    vq.SetUsedEvent(65535);
    complete(1);  // entry 65534
    CHECK(!needs());
    complete(2);  // entries 65535, 0
    CHECK(needs());
    vq.SetUsedEvent(0);
    complete(1);  // entry 1: used_event 0 is already behind
    CHECK(!needs());
  }
}

TEST_CASE_METHOD(QueueFixture, "Pop publishes avail_event only with EVENT_IDX", "[virtqueue]") {
  uint64_t buf = vq.Alloc(8);
  uint64_t avail_event_gpa = vq.layout().used_ring + 4 + 8 * kSize;
  REQUIRE(mem->WriteObj(GuestAddress{avail_event_gpa}, uint16_t{0x1234}).ok());
  SECTION("without EVENT_IDX the field is left alone") {
    vq.AddChain({{buf, 8, false}});
    CHECK(MustPop().status == PopStatus::kChain);
    CHECK(MustPop().status == PopStatus::kEmpty);
    CHECK(vq.AvailEvent() == 0x1234);
  }
  SECTION("with EVENT_IDX it names the next entry the device will read") {
    queue.set_event_idx(true);
    CHECK(MustPop().status == PopStatus::kEmpty);
    CHECK(vq.AvailEvent() == 0);
    vq.AddChain({{buf, 8, false}});
    vq.AddChain({{buf, 8, false}});
    CHECK(MustPop().status == PopStatus::kChain);
    CHECK(vq.AvailEvent() == 1);
    CHECK(MustPop().status == PopStatus::kChain);
    CHECK(vq.AvailEvent() == 2);
    CHECK(MustPop().status == PopStatus::kEmpty);
    CHECK(vq.AvailEvent() == 2);
  }
  SECTION("a bad chain moves avail_event on too") {
    queue.set_event_idx(true);
    vq.WriteDescriptor(kRaw, {.addr = 2 << 20, .len = 8});
    vq.Publish(kRaw);
    CHECK(MustPop().status == PopStatus::kBadChain);
    CHECK(vq.AvailEvent() == 1);
  }
}

TEST_CASE_METHOD(QueueFixture, "Queue::Reset returns to the constructed state", "[virtqueue]") {
  queue.set_event_idx(true);
  queue.set_indirect(true);
  uint16_t first = vq.AddChain({{vq.Alloc(8), 8, false}});
  REQUIRE(MustPop().status == PopStatus::kChain);
  REQUIRE(queue.AddUsed(*mem, first, 0).ok());
  queue.set_size(8);
  queue.Reset();
  CHECK(!queue.ready());
  CHECK(queue.size() == kSize);
  CHECK(queue.max_size() == kSize);
  CHECK(queue.desc_table() == 0);
  CHECK(queue.avail_ring() == 0);
  CHECK(queue.used_ring() == 0);
  CHECK(!queue.event_idx());
  CHECK(!queue.indirect());
  CHECK(queue.next_avail() == 0);
  CHECK(queue.next_used() == 0);
  CHECK(absl::IsFailedPrecondition(queue.Pop(*mem).status()));

  // A driver can set the queue up again from scratch.
  TestVirtqueue again(*mem, kSize, 0x40000);
  again.Configure(queue);
  REQUIRE(queue.Validate(*mem).ok());
  uint16_t head = again.AddChain({{again.AllocBytes("x"), 1, false}});
  PopResult r = MustPop();
  REQUIRE(r.status == PopStatus::kChain);
  CHECK(r.chain.head == head);
}

TEST_CASE("Queue clamps an invalid max size to a power of two", "[virtqueue]") {
  CHECK(Queue(0).max_size() == 1);
  CHECK(Queue(1).max_size() == 1);
  CHECK(Queue(100).max_size() == 64);
  CHECK(Queue(256).max_size() == 256);
  CHECK(Queue(kMaxQueueSize).max_size() == kMaxQueueSize);
  CHECK(Queue(0xffff).max_size() == kMaxQueueSize);
  CHECK(Queue(256).size() == 256);
}

TEST_CASE_METHOD(QueueFixture, "Queue::Validate checks size, alignment and placement",
                 "[virtqueue]") {
  const TestVirtqueue::Layout& l = vq.layout();
  CHECK(queue.Validate(*mem).ok());
  SECTION("size 0") {
    queue.set_size(0);
    CHECK(absl::IsInvalidArgument(queue.Validate(*mem)));
  }
  SECTION("size not a power of two") {
    queue.set_size(12);
    CHECK_THAT(queue.Validate(*mem).ToString(), Contains("size 12 is not a power of two in 1..16"));
  }
  SECTION("size above max_size") {
    queue.set_size(32);
    CHECK(absl::IsInvalidArgument(queue.Validate(*mem)));
  }
  SECTION("a smaller power of two is fine") {
    queue.set_size(4);
    CHECK(queue.Validate(*mem).ok());
  }
  SECTION("misaligned descriptor table") {
    queue.set_desc_table(l.desc_table + 8);
    CHECK_THAT(queue.Validate(*mem).ToString(),
               Contains("descriptor table at 0x1008 is not 16-byte aligned"));
  }
  SECTION("misaligned available ring") {
    queue.set_avail_ring(l.avail_ring + 1);
    CHECK_THAT(queue.Validate(*mem).ToString(), Contains("available ring"));
  }
  SECTION("misaligned used ring") {
    queue.set_used_ring(l.used_ring + 2);
    CHECK_THAT(queue.Validate(*mem).ToString(), Contains("used ring"));
  }
  SECTION("descriptor table outside RAM") {
    queue.set_desc_table(2 << 20);
    CHECK(absl::IsOutOfRange(queue.Validate(*mem)));
  }
  SECTION("used ring running off the end of RAM") {
    queue.set_used_ring((1 << 20) - 64);  // needs 6 + 8 * 16 bytes
    CHECK_THAT(queue.Validate(*mem).ToString(), Contains("used ring 0xfffc0+0x86"));
  }
  SECTION("available ring at the top of the address space") {
    queue.set_avail_ring(std::numeric_limits<uint64_t>::max() - 1);
    CHECK(absl::IsOutOfRange(queue.Validate(*mem)));
  }
  SECTION("a ring across the gap between two regions") {
    std::unique_ptr<GuestMemory> two = MakeMemory({{0, 0x10000}, {0x20000, 0x10000}});
    queue.set_desc_table(0x10000 - 0x80);
    queue.set_avail_ring(0x20000);
    queue.set_used_ring(0x20100);
    CHECK(absl::IsOutOfRange(queue.Validate(*two)));
  }
}

// Queue state layout (Queue::SaveState): size u16, desc/avail/used u64,
// ready, event_idx, indirect, next_avail u16, next_used u16, used count u32.
constexpr size_t kStateSizeAt = 0, kStateDescAt = 2, kStateReadyAt = 26, kStateBytes = 37;

TEST_CASE_METHOD(QueueFixture, "Queue state saved mid-use is taken up by a fresh queue",
                 "[virtqueue][snapshot]") {
  queue.set_event_idx(true);
  vq.StartIndicesAt(65534, &queue);  // the saved cursors straddle the 16-bit wrap
  uint16_t first = vq.AddChain({{vq.AllocBytes("first"), 5, false}});
  PopResult r = MustPop();
  REQUIRE(r.status == PopStatus::kChain);
  REQUIRE(queue.AddUsed(*mem, first, 5).ok());
  uint16_t second = vq.AddChain({{vq.AllocBytes("second"), 6, false}});  // not taken yet
  StateWriter out;
  queue.SaveState(out);
  CHECK(out.bytes().size() == kStateBytes);

  Queue restored(kSize);
  StateReader in(out.bytes(), "queue");
  REQUIRE(restored.RestoreState(in, *mem).ok());
  CHECK(in.status().ok());
  CHECK(restored.size() == queue.size());
  CHECK(restored.desc_table() == queue.desc_table());
  CHECK(restored.avail_ring() == queue.avail_ring());
  CHECK(restored.used_ring() == queue.used_ring());
  CHECK(restored.ready());
  CHECK(restored.event_idx());
  CHECK(!restored.indirect());
  CHECK(restored.next_avail() == 65535);
  CHECK(restored.next_used() == 65535);
  // The restored queue goes on where the saved one stopped: the chain the
  // driver added before the save, then the used index past the wrap.
  absl::StatusOr<PopResult> next = restored.Pop(*mem);
  REQUIRE(next.ok());
  REQUIRE(next->status == PopStatus::kChain);
  CHECK(next->chain.head == second);
  CHECK(AsString(next->chain.readable.at(0)) == "second");
  REQUIRE(restored.AddUsed(*mem, second, 6).ok());
  CHECK(vq.UsedIdx() == 0);
  CHECK(vq.TakeUsed()->id == first);
  CHECK(vq.TakeUsed()->id == second);
  // The used entry added before the save still asks for its interrupt.
  vq.SetUsedEvent(65534);
  CHECK(*restored.NeedsInterrupt(*mem));
}

TEST_CASE_METHOD(QueueFixture, "Queue refuses hostile saved state and keeps its own",
                 "[virtqueue][snapshot]") {
  StateWriter out;
  queue.SaveState(out);
  std::vector<uint8_t> bytes = out.bytes();
  auto refused = [&](std::vector<uint8_t> state) {
    Queue target(kSize);
    StateReader in(state, "queue");
    bool ok = target.RestoreState(in, *mem).ok();
    // Nothing of a refused state is taken.
    CHECK(!target.ready());
    CHECK(target.size() == kSize);
    CHECK(target.desc_table() == 0);
    return !ok;
  };
  SECTION("truncated") {
    for (size_t n = 0; n < bytes.size(); ++n) {
      INFO(n << " bytes");
      CHECK(refused(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n)));
    }
  }
  SECTION("a ready queue of size 3") {
    bytes[kStateSizeAt] = 3;
    CHECK(refused(bytes));
  }
  SECTION("a ready queue larger than the device allows") {
    bytes[kStateSizeAt] = 0;
    bytes[kStateSizeAt + 1] = 1;  // 256 > 16
    CHECK(refused(bytes));
  }
  SECTION("a ready queue whose rings are outside RAM") {
    bytes[kStateDescAt + 3] = 0x40;  // 0x40001000: beyond 1 MiB
    CHECK(refused(bytes));
  }
  SECTION("a ready queue with a misaligned descriptor table") {
    bytes[kStateDescAt] += 8;
    CHECK(refused(bytes));
  }
  SECTION("more used entries since the last interrupt than can be counted") {
    bytes[kStateBytes - 1] = 0xff;
    CHECK(refused(bytes));
  }
  SECTION("a queue that is not ready keeps the size the driver wrote") {
    // Only a register until QueueReady checks it: a guest must not be able
    // to make its VM impossible to restore by writing it.
    bytes[kStateSizeAt] = 3;
    bytes[kStateReadyAt] = 0;
    Queue target(kSize);
    StateReader in(bytes, "queue");
    REQUIRE(target.RestoreState(in, *mem).ok());
    CHECK(target.size() == 3);
    CHECK(!target.ready());
    CHECK(absl::IsFailedPrecondition(target.Pop(*mem).status()));
  }
}

}  // namespace
}  // namespace mote::virtio
