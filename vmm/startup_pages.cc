#include "vmm/startup_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace mote {
namespace {

struct Mapping {
  unsigned long lo = 0, hi = 0;
  bool candidate = false;  // read-only, of the executable
  size_t rss_kib = 0;
  size_t private_kib = 0;  // Anonymous: pages written since mapping (COW)
};

bool Releasable(const Mapping& m) { return m.candidate && m.private_kib == 0 && m.rss_kib != 0; }

}  // namespace

size_t ReleaseStartupPages() {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return 0;
  exe[n] = '\0';
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  Mapping m;
  // All found first, then dropped together: code that runs between two
  // drops (this parser) would be faulted straight back in.
  std::vector<Mapping> found;
  while (std::getline(smaps, line)) {
    char perms[8] = {};
    unsigned long lo, hi;
    int path_at = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &path_at) >= 3 &&
        path_at > 0) {
      if (Releasable(m)) found.push_back(m);
      m = Mapping{lo, hi, false, 0, 0};
      // r-xp text or r--p read-only data; never a writable or shared mapping.
      m.candidate = perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p' &&
                    line.compare(path_at, std::string::npos, exe) == 0;
      continue;
    }
    size_t kib = 0;
    if (std::sscanf(line.c_str(), "Rss: %zu kB", &kib) == 1) m.rss_kib = kib;
    if (std::sscanf(line.c_str(), "Anonymous: %zu kB", &kib) == 1) m.private_kib = kib;
  }
  if (Releasable(m)) found.push_back(m);
  size_t released = 0;
  for (const Mapping& r : found) {
    if (madvise(reinterpret_cast<void*>(r.lo), r.hi - r.lo, MADV_DONTNEED) == 0) {
      released += r.rss_kib * 1024;
    }
  }
  return released;
}

}  // namespace mote
