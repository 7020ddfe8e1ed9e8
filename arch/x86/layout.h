// The x86 machine mote presents to a guest: where RAM, boot structures,
// firmware tables and devices live. One place for every fixed address and
// port, shared by the loaders, the ACPI tables, the device manager and (as a
// copy in guest-images/tiny/platform.h) the tiny test kernels.
// Constants only; safe from any thread.
#ifndef MOTE_ARCH_X86_LAYOUT_H_
#define MOTE_ARCH_X86_LAYOUT_H_

#include <cstdint>

namespace mote::x86 {

// ---- Guest physical memory -------------------------------------------------
// RAM runs from 0 up to the 32-bit MMIO hole, then continues at 4 GiB.
// 0x9fc00..0xfffff is left out of the usable e820 map (EBDA, VGA, BIOS area).
inline constexpr uint64_t kEbdaStart = 0x9fc00;
inline constexpr uint64_t kLowMemEnd = 0x100000;        // 1 MiB
inline constexpr uint64_t kMmioHoleStart = 0xc0000000;  // 3 GiB
inline constexpr uint64_t kMmioHoleEnd = 0x100000000;   // 4 GiB
inline constexpr uint64_t kHighRamStart = kMmioHoleEnd;

// Boot structures written by the loaders, all below the EBDA.
inline constexpr uint64_t kGdtAddr = 0x500;        // boot GDT (4 entries)
inline constexpr uint64_t kIdtAddr = 0x520;        // empty boot IDT
inline constexpr uint64_t kBootInfoAddr = 0x6000;  // PVH start_info / multiboot info
inline constexpr uint64_t kBootInfoSize = 0x1000;
inline constexpr uint64_t kZeroPageAddr = 0x7000;  // Linux boot_params
inline constexpr uint64_t kBootStackTop = 0x8ff0;  // initial RSP for ELF entries
inline constexpr uint64_t kPml4Addr = 0x9000;      // identity page tables (64-bit entry)
inline constexpr uint64_t kPdptAddr = 0xa000;
inline constexpr uint64_t kPdAddr = 0xb000;     // 4 PD pages: 0xb000..0xefff, 4 GiB of 2 MiB pages
inline constexpr int kBootPageDirectories = 4;  // those 4 pages
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMax = 0x10000;       // 64 KiB incl. NUL
inline constexpr uint64_t kBootModulesAddr = 0x30000;  // multiboot module list

// ACPI tables live in the BIOS area, where Linux also scans for the RSDP.
inline constexpr uint64_t kAcpiRsdpAddr = 0xe0000;
inline constexpr uint64_t kAcpiTablesAddr = 0xe0040;
inline constexpr uint64_t kAcpiTablesEnd = 0xffff0;  // then the reset vector (reset_vector.h)

inline constexpr uint64_t kKernelLoadAddr = 0x100000;  // bzImage protected-mode code

// ---- MMIO (inside the hole) -------------------------------------------------
inline constexpr uint64_t kPciMmioStart = 0xc0000000;  // PCI BAR window (later issues)
inline constexpr uint64_t kPciMmioEnd = 0xd0000000;
inline constexpr uint64_t kPciEcamStart = 0xe0000000;  // one bus: 1 MiB
inline constexpr uint64_t kPciEcamSize = 0x100000;
inline constexpr uint64_t kVirtioMmioStart =
    0xd0000000;  // virtio-mmio slots, outside the PCI window
inline constexpr uint64_t kVirtioMmioEnd = 0xe0000000;
inline constexpr uint64_t kVirtioMmioSlotSize = 0x1000;  // one 4 KiB window per device
inline constexpr uint64_t kIoapicAddr = 0xfec00000;
inline constexpr uint64_t kHpetAddr = 0xfed00000;  // --hpet on: 1 KiB of registers
inline constexpr uint64_t kLapicAddr = 0xfee00000;

// ---- I/O ports ---------------------------------------------------------------
inline constexpr uint16_t kI8042DataPort = 0x60;
inline constexpr uint16_t kI8042CommandPort = 0x64;
inline constexpr uint16_t kCmosPort = 0x70;        // 0x70 index, 0x71 data
inline constexpr uint16_t kDebugExitPort = 0xf4;   // QEMU isa-debug-exit compatible, 4 bytes
inline constexpr uint16_t kCom1Port = 0x3f8;       // 8 bytes
inline constexpr uint16_t kPostCodePort = 0x80;    // POST codes; QEMU ioport80
inline constexpr uint16_t kBootTimerPort = 0x440;  // any write: "boot done"
inline constexpr uint16_t kPvpanicPort = 0x505;    // QEMU pvpanic ISA compatible
inline constexpr uint16_t kFwCfgPort = 0x510;      // QEMU fw_cfg: selector, data, DMA at +4
inline constexpr uint16_t kFwCfgPortCount = 12;
inline constexpr uint16_t kAcpiSleepControlPort = 0x600;  // FADT SLEEP_CONTROL_REG
inline constexpr uint16_t kAcpiSleepStatusPort = 0x601;   // FADT SLEEP_STATUS_REG
inline constexpr uint16_t kAcpiResetPort = 0x602;         // FADT RESET_REG
inline constexpr uint8_t kAcpiResetValue = 0x01;
// --acpi full: the fixed-hardware registers (devices/acpi_pm1.h), QEMU q35's
// PM1a control 0x604 and PM timer 0x608, then PM1a status/enable 0x60c.
inline constexpr uint16_t kAcpiPm1Port = 0x604;
inline constexpr uint16_t kAcpiPm1aControlPort = kAcpiPm1Port;
inline constexpr uint16_t kAcpiPmTimerPort = kAcpiPm1Port + 4;
inline constexpr uint16_t kAcpiPm1aEventPort = kAcpiPm1Port + 8;
inline constexpr uint8_t kAcpiS5SleepType = 5;
inline constexpr uint8_t kAcpiS3SleepType = 1;  // \_S3 with --acpi full; SLP_TYP bits 10..12 //
                                                // \_S5 in the DSDT; SLP_TYP bits 2..4
inline constexpr uint16_t kPciConfigAddressPort = 0xcf8;  // config mechanism #1 (later issues)

// ---- Interrupts ----------------------------------------------------------------
inline constexpr uint32_t kCom1Irq = 4;
inline constexpr uint32_t kRtcIrq = 8;  // ISA IRQ 8: the HPET's timer 1 in legacy replacement mode
inline constexpr uint32_t kAcpiSciIrq = 9;
inline constexpr uint32_t kIoapicPins = 24;
// The PIT raises ISA IRQ 0, which mote routes to IOAPIC pin 2 (MADT override).
inline constexpr uint32_t kPitIoapicPin = 2;
// GSIs for virtio-mmio devices, in allocation order: the ISA lines no legacy
// device uses (as Firecracker does), then the IOAPIC-only pins.
inline constexpr uint32_t kVirtioMmioGsis[] = {5,  6,  7,  10, 11, 12, 13, 14,
                                               15, 16, 17, 18, 19, 20, 21, 22};
// The ACPI Generic Event Device's interrupt (edge, active high): mote pulses
// it to press the power button (\_SB.PWRB, QMP system_powerdown).
inline constexpr uint32_t kGedGsi = 23;

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_LAYOUT_H_
