// The description of one VM: the only configuration model of mote. The
// `mote run` flags, the JSON VM description (docs/vm-config.md), the C++ API
// and the C API all fill this struct, through one member table
// (vmm/vm_config.h) that names each member as the JSON description does.
// Nothing is checked on assignment; Vm::Create checks it all and names the bad
// member ("disks[0].queues: ...").
// Value types; thread-compatible.
#ifndef MOTE_INCLUDE_MOTE_CONFIG_H_
#define MOTE_INCLUDE_MOTE_CONFIG_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "mote/result.h"

namespace libmote {

enum class ConsoleKind { kStdio, kFile, kNone };
enum class PitMode { kAuto, kOn, kOff };  // kAuto: on for Linux bzImage kernels
enum class OnReboot { kExit, kRestart };
// The FADT: hardware-reduced (sleep registers, no FACS, no legacy timers in
// Linux) or full (FACS, PM1a blocks, the PM timer, SCI on IRQ 9).
enum class AcpiMode { kReduced, kFull };
// How virtio devices reach the guest: virtio-pci (what stock kernels probe)
// or virtio-mmio (kernels built for microVMs).
enum class VirtioTransport { kPci, kMmio };

struct ConsoleConfig {
  ConsoleKind kind = ConsoleKind::kStdio;
  std::string path;  // kFile only
};

// A disk's rate limits, by QEMU's names (block_set_io_throttle, -drive
// throttling): bytes (bps) and operations (iops) per second, in total or
// for reads (_rd) and writes (_wr) alone, never both; 0: unlimited. A
// *_max is how much may go at once, a burst (QEMU: its rate for one
// second); 0: a tenth of a second's worth. Requests over a limit wait in
// the device; they never fail.
struct DiskThrottle {
  uint64_t bps = 0, bps_rd = 0, bps_wr = 0, iops = 0, iops_rd = 0, iops_wr = 0;
  uint64_t bps_max = 0, bps_rd_max = 0, bps_wr_max = 0, iops_max = 0, iops_rd_max = 0,
           iops_wr_max = 0;
};

// One virtio-blk disk on a raw image (`--disk`, JSON `disks[]`).
struct DiskConfig {
  std::string path;          // required
  bool readonly = false;     // writes fail with an I/O error
  bool cache_none = false;   // O_DIRECT: bypass the host page cache ("cache": "none")
  std::string serial;        // what the guest's GET_ID returns, at most 20 bytes
  std::string id;            // its name on the control socket; "": disk0, disk1, ... by position
  uint16_t queues = 1;       // request queues, 1 to 16
  bool aio_threads = false;  // worker threads instead of io_uring ("aio": "threads")
  // Lock the image as QEMU does (shared for readonly, exclusive otherwise),
  // so no other mote or QEMU writes it meanwhile; false: "lock": false.
  bool lock = true;
  DiskThrottle throttle;  // the members bps=, iops_rd=, ... of --disk and disks[]

  // The `--disk` syntax: "path=FILE[,readonly=on][,cache=none][,serial=ID]...";
  // a value in double quotes may hold commas.
  static Result<DiskConfig> Parse(const std::string& text);
  // That syntax, every member: "path=FILE[,readonly=on|off]...".
  static std::string Syntax();
};

// One virtio-net NIC on a TAP (`--net`, JSON `nets[]`): exactly one of `tap`
// and `fd`.
// A NIC's rate limits: bytes (bps) and packets (pps) per second received
// by the guest (rx) and sent by it (tx); 0: unlimited. A *_max is the
// burst, as for disks. Frames over a limit wait: sent ones on the guest's
// ring, received ones in the TAP.
struct NetThrottle {
  uint64_t rx_bps = 0, rx_pps = 0, tx_bps = 0, tx_pps = 0;
  uint64_t rx_bps_max = 0, rx_pps_max = 0, tx_bps_max = 0, tx_pps_max = 0;
};

struct NetConfig {
  std::string tap;               // the TAP interface's name
  int fd = -1;                   // or an open TAP file descriptor, which the VM takes over
  std::array<uint8_t, 6> mac{};  // all zero: 52:54:00:12:34:56 + position, as QEMU's
  NetThrottle throttle;          // the members rx_bps=, tx_pps=, ... of --net and nets[]

  // The `--net` syntax: "tap=NAME[,mac=MAC]" or "fd=N[,mac=MAC]".
  static Result<NetConfig> Parse(const std::string& text);
  // That syntax, every member: "tap=NAME[,fd=N][,mac=...]" (one of tap and fd).
  static std::string Syntax();
};

// One named item of the fw_cfg device (`--fw-cfg`, JSON `fw_cfg[]`), which
// the guest finds by name (Linux: /sys/firmware/qemu_fw_cfg/by_name/NAME),
// as QEMU's -fw_cfg passes Ignition configs: exactly one of `file` and
// `string` gives its bytes.
struct FwCfgConfig {
  std::string name;    // required, 1 to 55 bytes: "opt/org.example/config"
  std::string file;    // a host file read at start-up...
  std::string string;  // ...or this text (no NUL is added)
};

struct VmConfig {
  std::string
      kernel;  // required unless `restore`: bzImage, ELF with a PVH note, Multiboot or x86-64 ELF
  std::string initrd;  // "": none
  std::string cmdline;
  uint32_t cpus = 1;                     // 1 to 254
  uint64_t memory_bytes = 128ull << 20;  // 4 MiB to 1 TiB, a multiple of 4 KiB
  bool hugepages = false;                // reserved 2 MiB hugetlb pages
  std::string cpu = "host";  // host|minimal[,+FEATURE|-FEATURE...][,vendor=ID][,model-id=TEXT]
  PitMode pit = PitMode::kAuto;
  AcpiMode acpi = AcpiMode::kReduced;
  ConsoleConfig console;
  VirtioTransport transport = VirtioTransport::kPci;
  bool rng = false;    // a virtio-rng device
  bool hpet = false;   // an HPET at 0xfed00000 with its ACPI table
  double timeout = 0;  // seconds until the VM is stopped; 0: never
  std::string expect;  // end with success once a console line matches (ECMAScript regex)
  OnReboot on_reboot = OnReboot::kExit;
  std::string kvm_device = "/dev/kvm";
  // Entries per vCPU of KVM's dirty ring, which tracks the pages the guest
  // writes during a migration or after a snapshot (a power of two from 1024
  // to 65536; fewer where KVM allows fewer); 0, or a host without it: KVM's
  // dirty bitmap.
  uint32_t dirty_ring = 4096;
  // seccomp filters on mote's threads: "on" (a forbidden system call ends
  // mote with exit code 14), "off", or "log" (allowed, and the kernel's
  // audit log records it).
  std::string seccomp = "on";
  // A cgroup v2 directory (absolute, or under /sys/fs/cgroup) this process
  // joins, made if missing; "": none. The limits below are written into it
  // ("": left as they are); cgroup_vcpu_cpu_max puts the vCPU threads in a
  // threaded child group "vcpus" with that cpu.max.
  std::string cgroup;
  std::string cgroup_cpu_max;       // cpu.max: "QUOTA PERIOD" (microseconds) or "max"
  uint64_t cgroup_memory_max = 0;   // memory.max in bytes; 0: left as it is
  std::string cgroup_io_max;        // io.max: "MAJ:MIN rbps=N wbps=N riops=N wiops=N"
  uint32_t cgroup_io_weight = 0;    // io.weight, 1 to 10000; 0: left as it is
  std::string cgroup_vcpu_cpu_max;  // cpu.max of the vCPU threads' own group
  std::vector<DiskConfig> disks;    // in slot order
  std::vector<NetConfig> nets;      // in slot order, after the disks
  std::vector<FwCfgConfig> fw_cfg;  // fw_cfg file items, in any order (the guest sees them sorted)
  std::string api_socket;           // serve QMP on this Unix socket; "": none
  uint32_t api_socket_mode = 0600;  // its mode: 0600 to 0777, keeping the owner's rw
  std::string api_socket_group;     // its group (a name in /etc/group or a number); "": ours
  // Append a JSON line per state-changing control-socket command (who, what,
  // the result) to this file; "": to mote's log (debug level) instead.
  std::string audit_log;
  bool paused = false;  // the vCPUs wait for Resume (QMP `cont`)
  std::string name;     // what QMP query-name reports
  // Start from this snapshot directory (QMP `migrate` to "file:DIR") instead
  // of booting the kernel: the machine is the snapshot's, except for the
  // members set here (a disk's new path, say), and must match it.
  std::string restore;
  // Wait for a live migration from another mote on "unix:PATH" or
  // "tcp:HOST:PORT" (QMP `migrate` there) and run the VM it brings.
  std::string incoming;
  // Logging is process-wide: a level here ("trace", "debug", "info", "warn",
  // "error", "off") is set by Vm::Create for the whole process; "" leaves
  // it as it is (SetLogLevel; "info" until something sets it).
  std::string log_level;

  // A whole description (JSON text, or a file of it); errors name the member
  // ("config: cpus: expected an integer from 1 to 254").
  static Result<VmConfig> FromJson(const std::string& text);
  static Result<VmConfig> FromJsonFile(const std::string& path);
  // One member set from its JSON value, as a description would set it
  // ("memory", "\"2G\""); the error names it.
  Status SetMember(const std::string& name, const std::string& json_value);
  // The description as JSON text: every member, except those whose empty
  // value means "the default" (timeout 0, a disk's id, a NIC's mac, an
  // unset kernel or log level).
  std::string ToJson() const;
};

}  // namespace libmote

#endif  // MOTE_INCLUDE_MOTE_CONFIG_H_
