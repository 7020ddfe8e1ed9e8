// The configuration's member tables and parsers: one table per section (the
// VM, a disk, a NIC) drives the `mote run` flags and their help, the JSON
// VM description's reader and writer, and the C API's setters.
// Pure functions on values; any thread.
#ifndef MOTE_VMM_VM_CONFIG_H_
#define MOTE_VMM_VM_CONFIG_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mote/config.h"
#include "vmm/base/seccomp_filter.h"
#include "vmm/config_section.h"

namespace mote {

// The one configuration model is libmote's (mote/config.h); the monitor
// uses it under these names.
using libmote::AcpiMode;
using libmote::ConsoleConfig;
using libmote::ConsoleKind;
using libmote::DiskConfig;
using libmote::DiskThrottle;
using libmote::FwCfgConfig;
using libmote::NetConfig;
using libmote::NetThrottle;
using libmote::OnReboot;
using libmote::PitMode;
using libmote::VirtioTransport;
using libmote::VmConfig;

// Names what the description left unnamed: disk ids (disk0, ...) and NIC
// MACs (52:54:00:12:34:56 + position) by position. Setting a list from JSON
// or flags does it, and so does creating a VM (for a program's structs).
void FillDefaultNames(VmConfig& config);

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
// The config's `seccomp` member (checked when it was set) as a mode.
SeccompMode SeccompModeOf(const VmConfig& config);
absl::StatusOr<ConsoleConfig> ParseConsole(const std::string& text);
absl::StatusOr<PitMode> ParsePitMode(const std::string& text);
absl::StatusOr<OnReboot> ParseOnReboot(const std::string& text);
absl::StatusOr<AcpiMode> ParseAcpiMode(const std::string& text);
absl::StatusOr<VirtioTransport> ParseTransport(const std::string& text);
// The sections as member tables (vmm/config_section.h), in the JSON
// description's order. VmMembers' disks and nets hold lists of sections.
const std::vector<SectionMember<VmConfig>>& VmMembers();
const std::vector<SectionMember<DiskConfig>>& DiskMembers();
const std::vector<SectionMember<NetConfig>>& NetMembers();
const std::vector<SectionMember<FwCfgConfig>>& FwCfgMembers();
// A VM member's flag ("--cpus"; a list's is singular: "--disk"), and the
// flag's values applied: a list's replace it, a bare bool flag is "on".
// Errors name the member ("cpus: expected ...") or the flag ("--disk ...").
std::string FlagName(const SectionMember<VmConfig>& member);
absl::Status ApplyFlag(const SectionMember<VmConfig>& member,
                       const std::vector<std::string>& values, VmConfig& config);
// The MAC NIC `index` gets when it names none.
std::array<uint8_t, 6> DefaultMac(size_t index);
// QEMU's rules for a disk's rate limits: a total or per-direction limit,
// not both; a burst only beside its rate, and not below it.
absl::Status CheckDiskThrottle(const DiskThrottle& throttle);
// A disk's rate limits alone in the --disk syntax ("bps_rd=1000,iops=50"):
// only its bps* and iops* members; the rest are 0. Checked as above.
absl::StatusOr<DiskThrottle> ParseDiskThrottle(const std::string& text);
// A NIC's: a burst only beside its rate, and not below it; and the same
// from the --net syntax of its rx_* and tx_* members alone.
absl::Status CheckNetThrottle(const NetThrottle& throttle);
absl::StatusOr<NetThrottle> ParseNetThrottle(const std::string& text);
// The rate limits' names in order, as members of DiskMembers() and
// NetMembers(), as QMP arguments and in query-block: a disk's are QEMU's.
const std::vector<const char*>& DiskThrottleNames();
const std::vector<const char*>& NetThrottleNames();
// A disk's limits as a JSON object by those names, and the limits such an
// object holds (what it leaves out is 0; its other members are ignored).
nlohmann::json DiskThrottleJson(const DiskThrottle& throttle);
absl::StatusOr<DiskThrottle> DiskThrottleFromJson(const nlohmann::json& object);
absl::StatusOr<NetThrottle> NetThrottleFromJson(const nlohmann::json& object);
// A NIC has exactly one backend: a TAP by name or an inherited fd.
absl::Status CheckNetBackend(const NetConfig& net);
std::string FormatMac(const std::array<uint8_t, 6>& mac);  // xx:xx:xx:xx:xx:xx
// One --disk or --net value; what it leaves out keeps its default (an empty
// id, a zero MAC: FillDefaultNames names them by position).
absl::StatusOr<DiskConfig> ParseDisk(const std::string& text);
absl::StatusOr<NetConfig> ParseNet(const std::string& text);
// One --fw-cfg value: "name=NAME,file=PATH" or "name=NAME,string=TEXT".
absl::StatusOr<FwCfgConfig> ParseFwCfg(const std::string& text);
// An fw_cfg item has a valid name and exactly one of file and string.
absl::Status CheckFwCfgItem(const FwCfgConfig& item);

}  // namespace mote

#endif  // MOTE_VMM_VM_CONFIG_H_
