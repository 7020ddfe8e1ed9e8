// The platform's port devices (RTC, i8042, debug-exit, pvpanic, POST code, boot timer,
// ACPI sleep and reset), each at its fixed x86 port: one row each in
// platform.cc, which Vm walks to put them on its port bus. The serial port is
// not here: it is the console, which Vm wires to stdin and the escape keys.
// Thread-safety: the table is immutable; `make` runs on the thread building
// the VM.
#ifndef MOTE_VMM_DEVICE_KINDS_PLATFORM_H_
#define MOTE_VMM_DEVICE_KINDS_PLATFORM_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "devices/cmos_rtc.h"
#include "vmm/base/bus.h"
#include "vmm/base/platform_hooks.h"

namespace mote {

// What a port device may be connected to; outlives the devices.
struct PlatformWiring {
  GuestEventSink* events;         // power-off, reset, panic, debug-exit, boot-done
  const Clock* clock;             // wall-clock time for the RTC
  const Clock* monotonic;         // for timers (the ACPI PM timer)
  bool acpi_full;                 // --acpi full: the fixed ACPI hardware exists
  RtcAlarmWiring rtc_alarm = {};  // the RTC's alarm timer, IRQ 8 and wake hook
  IrqLine* sci = nullptr;         // the ACPI SCI (IRQ 9)
};

struct PortDevice {
  std::string_view name;
  uint16_t port;
  uint16_t port_count;
  // nullptr: this VM has no such device.
  std::function<std::shared_ptr<BusDevice>(const PlatformWiring&)> make;
};

const std::vector<PortDevice>& PlatformPortDevices();

}  // namespace mote

#endif  // MOTE_VMM_DEVICE_KINDS_PLATFORM_H_
