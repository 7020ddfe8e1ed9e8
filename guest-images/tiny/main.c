/* Ring-3 start of the boot CPU: read the boot info, pick the test named by
 * test=NAME (default "demo") and run it. */
#include "boot.h"
#include "lib.h"
#include "machine.h"
#include "test.h"
#include "traps.h"

struct test {
  const char* name;
  void (*run)(void);
};

static const struct test tests[] = {
    {"demo", test_demo},
    {"hello", test_hello},
    {"smp", test_smp},
    {"rtc", test_rtc},
    {"pit", test_pit},
    {"acpi", test_acpi},
    {"poweroff", test_poweroff},
    {"reset", test_reset},
    {"spin", test_spin},
    {"panic", test_panic},
    {"exception", test_exception},
    {"echo", test_echo},
    {"emulation", test_emulation},
    {"triplefault", test_triple_fault},
    {"rng", test_rng},
    {"blk", test_blk},
    {"net", test_net},
    {"netbench", test_netbench},
    {"clock", test_clock},
    {"powerbutton", test_powerbutton},
    {"traffic", test_traffic},
    {"exits", test_exits},
    {"chaos", test_chaos},
    {"cpuid", test_cpuid},
    {"fwcfg", test_fwcfg},
    {"hpet", test_hpet},
    {"acpipm", test_acpipm},
    {"s3", test_s3},
    {"snapshot", test_snapshot},
};

void bsp_user_main(uint32_t cpu) {
  (void)cpu;
  bootinfo_init();
  char name[32] = "demo";
  cmdline_get("test", name, sizeof(name));
  for (unsigned i = 0; i < sizeof(tests) / sizeof(tests[0]); ++i) {
    if (strcmp(tests[i].name, name) == 0) {
      tests[i].run();
      test_finish();
    }
  }
  expect(false, "test",
         "unknown test '%s' (try demo, hello, smp, rtc, pit, acpi, poweroff, "
         "reset, spin, panic, exception, echo, emulation, triplefault, rng, blk, net, netbench, "
         "clock, powerbutton, traffic, exits, chaos)",
         name);
  test_finish();
}
