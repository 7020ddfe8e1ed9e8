#include "vmm/vm_config.h"

#include <cctype>
#include <cstdio>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
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

absl::StatusOr<MemoryOption> ParseMemory(const std::string& text) {
  size_t comma = text.find(',');
  MemoryOption option;
  absl::StatusOr<uint64_t> bytes = ParseMemorySize(text.substr(0, comma));
  if (!bytes.ok()) return bytes.status();
  option.bytes = *bytes;
  if (comma == std::string::npos) return option;
  std::string rest = text.substr(comma + 1);
  if (rest == "hugepages=on") {
    option.hugepages = true;
  } else if (rest != "hugepages=off") {
    return absl::InvalidArgumentError("memory '" + text + "': expected SIZE[,hugepages=on|off]");
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

absl::StatusOr<DiskConfig> ParseDisk(const std::string& text, size_t index) {
  DiskConfig disk;
  disk.id = "disk" + std::to_string(index);
  for (absl::string_view item : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    size_t eq = item.find('=');
    std::string key(item.substr(0, eq));
    std::string value = eq == absl::string_view::npos ? "" : std::string(item.substr(eq + 1));
    auto on_off = [&](bool* out) -> absl::Status {
      if (value == "on")
        *out = true;
      else if (value == "off")
        *out = false;
      else
        return absl::InvalidArgumentError("--disk " + key + "=" + value + ": expected on or off");
      return absl::OkStatus();
    };
    if (key == "path") {
      disk.path = value;
    } else if (key == "readonly") {
      if (absl::Status s = on_off(&disk.readonly); !s.ok()) return s;
    } else if (key == "cache") {
      if (value != "writeback" && value != "none") {
        return absl::InvalidArgumentError("--disk cache=" + value + ": expected writeback or none");
      }
      disk.cache_none = value == "none";
    } else if (key == "serial") {
      if (value.size() > 20) {
        return absl::InvalidArgumentError("--disk serial=" + value + ": at most 20 bytes");
      }
      disk.serial = value;
    } else if (key == "queues") {
      int queues = 0;
      if (!absl::SimpleAtoi(value, &queues) || queues < 1 || queues > 16) {
        return absl::InvalidArgumentError("--disk queues=" + value + ": expected 1 to 16");
      }
      disk.queues = static_cast<uint16_t>(queues);
    } else if (key == "aio") {
      if (value != "io_uring" && value != "threads") {
        return absl::InvalidArgumentError("--disk aio=" + value + ": expected io_uring or threads");
      }
      disk.aio_threads = value == "threads";
    } else if (key == "id") {
      if (value.empty()) return absl::InvalidArgumentError("--disk id= needs a name");
      disk.id = value;
    } else {
      return absl::InvalidArgumentError(
          "--disk '" + text + "': unknown option '" + key +
          "' (expected path, readonly, cache, serial, id, queues, aio)");
    }
  }
  if (disk.path.empty()) return absl::InvalidArgumentError("--disk '" + text + "': no path=FILE");
  return disk;
}

absl::StatusOr<NetConfig> ParseNet(const std::string& text, size_t index) {
  NetConfig net;
  net.mac = {0x52, 0x54, 0x00, 0x12, 0x34, static_cast<uint8_t>(0x56 + index)};
  for (absl::string_view item : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    size_t eq = item.find('=');
    std::string key(item.substr(0, eq));
    std::string value = eq == absl::string_view::npos ? "" : std::string(item.substr(eq + 1));
    if (key == "tap") {
      if (value.empty() || value.size() > 15) {
        return absl::InvalidArgumentError("--net tap=" + value +
                                          ": an interface name has 1 to 15 characters");
      }
      net.tap = value;
    } else if (key == "fd") {
      if (!absl::SimpleAtoi(value, &net.fd) || net.fd < 0) {
        return absl::InvalidArgumentError("--net fd=" + value +
                                          ": expected a file descriptor number");
      }
    } else if (key == "mac") {
      unsigned b[6];
      char extra;
      if (std::sscanf(value.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                      &b[5], &extra) != 6 ||
          value.size() != 17) {
        return absl::InvalidArgumentError("--net mac=" + value + ": expected xx:xx:xx:xx:xx:xx");
      }
      if (b[0] & 1)
        return absl::InvalidArgumentError("--net mac=" + value + ": a multicast address");
      for (int i = 0; i < 6; ++i) net.mac[i] = static_cast<uint8_t>(b[i]);
    } else {
      return absl::InvalidArgumentError("--net '" + text + "': unknown option '" + key +
                                        "' (expected tap, fd, mac)");
    }
  }
  if (net.tap.empty() == (net.fd < 0)) {
    return absl::InvalidArgumentError("--net '" + text +
                                      "': give exactly one of tap=NAME and fd=N");
  }
  return net;
}

absl::Status VmConfig::Validate() const {
  if (kernel.empty())
    return absl::InvalidArgumentError(
        "no kernel given (--kernel PATH, or kernel in a --config file)");
  if (cpus == 0) return absl::InvalidArgumentError("--cpus must be at least 1");
  if (cpus > 254) {
    // xAPIC IDs are 8 bits and 0xff is the broadcast ID.
    return absl::InvalidArgumentError(
        absl::StrFormat("--cpus %d: mote supports at most 254", cpus));
  }
  if (memory_bytes < kMinMemoryBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("memory %d KiB is too small: mote needs at least %d MiB",
                        memory_bytes >> 10, kMinMemoryBytes >> 20));
  }
  if (memory_bytes > kMaxMemoryBytes) return absl::InvalidArgumentError("memory size too large");
  if (timeout.has_value() && *timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout must be positive");
  }
  MOTE_RETURN_IF_ERROR(ValidateDevices(*this));
  if (!expect.empty()) {
    try {
      std::regex re(expect);
    } catch (const std::regex_error& e) {
      return absl::InvalidArgumentError("--expect '" + expect +
                                        "' is not a valid regex: " + e.what());
    }
  }
  return absl::OkStatus();
}

}  // namespace mote
