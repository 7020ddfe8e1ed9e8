// libmote's description of one VM. The members are those of the JSON VM
// description (docs/vm-config.md, docs/vm-config.schema.json), with the same
// names and values, and those of the `mote run` flags: a program, a file and
// a command line say the same things the same way. Nothing is checked here;
// Vm::Create checks it all and names the bad member ("disks[0].cache: ...").
// Value types; thread-compatible.
#ifndef MOTE_INCLUDE_MOTE_CONFIG_H_
#define MOTE_INCLUDE_MOTE_CONFIG_H_

#include <string>
#include <vector>

#include "mote/result.h"

namespace libmote {

// One virtio-blk disk on a raw image (`--disk`).
struct DiskConfig {
  std::string path;                 // required
  bool readonly = false;            // writes fail with an I/O error
  std::string cache = "writeback";  // or "none" (O_DIRECT)
  std::string serial;               // what the guest's GET_ID returns, at most 20 bytes
  std::string id;                   // its name on the control socket; "": disk0, disk1, ...
  unsigned queues = 1;              // request queues, 1 to 16
  std::string aio = "io_uring";     // or "threads"

  // The `--disk` syntax: "path=FILE[,readonly=on][,cache=none][,serial=ID]...";
  // a value in double quotes may hold commas.
  static Result<DiskConfig> Parse(const std::string& text);
  // That syntax, every member: "path=FILE[,readonly=on|off]...".
  static std::string Syntax();
};

// One virtio-net NIC on a TAP (`--net`): exactly one of `tap` and `fd`.
struct NetConfig {
  std::string tap;  // the TAP interface's name
  int fd = -1;      // or an open TAP file descriptor, which the VM takes over
  std::string mac;  // "xx:xx:xx:xx:xx:xx"; "": 52:54:00:12:34:56 + position

  // The `--net` syntax: "tap=NAME[,mac=MAC]" or "fd=N[,mac=MAC]".
  static Result<NetConfig> Parse(const std::string& text);
  // That syntax, every member: "tap=NAME[,fd=N][,mac=...]" (one of tap and fd).
  static std::string Syntax();
};

struct VmConfig {
  std::string kernel;  // required: bzImage, ELF with a PVH note, Multiboot ELF or x86-64 ELF
  std::string initrd;  // "": none
  std::string cmdline;
  unsigned cpus = 1;                  // 1 to 254
  std::string memory = "128M";        // "512M", "2G", "4096K" (a bare number is MiB),
                                      // ",hugepages=on" for reserved 2 MiB pages
  std::string cpu_template = "host";  // or "minimal"
  std::string pit = "auto";           // "on", "off", or "auto" (bzImage kernels only)
  std::string console = "stdio";      // "stdio", "none" or "file:PATH"
  std::string transport = "pci";      // virtio over "pci" or "mmio"
  bool rng = false;                   // a virtio-rng device
  double timeout = 0;                 // seconds until the VM is stopped; 0: never
  std::string expect;  // end with success once a console line matches (ECMAScript regex)
  std::string on_reboot = "exit";  // or "restart"
  std::string kvm_device = "/dev/kvm";
  std::vector<DiskConfig> disks;  // in slot order
  std::vector<NetConfig> nets;    // in slot order, after the disks
  std::string api_socket;         // serve QMP on this Unix socket; "": none
  bool paused = false;            // the vCPUs wait for Resume (QMP `cont`)
  std::string name;               // what QMP query-name reports
  // Logging is process-wide: a level here ("trace", "debug", "info", "warn",
  // "error", "off") is set by Vm::Create for the whole process; "" leaves
  // it as it is (SetLogLevel; "info" until something sets it).
  std::string log_level;

  // A whole description (JSON text, or a file of it); errors name the member
  // ("config: cpus: expected an integer from 1 to 254").
  static Result<VmConfig> FromJson(const std::string& text);
  static Result<VmConfig> FromJsonFile(const std::string& path);
  // The description as JSON text: every member, except those whose empty
  // value means "the default" (timeout 0, a disk's id, a NIC's mac, an
  // unset kernel or log level).
  std::string ToJson() const;
};

}  // namespace libmote

#endif  // MOTE_INCLUDE_MOTE_CONFIG_H_
