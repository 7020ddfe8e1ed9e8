#include "arch/x86/acpi/tables.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "arch/x86/acpi/le_bytes.h"
#include "arch/x86/acpi/sdt.h"
#include "arch/x86/layout.h"
#include "vmm/base/status_macros.h"

namespace mote::x86::acpi {
namespace {

// Revisions of ACPI 6.3, the version the FADT's major.minor says.
constexpr uint8_t kFadtRevision = 6;
constexpr uint8_t kFadtMinorRevision = 3;
constexpr uint8_t kMadtRevision = 5;
constexpr uint8_t kXsdtRevision = 1;
constexpr uint8_t kMcfgRevision = 1;
constexpr uint8_t kHpetRevision = 1;
constexpr uint8_t kRsdpRevision = 2;  // ACPI 2.0+ RSDP with XsdtAddress

// ---- FADT (ACPI 6.3 section 5.2.9), field offsets ----
constexpr size_t kFadtLength = 276;
constexpr size_t kFadtFirmwareCtrl = 36;
constexpr size_t kFadtDsdt = 40;
constexpr size_t kFadtSciInt = 46;
constexpr size_t kFadtPm1aEvtBlk = 56;
constexpr size_t kFadtPm1aCntBlk = 64;
constexpr size_t kFadtPmTmrBlk = 76;
constexpr size_t kFadtPm1EvtLen = 88;
constexpr size_t kFadtPm1CntLen = 89;
constexpr size_t kFadtPmTmrLen = 91;
constexpr size_t kFadtPLvl2Lat = 96;
constexpr size_t kFadtPLvl3Lat = 98;
constexpr size_t kFadtXFirmwareCtrl = 132;
constexpr size_t kFadtXPm1aEvtBlk = 148;
constexpr size_t kFadtXPm1aCntBlk = 172;
constexpr size_t kFadtXPmTmrBlk = 208;
constexpr size_t kFadtIapcBootArch = 109;
constexpr size_t kFadtFlags = 112;
constexpr size_t kFadtResetReg = 116;
constexpr size_t kFadtResetValue = 128;
constexpr size_t kFadtMinorVersion = 131;
constexpr size_t kFadtXDsdt = 140;
constexpr size_t kFadtSleepControlReg = 244;
constexpr size_t kFadtSleepStatusReg = 256;
constexpr size_t kFadtHypervisorVendor = 268;

constexpr uint32_t kFadtWbinvd = 1u << 0;
constexpr uint32_t kFadtProcC1 = 1u << 2;
constexpr uint32_t kFadtTmrValExt = 1u << 8;  // a 32-bit PM timer
constexpr uint32_t kFadtPwrButton = 1u << 4;  // no fixed-feature power button
constexpr uint32_t kFadtSlpButton = 1u << 5;  // no fixed-feature sleep button
constexpr uint32_t kFadtResetRegSup = 1u << 10;
constexpr uint32_t kFadtHwReducedAcpi = 1u << 20;

constexpr uint16_t kIapcBootVgaNotPresent = 1u << 2;

// Generic Address Structure (section 5.2.3.2).
constexpr uint8_t kGasSystemIo = 1;
constexpr uint8_t kGasAccessByte = 1;
constexpr uint8_t kGasAccessWord = 2;
constexpr uint8_t kGasAccessDword = 3;

// ---- FACS (section 5.2.10) ----
constexpr size_t kFacsLength = 64;
constexpr uint8_t kFacsVersion = 2;
constexpr uint64_t kFacsAlignment = 64;

// ---- MADT (section 5.2.12) ----
constexpr uint32_t kMadtPcatCompat = 1;  // dual 8259s present (KVM's in-kernel PIC)
constexpr uint8_t kMadtLocalApic = 0;
constexpr uint8_t kMadtIoApic = 1;
constexpr uint8_t kMadtInterruptOverride = 2;
constexpr uint8_t kMadtLocalApicNmi = 4;
constexpr uint32_t kLocalApicEnabled = 1;
constexpr uint8_t kAllProcessors = 0xff;
constexpr uint8_t kLint1 = 1;
// MPS INTI flags: bits 0-1 polarity, bits 2-3 trigger; 0 = bus default.
constexpr uint16_t kIntiConforming = 0x0000;
constexpr uint16_t kIntiActiveHighLevel = 0x000d;
constexpr uint8_t kIsaBus = 0;
constexpr uint8_t kPitIsaIrq = 0;

// ---- RSDP (section 5.2.5.3) ----
constexpr size_t kRsdpLength = 36;
constexpr size_t kRsdpV1Length = 20;  // covered by the first checksum
constexpr size_t kRsdpChecksum = 8;
constexpr size_t kRsdpOemId = 9;
constexpr size_t kRsdpRevisionOffset = 15;
constexpr size_t kRsdpLengthOffset = 20;
constexpr size_t kRsdpXsdtAddress = 24;
constexpr size_t kRsdpExtendedChecksum = 32;

// Linux scans for "RSD PTR " on 16-byte boundaries; tables get the same.
constexpr uint64_t kTableAlignment = 16;
static_assert(kAcpiRsdpAddr % kTableAlignment == 0);
static_assert(kAcpiTablesAddr % kTableAlignment == 0);
static_assert(kAcpiRsdpAddr + kRsdpLength <= kAcpiTablesAddr);
static_assert(kAcpiTablesAddr < kAcpiTablesEnd);

void StoreGas(std::vector<uint8_t>& table, size_t offset, uint8_t space_id, uint8_t bit_width,
              uint8_t access_size, uint64_t address) {
  table[offset] = space_id;
  table[offset + 1] = bit_width;
  table[offset + 2] = 0;  // bit offset
  table[offset + 3] = access_size;
  StoreLe<uint64_t>(table, offset + 4, address);
}

void AppendInterruptOverride(std::vector<uint8_t>& table, uint8_t isa_irq, uint32_t gsi,
                             uint16_t flags) {
  table.push_back(kMadtInterruptOverride);
  table.push_back(10);
  table.push_back(kIsaBus);
  table.push_back(isa_irq);
  AppendLe<uint32_t>(table, gsi);
  AppendLe<uint16_t>(table, flags);
}

// The DSDT names slots VR00..VRFF, gives each a Memory32Fixed window and
// an interrupt on the one I/O APIC (GSI base 0 in the MADT).
absl::Status CheckVirtioMmioSlots(const std::vector<VirtioMmioSlot>& slots) {
  if (slots.size() > kMaxVirtioMmioSlots) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ACPI tables: %d virtio-mmio slots, at most %d", slots.size(), kMaxVirtioMmioSlots));
  }
  constexpr uint64_t kFourGiB = uint64_t{1} << 32;
  for (size_t i = 0; i < slots.size(); ++i) {
    const VirtioMmioSlot& slot = slots[i];
    if (slot.size == 0 || slot.base >= kFourGiB || slot.size > kFourGiB - slot.base) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "ACPI tables: virtio-mmio slot %d at 0x%x, size 0x%x, is empty or ends above 4 GiB", i,
          slot.base, slot.size));
    }
    if (slot.gsi >= kIoapicPins) {
      return absl::InvalidArgumentError(
          absl::StrFormat("ACPI tables: virtio-mmio slot %d has GSI %d, past the %d I/O APIC pins",
                          i, slot.gsi, kIoapicPins));
    }
  }
  return absl::OkStatus();
}

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace

std::vector<uint8_t> BuildFacs() {
  std::vector<uint8_t> facs(kFacsLength, 0);
  StoreAscii(facs, 0, "FACS", 4);
  StoreLe<uint32_t>(facs, 4, kFacsLength);
  // Hardware signature (8), waking vectors (12, 24), global lock (16) and
  // flags (20) stay 0: the guest writes its waking vector before sleeping.
  facs[32] = kFacsVersion;
  return facs;
}

std::vector<uint8_t> BuildFadt(const AcpiConfig& cfg, uint64_t dsdt_addr, uint64_t facs_addr) {
  std::vector<uint8_t> table = NewSdt("FACP", kFadtRevision, kFadtLength);
  // A hardware-reduced FADT has no FACS (FIRMWARE_CTRL 0): no global lock
  // and no firmware waking vector.
  if (!cfg.hardware_reduced) {
    StoreLe<uint32_t>(table, kFadtFirmwareCtrl,
                      facs_addr <= 0xffffffff ? static_cast<uint32_t>(facs_addr) : 0);
    StoreLe<uint64_t>(table, kFadtXFirmwareCtrl, facs_addr);
  }
  StoreLe<uint32_t>(table, kFadtDsdt,
                    dsdt_addr <= 0xffffffff ? static_cast<uint32_t>(dsdt_addr) : 0);
  // Ignored in hardware-reduced mode, kept so older parsers see the usual SCI.
  StoreLe<uint16_t>(table, kFadtSciInt, static_cast<uint16_t>(kAcpiSciIrq));
  // The 8042 flag (bit 1) stays clear on purpose: mote emulates only the i8042's
  // reset line, not a keyboard controller, and with the flag clear Linux
  // marks the i8042 firmware-absent and skips probing it (as with QEMU's
  // microvm). Reboot does not need the flag: the RESET_REG below comes first
  // in Linux's default order, and its keyboard fallback writes port 0x64
  // directly. The CMOS RTC flag (bit 5, "not present") stays clear.
  StoreLe<uint16_t>(table, kFadtIapcBootArch, kIapcBootVgaNotPresent);
  uint32_t flags = kFadtResetRegSup | kFadtPwrButton | kFadtSlpButton;
  if (cfg.hardware_reduced) {
    flags |= kFadtHwReducedAcpi;
  } else {
    // No SMI_CMD: the platform is always in ACPI mode (PM1a control reads SCI_EN).
    flags |= kFadtWbinvd | kFadtProcC1 | kFadtTmrValExt;
    StoreLe<uint32_t>(table, kFadtPm1aEvtBlk, kAcpiPm1aEventPort);
    StoreLe<uint32_t>(table, kFadtPm1aCntBlk, kAcpiPm1aControlPort);
    StoreLe<uint32_t>(table, kFadtPmTmrBlk, kAcpiPmTimerPort);
    table[kFadtPm1EvtLen] = 4;
    table[kFadtPm1CntLen] = 2;
    table[kFadtPmTmrLen] = 4;
    // C2 and C3 not supported (latencies over 100 and 1000 us).
    StoreLe<uint16_t>(table, kFadtPLvl2Lat, 101);
    StoreLe<uint16_t>(table, kFadtPLvl3Lat, 1001);
    StoreGas(table, kFadtXPm1aEvtBlk, kGasSystemIo, 32, kGasAccessWord, kAcpiPm1aEventPort);
    StoreGas(table, kFadtXPm1aCntBlk, kGasSystemIo, 16, kGasAccessWord, kAcpiPm1aControlPort);
    StoreGas(table, kFadtXPmTmrBlk, kGasSystemIo, 32, kGasAccessDword, kAcpiPmTimerPort);
  }
  StoreLe<uint32_t>(table, kFadtFlags, flags);
  StoreGas(table, kFadtResetReg, kGasSystemIo, 8, kGasAccessByte, kAcpiResetPort);
  table[kFadtResetValue] = kAcpiResetValue;
  table[kFadtMinorVersion] = kFadtMinorRevision;
  StoreLe<uint64_t>(table, kFadtXDsdt, dsdt_addr);
  if (cfg.hardware_reduced) {
    StoreGas(table, kFadtSleepControlReg, kGasSystemIo, 8, kGasAccessByte, kAcpiSleepControlPort);
    StoreGas(table, kFadtSleepStatusReg, kGasSystemIo, 8, kGasAccessByte, kAcpiSleepStatusPort);
  }
  StoreAscii(table, kFadtHypervisorVendor, "MOTE", 8, '\0');
  FinishSdt(table);
  return table;
}

std::vector<uint8_t> BuildMadt(const AcpiConfig& cfg) {
  std::vector<uint8_t> table = NewSdt("APIC", kMadtRevision);
  AppendLe<uint32_t>(table, static_cast<uint32_t>(kLapicAddr));
  AppendLe<uint32_t>(table, kMadtPcatCompat);
  for (uint32_t i = 0; i < cfg.num_cpus; ++i) {
    table.push_back(kMadtLocalApic);
    table.push_back(8);
    table.push_back(static_cast<uint8_t>(i));  // ACPI processor UID
    table.push_back(static_cast<uint8_t>(i));  // APIC id, as the vCPU setup programs it
    AppendLe<uint32_t>(table, kLocalApicEnabled);
  }
  // The I/O APIC id only has to differ from the other I/O APICs' (Linux
  // x86-64 does not compare it with KVM's 4-bit ID register); num_cpus also
  // keeps it apart from every local APIC id.
  table.push_back(kMadtIoApic);
  table.push_back(12);
  table.push_back(static_cast<uint8_t>(cfg.num_cpus));
  table.push_back(0);  // reserved
  AppendLe<uint32_t>(table, static_cast<uint32_t>(kIoapicAddr));
  AppendLe<uint32_t>(table, 0);  // GSI base
  // ISA IRQs are identity-mapped to GSIs except these two.
  AppendInterruptOverride(table, kPitIsaIrq, kPitIoapicPin, kIntiConforming);
  AppendInterruptOverride(table, static_cast<uint8_t>(kAcpiSciIrq), kAcpiSciIrq,
                          kIntiActiveHighLevel);
  // NMIs arrive on LINT1 of every processor, as on a PC.
  table.push_back(kMadtLocalApicNmi);
  table.push_back(6);
  table.push_back(kAllProcessors);
  AppendLe<uint16_t>(table, kIntiConforming);
  table.push_back(kLint1);
  FinishSdt(table);
  return table;
}

std::vector<uint8_t> BuildMcfg() {
  std::vector<uint8_t> table = NewSdt("MCFG", kMcfgRevision);
  AppendLe<uint64_t>(table, 0);  // reserved
  AppendLe<uint64_t>(table, kPciEcamStart);
  AppendLe<uint16_t>(table, 0);  // PCI segment group
  table.push_back(0);            // first bus
  // Last bus: each bus takes 1 MiB of ECAM.
  table.push_back(static_cast<uint8_t>(kPciEcamSize / (1u << 20) - 1));
  AppendLe<uint32_t>(table, 0);  // reserved
  FinishSdt(table);
  return table;
}

std::vector<uint8_t> BuildHpet(const AcpiConfig& cfg) {
  std::vector<uint8_t> table = NewSdt("HPET", kHpetRevision);
  AppendLe<uint32_t>(table, cfg.hpet_block_id);
  // Base address: a Generic Address Structure in system memory, 64 bits wide.
  table.push_back(0);   // address space: system memory
  table.push_back(64);  // register bit width
  table.push_back(0);   // register bit offset
  table.push_back(0);   // reserved here
  AppendLe<uint64_t>(table, kHpetAddr);
  table.push_back(0);  // HPET number
  AppendLe<uint16_t>(table, cfg.hpet_min_tick);
  table.push_back(0);  // no page protection
  FinishSdt(table);
  return table;
}

std::vector<uint8_t> BuildXsdt(const std::vector<uint64_t>& table_addrs) {
  std::vector<uint8_t> table = NewSdt("XSDT", kXsdtRevision);
  for (uint64_t addr : table_addrs) AppendLe<uint64_t>(table, addr);
  FinishSdt(table);
  return table;
}

std::vector<uint8_t> BuildRsdp(uint64_t xsdt_addr) {
  std::vector<uint8_t> rsdp(kRsdpLength, 0);
  StoreAscii(rsdp, 0, "RSD PTR ", 8);
  StoreAscii(rsdp, kRsdpOemId, kOemId, 6);
  rsdp[kRsdpRevisionOffset] = kRsdpRevision;
  // RsdtAddress (offset 16) stays 0: revision-2 readers use the XSDT.
  StoreLe<uint32_t>(rsdp, kRsdpLengthOffset, static_cast<uint32_t>(kRsdpLength));
  StoreLe<uint64_t>(rsdp, kRsdpXsdtAddress, xsdt_addr);
  rsdp[kRsdpChecksum] = ChecksumByte(absl::MakeConstSpan(rsdp).first(kRsdpV1Length));
  rsdp[kRsdpExtendedChecksum] = ChecksumByte(rsdp);
  return rsdp;
}

namespace {

// Where an earlier WriteAcpiTables' tables end (the XSDT is placed last), or
// the start of the area if there are none: a fresh guest's area reads zero.
uint64_t EarlierTablesEnd(const GuestMemory& mem) {
  absl::StatusOr<std::array<char, 8>> signature =
      mem.ReadObj<std::array<char, 8>>(GuestAddress{kAcpiRsdpAddr});
  absl::StatusOr<uint64_t> xsdt =
      mem.ReadObj<uint64_t>(GuestAddress{kAcpiRsdpAddr + kRsdpXsdtAddress});
  if (!signature.ok() || std::memcmp(signature->data(), "RSD PTR ", 8) != 0 || !xsdt.ok() ||
      *xsdt < kAcpiTablesAddr || *xsdt >= kAcpiTablesEnd) {
    return kAcpiTablesAddr;
  }
  absl::StatusOr<uint32_t> length = mem.ReadObj<uint32_t>(GuestAddress{*xsdt + 4});
  return length.ok() ? std::min<uint64_t>(*xsdt + *length, kAcpiTablesEnd) : kAcpiTablesAddr;
}

}  // namespace

absl::StatusOr<uint64_t> WriteAcpiTables(const GuestMemory& mem, const AcpiConfig& cfg,
                                         uint64_t* facs_addr_out) {
  if (cfg.num_cpus == 0 || cfg.num_cpus > kMaxCpus) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ACPI tables: %d vCPUs is outside 1..%d (xAPIC ids)", cfg.num_cpus, kMaxCpus));
  }
  MOTE_RETURN_IF_ERROR(CheckVirtioMmioSlots(cfg.virtio_mmio));

  // Lay everything out before writing anything, so a table set that does not
  // fit leaves guest memory untouched.
  struct Placed {
    uint64_t addr;
    std::vector<uint8_t> bytes;
  };
  std::vector<Placed> placed;
  uint64_t next = kAcpiTablesAddr;
  auto place = [&](std::vector<uint8_t> table) {
    uint64_t addr = next;
    next = AlignUp(addr + table.size(), kTableAlignment);
    placed.push_back(Placed{addr, std::move(table)});
    return addr;
  };
  uint64_t facs_addr = 0;
  if (!cfg.hardware_reduced) {
    next = AlignUp(next, kFacsAlignment);
    facs_addr = place(BuildFacs());
  }
  if (facs_addr_out != nullptr) *facs_addr_out = facs_addr;
  uint64_t dsdt_addr = place(BuildDsdt(cfg));
  std::vector<uint64_t> xsdt_entries;
  xsdt_entries.push_back(place(BuildFadt(cfg, dsdt_addr, facs_addr)));
  xsdt_entries.push_back(place(BuildMadt(cfg)));
  if (cfg.pci_host_bridge) xsdt_entries.push_back(place(BuildMcfg()));
  if (cfg.hpet_block_id != 0) xsdt_entries.push_back(place(BuildHpet(cfg)));
  uint64_t xsdt_addr = place(BuildXsdt(xsdt_entries));
  uint64_t end = placed.back().addr + placed.back().bytes.size();
  if (end > kAcpiTablesEnd) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("ACPI tables need 0x%x..0x%x, past the end of their area at 0x%x",
                        kAcpiTablesAddr, end, kAcpiTablesEnd));
  }

  // One write of the RSDP, the tables and the zeros between them, and past
  // them as far as an earlier (larger) table set reached, so no stale table
  // is left: only those pages are touched (each first touch of guest RAM
  // costs a host page), not the whole 128 KiB area.
  std::vector<uint8_t> area(std::max(end, EarlierTablesEnd(mem)) - kAcpiRsdpAddr, 0);
  std::vector<uint8_t> rsdp = BuildRsdp(xsdt_addr);
  std::copy(rsdp.begin(), rsdp.end(), area.begin());
  for (const Placed& table : placed) {
    std::copy(table.bytes.begin(), table.bytes.end(), area.begin() + (table.addr - kAcpiRsdpAddr));
  }
  MOTE_RETURN_IF_ERROR(mem.Write(GuestAddress{kAcpiRsdpAddr}, area));
  return kAcpiRsdpAddr;
}

}  // namespace mote::x86::acpi
