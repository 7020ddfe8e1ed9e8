// The ACPI tables mote gives an x86 guest in place of firmware: RSDP, XSDT,
// FADT (hardware-reduced), MADT, DSDT (AML) and, with a PCI host bridge, MCFG.
// A stock Linux kernel finds the RSDP in the BIOS area, learns every vCPU and
// the I/O APIC from the MADT (there is no MP table), and its serial port, RTC,
// reset and poweroff from the DSDT and FADT. virtio-mmio devices are listed
// in the DSDT too, so a guest finds them without virtio_mmio.device= words.
// The Build* functions are pure and return complete, checksummed tables;
// WriteAcpiTables places them in guest memory at the addresses of layout.h.
// Safe from any thread; WriteAcpiTables must run before the vCPUs start (or
// while they are stopped, on reset) because it rewrites guest RAM.
#ifndef MOTE_ARCH_X86_ACPI_TABLES_H_
#define MOTE_ARCH_X86_ACPI_TABLES_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/base/guest_memory.h"

namespace mote::x86::acpi {

// xAPIC ids are 8 bits and 0xff is the broadcast id, so at most 255 vCPUs
// (ids 0..254) fit in type-0 MADT entries; more would need x2APIC entries.
inline constexpr uint32_t kMaxCpus = 255;

// One virtio-mmio device window and its interrupt, described in the DSDT as
// \_SB.VRxx (LNRO0005). The window must lie below 4 GiB (the DSDT uses a
// Memory32Fixed descriptor) and the GSI must be an I/O APIC pin.
struct VirtioMmioSlot {
  uint64_t base;
  uint64_t size;
  uint32_t gsi;  // described edge-triggered, active-high: an irqfd injects edges
};

// VRxx names carry the slot index in two hex digits.
inline constexpr size_t kMaxVirtioMmioSlots = 256;

struct AcpiConfig {
  uint32_t num_cpus = 1;  // local APIC ids 0..num_cpus-1, 1..kMaxCpus
  // Describe the PCI host bridge \_SB.PCI0 (ECAM at kPciEcamStart, bus 0,
  // I/O 0xcf8 and the kPciMmioStart..kPciMmioEnd window) in the DSDT and add
  // an MCFG: on with --transport pci.
  bool pci_host_bridge = false;
  // virtio-mmio devices in slot order: slot i becomes \_SB.VRxx (xx = i in
  // two hex digits) with _UID i.
  std::vector<VirtioMmioSlot> virtio_mmio;
  // An HPET at kHpetAddr, described by an HPET table: its Event Timer Block
  // ID (the low half of its capabilities register) and the fewest ticks it
  // takes as a periodic comparator's period. 0: no HPET.
  uint32_t hpet_block_id = 0;
  // A hardware-reduced FADT (the SLEEP_CONTROL/STATUS registers, no FACS),
  // or a full one: a FACS, the PM1a event and control blocks and the PM
  // timer of devices/acpi_pm1.h, and the SCI on IRQ 9.
  bool hardware_reduced = true;
  uint16_t hpet_min_tick = 0;
};

// Precondition: cfg.virtio_mmio is valid as WriteAcpiTables checks it (at
// most kMaxVirtioMmioSlots slots, each nonempty, below 4 GiB, GSI < kIoapicPins).
std::vector<uint8_t> BuildDsdt(const AcpiConfig& cfg);
// `facs_addr`: 0 for a hardware-reduced FADT.
std::vector<uint8_t> BuildFadt(const AcpiConfig& cfg, uint64_t dsdt_addr, uint64_t facs_addr = 0);
// The Firmware ACPI Control Structure (section 5.2.10): 64 bytes, no
// checksum; the guest's waking vector and global lock live here.
std::vector<uint8_t> BuildFacs();
// Precondition: 1 <= cfg.num_cpus <= kMaxCpus (WriteAcpiTables checks it).
std::vector<uint8_t> BuildMadt(const AcpiConfig& cfg);
// ECAM for PCI segment 0, bus 0 only (kPciEcamSize is one bus).
std::vector<uint8_t> BuildMcfg();
// IA-PC HPET specification 1.0a, section 3.2.4.
std::vector<uint8_t> BuildHpet(const AcpiConfig& cfg);
std::vector<uint8_t> BuildXsdt(const std::vector<uint64_t>& table_addrs);
std::vector<uint8_t> BuildRsdp(uint64_t xsdt_addr);

// Clears [kAcpiRsdpAddr, kAcpiTablesEnd), lays out DSDT, FADT, MADT (MCFG)
// and XSDT from kAcpiTablesAddr, each 16-byte aligned, and writes the RSDP at
// kAcpiRsdpAddr. Returns the RSDP address (for boot_params.acpi_rsdp_addr),
// InvalidArgument for a bad config (vCPU count, virtio-mmio slots),
// ResourceExhausted if the tables do not fit below kAcpiTablesEnd, or the
// GuestMemory error if that range is not RAM.
// `facs_addr` (optional): where the FACS went (0: hardware-reduced, none).
absl::StatusOr<uint64_t> WriteAcpiTables(const GuestMemory& mem, const AcpiConfig& cfg,
                                         uint64_t* facs_addr = nullptr);

}  // namespace mote::x86::acpi

#endif  // MOTE_ARCH_X86_ACPI_TABLES_H_
