// Fuzz target: the PCI root (devices/pci/): configuration mechanism #1
// (the 0xcf8 address latch and 0xcfc..0xcff data ports), ECAM and the BAR
// window, with the host bridge and two virtio-pci functions on the bus, all
// reached through the same Bus objects the vCPUs use. Any width, any
// address: other buses, absent functions, BARs moved over each other or out
// of the window, decoding switched off and on.
// Input: the script (fuzz_devices.h) over one 32-bit address space where
// [0, 8) is the ports, [0x1000, 0x101000) ECAM and the rest the BAR window.
#include <cstdlib>

#include "arch/x86/layout.h"
#include "devices/pci/pci_root.h"
#include "tests/fuzz/fuzz_devices.h"
#include "tests/support/recording_msi_router.h"
#include "virtio/pci_transport.h"

using namespace mote;

namespace {

constexpr uint64_t kEcamBase = 0x1000;
constexpr uint64_t kWindowBase = kEcamBase + x86::kPciEcamSize;
constexpr uint64_t kWindowSize = x86::kPciMmioEnd - x86::kPciMmioStart;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  auto mem = fuzz::MakeRam();
  auto loop = fuzz::MakeLoop();
  pci::testing::RecordingRouter router;
  pci::PciRoot root;
  fuzz::FuzzDevice devices[] = {fuzz::MakeDevice(0), fuzz::MakeDevice(2)};
  for (size_t i = 0; i < std::size(devices); ++i) {
    uint32_t bar = static_cast<uint32_t>(x86::kPciMmioStart + i * virtio::PciTransport::kBarSize);
    auto t = virtio::PciTransport::Create(devices[i].device, mem.get(), loop.get(), &router,
                                          {bar, x86::kPciMmioStart, x86::kPciMmioEnd},
                                          [](uint64_t, int, bool) { return absl::OkStatus(); });
    if (!t.ok() || !root.AddDevice(std::shared_ptr<virtio::PciTransport>(std::move(*t))).ok())
      abort();
  }
  Bus bus("fuzz");
  if (!bus.Insert(root.config_ports(), 0, pci::kConfigPortCount).ok() ||
      !bus.Insert(root.ecam(), kEcamBase, x86::kPciEcamSize).ok() ||
      !bus.Insert(root.bar_window(x86::kPciMmioStart), kWindowBase, kWindowSize).ok()) {
    abort();
  }
  fuzz::RunScript(in, *mem, *loop, 0, kWindowBase + kWindowSize, 4096,
                  [&](const fuzz::Access& a) { fuzz::Perform(bus, a); });
  return 0;
}
