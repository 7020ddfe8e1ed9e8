// The live-migration stream between two mote processes (docs/snapshot.md,
// "Migration stream"): the source connects to the target's --incoming
// address ("unix:PATH" or "tcp:HOST:PORT") and sends
//   "MOTEMIGR" u32 version | config record | machine record |
//   page records... | state record | end record
// and the target answers one byte when it has the VM built ('K'), or
// closes. A record is a u8 type and its body: config = u32 length + JSON
// text; machine and state = u64 length + a state file (machine: its
// machine section alone); pages = u64 first page, u32 count, count * 4 KiB;
// end = nothing. The target builds the VM from the head (config and
// machine) while the pages come, straight into its memory. Post-copy ends
// with a post-copy record (u64 word count + a page bitmap) instead of the
// end record: the pages the source still holds; the target then runs the
// VM and asks for pages ('P' + u64 page) while the source sends them,
// asked for first (zero pages as a zero-pages record: u64 first page, u32
// count, no data), and then the end record.
// Blocking I/O on the caller's thread.
#ifndef MOTE_VMM_SNAPSHOT_MIGRATION_STREAM_H_
#define MOTE_VMM_SNAPSHOT_MIGRATION_STREAM_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/base/fd.h"
#include "vmm/base/guest_memory.h"
#include "vmm/snapshot/memory_file.h"

namespace mote {

namespace migration_record {
constexpr uint8_t kConfig = 1, kPages = 2, kState = 3, kEnd = 4, kPostcopy = 5, kMachine = 6,
                  kZeroPages = 7;
constexpr uint32_t kMaxPages = 256;  // per page record: 1 MiB
}  // namespace migration_record

// "unix:PATH" or "tcp:HOST:PORT": whether `uri` names a migration address.
bool IsMigrationUri(const std::string& uri);
absl::StatusOr<FileDescriptor> ConnectMigration(const std::string& uri);
// Listens on `uri` and waits for one source.
absl::StatusOr<FileDescriptor> AcceptMigration(const std::string& uri);

class MigrationSender {
 public:
  // Sends on `fd`; a send that cannot go on (a target that stopped
  // reading) gives up when `cancel` becomes true or after a minute.
  explicit MigrationSender(FileDescriptor fd, const std::atomic<bool>* cancel = nullptr);
  // The head: the machine's config, and a state file of its machine section
  // alone (Vm::SaveMachineStateFile), from which the target builds the VM
  // while the pages come.
  absl::Status SendHead(const std::string& config_json, const std::vector<uint8_t>& machine);
  // The pages set in `pages` (all of RAM's non-zero pages when null); stops
  // early when `cancel` becomes true. When `switch_now` becomes true, it
  // returns early without error, `*stopped_at` the first page not sent.
  absl::Status SendPages(const GuestMemory& mem, const PageBitmap* pages,
                         const std::atomic<bool>& cancel, uint64_t max_bytes_per_second,
                         const std::atomic<bool>* switch_now = nullptr,
                         uint64_t* stopped_at = nullptr);
  absl::Status SendState(const std::vector<uint8_t>& state);
  absl::Status SendEnd();
  // Post-copy: names the pages the target must have from here, then sends
  // them, each as the target asks for it or else in order, until none is
  // left and the target runs the VM ('K': `on_target_running` is called).
  // `cancel` counts only until then. The pages not asked for go at most at
  // `max_bytes_per_second` (0: unlimited); asked-for ones at once.
  absl::Status SendPostcopy(const PageBitmap& pages);
  absl::Status ServePostcopy(const GuestMemory& mem, PageBitmap pages,
                             const std::atomic<bool>& cancel,
                             const std::function<void()>& on_target_running, int timeout_ms,
                             uint64_t max_bytes_per_second = 0);
  // The target's answer once it has built the VM.
  absl::Status WaitForTarget(int timeout_ms);
  uint64_t bytes_sent() const { return sent_; }

 private:
  absl::Status Write(const void* data, size_t len);
  // `count` pages from `first`, in one region; `zero`: they are, send no data.
  absl::Status SendRun(const GuestMemory& mem, uint64_t first, uint32_t count, bool zero);
  // How long until what was sent since the first page fits
  // `bytes_per_second` (0: unlimited, or it fits now), and sleeping that long.
  int64_t PaceWaitNs(uint64_t bytes_per_second);
  void Pace(uint64_t bytes_per_second);
  FileDescriptor fd_;
  const std::atomic<bool>* const cancel_;
  uint64_t sent_ = 0;
  int64_t pace_start_ns_ = 0;
};

// The target reads a stream in two steps. First its head (magic, version,
// config, machine) into directory `dir`: config.json, and state.bin holding
// the machine section alone, from which the VM is built as for a restore.
// Then the body into the built VM's memory: pages where they belong, up to
// the state record (whose bytes are returned) and the end or post-copy
// record. Errors say what was wrong with the stream (RestoreFailure::
// kCorrupt, kNewerFormat).
absl::Status ReceiveMigrationHead(int fd, const std::string& dir);
struct ReceivedMigration {
  std::vector<uint8_t> state;  // a state file
  bool postcopy = false;
  PageBitmap pages_at_source;  // post-copy: the pages still to come
};
absl::StatusOr<ReceivedMigration> ReceiveMigrationBody(int fd, GuestMemory& mem);
// Reads exactly `len` bytes of a migration stream (an early end is an
// error naming it: RestoreFailure::kCorrupt).
absl::Status ReadStream(int fd, void* data, size_t len);
// Tells the source the VM is built.
void AcknowledgeMigration(int fd);

}  // namespace mote

#endif  // MOTE_VMM_SNAPSHOT_MIGRATION_STREAM_H_
