// The VM's own members, in the JSON description's order: each row is the
// member's flag (`--` and its name with dashes), its help, its JSON name and
// type, how its text form is checked and set, and how it is written.
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "arch/x86/cpuid.h"
#include "vmm/base/logging.h"
#include "vmm/base/seccomp_filter.h"
#include "vmm/base/status_macros.h"
#include "vmm/vm_config.h"

namespace mote {
namespace {

using Json = nlohmann::json;
using V = VmConfig;

constexpr int kMaxCpus = 254;  // xAPIC IDs are 8 bits and 0xff is the broadcast ID
constexpr double kMaxTimeoutSeconds = 1e9;

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

absl::Status SetString(const std::string& text, std::string& out) {
  out = text;
  return absl::OkStatus();
}

absl::Status SetNonEmpty(const std::string& text, std::string& out) {
  if (text.empty()) return Invalid("expected a non-empty string");
  out = text;
  return absl::OkStatus();
}

absl::Status SetOnOff(const std::string& text, bool& out) {
  if (text != "on" && text != "off") return Invalid("expected true or false");
  out = text == "on";
  return absl::OkStatus();
}

// A parser's value, or its message.
template <typename T>
absl::Status SetParsed(absl::StatusOr<T> parsed, T& out) {
  if (!parsed.ok()) return parsed.status();
  out = *std::move(parsed);
  return absl::OkStatus();
}

absl::Status SetCpus(const std::string& text, V& c) {
  int cpus = 0;
  if (!absl::SimpleAtoi(text, &cpus) || cpus < 1 || cpus > kMaxCpus) {
    return Invalid(absl::StrFormat("expected an integer from 1 to %d", kMaxCpus));
  }
  c.cpus = static_cast<uint32_t>(cpus);
  return absl::OkStatus();
}

absl::Status SetMemory(const std::string& text, V& c) {
  MOTE_ASSIGN_OR_RETURN(MemoryOption memory, ParseMemory(text));
  if (memory.bytes < kMinMemoryBytes) {
    return Invalid(absl::StrFormat("'%s' is too small: mote needs at least %d MiB", text,
                                   kMinMemoryBytes >> 20));
  }
  c.memory_bytes = memory.bytes;
  c.hugepages = memory.hugepages;
  return absl::OkStatus();
}

// cpu.max's form: "max" or a quota, then optionally a period (microseconds).
absl::Status SetCpuMax(const std::string& text, std::string& out) {
  std::vector<std::string> words = absl::StrSplit(text, ' ');
  uint64_t n = 0;
  bool ok = (words.size() == 1 || words.size() == 2) &&
            (words[0] == "max" || (absl::SimpleAtoi(words[0], &n) && n > 0)) &&
            (words.size() == 1 || (absl::SimpleAtoi(words[1], &n) && n >= 1000));
  if (!ok) return Invalid("expected \"QUOTA PERIOD\" in microseconds (cpu.max), or \"max\"");
  out = text;
  return absl::OkStatus();
}

absl::Status SetSocketMode(const std::string& text, V& c) {
  uint32_t mode = 0;
  bool octal =
      !text.empty() && text.size() <= 4 && text.find_first_not_of("01234567") == std::string::npos;
  for (char digit : text) mode = mode * 8 + static_cast<uint32_t>(digit - '0');
  if (!octal || mode > 0777 || (mode & 0600) != 0600) {
    return Invalid(
        "expected an octal mode from 0600 to 0777 that keeps the owner's read and write");
  }
  c.api_socket_mode = mode;
  return absl::OkStatus();
}

absl::Status SetDirtyRing(const std::string& text, V& c) {
  uint32_t entries = 0;
  if (!absl::SimpleAtoi(text, &entries) ||
      (entries != 0 && (entries < 1024 || entries > 65536 || (entries & (entries - 1)) != 0))) {
    return Invalid("expected 0 or a power of two from 1024 to 65536");
  }
  c.dirty_ring = entries;
  return absl::OkStatus();
}

// The largest unit that divides the size exactly.
std::string MemoryText(uint64_t bytes, bool hugepages) {
  std::string size = bytes % (1ull << 30) == 0   ? absl::StrFormat("%dG", bytes >> 30)
                     : bytes % (1ull << 20) == 0 ? absl::StrFormat("%dM", bytes >> 20)
                                                 : absl::StrFormat("%dK", bytes >> 10);
  return hugepages ? size + ",hugepages=on" : size;
}

absl::Status SetTimeout(const std::string& text, V& c) {
  double seconds = 0;
  if (!absl::SimpleAtod(text, &seconds) || !(seconds >= 0) || seconds > kMaxTimeoutSeconds) {
    return Invalid("expected a number of seconds from 0 (never) to 1e9");
  }
  c.timeout = seconds;
  return absl::OkStatus();
}

absl::Status SetLogLevel(const std::string& text, V& c) {
  for (const char* level : kLogLevels) {
    if (text == level) return SetString(text, c.log_level);
  }
  return Invalid("expected one of: " + absl::StrJoin(kLogLevels, ", "));
}

std::string ConsoleText(const ConsoleConfig& console) {
  switch (console.kind) {
    case ConsoleKind::kNone:
      return "none";
    case ConsoleKind::kFile:
      return "file:" + console.path;
    case ConsoleKind::kStdio:
      break;
  }
  return "stdio";
}

const char* PitText(PitMode pit) {
  return pit == PitMode::kOn ? "on" : pit == PitMode::kOff ? "off" : "auto";
}

// disks[] and nets[]: each item set through its section's table, as the
// flags set it from text; what an item does not name is named by position.
absl::Status SetDisks(const nlohmann::ordered_json& value, const std::string& path, V& c) {
  if (!value.is_array()) return JsonMemberError(path, "expected an array of disk objects");
  std::vector<DiskConfig> disks(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    std::string item = absl::StrFormat("%s[%d]", path, i);
    MOTE_RETURN_IF_ERROR(ApplyJsonObject("--disk", value[i], item, DiskMembers(), disks[i]));
    if (!value[i].contains("path")) return JsonMemberError(item + ".path", "missing (required)");
  }
  c.disks = std::move(disks);
  FillDefaultNames(c);
  return absl::OkStatus();
}

absl::Status SetNets(const nlohmann::ordered_json& value, const std::string& path, V& c) {
  if (!value.is_array()) return JsonMemberError(path, "expected an array of NIC objects");
  std::vector<NetConfig> nets(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    std::string item = absl::StrFormat("%s[%d]", path, i);
    MOTE_RETURN_IF_ERROR(ApplyJsonObject("--net", value[i], item, NetMembers(), nets[i]));
    if (!value[i].contains("tap") && !value[i].contains("fd")) {
      return JsonMemberError(item, "expected a tap or an fd member");
    }
    if (absl::Status s = CheckNetBackend(nets[i]); !s.ok()) {
      return JsonMemberError(item, std::string(s.message()));
    }
  }
  c.nets = std::move(nets);
  FillDefaultNames(c);
  return absl::OkStatus();
}

absl::Status SetFwCfg(const nlohmann::ordered_json& value, const std::string& path, V& c) {
  if (!value.is_array()) return JsonMemberError(path, "expected an array of fw_cfg item objects");
  std::vector<FwCfgConfig> items(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    std::string item = absl::StrFormat("%s[%d]", path, i);
    MOTE_RETURN_IF_ERROR(ApplyJsonObject("--fw-cfg", value[i], item, FwCfgMembers(), items[i]));
    if (absl::Status s = CheckFwCfgItem(items[i]); !s.ok()) {
      return JsonMemberError(item, std::string(s.message()));
    }
  }
  c.fw_cfg = std::move(items);
  return absl::OkStatus();
}

template <class Section>
Json ListJson(const std::vector<Section>& items, const std::vector<SectionMember<Section>>& table) {
  Json list = Json::array();
  for (const Section& item : items) list.push_back(SectionToJson(item, table));
  return list;
}

}  // namespace

const std::vector<SectionMember<VmConfig>>& VmMembers() {
  using T = MemberType;
  static const std::vector<SectionMember<VmConfig>> members = {
      {.name = "kernel",
       .type = T::kString,
       .syntax = "PATH",
       .set = [](const std::string& t, V& c) { return SetNonEmpty(t, c.kernel); },
       .get = [](const V& c) { return c.kernel.empty() ? Json() : Json(c.kernel); },
       .help = "Kernel image: bzImage, ELF with a PVH note, Multiboot ELF, or x86-64 ELF "
               "(required)",
       .expected = "a non-empty string"},
      {.name = "initrd",
       .type = T::kString,
       .syntax = "PATH",
       .set = [](const std::string& t, V& c) { return SetString(t, c.initrd); },
       .get = [](const V& c) { return Json(c.initrd); },
       .help = "Initial ramdisk (Linux) or first module"},
      {.name = "cmdline",
       .type = T::kString,
       .syntax = "TEXT",
       .set = [](const std::string& t, V& c) { return SetString(t, c.cmdline); },
       .get = [](const V& c) { return Json(c.cmdline); },
       .help = "Kernel command line"},
      {.name = "cpus",
       .type = T::kInteger,
       .syntax = "N",
       .set = &SetCpus,
       .get = [](const V& c) { return Json(c.cpus); },
       .help = "Number of vCPUs, 1 to 254",
       .expected = "an integer from 1 to 254"},
      {.name = "memory",
       .type = T::kSize,
       .syntax = "SIZE",
       .set = &SetMemory,
       .get = [](const V& c) { return Json(MemoryText(c.memory_bytes, c.hugepages)); },
       .help = "Guest RAM: 512 (MiB), 512M, 2G ...; SIZE,hugepages=on for reserved 2 MiB pages",
       .expected = "a size such as \"512M\" or \"2G\", or an integer of MiB"},
      {.name = "cpu",
       .type = T::kString,
       .syntax = "MODEL",
       .set =
           [](const std::string& t, V& c) {
             MOTE_RETURN_IF_ERROR(x86::ParseCpuModel(t).status());
             return SetString(t, c.cpu);
           },
       .get = [](const V& c) { return Json(c.cpu); },
       .help = "The vCPUs' CPUID: host or minimal, then +FEATURE / -FEATURE by QEMU's names "
               "(x2apic, pcid, avx2, ...), vendor=ID (12 characters), model-id=TEXT",
       .expected = "host or minimal, then ,+FEATURE or ,-FEATURE"},
      {.name = "pit",
       .type = T::kString,
       .syntax = "MODE",
       .set = [](const std::string& t, V& c) { return SetParsed(ParsePitMode(t), c.pit); },
       .get = [](const V& c) { return Json(PitText(c.pit)); },
       .help = "In-kernel PIT: on, off, or auto (on for Linux bzImage kernels)",
       .expected = "on, off or auto"},
      {.name = "acpi",
       .type = T::kString,
       .syntax = "MODE",
       .set = [](const std::string& t, V& c) { return SetParsed(ParseAcpiMode(t), c.acpi); },
       .get = [](const V& c) { return Json(c.acpi == AcpiMode::kFull ? "full" : "reduced"); },
       .help = "The FADT: reduced (hardware-reduced ACPI) or full (FACS, PM1a registers, PM "
               "timer at 0x608, SCI)",
       .expected = "reduced or full"},
      {.name = "console",
       .type = T::kString,
       .syntax = "KIND",
       .set = [](const std::string& t, V& c) { return SetParsed(ParseConsole(t), c.console); },
       .get = [](const V& c) { return Json(ConsoleText(c.console)); },
       .help = "Guest console: stdio, file:PATH or none",
       .expected = "stdio, none or file:PATH"},
      {.name = "transport",
       .type = T::kString,
       .syntax = "KIND",
       .set = [](const std::string& t, V& c) { return SetParsed(ParseTransport(t), c.transport); },
       .get =
           [](const V& c) { return Json(c.transport == VirtioTransport::kMmio ? "mmio" : "pci"); },
       .help = "How virtio devices attach: pci (virtio-pci, MSI-X) or mmio (virtio-mmio)",
       .expected = "pci or mmio"},
      {.name = "rng",
       .type = T::kBool,
       .syntax = "",
       .set = [](const std::string& t, V& c) { return SetOnOff(t, c.rng); },
       .get = [](const V& c) { return Json(c.rng); },
       .help = "Give the guest a virtio-rng device backed by getrandom"},
      {.name = "hpet",
       .type = T::kBool,
       .syntax = "",
       .set = [](const std::string& t, V& c) { return SetOnOff(t, c.hpet); },
       .get = [](const V& c) { return Json(c.hpet); },
       .help = "Give the guest an HPET (0xfed00000, 100 MHz, 3 timers) and its ACPI table"},
      {.name = "timeout",
       .type = T::kNumber,
       .syntax = "SECONDS",
       .set = &SetTimeout,
       .get = [](const V& c) { return c.timeout == 0 ? Json() : Json(c.timeout); },
       .help = "Stop the guest after SECONDS (exit code 8); 0: never",
       .expected = "a number of seconds from 0 (never) to 1e9"},
      {.name = "expect",
       .type = T::kString,
       .syntax = "REGEX",
       .set = [](const std::string& t, V& c) { return SetString(t, c.expect); },
       .get = [](const V& c) { return Json(c.expect); },
       .help = "Exit 0 as soon as a console line matches this regex (10 if the guest ends first)"},
      {.name = "on_reboot",
       .type = T::kString,
       .syntax = "ACTION",
       .set = [](const std::string& t, V& c) { return SetParsed(ParseOnReboot(t), c.on_reboot); },
       .get =
           [](const V& c) { return Json(c.on_reboot == OnReboot::kRestart ? "restart" : "exit"); },
       .help = "What a guest reboot does: exit (code 4) or restart",
       .expected = "exit or restart"},
      {.name = "kvm_device",
       .type = T::kString,
       .syntax = "PATH",
       .set = [](const std::string& t, V& c) { return SetNonEmpty(t, c.kvm_device); },
       .get = [](const V& c) { return Json(c.kvm_device); },
       .help = "The KVM device to open",
       .expected = "a non-empty string"},
      {.name = "dirty_ring",
       .type = T::kInteger,
       .syntax = "ENTRIES",
       .set = &SetDirtyRing,
       .get = [](const V& c) { return Json(c.dirty_ring); },
       .help = "Entries per vCPU of KVM's dirty ring, which tracks the pages a guest writes "
               "during a migration (a power of two, 1024 to 65536); 0: KVM's dirty bitmap, as "
               "also on a host without the ring",
       .expected = "0 or a power of two from 1024 to 65536"},
      {.name = "seccomp",
       .type = T::kString,
       .syntax = "on|off|log",
       .set =
           [](const std::string& t, V& c) {
             MOTE_RETURN_IF_ERROR(ParseSeccompMode(t).status());
             c.seccomp = t;
             return absl::OkStatus();
           },
       .get = [](const V& c) { return Json(c.seccomp); },
       .help = "seccomp filters on mote's threads (vCPU, event loop, I/O workers): on (a "
               "forbidden system call ends mote, exit code 14), off, or log (allowed, and "
               "recorded in the kernel's audit log)",
       .expected = "on, off or log"},
      {.name = "cgroup",
       .type = T::kString,
       .syntax = "PATH",
       .set = [](const std::string& t, V& c) { return SetString(t, c.cgroup); },
       .get = [](const V& c) { return Json(c.cgroup); },
       .help = "Join this cgroup v2 directory (absolute, or under /sys/fs/cgroup; made if "
               "missing) with the limits below"},
      {.name = "cgroup_cpu_max",
       .type = T::kString,
       .syntax = "QUOTA PERIOD",
       .set = [](const std::string& t, V& c) { return SetCpuMax(t, c.cgroup_cpu_max); },
       .get = [](const V& c) { return c.cgroup_cpu_max.empty() ? Json() : Json(c.cgroup_cpu_max); },
       .help = "The cgroup's cpu.max: CPU time QUOTA per PERIOD, in microseconds (\"50000 "
               "100000\": half a CPU)",
       .expected = "\"QUOTA PERIOD\" or \"max\""},
      {.name = "cgroup_memory_max",
       .type = T::kString,
       .syntax = "SIZE",
       .set = [](const std::string& t,
                 V& c) { return SetParsed(ParseMemorySize(t), c.cgroup_memory_max); },
       .get =
           [](const V& c) {
             return c.cgroup_memory_max == 0 ? Json()
                                             : Json(MemoryText(c.cgroup_memory_max, false));
           },
       .help = "The cgroup's memory.max (guest RAM and mote's own): 512M, 2G, ...",
       .expected = "a size such as \"512M\""},
      {.name = "cgroup_io_max",
       .type = T::kString,
       .syntax = "LIMITS",
       .set = [](const std::string& t, V& c) { return SetString(t, c.cgroup_io_max); },
       .get = [](const V& c) { return Json(c.cgroup_io_max); },
       .help = "The cgroup's io.max: \"MAJ:MIN rbps=N wbps=N riops=N wiops=N\" for the disk "
               "under the images"},
      {.name = "cgroup_io_weight",
       .type = T::kInteger,
       .syntax = "1..10000",
       .set =
           [](const std::string& t, V& c) {
             uint32_t weight = 0;
             if (!absl::SimpleAtoi(t, &weight) || weight < 1 || weight > 10000) {
               return Invalid("expected an integer from 1 to 10000");
             }
             c.cgroup_io_weight = weight;
             return absl::OkStatus();
           },
       .get =
           [](const V& c) { return c.cgroup_io_weight == 0 ? Json() : Json(c.cgroup_io_weight); },
       .help = "The cgroup's io.weight",
       .expected = "an integer from 1 to 10000"},
      {.name = "cgroup_vcpu_cpu_max",
       .type = T::kString,
       .syntax = "QUOTA PERIOD",
       .set = [](const std::string& t, V& c) { return SetCpuMax(t, c.cgroup_vcpu_cpu_max); },
       .get =
           [](const V& c) {
             return c.cgroup_vcpu_cpu_max.empty() ? Json() : Json(c.cgroup_vcpu_cpu_max);
           },
       .help = "Put the vCPU threads in a child group \"vcpus\" of the cgroup with this cpu.max",
       .expected = "\"QUOTA PERIOD\" or \"max\""},
      {.name = "disks",
       .type = T::kList,
       .syntax = "SPEC",
       .set =
           [](const std::string& t, V& c) {
             MOTE_ASSIGN_OR_RETURN(DiskConfig disk, ParseDisk(t));
             c.disks.push_back(std::move(disk));
             return absl::OkStatus();
           },
       .get = [](const V& c) { return ListJson(c.disks, DiskMembers()); },
       .help = "A virtio-blk disk (repeatable; a value in double quotes may hold commas)",
       .expected = "an array of disk objects",
       .set_json = &SetDisks,
       .item_syntax = [] { return SectionSyntax(DiskMembers()); }},
      {.name = "nets",
       .type = T::kList,
       .syntax = "SPEC",
       .set =
           [](const std::string& t, V& c) {
             MOTE_ASSIGN_OR_RETURN(NetConfig net, ParseNet(t));
             c.nets.push_back(std::move(net));
             return absl::OkStatus();
           },
       .get = [](const V& c) { return ListJson(c.nets, NetMembers()); },
       .help = "A virtio-net NIC on a TAP, by name or an inherited fd (one of the two; repeatable)",
       .expected = "an array of NIC objects",
       .set_json = &SetNets,
       .item_syntax = [] { return SectionSyntax(NetMembers()); }},
      {.name = "fw_cfg",
       .type = T::kList,
       .syntax = "SPEC",
       .set =
           [](const std::string& t, V& c) {
             MOTE_ASSIGN_OR_RETURN(FwCfgConfig item, ParseFwCfg(t));
             c.fw_cfg.push_back(std::move(item));
             return absl::OkStatus();
           },
       .get = [](const V& c) { return ListJson(c.fw_cfg, FwCfgMembers()); },
       .help = "A named fw_cfg item the guest reads (name=opt/...,file=PATH or string=TEXT; "
               "repeatable)",
       .expected = "an array of fw_cfg item objects",
       .set_json = &SetFwCfg,
       .item_syntax = [] { return SectionSyntax(FwCfgMembers()); }},
      {.name = "api_socket",
       .type = T::kString,
       .syntax = "PATH",
       .set = [](const std::string& t, V& c) { return SetString(t, c.api_socket); },
       .get = [](const V& c) { return Json(c.api_socket); },
       .help = "Serve the QMP control protocol on this Unix socket (created mode 0600)"},
      {.name = "api_socket_mode",
       .type = T::kString,
       .syntax = "MODE",
       .set = &SetSocketMode,
       .get = [](const V& c) { return Json(absl::StrFormat("%04o", c.api_socket_mode)); },
       .help = "The control socket's mode in octal (default 0600; it keeps the owner's read and "
               "write)",
       .expected = "an octal mode from 0600 to 0777 that keeps the owner's read and write"},
      {.name = "api_socket_group",
       .type = T::kString,
       .syntax = "GROUP",
       .set = [](const std::string& t, V& c) { return SetString(t, c.api_socket_group); },
       .get = [](const V& c) { return Json(c.api_socket_group); },
       .help = "The control socket's group: a name in /etc/group or a number (default: the "
               "user's)"},
      {.name = "audit_log",
       .type = T::kString,
       .syntax = "FILE",
       .set = [](const std::string& t, V& c) { return SetString(t, c.audit_log); },
       .get = [](const V& c) { return Json(c.audit_log); },
       .help =
           "Append a JSON line per control-socket command that changes the VM's state "
           "(peer pid, uid and gid, the command, its result) to FILE; default: mote's debug log"},
      {.name = "paused",
       .type = T::kBool,
       .syntax = "",
       .set = [](const std::string& t, V& c) { return SetOnOff(t, c.paused); },
       .get = [](const V& c) { return Json(c.paused); },
       .help = "Start with the vCPUs stopped until a QMP `cont`"},
      {.name = "name",
       .type = T::kString,
       .syntax = "NAME",
       .set = [](const std::string& t, V& c) { return SetString(t, c.name); },
       .get = [](const V& c) { return Json(c.name); },
       .help = "The VM's name (QMP query-name)"},
      {.name = "restore",
       .type = T::kString,
       .syntax = "DIR",
       .set = [](const std::string& t, V& c) { return SetNonEmpty(t, c.restore); },
       .get = [](const V& c) { return c.restore.empty() ? Json() : Json(c.restore); },
       .help = "Start from a snapshot directory (QMP migrate file:DIR) instead of booting; "
               "machine flags given with it must match the snapshot",
       .expected = "a non-empty string"},
      {.name = "incoming",
       .type = T::kString,
       .syntax = "unix:PATH|tcp:HOST:PORT",
       .set = [](const std::string& t, V& c) { return SetNonEmpty(t, c.incoming); },
       .get = [](const V& c) { return c.incoming.empty() ? Json() : Json(c.incoming); },
       .help = "Wait for a live migration from another mote there (QMP migrate to the same "
               "address) and run the VM it brings",
       .expected = "a non-empty string"},
      {.name = "log_level",
       .type = T::kString,
       .syntax = "LEVEL",
       .set = &SetLogLevel,
       .get = [](const V& c) { return c.log_level.empty() ? Json() : Json(c.log_level); },
       .help = "trace, debug, info, warn, error or off",
       .expected = "one of: trace, debug, info, warn, error, off"},
  };
  return members;
}

std::string FlagName(const SectionMember<VmConfig>& member) {
  std::string flag = "--" + std::string(member.name);
  for (char& c : flag) c = c == '_' ? '-' : c;
  if (member.type == MemberType::kList && flag.back() == 's') flag.pop_back();  // --disk, disks[]
  return flag;
}

absl::Status ApplyFlag(const SectionMember<VmConfig>& member,
                       const std::vector<std::string>& values, VmConfig& config) {
  if (member.type == MemberType::kList) {
    // The flags replace the list (a --config file's, say) as a whole.
    MOTE_RETURN_IF_ERROR(member.set_json(nlohmann::ordered_json::array(), member.name, config));
    for (const std::string& text : values) MOTE_RETURN_IF_ERROR(member.set(text, config));
    FillDefaultNames(config);
    return absl::OkStatus();
  }
  std::string text = values.empty() ? "on" : values.back();  // a bare bool flag is on
  if (absl::Status s = member.set(text, config); !s.ok()) {
    return Invalid(std::string(member.name) + ": " + std::string(s.message()));
  }
  return absl::OkStatus();
}

}  // namespace mote
