/* Ways out of the guest, each one port write (platform.h has the ports):
 * the debug-exit device, ACPI power-off/reset, the keyboard controller
 * reset, pvpanic, and the boot-done marker. */
#ifndef MOTETEST_MACHINE_H_
#define MOTETEST_MACHINE_H_

#include <stdint.h>

/* "Boot finished": mote's boot timer stops here. */
void boot_done(void);
/* mote exits with status (v << 1) | 1. Returns only if nothing took the write. */
void guest_exit(uint32_t v);
/* S5 through the FADT's sleep control register. */
void acpi_poweroff(void);
void acpi_reset(void);
void kbd_reset(void);
void pvpanic(void);
/* Reached when one of the above did not end the VM: says so, tries the
 * debug-exit port with EXIT_STILL_RUNNING, then halts this CPU for good. */
__attribute__((noreturn)) void still_running(void);

#define EXIT_STILL_RUNNING 2

#endif /* MOTETEST_MACHINE_H_ */
