/* ACPI table lookup. Every pointer is a physical address, usable directly
 * thanks to the identity map. */
#include "acpi.h"

#include "boot.h"
#include "lib.h"
#include "platform.h"

#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_X2APIC 9
#define MADT_ENTRIES_OFFSET 44 /* header + local APIC address + flags */

bool acpi_checksum_ok(const void* p, size_t len) {
  const uint8_t* b = p;
  uint8_t sum = 0;
  while (len--) sum += *b++;
  return sum == 0;
}

static const struct acpi_rsdp* check_rsdp(uint64_t addr) {
  const struct acpi_rsdp* r = (const void*)addr;
  if (memcmp(r->signature, "RSD PTR ", 8) != 0 || !acpi_checksum_ok(r, 20)) return NULL;
  return r;
}

static const struct acpi_rsdp* scan_rsdp(uint64_t start, uint64_t end) {
  for (uint64_t a = start; a + sizeof(struct acpi_rsdp) <= end; a += 16) {
    const struct acpi_rsdp* r = check_rsdp(a);
    if (r) return r;
  }
  return NULL;
}

const struct acpi_rsdp* acpi_rsdp(void) {
  static const struct acpi_rsdp* cached;
  if (cached) return cached;
  if (boot.rsdp) cached = check_rsdp(boot.rsdp);
  if (!cached) {
    /* Where a PC BIOS leaves it: first KiB of the EBDA (its segment is at
     * 0x40e in the BIOS data area), then 0xe0000..0xfffff. */
    uint64_t ebda = (uint64_t) * (volatile uint16_t*)0x40e << 4;
    if (ebda >= 0x80000 && ebda < 0xa0000) cached = scan_rsdp(ebda, ebda + 1024);
  }
  if (!cached) cached = scan_rsdp(ACPI_SCAN_START, ACPI_SCAN_END);
  return cached;
}

static bool use_xsdt(const struct acpi_rsdp* r) { return r->revision >= 2 && r->xsdt_address; }

const struct acpi_header* acpi_root(void) {
  const struct acpi_rsdp* r = acpi_rsdp();
  if (!r) return NULL;
  return (const void*)(use_xsdt(r) ? r->xsdt_address : (uint64_t)r->rsdt_address);
}

int acpi_table_count(void) {
  const struct acpi_header* root = acpi_root();
  if (!root || root->length < sizeof(*root)) return 0;
  size_t entry = use_xsdt(acpi_rsdp()) ? 8 : 4;
  return (root->length - sizeof(*root)) / entry;
}

const struct acpi_header* acpi_table_at(int i) {
  const struct acpi_header* root = acpi_root();
  const uint8_t* entries = (const uint8_t*)(root + 1);
  uint64_t addr;
  if (use_xsdt(acpi_rsdp())) {
    memcpy(&addr, entries + 8 * i, 8); /* XSDT entries are only 4-aligned */
  } else {
    uint32_t a32;
    memcpy(&a32, entries + 4 * i, 4);
    addr = a32;
  }
  return (const void*)addr;
}

const struct acpi_header* acpi_find(const char* signature) {
  if (memcmp(signature, "DSDT", 4) == 0) {
    const uint8_t* fadt = (const void*)acpi_find("FACP");
    if (!fadt) return NULL;
    uint64_t addr = 0;
    if (((const struct acpi_header*)fadt)->length >= FADT_X_DSDT + 8)
      memcpy(&addr, fadt + FADT_X_DSDT, 8);
    if (!addr) {
      uint32_t a32;
      memcpy(&a32, fadt + FADT_DSDT, 4);
      addr = a32;
    }
    return (const void*)addr;
  }
  int n = acpi_table_count();
  for (int i = 0; i < n; ++i) {
    const struct acpi_header* t = acpi_table_at(i);
    if (t && memcmp(t->signature, signature, 4) == 0) return t;
  }
  return NULL;
}

int madt_cpus(uint32_t* ids, int max) {
  const struct acpi_header* madt = acpi_find("APIC");
  if (!madt) return -1;
  const uint8_t* p = (const uint8_t*)madt + MADT_ENTRIES_OFFSET;
  const uint8_t* end = (const uint8_t*)madt + madt->length;
  int n = 0;
  for (; p + 2 <= end && p[1] >= 2; p += p[1]) {
    uint32_t id, flags;
    if (p[0] == MADT_LAPIC && p[1] >= 8) {
      id = p[3];
      memcpy(&flags, p + 4, 4);
    } else if (p[0] == MADT_X2APIC && p[1] >= 16) {
      memcpy(&id, p + 4, 4);
      memcpy(&flags, p + 8, 4);
    } else {
      continue;
    }
    if (!(flags & 1)) continue; /* not enabled (maybe only online-capable) */
    if (n < max) ids[n] = id;
    n++;
  }
  return n;
}

bool madt_isa_override(uint32_t irq, uint32_t* gsi, uint16_t* flags) {
  const struct acpi_header* madt = acpi_find("APIC");
  if (!madt) return false;
  const uint8_t* p = (const uint8_t*)madt + MADT_ENTRIES_OFFSET;
  const uint8_t* end = (const uint8_t*)madt + madt->length;
  for (; p + 2 <= end && p[1] >= 2; p += p[1]) {
    if (p[0] == MADT_ISO && p[1] >= 10 && p[3] == irq) {
      memcpy(gsi, p + 4, 4);
      memcpy(flags, p + 8, 2);
      return true;
    }
  }
  return false;
}
