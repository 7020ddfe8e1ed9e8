/* Fixed addresses and ports of the machine mote presents to a guest.
 *
 * This is a copy, in C/asm-friendly #defines, of the constants the tiny test
 * kernels need from arch/x86/layout.h (the platform contract). The kernels are
 * freestanding C built without the C++ headers, so they cannot include the
 * original: keep the two in sync when layout.h changes. */
#ifndef MOTETEST_PLATFORM_H_
#define MOTETEST_PLATFORM_H_

/* Guest physical memory. */
#define KERNEL_LOAD_ADDR 0x100000  /* kKernelLoadAddr: where we link */
#define BOOT_INFO_ADDR 0x6000      /* kBootInfoAddr: PVH start_info / multiboot info */
#define CMDLINE_ADDR 0x20000       /* kCmdlineAddr */
#define EBDA_START 0x9fc00         /* kEbdaStart */
#define ACPI_SCAN_START 0xe0000    /* kAcpiRsdpAddr: RSDP scan window (BIOS area) */
#define ACPI_SCAN_END 0xffff0      /* kAcpiTablesEnd */
#define MMIO_HOLE_START 0xc0000000 /* kMmioHoleStart */

/* Where an application processor starts (SIPI vector 0x70 -> 0x70000). A free
 * page below the EBDA, clear of the boot info, command line and modules. */
#define AP_TRAMPOLINE_ADDR 0x70000

/* MMIO. */
#define PCI_ECAM_ADDR 0xe0000000ull    /* kPciEcamStart: bus 0's configuration space */
#define PCI_ECAM_BYTES 0x100000ull     /* kPciEcamSize */
#define VIRTIO_MMIO_ADDR 0xd0000000ull /* kVirtioMmioStart: the first virtio-mmio slot */
#define IOAPIC_ADDR 0xfec00000         /* kIoapicAddr */
#define HPET_ADDR 0xfed00000           /* kHpetAddr: mote with --hpet, QEMU */
#define LAPIC_ADDR 0xfee00000          /* kLapicAddr */

/* I/O ports. */
#define I8042_COMMAND_PORT 0x64 /* kI8042CommandPort */
#define CMOS_INDEX_PORT 0x70    /* kCmosPort */
#define CMOS_DATA_PORT 0x71
#define DEBUG_EXIT_PORT 0xf4          /* kDebugExitPort: mote exits with (v << 1) | 1 */
#define COM1_PORT 0x3f8               /* kCom1Port */
#define BOOT_TIMER_PORT 0x440         /* kBootTimerPort: any write = "boot done" */
#define PVPANIC_PORT 0x505            /* kPvpanicPort */
#define FW_CFG_PORT 0x510             /* kFwCfgPort: selector, data +1, DMA +4 */
#define ACPI_SLEEP_CONTROL_PORT 0x600 /* kAcpiSleepControlPort */
#define ACPI_RESET_PORT 0x602         /* kAcpiResetPort */
#define ACPI_RESET_VALUE 0x01         /* kAcpiResetValue */
#define ACPI_S5_SLEEP_TYPE 5          /* kAcpiS5SleepType: SLP_TYP, bits 2..4 */

/* Interrupts. */
#define PIT_IOAPIC_PIN 2 /* kPitIoapicPin: ISA IRQ 0 (MADT override) */
#define GED_GSI 23       /* kGedGsi: the ACPI power button's edge (DSDT GED0) */

#endif /* MOTETEST_PLATFORM_H_ */
