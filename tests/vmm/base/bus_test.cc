#include "vmm/base/bus.h"

#include <catch2/catch.hpp>
#include <vector>

namespace mote {
namespace {

// Records the offsets it sees and answers reads with the low offset byte.
class RecordingDevice : public BusDevice {
 public:
  void Read(uint64_t offset, absl::Span<uint8_t> data) override {
    reads.push_back(offset);
    for (auto& b : data) b = static_cast<uint8_t>(offset);
  }
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override {
    writes.push_back({offset, data.empty() ? 0 : data[0]});
  }
  std::vector<uint64_t> reads;
  std::vector<std::pair<uint64_t, uint8_t>> writes;
};

TEST_CASE("Bus rejects overlapping and empty ranges", "[bus]") {
  Bus bus("test");
  auto dev = std::make_shared<RecordingDevice>();
  REQUIRE(bus.Insert(dev, 0x100, 0x10).ok());
  CHECK(absl::IsAlreadyExists(bus.Insert(dev, 0x100, 0x10)));  // same range
  CHECK(absl::IsAlreadyExists(bus.Insert(dev, 0x10f, 0x1)));   // last byte
  CHECK(absl::IsAlreadyExists(bus.Insert(dev, 0xf0, 0x11)));   // tail reaches in
  CHECK(absl::IsAlreadyExists(bus.Insert(dev, 0x80, 0x100)));  // covers it
  CHECK(absl::IsInvalidArgument(bus.Insert(dev, 0x200, 0)));
  CHECK(absl::IsInvalidArgument(bus.Insert(dev, ~uint64_t{0}, 2)));  // wraps
  CHECK(bus.Insert(dev, 0x110, 0x10).ok());                          // adjacent is fine
  CHECK(bus.Insert(dev, 0xf0, 0x10).ok());
}

TEST_CASE("Bus dispatches with offsets relative to the device", "[bus]") {
  Bus bus("test");
  auto a = std::make_shared<RecordingDevice>();
  auto b = std::make_shared<RecordingDevice>();
  REQUIRE(bus.Insert(a, 0x3f8, 8).ok());
  REQUIRE(bus.Insert(b, 0x70, 2).ok());
  uint8_t byte = 0;
  CHECK(bus.Read(0x3fd, absl::Span<uint8_t>(&byte, 1)));
  CHECK(byte == 5);
  uint8_t v = 0x42;
  CHECK(bus.Write(0x71, absl::Span<const uint8_t>(&v, 1)));
  REQUIRE(b->writes.size() == 1);
  CHECK(b->writes[0] == std::make_pair(uint64_t{1}, uint8_t{0x42}));
  CHECK(a->writes.empty());
}

TEST_CASE("Bus: unmapped reads are all-ones, unmapped writes are counted", "[bus]") {
  Bus bus("test");
  auto dev = std::make_shared<RecordingDevice>();
  REQUIRE(bus.Insert(dev, 0x100, 4).ok());
  uint8_t data[4] = {0, 0, 0, 0};
  CHECK_FALSE(bus.Read(0x200, absl::Span<uint8_t>(data, 4)));
  CHECK(data[0] == 0xff);
  CHECK(data[3] == 0xff);
  // An access that starts inside but runs past the device is unmapped too.
  CHECK_FALSE(bus.Read(0x102, absl::Span<uint8_t>(data, 4)));
  CHECK(dev->reads.empty());
  uint8_t v = 1;
  CHECK_FALSE(bus.Write(0x104, absl::Span<const uint8_t>(&v, 1)));
  CHECK_FALSE(bus.Write(0x0, absl::Span<const uint8_t>(&v, 1)));
  CHECK(bus.unmapped_writes() == 2);
  CHECK(bus.unmapped_reads() == 2);
  CHECK(dev->writes.empty());
}

TEST_CASE("Bus removes devices", "[bus]") {
  Bus bus("test");
  auto dev = std::make_shared<RecordingDevice>();
  REQUIRE(bus.Insert(dev, 0x100, 4).ok());
  CHECK(bus.Remove(0x100).ok());
  CHECK(absl::IsNotFound(bus.Remove(0x100)));
  uint8_t v = 0;
  CHECK_FALSE(bus.Read(0x100, absl::Span<uint8_t>(&v, 1)));
}

}  // namespace
}  // namespace mote
