// Fuzz target: a virtio-pci function (virtio/pci_transport.cc) with a real
// device behind it: the common configuration, ISR, notify and device
// configuration structures and the MSI-X table in BAR0, accessed at every
// width and offset, and its configuration space (capabilities, BAR sizing,
// the PCI-cfg access window, MSI-X enable) accessed as the PCI root would
// (1, 2 or 4 bytes inside one dword). Script actions (fuzz_devices.h) reach
// BAR0 when the offset's bit 15 is clear, configuration space when set.
// Input: u8 device kind, then the script.
#include <cstdlib>

#include "tests/fuzz/fuzz_devices.h"
#include "tests/support/recording_msi_router.h"
#include "virtio/pci_transport.h"

using namespace mote;

constexpr uint32_t kBar = 0xc0008000;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  fuzz::TransportBench bench(in);
  pci::testing::RecordingRouter router;
  virtio::PciTransport::Placement placement{kBar, 0xc0000000, 0xd0000000};
  auto made =
      virtio::PciTransport::Create(bench.device.device, bench.mem.get(), bench.loop.get(), &router,
                                   placement, [](uint64_t, int, bool) { return absl::OkStatus(); });
  if (!made.ok()) abort();
  virtio::PciTransport& transport = **made;
  fuzz::RunScript(in, *bench.mem, *bench.loop, 0, 0x10000, 4096, [&](const fuzz::Access& a) {
    uint8_t bytes[8];
    std::memcpy(bytes, &a.value, sizeof(bytes));
    if (a.addr < 0x8000) {
      if (a.write) {
        transport.WriteBar(kBar + a.addr, absl::Span<const uint8_t>(bytes, a.width));
      } else {
        transport.ReadBar(kBar + a.addr, absl::Span<uint8_t>(bytes, a.width));
      }
      return;
    }
    // The PciDevice contract: 1, 2 or 4 bytes within one dword below 4096.
    uint32_t offset = a.addr % 4096;
    size_t width = a.width >= 4 ? 4 : a.width == 3 ? 1 : a.width;
    offset &= ~static_cast<uint32_t>(width - 1);
    if (a.write) {
      transport.WriteConfig(offset, absl::Span<const uint8_t>(bytes, width));
    } else {
      transport.ReadConfig(offset, absl::Span<uint8_t>(bytes, width));
    }
  });
  return 0;
}
