/* Exits from the guest: see machine.h. */
#include "machine.h"

#include "arch.h"
#include "lib.h"
#include "platform.h"

#define SLP_EN (1u << 5)

void boot_done(void) { outb(BOOT_TIMER_PORT, 0); }

void guest_exit(uint32_t v) { outl(DEBUG_EXIT_PORT, v); }

void acpi_poweroff(void) { outb(ACPI_SLEEP_CONTROL_PORT, (ACPI_S5_SLEEP_TYPE << 2) | SLP_EN); }

void acpi_reset(void) { outb(ACPI_RESET_PORT, ACPI_RESET_VALUE); }

void kbd_reset(void) { outb(I8042_COMMAND_PORT, 0xfe); /* pulse the reset line */ }

void pvpanic(void) { outb(PVPANIC_PORT, 0x01); /* "guest panicked" */ }

void still_running(void) {
  printf("FAIL still running\n");
  guest_exit(EXIT_STILL_RUNNING);
  sys_halt();
}
