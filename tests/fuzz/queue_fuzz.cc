// Fuzz target: the split virtqueue (virtio/queue.cc) over rings a hostile
// driver wrote: descriptor loops, indirect tables, out-of-range addresses,
// huge lengths, avail indices far ahead. Every chain Pop accepts must lie in
// guest RAM; the sanitizers check that nothing outside it is touched.
#include <cstdlib>

#include "tests/fuzz/fuzz_support.h"

using namespace mote;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  fuzz::Input in(data, size);
  fuzz::RingHeader header = fuzz::TakeRingHeader(in);
  auto mem = fuzz::MakeRam();
  virtio::Queue queue(256);
  fuzz::ConfigureQueue(queue, header);
  int pops = 1 + header.count % 64;
  fuzz::FillRam(*mem, in);
  if (!queue.Validate(*mem).ok()) return 0;
  for (int i = 0; i < pops; ++i) {
    (void)queue.HasAvailable(*mem);
    auto popped = queue.Pop(*mem);
    if (!popped.ok() || popped->status == virtio::PopStatus::kEmpty) break;
    const virtio::DescriptorChain& chain = popped->chain;
    uint32_t written = 0;
    if (popped->status == virtio::PopStatus::kChain) {
      // Touch both ends of every buffer, as a device would: ASan catches a
      // span that leaves guest RAM (a span is contiguous host memory).
      uint8_t sum = 0;
      for (auto span : chain.readable) {
        if (!span.empty()) sum ^= span.front() ^ span.back();
      }
      for (auto span : chain.writable) {
        if (!span.empty()) span.front() = span.back() = sum;
        written += static_cast<uint32_t>(span.size());
      }
      uint64_t total = 0;
      for (auto span : chain.readable) total += span.size();
      if (total != chain.readable_bytes) abort();
    }
    (void)queue.AddUsed(*mem, chain.head, written);
    (void)queue.NeedsInterrupt(*mem);
  }
  return 0;
}
