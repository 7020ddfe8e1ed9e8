/* Reading the firmware ACPI tables: RSDP (from the boot info or by scanning
 * the BIOS area), the XSDT/RSDT table list, the MADT (CPUs, IOAPIC, interrupt
 * overrides) and the FADT's hardware-reduced registers. */
#ifndef MOTETEST_ACPI_H_
#define MOTETEST_ACPI_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct acpi_rsdp {
  char signature[8]; /* "RSD PTR " */
  uint8_t checksum;  /* over the first 20 bytes */
  char oem_id[6];
  uint8_t revision; /* 0: ACPI 1.0 (RSDT only); 2: has the XSDT fields */
  uint32_t rsdt_address;
  uint32_t length;
  uint64_t xsdt_address;
  uint8_t extended_checksum; /* over `length` bytes */
  uint8_t reserved[3];
} __attribute__((packed));

struct acpi_header {
  char signature[4];
  uint32_t length;
  uint8_t revision;
  uint8_t checksum;
  char oem_id[6];
  char oem_table_id[8];
  uint32_t oem_revision;
  uint32_t creator_id;
  uint32_t creator_revision;
} __attribute__((packed));

/* Generic Address Structure (FADT registers). */
struct acpi_gas {
  uint8_t space_id; /* 0 memory, 1 system I/O */
  uint8_t bit_width;
  uint8_t bit_offset;
  uint8_t access_size;
  uint64_t address;
} __attribute__((packed));

bool acpi_checksum_ok(const void* p, size_t len);

/* The RSDP with a valid 20-byte checksum, or NULL. */
const struct acpi_rsdp* acpi_rsdp(void);
/* The root table (XSDT when the RSDP has one, else RSDT), or NULL. */
const struct acpi_header* acpi_root(void);
/* Entries of the root table: count, and the i-th table. */
int acpi_table_count(void);
const struct acpi_header* acpi_table_at(int i);
/* First table with this signature; "DSDT" is found through the FADT. */
const struct acpi_header* acpi_find(const char* signature);

/* Enabled local APICs in the MADT; their APIC IDs go to ids[0..max). Returns
 * the count, or -1 when there is no MADT. */
int madt_cpus(uint32_t* ids, int max);
/* The MADT interrupt source override for ISA `irq`: its global system
 * interrupt and MPS INTI flags (polarity bits 0-1, trigger bits 2-3; 0 means
 * the ISA default, active-high edge). false when there is none. */
bool madt_isa_override(uint32_t irq, uint32_t* gsi, uint16_t* flags);

/* FADT fields (ACPI 6.x offsets). */
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_X_DSDT 140
#define FADT_DSDT 40
#define FADT_SLEEP_CONTROL_REG 244
#define FADT_SLEEP_STATUS_REG 256
#define FADT_FLAG_RESET_REG_SUP (1u << 10)
#define FADT_FLAG_HW_REDUCED_ACPI (1u << 20)

#endif /* MOTETEST_ACPI_H_ */
