// VmConfig: everything needed to build one VM, as plain structs, validated
// once (Validate) before any VM object is created. Filled by the CLI today and
// by JSON/the API later. Value type; thread-compatible.
#ifndef MOTE_VMM_VM_CONFIG_H_
#define MOTE_VMM_VM_CONFIG_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "vmm/config_section.h"

namespace mote {

enum class ConsoleKind { kStdio, kFile, kNone };
enum class PitMode { kAuto, kOn, kOff };
enum class OnReboot { kExit, kRestart };
// How virtio devices reach the guest: virtio-pci (what stock kernels probe)
// or virtio-mmio (kernels built for microVMs).
enum class VirtioTransport { kPci, kMmio };

struct ConsoleConfig {
  ConsoleKind kind = ConsoleKind::kStdio;
  std::string path;  // kFile only
};

// --disk path=FILE[,readonly=on][,cache=writeback|none][,serial=ID][,id=NAME]
//        [,queues=N][,aio=io_uring|threads]
struct DiskConfig {
  std::string path;
  bool readonly = false;
  bool cache_none = false;   // O_DIRECT: bypass the host page cache
  std::string serial;        // what the guest's GET_ID returns (at most 20 bytes)
  std::string id;            // a name for the control plane; default disk0, disk1, ...
  uint16_t queues = 1;       // virtio-blk request queues (1..16)
  bool aio_threads = false;  // worker threads instead of io_uring
};

// --net tap=NAME[,mac=MAC] or --net fd=N[,mac=MAC] (an inherited TAP fd)
struct NetConfig {
  std::string tap;
  int fd = -1;
  std::array<uint8_t, 6> mac{};  // default 52:54:00:12:34:(0x56 + index), as QEMU's
};

struct VmConfig {
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  uint32_t cpus = 1;
  uint64_t memory_bytes = 128ull << 20;
  bool hugepages = false;  // reserved 2 MiB hugetlb pages (--memory SIZE,hugepages=on)
  std::string cpu_template = "host";
  PitMode pit = PitMode::kAuto;
  ConsoleConfig console;
  std::optional<absl::Duration> timeout;
  std::string expect;  // ECMAScript regex matched against each console line; empty: none
  OnReboot on_reboot = OnReboot::kExit;
  VirtioTransport transport = VirtioTransport::kPci;
  bool rng = false;  // a virtio-rng device
  std::vector<DiskConfig> disks;
  std::vector<NetConfig> nets;
  std::string kvm_path = "/dev/kvm";
  absl::Time launch_time = absl::Now();  // the process start, for the boot timer

  // Checks ranges and presence; file contents are checked by the loaders.
  absl::Status Validate() const;
};

// The smallest and largest guest RAM mote accepts.
inline constexpr uint64_t kMinMemoryBytes = 4ull << 20;
inline constexpr uint64_t kMaxMemoryBytes = 1ull << 40;

// "512" (MiB), "512M", "2G", "4096K", "1GiB"... -> bytes; rejects garbage,
// zero and sizes that are not a multiple of 4 KiB.
absl::StatusOr<uint64_t> ParseMemorySize(const std::string& text);
// --memory SIZE[,hugepages=on|off]
struct MemoryOption {
  uint64_t bytes = 0;
  bool hugepages = false;
};
absl::StatusOr<MemoryOption> ParseMemory(const std::string& text);
absl::StatusOr<ConsoleConfig> ParseConsole(const std::string& text);
absl::StatusOr<PitMode> ParsePitMode(const std::string& text);
absl::StatusOr<OnReboot> ParseOnReboot(const std::string& text);
absl::StatusOr<VirtioTransport> ParseTransport(const std::string& text);
// The disk and NIC sections as member tables (vmm/config_section.h): the
// --disk and --net flags, the JSON description's disks[] and nets[], and
// the writer all go through them.
const std::vector<SectionMember<DiskConfig>>& DiskMembers();
const std::vector<SectionMember<NetConfig>>& NetMembers();
// What the members do not set themselves: disk `index`'s id, NIC `index`'s
// MAC.
DiskConfig DefaultDisk(size_t index);
NetConfig DefaultNet(size_t index);
// A NIC has exactly one backend: a TAP by name or an inherited fd.
absl::Status CheckNetBackend(const NetConfig& net);
std::string FormatMac(const std::array<uint8_t, 6>& mac);  // xx:xx:xx:xx:xx:xx
// One --disk value; `index` names it (disk0, ...) when it has no id=.
absl::StatusOr<DiskConfig> ParseDisk(const std::string& text, size_t index);
// One --net value; `index` picks the default MAC.
absl::StatusOr<NetConfig> ParseNet(const std::string& text, size_t index);

}  // namespace mote

#endif  // MOTE_VMM_VM_CONFIG_H_
