#include "vmm/snapshot/migration_stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"
#include "vmm/snapshot/snapshot_dir.h"

namespace mote {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPages = 1024;  // 4 MiB of RAM: the least mote takes
const std::string kConfig = R"({"kernel": "/nonexistent", "memory": "4M"})";

std::unique_ptr<GuestMemory> PatternedMemory() {
  auto mem = GuestMemory::Create({{0, kPages * kPage}});
  REQUIRE(mem.ok());
  // Page p holds p in every byte but a few, left zero (holes in the file).
  for (uint64_t p = 0; p < kPages; ++p) {
    std::memset((*mem)->regions()[0].host + p * kPage, p % 7 == 0 ? 0 : static_cast<int>(p), kPage);
  }
  return std::move(*mem);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct Pipe {
  Pipe() { REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0); }
  ~Pipe() {
    if (fds[1] >= 0) close(fds[1]);
  }
  int fds[2];
};

// The head, then the body into `mem`; on an error the source's end is cut,
// so it stops.
absl::StatusOr<ReceivedMigration> Receive(Pipe& pipe, const TempDir& dir, GuestMemory& mem) {
  absl::Status head = ReceiveMigrationHead(pipe.fds[1], dir.path());
  absl::StatusOr<ReceivedMigration> received =
      head.ok() ? ReceiveMigrationBody(pipe.fds[1], mem) : absl::StatusOr<ReceivedMigration>(head);
  if (!received.ok()) shutdown(pipe.fds[1], SHUT_RDWR);
  return received;
}

const std::vector<uint8_t> kMachine = {7, 7};

std::unique_ptr<GuestMemory> EmptyMemory() {
  auto mem = GuestMemory::Create({{0, kPages * kPage}});
  REQUIRE(mem.ok());
  return std::move(*mem);
}

TEST_CASE("A pre-copy stream: the head lands in a directory, the pages in guest memory",
          "[migration_stream]") {
  auto mem = PatternedMemory();
  auto target = EmptyMemory();
  TempDir dir;
  Pipe pipe;
  std::thread source([&] {
    MigrationSender sender{FileDescriptor(pipe.fds[0])};
    std::atomic<bool> never{false};
    CHECK(sender.SendHead(kConfig, kMachine).ok());
    CHECK(sender.SendPages(*mem, nullptr, never, 0).ok());
    CHECK(sender.SendState({1, 2, 3}).ok());
    CHECK(sender.SendEnd().ok());
  });
  absl::StatusOr<ReceivedMigration> received = Receive(pipe, dir, *target);
  source.join();
  INFO(received.status().ToString());
  REQUIRE(received.ok());
  CHECK_FALSE(received->postcopy);
  CHECK(received->state == std::vector<uint8_t>{1, 2, 3});
  CHECK(ReadFile(dir.Path(kSnapshotConfigFile)) == kConfig);
  CHECK(ReadFile(dir.Path(kSnapshotStateFile)) == std::string("\7\7"));
  CHECK(std::memcmp(target->regions()[0].host, mem->regions()[0].host, kPages * kPage) == 0);
}

TEST_CASE("A post-copy stream names the pages still at the source, and serves them",
          "[migration_stream]") {
  auto mem = PatternedMemory();
  auto target = EmptyMemory();
  TempDir dir;
  Pipe pipe;
  PageBitmap later((kPages + 63) / 64, 0);
  for (uint64_t p = 100; p < 300; ++p) later[p / 64] |= uint64_t{1} << (p % 64);
  bool target_ran = false;
  absl::Status served;
  std::thread source([&] {
    MigrationSender sender{FileDescriptor(pipe.fds[0])};
    CHECK(sender.SendHead(kConfig, kMachine).ok());
    CHECK(sender.SendState({9}).ok());
    CHECK(sender.SendPostcopy(later).ok());
    std::atomic<bool> never{false};
    served = sender.ServePostcopy(
        *mem, later, never, [&] { target_ran = true; }, 5000);
  });
  absl::StatusOr<ReceivedMigration> received = Receive(pipe, dir, *target);
  if (!received.ok()) source.join();
  INFO(received.status().ToString());
  REQUIRE(received.ok());
  CHECK(received->postcopy);
  CHECK(received->pages_at_source == later);
  // The target asks for page 299 and one the source does not hold, then
  // runs; every page of 100..299 comes, in page records, then the end.
  uint8_t ask[9] = {'P'};
  uint64_t page = 299;
  std::memcpy(ask + 1, &page, 8);
  REQUIRE(write(pipe.fds[1], ask, 9) == 9);
  page = 5;
  std::memcpy(ask + 1, &page, 8);
  REQUIRE(write(pipe.fds[1], ask, 9) == 9);
  REQUIRE(write(pipe.fds[1], "K", 1) == 1);
  std::vector<int> times_received(kPages, 0);
  uint64_t zero_pages = 0;
  while (true) {
    uint8_t type = 0;
    REQUIRE(read(pipe.fds[1], &type, 1) == 1);
    if (type == migration_record::kEnd) break;
    // Zero pages come without their data.
    const bool zero = type == migration_record::kZeroPages;
    REQUIRE((type == migration_record::kPages || zero));
    uint64_t first = 0;
    uint32_t count = 0;
    REQUIRE(recv(pipe.fds[1], &first, 8, MSG_WAITALL) == 8);
    REQUIRE(recv(pipe.fds[1], &count, 4, MSG_WAITALL) == 4);
    std::vector<uint8_t> data(count * kPage);
    if (zero) zero_pages += count;
    REQUIRE((zero || recv(pipe.fds[1], data.data(), data.size(), MSG_WAITALL) ==
                         static_cast<ssize_t>(data.size())));
    for (uint32_t i = 0; i < count; ++i) {
      REQUIRE(first + i < kPages);
      ++times_received[first + i];
      CHECK(std::memcmp(data.data() + i * kPage, mem->regions()[0].host + (first + i) * kPage,
                        kPage) == 0);
    }
  }
  source.join();
  CHECK(served.ok());
  CHECK(target_ran);
  CHECK(zero_pages == 29);  // in 100..299: the multiples of 7, and 256 (its byte is 0)
  for (uint64_t p = 0; p < kPages; ++p) {
    INFO("page " << p);
    CHECK(times_received[p] == (p >= 100 && p < 300 ? 1 : 0));
  }
}

TEST_CASE("A post-copy source whose target goes away before running fails", "[migration_stream]") {
  auto mem = PatternedMemory();
  Pipe pipe;
  PageBitmap later((kPages + 63) / 64, 0);
  later[0] = 1;
  std::atomic<bool> never{false};
  MigrationSender sender{FileDescriptor(pipe.fds[0])};
  close(pipe.fds[1]);
  pipe.fds[1] = -1;
  bool target_ran = false;
  absl::Status served = sender.ServePostcopy(
      *mem, later, never, [&] { target_ran = true; }, 5000);
  CHECK_FALSE(served.ok());
  CHECK_FALSE(target_ran);
}

TEST_CASE("A post-copy page map of the wrong size is refused", "[migration_stream]") {
  auto target = EmptyMemory();
  TempDir dir;
  Pipe pipe;
  std::thread source([&] {
    MigrationSender sender{FileDescriptor(pipe.fds[0])};
    CHECK(sender.SendHead(kConfig, kMachine).ok());
    CHECK(sender.SendState({9}).ok());
    CHECK(sender.SendPostcopy(PageBitmap(3, ~uint64_t{0})).ok());
  });
  absl::StatusOr<ReceivedMigration> received = Receive(pipe, dir, *target);
  source.join();
  REQUIRE_FALSE(received.ok());
  CHECK_THAT(std::string(received.status().message()), Catch::Contains("post-copy page map"));
}

TEST_CASE("A stream whose config is not followed by the machine is refused", "[migration_stream]") {
  TempDir dir;
  Pipe pipe;
  {
    MigrationSender sender{FileDescriptor(pipe.fds[0])};
    REQUIRE(sender.SendHead(kConfig, kMachine).ok());
  }
  std::vector<uint8_t> bytes(8 + 4 + 1 + 4 + kConfig.size() + 1 + 8 + kMachine.size());
  REQUIRE(recv(pipe.fds[1], bytes.data(), bytes.size(), MSG_WAITALL) ==
          static_cast<ssize_t>(bytes.size()));
  bytes[8 + 4 + 1 + 4 + kConfig.size()] = migration_record::kState;  // not kMachine
  Pipe again;
  REQUIRE(write(again.fds[0], bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  close(again.fds[0]);
  absl::Status head = ReceiveMigrationHead(again.fds[1], dir.path());
  CHECK_THAT(std::string(head.message()), Catch::Contains("no machine record"));
}

}  // namespace
}  // namespace mote
