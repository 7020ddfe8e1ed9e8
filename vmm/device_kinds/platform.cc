#include "vmm/device_kinds/platform.h"

#include "arch/x86/layout.h"
#include "devices/acpi_pm1.h"
#include "devices/cmos_rtc.h"
#include "devices/guest_ports.h"
#include "devices/i8042.h"

namespace mote {

const std::vector<PortDevice>& PlatformPortDevices() {
  static const std::vector<PortDevice> devices = {
      {"cmos-rtc", x86::kCmosPort, CmosRtc::kPortCount,
       [](const PlatformWiring& w) { return std::make_shared<CmosRtc>(w.clock, w.rtc_alarm); }},
      {"i8042", x86::kI8042DataPort, I8042::kPortCount,
       [](const PlatformWiring& w) { return std::make_shared<I8042>(w.events); }},
      {"debug-exit", x86::kDebugExitPort, DebugExit::kPortCount,
       [](const PlatformWiring& w) { return std::make_shared<DebugExit>(w.events); }},
      {"pvpanic", x86::kPvpanicPort, Pvpanic::kPortCount,
       [](const PlatformWiring& w) { return std::make_shared<Pvpanic>(w.events); }},
      {"post-code", x86::kPostCodePort, PostCode::kPortCount,
       [](const PlatformWiring&) { return std::make_shared<PostCode>(); }},
      {"boot-timer", x86::kBootTimerPort, BootTimer::kPortCount,
       [](const PlatformWiring& w) { return std::make_shared<BootTimer>(w.events); }},
      {"acpi-pm", x86::kAcpiSleepControlPort, AcpiPm::kPortCount,
       [](const PlatformWiring& w) {
         return std::make_shared<AcpiPm>(w.events, x86::kAcpiS5SleepType, x86::kAcpiResetValue);
       }},
      {"acpi-pm1", x86::kAcpiPm1Port, AcpiPm1::kPortCount,
       [](const PlatformWiring& w) -> std::shared_ptr<BusDevice> {
         if (!w.acpi_full) return nullptr;
         return std::make_shared<AcpiPm1>(w.events, w.monotonic, x86::kAcpiS5SleepType,
                                          x86::kAcpiS3SleepType, w.sci);
       }},
  };
  return devices;
}

}  // namespace mote
