/* Ways a guest ends that are not debug-exit: test=poweroff, test=reset
 * [via=acpi|kbd], test=panic, and test=spin (never ends: for timeouts). Each
 * exit path is one port write; reaching the line after it means the VMM
 * ignored it. test=clock never ends either: it prints its own clock,
 * kvmclock nanoseconds (`clock: ns=N`, or the raw TSC `clock: tsc=N` without
 * kvmclock) every 2^25 TSC ticks, so a host that pauses it can see whether
 * the guest's time moved meanwhile. test=powerbutton waits (forever)
 * for the ACPI power button, the GED's edge on GED_GSI, then powers off as
 * an OS that listens would. */
#include "../apic.h"
#include "../arch.h"
#include "../boot.h"
#include "../kvmclock.h"
#include "../lib.h"
#include "../machine.h"
#include "../test.h"
#include "../traps.h"

void test_poweroff(void) {
  printf("poweroff: via ACPI\n");
  acpi_poweroff();
  still_running();
}

void test_reset(void) {
  char via[8] = "acpi";
  cmdline_get("via", via, sizeof(via));
  if (strcmp(via, "kbd") == 0) {
    printf("reset: via keyboard controller\n");
    kbd_reset();
  } else if (strcmp(via, "acpi") == 0) {
    printf("reset: via ACPI\n");
    acpi_reset();
  } else {
    expect(false, "reset", "via=%s: want acpi or kbd", via);
    test_finish();
  }
  still_running();
}

void test_spin(void) {
  printf("spin: forever\n");
  for (;;) __asm__ volatile("pause");
}

void test_panic(void) {
  printf("panic: pvpanic\n");
  pvpanic();
  still_running();
}

void test_clock(void) {
  /* kvmclock when the host offers it: the clock a paused guest must not see
   * move. The raw TSC keeps counting on hosts that cannot offset it. */
  bool kvm = kvmclock_enable();
  printf("clock: source %s\n", kvm ? "kvmclock" : "tsc");
  const uint64_t step = 1ull << 25;
  uint64_t last = rdtsc();
  for (;;) {
    uint64_t now = rdtsc();
    if (now - last >= step) {
      if (kvm) {
        printf("clock: ns=%llu\n", (unsigned long long)kvmclock_ns());
      } else {
        printf("clock: tsc=%llu\n", (unsigned long long)now);
      }
      last = now;
    }
  }
}

void test_powerbutton(void) {
  /* The last of the virtio vectors: nothing else uses it in this test. */
  const uint8_t vector = VEC_VIRTIO_FIRST + VEC_VIRTIO_COUNT - 1;
  lapic_enable();
  ioapic_route(GED_GSI, vector, lapic_id(), /*level=*/false, /*active_low=*/false);
  irq_enable();
  printf("powerbutton: waiting on gsi %u\n", GED_GSI);
  while (virtio_irqs[VEC_VIRTIO_COUNT - 1] == 0) cpu_relax();
  irq_disable();
  printf("powerbutton: pressed, powering off\n");
  acpi_poweroff();
  still_running();
}
