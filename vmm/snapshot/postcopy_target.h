// PostcopyTarget: the target's side of a post-copy migration. The VM runs
// here before all of its RAM has come: the pages the source still holds
// are dropped from guest memory, which is registered with userfaultfd
// (missing pages), and a thread of this class fills each missing page on
// its first touch, by the guest, KVM or a device: from the source, asked
// for over the stream's connection ('P' + u64 page), which meanwhile brings
// the source's remaining pages unasked; a page the source never sent is
// zero (docs/snapshot.md, "Post-copy").
// Thread-safety: Create, Attach, Acknowledge and the destructor from one
// thread; the serving thread is this class's own.
#ifndef MOTE_VMM_SNAPSHOT_POSTCOPY_TARGET_H_
#define MOTE_VMM_SNAPSHOT_POSTCOPY_TARGET_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "vmm/base/fd.h"
#include "vmm/base/guest_memory.h"
#include "vmm/base/mutex.h"
#include "vmm/base/seccomp_filter.h"
#include "vmm/snapshot/memory_file.h"

namespace mote {

class PostcopyTarget {
 public:
  // `from_source`: the pages the source still holds, one bit per page of
  // the regions back to back.
  static absl::StatusOr<std::unique_ptr<PostcopyTarget>> Create(FileDescriptor stream,
                                                                PageBitmap from_source);
  ~PostcopyTarget();  // stops the thread; pages still missing read as zero after

  // Drops the source's pages from `mem` (anonymous memory holding what came
  // before), registers it and starts serving its faults.
  // `on_lost` runs on the serving thread if the source goes away before
  // every page came: the guest cannot go on.
  // The serving thread runs the event loop's seccomp filter in `seccomp` mode.
  absl::Status Attach(GuestMemory& mem, SeccompMode seccomp,
                      std::function<void(const std::string&)> on_lost);
  // Tells the source that the VM is built and runs here.
  void Acknowledge();
  uint64_t pages_still_at_source() const { return left_.load(); }

 private:
  PostcopyTarget(FileDescriptor stream, FileDescriptor uffd, PageBitmap from_source);
  void Serve();
  void OnFault(uint64_t address);
  // Reads one record of the stream; false when the stream is over.
  bool ReadRecord();
  void StreamOver(const std::string& why);
  // `data` null: a zero page.
  void CopyPage(uint64_t page, const uint8_t* data);
  absl::Status SendRequest(uint64_t page);

  FileDescriptor stream_;
  FileDescriptor uffd_;
  FileDescriptor stop_;     // eventfd: the destructor's word to the thread
  PageBitmap from_source_;  // serving thread only, after Attach
  PageBitmap requested_;
  uint64_t requests_ = 0;  // pages asked for
  uint64_t total_pages_ = 0;
  std::atomic<uint64_t> left_{0};
  bool stream_open_ = true;
  const GuestMemory* mem_ = nullptr;  // Attach's; outlives this
  std::function<void(const std::string&)> on_lost_;
  SeccompMode seccomp_ = SeccompMode::kOff;
  Mutex send_mu_;  // Acknowledge and the thread's requests share the socket
  std::thread thread_;
};

}  // namespace mote

#endif  // MOTE_VMM_SNAPSHOT_POSTCOPY_TARGET_H_
