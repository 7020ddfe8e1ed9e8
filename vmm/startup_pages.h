// Start-up code leaves the process's page tables once a guest runs: mote's
// text and read-only data were mapped whole while it parsed flags, built the
// VM and booted it (the kernel maps 16 pages around every fault), and most of
// it never runs again. Dropping those mappings keeps the pages in the page
// cache, shared and clean, but out of mote's resident set; what the running
// VM needs is faulted back in as it runs.
// Thread-safety: any thread; other threads simply fault pages back in.
#ifndef MOTE_VMM_STARTUP_PAGES_H_
#define MOTE_VMM_STARTUP_PAGES_H_

#include <cstddef>

namespace mote {

// Drops the executable's read-only file mappings that hold no private
// (written) page: text and read-only data, never .data, relocated RELRO or
// anything anonymous. Returns the bytes that were resident there.
size_t ReleaseStartupPages();

}  // namespace mote

#endif  // MOTE_VMM_STARTUP_PAGES_H_
