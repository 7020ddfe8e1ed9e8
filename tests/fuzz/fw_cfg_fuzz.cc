// Fuzz target: the fw_cfg device (devices/fw_cfg.cc) at ports 0x510..0x51b:
// selector writes of any key, data-port reads of any width, and DMA
// operations whose access structures the input leaves in guest RAM, pointing
// into RAM, into the hole between fuzz::MakeRam's two regions, past its end
// or around the top of the address space.
// Input: u8 flags (bit 0: no guest memory, so no DMA interface), u8 file
// count (mod 5), a u16 size (mod 8193) per file, u16 n and n bytes of low
// guest RAM from address 0, then register accesses (TakeAccess over
// 0x50c..0x51f).
#include <cstdlib>
#include <string>

#include "arch/x86/layout.h"
#include "devices/fw_cfg.h"
#include "tests/fuzz/fuzz_support.h"

using namespace mote;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  uint8_t flags = in.Take<uint8_t>();
  FwCfgContents contents;
  contents.cpus = 2;
  contents.max_cpus = 4;
  contents.ram_bytes = fuzz::kRamLowSize + fuzz::kRamHighSize;
  contents.cmdline = "console=ttyS0";
  int files = in.Take<uint8_t>() % 5;
  for (int i = 0; i < files; ++i) {
    size_t file_size = in.Take<uint16_t>() % 8193;
    // Names out of order, so the directory is sorted by Create.
    contents.files.push_back({"opt/fuzz/" + std::to_string(files - i),
                              std::vector<uint8_t>(file_size, static_cast<uint8_t>(0xa0 + i))});
  }
  std::unique_ptr<GuestMemory> mem = fuzz::MakeRam();
  std::vector<uint8_t> ram = in.TakeBytes(std::min<size_t>(in.Take<uint16_t>(), fuzz::kRamLowSize));
  if (!mem->Write(GuestAddress{fuzz::kRamLow}, ram).ok()) abort();
  auto dev = FwCfg::Create(std::move(contents), (flags & 1) ? nullptr : mem.get());
  if (!dev.ok()) abort();
  Bus bus("pio");
  if (!bus.Insert(*dev, x86::kFwCfgPort, FwCfg::kPortCount).ok()) abort();
  for (int step = 0; step < 8192 && !in.empty(); ++step) {
    fuzz::Perform(bus, fuzz::TakeAccess(in, x86::kFwCfgPort - 4, 0x14));
  }
  return 0;
}
