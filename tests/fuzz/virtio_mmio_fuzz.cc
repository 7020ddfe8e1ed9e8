// Fuzz target: the virtio-mmio register file (virtio/mmio_transport.cc and
// the shared transport core) with a real device behind it, driven by a
// script of register accesses of every width, RAM writes and event-loop
// runs: status and feature negotiation out of order, queue set-up with bad
// sizes and addresses, notifications of queues that do not exist, config
// space reads and writes.
// Input: u8 device kind (fuzz_devices.h), then the script (RunScript).
#include <cstdlib>

#include "tests/fuzz/fuzz_devices.h"
#include "virtio/mmio_transport.h"

using namespace mote;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  fuzz::TransportBench bench(in);
  auto transport =
      virtio::MmioTransport::Create(bench.device.device, bench.mem.get(), bench.loop.get());
  if (!transport.ok()) abort();
  fuzz::RunScript(in, *bench.mem, *bench.loop, 0, 0x200, 4096,
                  [&](const fuzz::Access& a) { fuzz::Perform(**transport, a); });
  return 0;
}
