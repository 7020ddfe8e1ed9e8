/* test=exits [count=N]: the cost of one exit to the VMM and back, as the
 * guest sees it (tests/bench/compare.py runs it under mote and QEMU): N
 * (default 20000) reads of an I/O port no device claims (0x4ee) and N reads
 * of MMIO no device claims (0xc0f00000: inside mote's PCI window, beyond
 * its BARs; unassigned under QEMU), from ring 3, timed with kvmclock.
 * Prints "exits: pio N exits T ns each" and "exits: mmio N exits T ns each
 * (read 0xV)"; every port read must return all ones (QEMU's unassigned MMIO
 * reads 0, mote's all ones: the value is only printed). Status 1 / 3. */
#include "../arch.h"
#include "../boot.h"
#include "../kvmclock.h"
#include "../lib.h"
#include "../test.h"

#define UNCLAIMED_PORT 0x4ee
#define UNCLAIMED_MMIO 0xc0f00000ull

void test_exits(void) {
  unsigned count = (unsigned)cmdline_u64("count", 20000);
  if (!expect(kvmclock_enable(), "exits_clock", "no kvmclock: cannot time the exits")) return;
  unsigned wrong = 0;
  uint64_t start = kvmclock_ns();
  for (unsigned i = 0; i < count; ++i) wrong += inb(UNCLAIMED_PORT) != 0xff;
  uint64_t pio = kvmclock_ns() - start;
  uint32_t value = 0;
  start = kvmclock_ns();
  for (unsigned i = 0; i < count; ++i) value = mmio_read32(UNCLAIMED_MMIO);
  uint64_t mmio = kvmclock_ns() - start;
  printf("exits: pio %u exits %lu ns each\n", count, count ? pio / count : 0);
  printf("exits: mmio %u exits %lu ns each (read 0x%x)\n", count, count ? mmio / count : 0, value);
  expect(wrong == 0, "exits_all_ones", "%u port reads did not return all ones", wrong);
}
