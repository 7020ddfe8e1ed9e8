#include "vmm/vm_config.h"

#include <cctype>
#include <cstdio>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "devices/fw_cfg.h"
#include "vmm/base/status_macros.h"
#include "vmm/device_kinds/device_kind.h"

namespace mote {

absl::StatusOr<uint64_t> ParseMemorySize(const std::string& text) {
  std::string s = absl::AsciiStrToUpper(text);
  size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  std::string suffix = s.substr(digits);
  uint64_t number = 0;
  if (digits == 0 || digits > 15 || !absl::SimpleAtoi(s.substr(0, digits), &number)) {
    return absl::InvalidArgumentError("memory size '" + text +
                                      "' is not a number with an optional K, M or G suffix");
  }
  uint64_t shift;
  if (suffix.empty() || suffix == "M" || suffix == "MB" || suffix == "MIB") {
    shift = 20;  // a bare number is MiB, as with QEMU's -m
  } else if (suffix == "K" || suffix == "KB" || suffix == "KIB") {
    shift = 10;
  } else if (suffix == "G" || suffix == "GB" || suffix == "GIB") {
    shift = 30;
  } else {
    return absl::InvalidArgumentError("memory size '" + text + "': unknown suffix '" + suffix +
                                      "'");
  }
  if (number == 0 || number > (kMaxMemoryBytes >> shift)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("memory size '%s' is out of range (%d MiB to %d GiB)", text,
                        kMinMemoryBytes >> 20, kMaxMemoryBytes >> 30));
  }
  uint64_t bytes = number << shift;
  if (bytes % 4096 != 0) {
    return absl::InvalidArgumentError("memory size '" + text + "' is not a multiple of 4 KiB");
  }
  return bytes;
}

SeccompMode SeccompModeOf(const VmConfig& config) {
  return ParseSeccompMode(config.seccomp).value_or(SeccompMode::kOn);
}

absl::StatusOr<MemoryOption> ParseMemory(const std::string& text) {
  // SIZE, then options as the other KEY=VALUE flags write them.
  absl::StatusOr<KeyValues> items = SplitKeyValues(text);
  auto bad = [&] {
    return absl::InvalidArgumentError("memory '" + text + "': expected SIZE[,hugepages=on|off]");
  };
  if (!items.ok() || !items->front().second.empty()) return bad();
  MemoryOption option;
  MOTE_ASSIGN_OR_RETURN(option.bytes, ParseMemorySize(items->front().first));
  for (size_t i = 1; i < items->size(); ++i) {
    const auto& [key, value] = (*items)[i];
    if (key != "hugepages" || (value != "on" && value != "off")) return bad();
    option.hugepages = value == "on";
  }
  if (option.hugepages && option.bytes % (2 << 20) != 0) {
    return absl::InvalidArgumentError("memory '" + text +
                                      "': with hugepages=on the size is a multiple of 2 MiB");
  }
  return option;
}

absl::StatusOr<ConsoleConfig> ParseConsole(const std::string& text) {
  if (text == "stdio") return ConsoleConfig{ConsoleKind::kStdio, ""};
  if (text == "none") return ConsoleConfig{ConsoleKind::kNone, ""};
  if (text.rfind("file:", 0) == 0 && text.size() > 5) {
    return ConsoleConfig{ConsoleKind::kFile, text.substr(5)};
  }
  return absl::InvalidArgumentError("console '" + text + "': expected stdio, none or file:PATH");
}

absl::StatusOr<PitMode> ParsePitMode(const std::string& text) {
  if (text == "auto") return PitMode::kAuto;
  if (text == "on") return PitMode::kOn;
  if (text == "off") return PitMode::kOff;
  return absl::InvalidArgumentError("pit '" + text + "': expected on, off or auto");
}

absl::StatusOr<AcpiMode> ParseAcpiMode(const std::string& text) {
  if (text == "reduced") return AcpiMode::kReduced;
  if (text == "full") return AcpiMode::kFull;
  return absl::InvalidArgumentError("acpi '" + text + "': expected reduced or full");
}

absl::StatusOr<OnReboot> ParseOnReboot(const std::string& text) {
  if (text == "exit") return OnReboot::kExit;
  if (text == "restart") return OnReboot::kRestart;
  return absl::InvalidArgumentError("on-reboot '" + text + "': expected exit or restart");
}

absl::StatusOr<VirtioTransport> ParseTransport(const std::string& text) {
  if (text == "pci") return VirtioTransport::kPci;
  if (text == "mmio") return VirtioTransport::kMmio;
  return absl::InvalidArgumentError("transport '" + text + "': expected pci or mmio");
}

namespace {

absl::Status SetOnOff(const std::string& text, bool& out) {
  if (text != "on" && text != "off") return absl::InvalidArgumentError("expected on or off");
  out = text == "on";
  return absl::OkStatus();
}

absl::Status SetChoice(const std::string& text, const char* off, const char* on, bool& out) {
  if (text != off && text != on) {
    return absl::InvalidArgumentError(absl::StrFormat("expected %s or %s", off, on));
  }
  out = text == on;
  return absl::OkStatus();
}

// The class a member pointer belongs to.
template <class T>
struct MemberOf;
template <class C, class M>
struct MemberOf<M C::*> {
  using Class = C;
};

// One rate limit of a section's `throttle` (DiskThrottle, NetThrottle).
template <auto kGroup, auto kField>
SectionMember<typename MemberOf<decltype(kGroup)>::Class> RateMember(const char* name) {
  using S = typename MemberOf<decltype(kGroup)>::Class;
  return {name,
          MemberType::kInteger,
          "N",
          [](const std::string& t, S& s) {
            if (!absl::SimpleAtoi(t, &((s.*kGroup).*kField))) {
              return absl::InvalidArgumentError("expected a whole number, 0 for no limit");
            }
            return absl::OkStatus();
          },
          [](const S& s) { return nlohmann::json((s.*kGroup).*kField); },
          nullptr,
          "a whole number, 0 for no limit"};
}

// A burst only beside its rate, and not below it; the errors are
// `no_rate` and `below`.
absl::Status CheckBursts(std::initializer_list<std::pair<uint64_t, uint64_t>> rate_and_max,
                         const char* no_rate, const char* below) {
  for (const auto& [rate, max] : rate_and_max) {
    if (max != 0 && rate == 0) return absl::InvalidArgumentError(no_rate);
    if (max != 0 && max < rate) return absl::InvalidArgumentError(below);
  }
  return absl::OkStatus();
}

// A section's rate-limit members: their names start with one of these.
constexpr std::array<const char*, 2> kDiskRatePrefixes = {"bps", "iops"};
constexpr std::array<const char*, 2> kNetRatePrefixes = {"rx_", "tx_"};

bool IsRateName(absl::string_view name, const std::array<const char*, 2>& prefixes) {
  return absl::StartsWith(name, prefixes[0]) || absl::StartsWith(name, prefixes[1]);
}

// `text` in a section's flag syntax, holding only its rate-limit members,
// onto a fresh section.
template <class Section>
absl::StatusOr<Section> ParseRateMembers(const std::string& text,
                                         const std::vector<SectionMember<Section>>& members,
                                         const std::array<const char*, 2>& prefixes) {
  MOTE_ASSIGN_OR_RETURN(KeyValues items, SplitKeyValues(text));
  for (const auto& item : items) {
    if (!IsRateName(item.first, prefixes)) {
      return absl::InvalidArgumentError("rate limits '" + text + "': '" + item.first +
                                        "' is not one");
    }
  }
  Section section;
  MOTE_RETURN_IF_ERROR(ApplyFlagText("rate limits", text, members, section));
  return section;
}

template <class Section>
std::vector<const char*> RateNames(const std::vector<SectionMember<Section>>& members,
                                   const std::array<const char*, 2>& prefixes) {
  std::vector<const char*> names;
  for (const auto& member : members) {
    if (IsRateName(member.name, prefixes)) names.push_back(member.name);
  }
  return names;
}

template <class Section>
nlohmann::json RatesJson(const Section& section, const std::vector<SectionMember<Section>>& members,
                         const std::array<const char*, 2>& prefixes) {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& member : members) {
    if (IsRateName(member.name, prefixes)) object[member.name] = member.get(section);
  }
  return object;
}

// The rate-limit members `object` holds (whole numbers), onto a fresh
// section; its other members are not looked at.
template <class Section>
absl::StatusOr<Section> RatesFromJson(const nlohmann::json& object,
                                      const std::vector<SectionMember<Section>>& members,
                                      const std::array<const char*, 2>& prefixes) {
  Section section;
  for (const auto& member : members) {
    if (!IsRateName(member.name, prefixes) || !object.contains(member.name)) continue;
    const nlohmann::json& value = object.at(member.name);
    bool whole =
        value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0);
    if (!whole) {
      return absl::InvalidArgumentError(std::string(member.name) +
                                        ": expected a whole number, 0 for no limit");
    }
    MOTE_RETURN_IF_ERROR(member.set(std::to_string(value.get<uint64_t>()), section));
  }
  return section;
}

}  // namespace

absl::Status CheckDiskThrottle(const DiskThrottle& t) {
  // QEMU's rules, in its words.
  if ((t.bps != 0 && (t.bps_rd != 0 || t.bps_wr != 0)) ||
      (t.iops != 0 && (t.iops_rd != 0 || t.iops_wr != 0))) {
    return absl::InvalidArgumentError(
        "bps(iops) and bps(iops)_rd/_wr cannot be used at the same time");
  }
  return CheckBursts({{t.bps, t.bps_max},
                      {t.bps_rd, t.bps_rd_max},
                      {t.bps_wr, t.bps_wr_max},
                      {t.iops, t.iops_max},
                      {t.iops_rd, t.iops_rd_max},
                      {t.iops_wr, t.iops_wr_max}},
                     // QEMU's words.
                     "bps_max/iops_max require corresponding bps/iops values",
                     "bps_max/iops_max cannot be lower than bps/iops");
}

absl::Status CheckNetThrottle(const NetThrottle& t) {
  return CheckBursts({{t.rx_bps, t.rx_bps_max},
                      {t.rx_pps, t.rx_pps_max},
                      {t.tx_bps, t.tx_bps_max},
                      {t.tx_pps, t.tx_pps_max}},
                     "a burst (*_max) needs its rate",
                     "a burst (*_max) cannot be lower than its rate");
}

absl::StatusOr<NetThrottle> ParseNetThrottle(const std::string& text) {
  MOTE_ASSIGN_OR_RETURN(NetConfig net, ParseRateMembers(text, NetMembers(), kNetRatePrefixes));
  MOTE_RETURN_IF_ERROR(CheckNetThrottle(net.throttle));
  return net.throttle;
}

absl::StatusOr<DiskThrottle> ParseDiskThrottle(const std::string& text) {
  MOTE_ASSIGN_OR_RETURN(DiskConfig disk, ParseRateMembers(text, DiskMembers(), kDiskRatePrefixes));
  MOTE_RETURN_IF_ERROR(CheckDiskThrottle(disk.throttle));
  return disk.throttle;
}

const std::vector<const char*>& DiskThrottleNames() {
  static const std::vector<const char*> names = RateNames(DiskMembers(), kDiskRatePrefixes);
  return names;
}

const std::vector<const char*>& NetThrottleNames() {
  static const std::vector<const char*> names = RateNames(NetMembers(), kNetRatePrefixes);
  return names;
}

nlohmann::json DiskThrottleJson(const DiskThrottle& throttle) {
  DiskConfig disk;
  disk.throttle = throttle;
  return RatesJson(disk, DiskMembers(), kDiskRatePrefixes);
}

absl::StatusOr<DiskThrottle> DiskThrottleFromJson(const nlohmann::json& object) {
  MOTE_ASSIGN_OR_RETURN(DiskConfig disk, RatesFromJson(object, DiskMembers(), kDiskRatePrefixes));
  return disk.throttle;
}

absl::StatusOr<NetThrottle> NetThrottleFromJson(const nlohmann::json& object) {
  MOTE_ASSIGN_OR_RETURN(NetConfig net, RatesFromJson(object, NetMembers(), kNetRatePrefixes));
  return net.throttle;
}

const std::vector<SectionMember<DiskConfig>>& DiskMembers() {
  using D = DiskConfig;
  static const std::vector<SectionMember<DiskConfig>> members = {
      {"path", MemberType::kString, "FILE",
       [](const std::string& t, D& d) {
         d.path = t;
         return absl::OkStatus();
       },
       [](const D& d) { return nlohmann::json(d.path); }},
      {"readonly", MemberType::kBool, "on|off",
       [](const std::string& t, D& d) { return SetOnOff(t, d.readonly); },
       [](const D& d) { return nlohmann::json(d.readonly); }},
      {"cache", MemberType::kString, "writeback|none",
       [](const std::string& t, D& d) { return SetChoice(t, "writeback", "none", d.cache_none); },
       [](const D& d) { return nlohmann::json(d.cache_none ? "none" : "writeback"); }, nullptr,
       "writeback or none"},
      {"serial", MemberType::kString, "ID",
       [](const std::string& t, D& d) {
         if (t.size() > 20) return absl::InvalidArgumentError("at most 20 bytes");
         d.serial = t;
         return absl::OkStatus();
       },
       [](const D& d) { return nlohmann::json(d.serial); }},
      {"id", MemberType::kString, "NAME",
       [](const std::string& t, D& d) {
         if (t.empty()) return absl::InvalidArgumentError("expected a name");
         d.id = t;
         return absl::OkStatus();
       },
       [](const D& d) { return d.id.empty() ? nlohmann::json() : nlohmann::json(d.id); }},
      {"queues", MemberType::kInteger, "1..16",
       [](const std::string& t, D& d) {
         int queues = 0;
         if (!absl::SimpleAtoi(t, &queues) || queues < 1 || queues > 16) {
           return absl::InvalidArgumentError("expected 1 to 16");
         }
         d.queues = static_cast<uint16_t>(queues);
         return absl::OkStatus();
       },
       [](const D& d) { return nlohmann::json(d.queues); }, nullptr, "an integer from 1 to 16"},
      {"aio", MemberType::kString, "io_uring|threads",
       [](const std::string& t, D& d) {
         return SetChoice(t, "io_uring", "threads", d.aio_threads);
       },
       [](const D& d) { return nlohmann::json(d.aio_threads ? "threads" : "io_uring"); }, nullptr,
       "io_uring or threads"},
      {"lock", MemberType::kBool, "on|off",
       [](const std::string& t, D& d) { return SetOnOff(t, d.lock); },
       [](const D& d) { return nlohmann::json(d.lock); }},
      RateMember<&D::throttle, &DiskThrottle::bps>("bps"),
      RateMember<&D::throttle, &DiskThrottle::bps_rd>("bps_rd"),
      RateMember<&D::throttle, &DiskThrottle::bps_wr>("bps_wr"),
      RateMember<&D::throttle, &DiskThrottle::iops>("iops"),
      RateMember<&D::throttle, &DiskThrottle::iops_rd>("iops_rd"),
      RateMember<&D::throttle, &DiskThrottle::iops_wr>("iops_wr"),
      RateMember<&D::throttle, &DiskThrottle::bps_max>("bps_max"),
      RateMember<&D::throttle, &DiskThrottle::bps_rd_max>("bps_rd_max"),
      RateMember<&D::throttle, &DiskThrottle::bps_wr_max>("bps_wr_max"),
      RateMember<&D::throttle, &DiskThrottle::iops_max>("iops_max"),
      RateMember<&D::throttle, &DiskThrottle::iops_rd_max>("iops_rd_max"),
      RateMember<&D::throttle, &DiskThrottle::iops_wr_max>("iops_wr_max"),
  };
  return members;
}

const std::vector<SectionMember<NetConfig>>& NetMembers() {
  using N = NetConfig;
  static const std::vector<SectionMember<NetConfig>> members = {
      {"tap", MemberType::kString, "NAME",
       [](const std::string& t, N& n) {
         if (t.empty() || t.size() > 15) {
           return absl::InvalidArgumentError("an interface name has 1 to 15 characters");
         }
         n.tap = t;
         return absl::OkStatus();
       },
       [](const N& n) { return n.tap.empty() ? nlohmann::json() : nlohmann::json(n.tap); }},
      {"fd", MemberType::kInteger, "N",
       [](const std::string& t, N& n) {
         if (!absl::SimpleAtoi(t, &n.fd) || n.fd < 0) {
           return absl::InvalidArgumentError("expected a file descriptor number");
         }
         return absl::OkStatus();
       },
       [](const N& n) { return n.tap.empty() ? nlohmann::json(n.fd) : nlohmann::json(); }, nullptr,
       "a file descriptor number"},
      {"mac", MemberType::kString, "xx:xx:xx:xx:xx:xx",
       [](const std::string& t, N& n) {
         unsigned b[6];
         char extra;
         if (t.size() != 17 || std::sscanf(t.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1],
                                           &b[2], &b[3], &b[4], &b[5], &extra) != 6) {
           return absl::InvalidArgumentError("expected xx:xx:xx:xx:xx:xx");
         }
         if (b[0] & 1) return absl::InvalidArgumentError("a multicast address");
         for (int i = 0; i < 6; ++i) n.mac[i] = static_cast<uint8_t>(b[i]);
         return absl::OkStatus();
       },
       [](const N& n) {
         return n.mac == std::array<uint8_t, 6>{} ? nlohmann::json()
                                                  : nlohmann::json(FormatMac(n.mac));
       }},
      RateMember<&N::throttle, &NetThrottle::rx_bps>("rx_bps"),
      RateMember<&N::throttle, &NetThrottle::rx_pps>("rx_pps"),
      RateMember<&N::throttle, &NetThrottle::tx_bps>("tx_bps"),
      RateMember<&N::throttle, &NetThrottle::tx_pps>("tx_pps"),
      RateMember<&N::throttle, &NetThrottle::rx_bps_max>("rx_bps_max"),
      RateMember<&N::throttle, &NetThrottle::rx_pps_max>("rx_pps_max"),
      RateMember<&N::throttle, &NetThrottle::tx_bps_max>("tx_bps_max"),
      RateMember<&N::throttle, &NetThrottle::tx_pps_max>("tx_pps_max"),
  };
  return members;
}

std::string FormatMac(const std::array<uint8_t, 6>& mac) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                         mac[5]);
}

std::array<uint8_t, 6> DefaultMac(size_t index) {
  return {0x52, 0x54, 0x00, 0x12, 0x34, static_cast<uint8_t>(0x56 + index)};
}

absl::Status CheckNetBackend(const NetConfig& net) {
  if (net.tap.empty() == (net.fd < 0)) {
    return absl::InvalidArgumentError("give exactly one of tap=NAME and fd=N");
  }
  return absl::OkStatus();
}

const std::vector<SectionMember<FwCfgConfig>>& FwCfgMembers() {
  using F = FwCfgConfig;
  static const std::vector<SectionMember<FwCfgConfig>> members = {
      {"name", MemberType::kString, "NAME",
       [](const std::string& t, F& f) {
         MOTE_RETURN_IF_ERROR(ValidateFwCfgName(t));
         f.name = t;
         return absl::OkStatus();
       },
       [](const F& f) { return nlohmann::json(f.name); }},
      {"file", MemberType::kString, "PATH",
       [](const std::string& t, F& f) {
         if (t.empty()) return absl::InvalidArgumentError("an empty path");
         f.file = t;
         return absl::OkStatus();
       },
       [](const F& f) { return f.file.empty() ? nlohmann::json() : nlohmann::json(f.file); }},
      {"string", MemberType::kString, "TEXT",
       [](const std::string& t, F& f) {
         f.string = t;
         return absl::OkStatus();
       },
       [](const F& f) { return f.file.empty() ? nlohmann::json(f.string) : nlohmann::json(); }},
  };
  return members;
}

absl::Status CheckFwCfgItem(const FwCfgConfig& item) {
  if (item.name.empty()) return absl::InvalidArgumentError("no name=NAME");
  if (item.file.empty() == item.string.empty()) {
    return absl::InvalidArgumentError("give exactly one of file=PATH and string=TEXT");
  }
  return absl::OkStatus();
}

absl::StatusOr<FwCfgConfig> ParseFwCfg(const std::string& text) {
  FwCfgConfig item;
  MOTE_RETURN_IF_ERROR(ApplyFlagText("--fw-cfg", text, FwCfgMembers(), item));
  if (absl::Status s = CheckFwCfgItem(item); !s.ok()) {
    return absl::InvalidArgumentError("--fw-cfg '" + text + "': " + std::string(s.message()));
  }
  return item;
}

absl::StatusOr<DiskConfig> ParseDisk(const std::string& text) {
  DiskConfig disk;
  MOTE_RETURN_IF_ERROR(ApplyFlagText("--disk", text, DiskMembers(), disk));
  if (disk.path.empty()) return absl::InvalidArgumentError("--disk '" + text + "': no path=FILE");
  return disk;
}

absl::StatusOr<NetConfig> ParseNet(const std::string& text) {
  NetConfig net;
  MOTE_RETURN_IF_ERROR(ApplyFlagText("--net", text, NetMembers(), net));
  if (absl::Status s = CheckNetBackend(net); !s.ok()) {
    return absl::InvalidArgumentError("--net '" + text + "': " + std::string(s.message()));
  }
  return net;
}

void FillDefaultNames(VmConfig& config) {
  for (size_t i = 0; i < config.disks.size(); ++i) {
    if (config.disks[i].id.empty()) config.disks[i].id = "disk" + std::to_string(i);
  }
  for (size_t i = 0; i < config.nets.size(); ++i) {
    if (config.nets[i].mac == std::array<uint8_t, 6>{}) config.nets[i].mac = DefaultMac(i);
  }
}

}  // namespace mote
