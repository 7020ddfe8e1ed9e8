/* test=demo (the default): what a new user sees on a first boot. A banner,
 * the CPU count from the ACPI MADT, the RTC time, then power-off through ACPI,
 * so mote exits with status 0. */
#include "../acpi.h"
#include "../boot.h"
#include "../cmos.h"
#include "../lib.h"
#include "../machine.h"
#include "../test.h"

void test_demo(void) {
  printf("mote tiny kernel: hello\n");
  printf("demo: booted via %s, %lu MiB RAM, cmdline \"%s\"\n", boot.protocol, boot.mem_bytes >> 20,
         boot.cmdline);
  int cpus = madt_cpus(NULL, 0);
  if (cpus >= 0)
    printf("demo: %d cpus (ACPI MADT)\n", cpus);
  else
    printf("demo: no ACPI MADT\n");
  struct rtc_time t;
  if (rtc_read(&t)) {
    printf("demo: rtc %04d-%02d-%02d %02d:%02d:%02d UTC\n", t.year, t.month, t.day, t.hour,
           t.minute, t.second);
  } else {
    printf("demo: rtc not readable\n");
  }
  boot_done();
  printf("demo: powering off\n");
  acpi_poweroff();
  still_running();
}
