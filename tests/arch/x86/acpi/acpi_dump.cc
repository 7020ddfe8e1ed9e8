// acpi_dump OUT_DIR [NUM_CPUS] [--pci] [--acpi-full] [--hpet] [--virtio-mmio=N]
// Writes mote's ACPI tables into a scratch guest memory with WriteAcpiTables,
// for N virtio-mmio slots laid out as layout.h allocates them (slot i at
// kVirtioMmioStart + i * kVirtioMmioSlotSize, GSI kVirtioMmioGsis[i]),
// then follows the guest's path (RSDP -> XSDT -> tables, FADT -> DSDT) and
// saves each table as OUT_DIR/<signature>.dat (RSDP.dat for the RSDP), the
// file names acpidump/acpixtract use, for `iasl -d` (see iasl_check.sh).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "arch/x86/acpi/le_bytes.h"
#include "arch/x86/acpi/tables.h"
#include "arch/x86/layout.h"
#include "vmm/base/guest_memory.h"
#include "vmm/base/status_macros.h"

namespace mote::x86::acpi {
namespace {

constexpr uint64_t kRsdpLength = 36;
constexpr uint64_t kHeaderSize = 36;
constexpr uint64_t kMaxTableLength = 1 << 20;

absl::StatusOr<std::vector<uint8_t>> ReadBytes(const GuestMemory& mem, uint64_t addr,
                                               uint64_t len) {
  std::vector<uint8_t> out(len);
  MOTE_RETURN_IF_ERROR(mem.Read(GuestAddress{addr}, absl::MakeSpan(out)));
  return out;
}

absl::StatusOr<std::vector<uint8_t>> ReadTable(const GuestMemory& mem, uint64_t addr) {
  MOTE_ASSIGN_OR_RETURN(std::vector<uint8_t> header, ReadBytes(mem, addr, kHeaderSize));
  uint32_t length = LoadLe<uint32_t>(header, 4);
  if (length < kHeaderSize || length > kMaxTableLength) {
    return absl::DataLossError(absl::StrFormat("table at 0x%x has length %d", addr, length));
  }
  return ReadBytes(mem, addr, length);
}

absl::Status Save(const std::string& dir, const std::string& name,
                  const std::vector<uint8_t>& bytes) {
  for (char c : name) {
    if (c < 'A' || c > 'Z') {
      return absl::DataLossError(absl::StrFormat("bad table signature \"%s\"", name));
    }
  }
  std::string path = dir + "/" + name + ".dat";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::InternalError("cannot write " + path);
  std::printf("%s: %zu bytes\n", path.c_str(), bytes.size());
  return absl::OkStatus();
}

absl::Status Dump(const std::string& dir, const AcpiConfig& cfg) {
  MOTE_ASSIGN_OR_RETURN(auto mem, GuestMemory::Create({{0, 1 << 20}}));
  MOTE_ASSIGN_OR_RETURN(uint64_t rsdp_addr, WriteAcpiTables(*mem, cfg));
  MOTE_ASSIGN_OR_RETURN(std::vector<uint8_t> rsdp, ReadBytes(*mem, rsdp_addr, kRsdpLength));
  MOTE_RETURN_IF_ERROR(Save(dir, "RSDP", rsdp));
  MOTE_ASSIGN_OR_RETURN(std::vector<uint8_t> xsdt, ReadTable(*mem, LoadLe<uint64_t>(rsdp, 24)));
  MOTE_RETURN_IF_ERROR(Save(dir, "XSDT", xsdt));
  for (size_t off = kHeaderSize; off + 8 <= xsdt.size(); off += 8) {
    MOTE_ASSIGN_OR_RETURN(std::vector<uint8_t> table, ReadTable(*mem, LoadLe<uint64_t>(xsdt, off)));
    std::string signature(table.begin(), table.begin() + 4);
    MOTE_RETURN_IF_ERROR(Save(dir, signature, table));
    if (signature == "FACP") {
      MOTE_ASSIGN_OR_RETURN(std::vector<uint8_t> dsdt,
                            ReadTable(*mem, LoadLe<uint64_t>(table, 140)));
      MOTE_RETURN_IF_ERROR(Save(dir, "DSDT", dsdt));
      if (uint64_t facs = LoadLe<uint64_t>(table, 132); facs != 0) {
        MOTE_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadTable(*mem, facs));
        MOTE_RETURN_IF_ERROR(Save(dir, "FACS", bytes));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace mote::x86::acpi

int main(int argc, char** argv) {
  namespace acpi = mote::x86::acpi;
  namespace x86 = mote::x86;
  if (argc < 2 || argc > 7) {
    std::fprintf(stderr,
                 "usage: %s OUT_DIR [NUM_CPUS] [--pci] [--acpi-full] [--hpet] [--virtio-mmio=N]\n",
                 argv[0]);
    return 2;
  }
  acpi::AcpiConfig cfg;
  const std::string kVirtioMmioFlag = "--virtio-mmio=";
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--pci") {
      cfg.pci_host_bridge = true;
    } else if (arg == "--acpi-full") {
      cfg.hardware_reduced = false;
    } else if (arg == "--hpet") {
      cfg.hpet_block_id = 0x8086a201;  // as devices/hpet.h reports it
      cfg.hpet_min_tick = 10000;
    } else if (arg.rfind(kVirtioMmioFlag, 0) == 0) {
      std::string count = arg.substr(kVirtioMmioFlag.size());
      char* end = nullptr;
      unsigned long slots = std::strtoul(count.c_str(), &end, 10);
      // At most one slot per GSI layout.h has for virtio-mmio.
      if (count.empty() || *end != '\0' || slots > std::size(x86::kVirtioMmioGsis)) {
        std::fprintf(stderr, "bad virtio-mmio slot count \"%s\" (0..%zu)\n", count.c_str(),
                     std::size(x86::kVirtioMmioGsis));
        return 2;
      }
      for (unsigned long slot = 0; slot < slots; ++slot) {
        cfg.virtio_mmio.push_back({x86::kVirtioMmioStart + slot * x86::kVirtioMmioSlotSize,
                                   x86::kVirtioMmioSlotSize, x86::kVirtioMmioGsis[slot]});
      }
    } else {
      char* end = nullptr;
      unsigned long cpus = std::strtoul(arg.c_str(), &end, 10);
      if (arg.empty() || *end != '\0' || cpus > 0xffffffffUL) {
        std::fprintf(stderr, "bad NUM_CPUS \"%s\"\n", arg.c_str());
        return 2;
      }
      cfg.num_cpus = static_cast<uint32_t>(cpus);
    }
  }
  absl::Status status = acpi::Dump(argv[1], cfg);
  if (!status.ok()) {
    std::fprintf(stderr, "acpi_dump: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
