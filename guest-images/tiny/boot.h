/* What the loader told us, normalised from whichever boot protocol was used
 * (PVH start_info, multiboot info, or start_info via the ELF64 entry), and the
 * command-line accessors the tests use (test=NAME, exit=N, ticks=N, ...). */
#ifndef MOTETEST_BOOT_H_
#define MOTETEST_BOOT_H_

#include <stdbool.h>
#include <stdint.h>

struct boot_info {
  const char* protocol; /* "pvh", "multiboot", "elf64" */
  bool valid;           /* magic and pointer checked out */
  const char* cmdline;  /* never NULL; "" when none was given */
  uint64_t mem_bytes;   /* usable RAM from the memory map (0: unknown) */
  uint64_t rsdp;        /* ACPI RSDP physical address (0: unknown, scan) */
  uint32_t memmap_entries;
  uint32_t modules;
  uint64_t module0_addr; /* the first module (the initrd), if any */
  uint64_t module0_size;
};

extern struct boot_info boot;

/* Set by the entry code (entry32.S, boot_elf.S). */
extern uint64_t boot_protocol, boot_info_addr;

/* Fills `boot` from boot_protocol/boot_info_addr. */
void bootinfo_init(void);

/* Copies the value of key=value from the command line into buf (NUL-
 * terminated, truncated to size); false when the key is absent. A bare "key"
 * has the value "". */
bool cmdline_get(const char* key, char* buf, unsigned size);
/* key=N (decimal, or hex with 0x); `def` when absent or malformed. */
uint64_t cmdline_u64(const char* key, uint64_t def);

#endif /* MOTETEST_BOOT_H_ */
