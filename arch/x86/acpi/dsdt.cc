// BuildDsdt: the guest-visible namespace. Kept apart from the fixed-layout
// tables because it grows with the device model (PCI0 now, more later).
#include <string_view>

#include "arch/x86/acpi/aml.h"
#include "arch/x86/acpi/sdt.h"
#include "arch/x86/acpi/tables.h"
#include "arch/x86/layout.h"

namespace mote::x86::acpi {
namespace {

// Revision 2 gives the AML 64-bit integers (QWord address descriptors).
constexpr uint8_t kDsdtRevision = 2;

// PCI bus numbers behind PCI0: one bus, matching the 1 MiB ECAM.
constexpr uint16_t kPciFirstBus = 0;
constexpr uint16_t kPciLastBus = 0;

aml::Bytes Com1() {
  return aml::Device("COM1",
                     {
                         aml::Name("_HID", aml::EisaId("PNP0501")),  // 16550A-compatible
                         aml::Name("_UID", aml::Integer(0)),
                         aml::Name("_CRS", aml::ResourceTemplate({
                                               aml::IoPort(kCom1Port, kCom1Port, 1, 8),
                                               aml::IrqNoFlags({static_cast<uint8_t>(kCom1Irq)}),
                                           })),
                     });
}

// No IRQ descriptor: layout.h gives the RTC no interrupt line yet, and
// without one Linux's rtc_cmos still reads and sets the time (it only loses
// alarms and update interrupts, which hwclock replaces by polling).
aml::Bytes Rtc() {
  return aml::Device("RTC", {
                                aml::Name("_HID", aml::EisaId("PNP0B00")),  // AT RTC
                                aml::Name("_CRS", aml::ResourceTemplate({
                                                      aml::IoPort(kCmosPort, kCmosPort, 1, 2),
                                                  })),
                            });
}

// ---- PCI host bridge hook --------------------------------------------------------
// Appends \_SB.PCI0 and the ECAM reservation to `sb` when cfg asks for a PCI
// host bridge; the virtio-pci work extends this (interrupt routing _PRT, a
// 64-bit window above RAM). What is here:
//  - PCI0: PCI Express root bridge (PNP0A08, compatible PNP0A03), segment 0,
//    bus 0; _CRS producing the bus range, the config-mechanism-#1 ports
//    (consumed, so Linux never hands them to a BAR), I/O 0x0d00-0xffff and
//    the 32-bit MMIO window kPciMmioStart..kPciMmioEnd-1 for BARs.
//    I/O below 0xcf8 stays with the legacy devices and is not forwarded.
//  - MRES (PNP0C02 motherboard resources) with the ECAM range: Linux uses
//    the MCFG region only if firmware also reserves it, in e820 or here.
//  - No _PRT: devices must use MSI/MSI-X until INTx routing is described.
void AppendPciHostBridge(const AcpiConfig& cfg, std::vector<aml::Bytes>& sb) {
  if (!cfg.pci_host_bridge) return;
  sb.push_back(aml::Device(
      "PCI0",
      {
          aml::Name("_HID", aml::EisaId("PNP0A08")),
          aml::Name("_CID", aml::EisaId("PNP0A03")),
          aml::Name("_SEG", aml::Integer(0)),
          aml::Name("_BBN", aml::Integer(kPciFirstBus)),
          aml::Name("_UID", aml::Integer(0)),
          aml::Name("_CRS",
                    aml::ResourceTemplate({
                        aml::WordBusNumber(kPciFirstBus, kPciLastBus),
                        aml::IoPort(kPciConfigAddressPort, kPciConfigAddressPort, 1, 8),
                        aml::WordIo(0x0d00, 0xffff),
                        aml::DWordMemory(static_cast<uint32_t>(kPciMmioStart),
                                         static_cast<uint32_t>(kPciMmioEnd - 1),
                                         aml::Cacheability::kNonCacheable, /*writable=*/true),
                    })),
      }));
  sb.push_back(aml::Device(
      "MRES", {
                  aml::Name("_HID", aml::EisaId("PNP0C02")),
                  aml::Name("_UID", aml::Integer(1)),
                  aml::Name("_CRS", aml::ResourceTemplate({
                                        aml::Memory32Fixed(static_cast<uint32_t>(kPciEcamStart),
                                                           static_cast<uint32_t>(kPciEcamSize),
                                                           /*writable=*/true),
                                    })),
              }));
}

}  // namespace

std::vector<uint8_t> BuildDsdt(const AcpiConfig& cfg) {
  std::vector<aml::Bytes> sb = {Com1(), Rtc()};
  AppendPciHostBridge(cfg, sb);

  std::vector<uint8_t> table = NewSdt("DSDT", kDsdtRevision);
  // \_S5: {SLP_TYPa, SLP_TYPb, reserved, reserved}. With a hardware-reduced
  // FADT the guest writes SLP_TYPa << 2 | SLP_EN to SLEEP_CONTROL_REG.
  aml::Bytes s5 = aml::Name("\\_S5", aml::Package({aml::Integer(kAcpiS5SleepType), aml::Integer(0),
                                                   aml::Integer(0), aml::Integer(0)}));
  aml::Bytes sb_scope = aml::Scope("\\_SB", sb);
  table.insert(table.end(), s5.begin(), s5.end());
  table.insert(table.end(), sb_scope.begin(), sb_scope.end());
  FinishSdt(table);
  return table;
}

}  // namespace mote::x86::acpi
