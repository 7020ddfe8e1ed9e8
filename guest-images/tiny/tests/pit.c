/* test=pit [ticks=N]: the PIT's IRQ 0 through the IOAPIC to the boot CPU's
 * LAPIC (the 8259s were masked at boot, traps.c). Counts N (default 20)
 * timer interrupts at 1000 Hz, with a bounded wait so a dead timer fails
 * instead of hanging. */
#include "../acpi.h"
#include "../apic.h"
#include "../arch.h"
#include "../boot.h"
#include "../lib.h"
#include "../test.h"
#include "../traps.h"

#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define PIT_HZ 1193182
#define PIT_CH0_LOHI_MODE2 0x34 /* channel 0, lobyte/hibyte, rate generator, binary */

void test_pit(void) {
  uint64_t want = cmdline_u64("ticks", 20);
  uint32_t pin = PIT_IOAPIC_PIN;
  uint16_t flags = 0;
  bool override = madt_isa_override(0, &pin, &flags);
  bool active_low = (flags & 3) == 3, level = ((flags >> 2) & 3) == 3;
  printf("pit: irq 0 -> ioapic pin %u (%s)%s%s\n", pin, override ? "MADT override" : "default",
         level ? " level" : "", active_low ? " active-low" : "");
  lapic_enable();
  ioapic_route(pin, VEC_TIMER, lapic_id(), level, active_low);

  uint16_t divisor = PIT_HZ / 1000;
  outb(PIT_CMD, PIT_CH0_LOHI_MODE2);
  outb(PIT_CH0, divisor & 0xff);
  outb(PIT_CH0, divisor >> 8);

  uint64_t start = rdtsc();
  uint64_t deadline = deadline_ms(1000 + 10 * want);
  irq_enable();
  while (timer_ticks < want && !deadline_passed(deadline)) cpu_relax();
  irq_disable();
  uint64_t got = timer_ticks;
  uint64_t cycles = rdtsc() - start;
  printf("pit: %lu ticks (%lu M TSC cycles)\n", got, cycles / 1000000);
  expect(got >= want, "pit", "only %lu of %lu timer interrupts before the deadline", got, want);
}
