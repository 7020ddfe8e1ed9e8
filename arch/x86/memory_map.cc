#include "arch/x86/memory_map.h"

#include <algorithm>

#include "arch/x86/layout.h"

namespace mote::x86 {
namespace {

// Start of the legacy BIOS area, reserved because the ACPI tables live there.
constexpr uint64_t kBiosAreaStart = 0xe0000;
constexpr uint64_t kVgaStart = 0xa0000;

void AddRam(uint64_t start, uint64_t end, std::vector<E820Entry>* out) {
  if (end > start) out->push_back(E820Entry{start, end - start, kE820Ram});
}

}  // namespace

uint64_t LowRamEnd(uint64_t ram_bytes) { return std::min(ram_bytes, kMmioHoleStart); }

uint64_t HighRamSize(uint64_t ram_bytes) {
  return ram_bytes > kMmioHoleStart ? ram_bytes - kMmioHoleStart : 0;
}

std::vector<MemoryRegionSpec> RamRegions(uint64_t ram_bytes) {
  std::vector<MemoryRegionSpec> regions;
  if (ram_bytes == 0) return regions;
  regions.push_back(MemoryRegionSpec{0, LowRamEnd(ram_bytes)});
  if (HighRamSize(ram_bytes) > 0) {
    regions.push_back(MemoryRegionSpec{kHighRamStart, HighRamSize(ram_bytes)});
  }
  return regions;
}

std::vector<E820Entry> BuildE820(uint64_t ram_bytes) {
  const uint64_t low_end = LowRamEnd(ram_bytes);
  std::vector<E820Entry> map;
  AddRam(0, std::min(low_end, kEbdaStart), &map);
  map.push_back(E820Entry{kEbdaStart, kVgaStart - kEbdaStart, kE820Reserved});
  map.push_back(E820Entry{kBiosAreaStart, kLowMemEnd - kBiosAreaStart, kE820Reserved});
  AddRam(kLowMemEnd, low_end, &map);
  // The ECAM window is MMIO, but listing it reserved is what Linux's
  // pci_mmcfg code checks before trusting the MCFG table.
  map.push_back(E820Entry{kPciEcamStart, kPciEcamSize, kE820Reserved});
  const uint64_t high = HighRamSize(ram_bytes);
  if (high > 0) map.push_back(E820Entry{kHighRamStart, high, kE820Ram});
  return map;
}

}  // namespace mote::x86
