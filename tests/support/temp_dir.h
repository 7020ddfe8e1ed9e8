// TempDir: a fresh directory under /tmp for one test, removed with all it
// holds when the test ends.
#ifndef MOTE_TESTS_SUPPORT_TEMP_DIR_H_
#define MOTE_TESTS_SUPPORT_TEMP_DIR_H_

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

namespace mote {

class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/mote-test-XXXXXX";
    REQUIRE(mkdtemp(name) != nullptr);
    path_ = name;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace mote

#endif  // MOTE_TESTS_SUPPORT_TEMP_DIR_H_
