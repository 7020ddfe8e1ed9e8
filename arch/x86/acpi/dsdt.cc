// BuildDsdt: the guest-visible namespace. Kept apart from the fixed-layout
// tables because it grows with the device model (PCI0 now, more later).
#include <cassert>
#include <cstddef>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"
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

// Memory32Fixed windows end at or below this.
constexpr uint64_t kFourGiB = uint64_t{1} << 32;

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

// QEMU's ISA pvpanic device, as QEMU describes it: Linux's pvpanic-mmio
// driver matches QEMU0001 and writes "panicked" to the port from its panic
// notifier, which mote turns into its guest-panic exit.
aml::Bytes Pvpanic() {
  return aml::Device("PEVT",
                     {
                         aml::Name("_HID", aml::String("QEMU0001")),
                         aml::Name("_CRS", aml::ResourceTemplate({
                                               aml::IoPort(kPvpanicPort, kPvpanicPort, 1, 1),
                                           })),
                     });
}

// QEMU's fw_cfg, as QEMU describes it: Linux's qemu_fw_cfg driver matches
// QEMU0002. _STA 0xb: present, enabled, working, but not shown in a UI.
aml::Bytes FwCfg() {
  return aml::Device(
      "FWCF", {
                  aml::Name("_HID", aml::String("QEMU0002")),
                  aml::Name("_STA", aml::Integer(0x0b)),
                  aml::Name("_CRS", aml::ResourceTemplate({
                                        aml::IoPort(kFwCfgPort, kFwCfgPort, 1, kFwCfgPortCount),
                                    })),
              });
}

// ---- Power button ------------------------------------------------------------------
// A hardware-reduced platform has no fixed power button: PWRB is a control-
// method button (PNP0C0C) and the Generic Event Device (ACPI0013) turns an
// edge on kGedGsi into Notify(PWRB, 0x80), "pressed". Linux's evged driver
// calls _EVT on that interrupt; its button driver then powers off.
std::vector<aml::Bytes> PowerButton() {
  return {
      aml::Device("PWRB",
                  {aml::Name("_HID", aml::EisaId("PNP0C0C")), aml::Name("_UID", aml::Integer(0))}),
      aml::Device(
          "GED0",
          {
              aml::Name("_HID", aml::String("ACPI0013")),
              aml::Name("_UID", aml::Integer(0)),
              aml::Name("_CRS", aml::ResourceTemplate({aml::ExtendedInterrupt(
                                    kGedGsi, aml::Trigger::kEdge, aml::Polarity::kActiveHigh,
                                    /*shared=*/false)})),
              aml::Method("_EVT", 1, /*serialized=*/false, {aml::Notify("PWRB", 0x80)}),
          }),
  };
}

// ---- virtio-mmio devices ---------------------------------------------------------
// One device per slot, as Firecracker and QEMU's microvm describe them, so a
// guest that ignores (or never gets) virtio_mmio.device= words still finds
// them: Linux's virtio_mmio driver matches _HID LNRO0005 and takes the
// window and interrupt from _CRS.
//  - _UID: the slot index, unique among the LNRO0005 devices.
//  - _CCA One: DMA is cache-coherent (the device model reads guest RAM
//    directly). The spec already assumes that on x86 when _CCA is absent;
//    stating it matches Firecracker and QEMU.
//  - Interrupt: an Extended Interrupt descriptor because the GSI may be an
//    I/O APIC pin above 15, which IRQNoFlags cannot name; edge-triggered and
//    active-high because the device signals through a KVM irqfd, which
//    injects an edge.
aml::Bytes VirtioMmio(size_t index, const VirtioMmioSlot& slot) {
  assert(index < kMaxVirtioMmioSlots);
  assert(slot.size > 0 && slot.base < kFourGiB && slot.size <= kFourGiB - slot.base);
  assert(slot.gsi < kIoapicPins);
  return aml::Device(absl::StrFormat("VR%02X", index),
                     {
                         aml::Name("_HID", aml::String("LNRO0005")),
                         aml::Name("_UID", aml::Integer(index)),
                         aml::Name("_CCA", aml::Integer(1)),
                         aml::Name("_CRS", aml::ResourceTemplate({
                                               aml::Memory32Fixed(static_cast<uint32_t>(slot.base),
                                                                  static_cast<uint32_t>(slot.size),
                                                                  /*writable=*/true),
                                               aml::ExtendedInterrupt(slot.gsi, aml::Trigger::kEdge,
                                                                      aml::Polarity::kActiveHigh,
                                                                      /*shared=*/false),
                                           })),
                     });
}

void AppendVirtioMmio(const AcpiConfig& cfg, std::vector<aml::Bytes>& sb) {
  for (size_t i = 0; i < cfg.virtio_mmio.size(); ++i) {
    sb.push_back(VirtioMmio(i, cfg.virtio_mmio[i]));
  }
}

// ---- PCI host bridge hook --------------------------------------------------------
// Appends \_SB.PCI0 and the ECAM reservation to `sb` when cfg asks for a PCI
// host bridge (devices/pci/pci_root.h). What is here:
//  - PCI0: PCI Express root bridge (PNP0A08, compatible PNP0A03), segment 0,
//    bus 0; _CRS producing the bus range, the config-mechanism-#1 ports
//    (consumed, so Linux never hands them to a BAR), I/O 0x0d00-0xffff and
//    the 32-bit MMIO window kPciMmioStart..kPciMmioEnd-1 for BARs.
//    I/O below 0xcf8 stays with the legacy devices and is not forwarded.
//  - MRES (PNP0C02 motherboard resources) with the ECAM range: Linux uses
//    the MCFG region only if firmware also reserves it, in e820 or here.
//  - No _PRT: mote's PCI functions have no INTx pin; they signal through MSI-X.
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
  std::vector<aml::Bytes> sb = {Com1(), Rtc(), Pvpanic(), FwCfg()};
  for (aml::Bytes& device : PowerButton()) sb.push_back(std::move(device));
  AppendVirtioMmio(cfg, sb);
  AppendPciHostBridge(cfg, sb);

  std::vector<uint8_t> table = NewSdt("DSDT", kDsdtRevision);
  // \_S5: {SLP_TYPa, SLP_TYPb, reserved, reserved}. With a hardware-reduced
  // FADT the guest writes SLP_TYPa << 2 | SLP_EN to SLEEP_CONTROL_REG.
  aml::Bytes s5 = aml::Name("\\_S5", aml::Package({aml::Integer(kAcpiS5SleepType), aml::Integer(0),
                                                   aml::Integer(0), aml::Integer(0)}));
  aml::Bytes sb_scope = aml::Scope("\\_SB", sb);
  table.insert(table.end(), s5.begin(), s5.end());
  // \_S3 (suspend to RAM) only where PM1a control can take it.
  if (!cfg.hardware_reduced) {
    aml::Bytes s3 = aml::Name(
        "\\_S3", aml::Package({aml::Integer(kAcpiS3SleepType), aml::Integer(kAcpiS3SleepType),
                               aml::Integer(0), aml::Integer(0)}));
    table.insert(table.end(), s3.begin(), s3.end());
  }
  table.insert(table.end(), sb_scope.begin(), sb_scope.end());
  FinishSdt(table);
  return table;
}

}  // namespace mote::x86::acpi
