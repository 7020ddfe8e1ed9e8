/* Ways a guest ends that are not debug-exit: test=poweroff, test=reset
 * [via=acpi|kbd], test=panic, and test=spin (never ends: for timeouts). Each
 * exit path is one port write; reaching the line after it means the VMM
 * ignored it. */
#include "../boot.h"
#include "../lib.h"
#include "../machine.h"
#include "../test.h"

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
