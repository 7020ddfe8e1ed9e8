// Image locks (virtio/image_lock.h) between open file descriptions, as two
// processes would hold them (OFD locks conflict within one process too),
// and FileBackend taking them at Open unless told otherwise.
#include "virtio/image_lock.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/support/temp_dir.h"
#include "virtio/block_backend.h"
#include "vmm/base/fd.h"

namespace mote::virtio {
namespace {

struct Image {
  TempDir dir;
  std::string path = dir.Path("disk.img");
  Image() { std::ofstream(path) << std::string(4096, 'x'); }
  FileDescriptor Open(bool writable) const {
    FileDescriptor fd(::open(path.c_str(), writable ? O_RDWR : O_RDONLY));
    REQUIRE(fd.ok());
    return fd;
  }
};

// Whether any open file description other than `fd`'s holds `byte`.
bool Held(int fd, int byte) {
  struct flock lock = {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = byte;
  lock.l_len = 1;
  REQUIRE(fcntl(fd, F_OFD_GETLK, &lock) == 0);
  return lock.l_type != F_UNLCK;
}

TEST_CASE("image lock: two writers conflict, naming the image", "[image_lock]") {
  Image image;
  FileDescriptor a = image.Open(true), b = image.Open(true);
  REQUIRE(LockImage(a.get(), image.path, true).ok());
  absl::Status second = LockImage(b.get(), image.path, true);
  CHECK(second.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(second.message() ==
        "disk " + image.path +
            " is in use: another process forbids \"write\" (lock=off opens it anyway)");
  // The refused one holds nothing: once the first lets go, it may.
  REQUIRE(UnlockImage(a.get(), image.path).ok());
  CHECK(LockImage(b.get(), image.path, true).ok());
}

TEST_CASE("image lock: a reader and a writer conflict either way; readers share", "[image_lock]") {
  Image image;
  FileDescriptor reader = image.Open(false), reader2 = image.Open(false), writer = image.Open(true);
  REQUIRE(LockImage(reader.get(), image.path, false).ok());
  CHECK(LockImage(reader2.get(), image.path, false).ok());
  CHECK_FALSE(LockImage(writer.get(), image.path, true).ok());
  REQUIRE(UnlockImage(reader.get(), image.path).ok());
  REQUIRE(UnlockImage(reader2.get(), image.path).ok());
  REQUIRE(LockImage(writer.get(), image.path, true).ok());
  absl::Status refused = LockImage(reader.get(), image.path, false);
  CHECK(refused.message() ==
        "disk " + image.path +
            " is in use: another process holds \"write\" (lock=off opens it anyway)");
}

TEST_CASE("image lock: QEMU's bytes (perm 100 + bit, unshared 200 + bit)", "[image_lock]") {
  Image image;
  FileDescriptor writer = image.Open(true), probe = image.Open(false);
  REQUIRE(LockImage(writer.get(), image.path, true).ok());
  // Held: consistent read, write, write unchanged; not shared: write, resize.
  CHECK(Held(probe.get(), 100));
  CHECK(Held(probe.get(), 101));
  CHECK(Held(probe.get(), 102));
  CHECK_FALSE(Held(probe.get(), 103));
  CHECK_FALSE(Held(probe.get(), 200));
  CHECK(Held(probe.get(), 201));
  CHECK_FALSE(Held(probe.get(), 202));
  CHECK(Held(probe.get(), 203));
  REQUIRE(UnlockImage(writer.get(), image.path).ok());
  for (int byte : {100, 101, 102, 201, 203}) CHECK_FALSE(Held(probe.get(), byte));
}

TEST_CASE("image lock: FileBackend locks at Open, later, or never", "[image_lock]") {
  Image image;
  auto first = FileBackend::Open(image.path, false, false);
  REQUIRE(first.ok());
  auto second = FileBackend::Open(image.path, false, false);
  CHECK(second.status().code() == absl::StatusCode::kFailedPrecondition);
  auto unlocked = FileBackend::Open(image.path, false, false, ImageLocking::kOff);
  CHECK(unlocked.ok());
  // A migration's target opens without the locks and takes them later.
  auto deferred = FileBackend::Open(image.path, false, false, ImageLocking::kDeferred);
  REQUIRE(deferred.ok());
  CHECK_FALSE((*deferred)->SetImageLock(true).ok());
  REQUIRE((*first)->SetImageLock(false).ok());
  CHECK((*deferred)->SetImageLock(true).ok());
}

}  // namespace
}  // namespace mote::virtio
