/* test=acpi: checks the firmware tables mote builds. RSDP checksums (20 and
 * 36 bytes), the XSDT and every table's checksum, the DSDT through the FADT,
 * the MADT's CPUs, and prints the FADT's hardware-reduced registers for the
 * host-side test to compare with the platform's ports. */
#include "../acpi.h"

#include "../boot.h"
#include "../lib.h"
#include "../test.h"

static bool check_table(const struct acpi_header* t) {
  char sig[5] = {0};
  memcpy(sig, t->signature, 4);
  bool ok = t->length >= sizeof(*t) && acpi_checksum_ok(t, t->length);
  printf("acpi: table %s len=%u %s\n", sig, t->length, ok ? "ok" : "BAD CHECKSUM");
  return ok;
}

static uint64_t gas_address(const uint8_t* fadt, unsigned offset) {
  struct acpi_gas g;
  memcpy(&g, fadt + offset, sizeof(g));
  return g.address;
}

void test_acpi(void) {
  const struct acpi_rsdp* rsdp = acpi_rsdp();
  if (!expect(rsdp != NULL, "acpi_rsdp",
              "no RSDP (boot info said 0x%lx; BIOS area scan found none)", boot.rsdp)) {
    return;
  }
  bool ext_ok = rsdp->revision < 2 || (rsdp->length >= 36 && acpi_checksum_ok(rsdp, rsdp->length));
  printf("acpi: RSDP %s rev=%u at %p\n", ext_ok ? "ok" : "BAD EXTENDED CHECKSUM", rsdp->revision,
         rsdp);

  bool all_ok = ext_ok;
  const struct acpi_header* root = acpi_root();
  if (!expect(root != NULL, "acpi_root", "RSDP names no XSDT/RSDT")) return;
  all_ok &= check_table(root);
  int n = acpi_table_count();
  for (int i = 0; i < n; ++i) all_ok &= check_table(acpi_table_at(i));
  const struct acpi_header* dsdt = acpi_find("DSDT");
  if (dsdt) all_ok &= check_table(dsdt);
  expect(all_ok, "acpi_checksums", "a table failed its checksum");

  int cpus = madt_cpus(NULL, 0);
  printf("acpi: cpus=%d\n", cpus);
  expect(cpus > 0, "acpi_madt", "no MADT or no enabled CPU");

  const uint8_t* fadt = (const void*)acpi_find("FACP");
  expect(dsdt != NULL, "acpi_dsdt", "no DSDT");
  if (!expect(fadt != NULL, "acpi_fadt", "no FADT")) return;
  uint32_t len = ((const struct acpi_header*)fadt)->length, flags;
  memcpy(&flags, fadt + FADT_FLAGS, 4);
  if (!expect(len >= FADT_SLEEP_STATUS_REG + 12, "acpi_fadt_len", "FADT only %u bytes", len))
    return;
  printf("acpi: sleep_control=0x%lx reset=0x%lx value=%u\n",
         gas_address(fadt, FADT_SLEEP_CONTROL_REG), gas_address(fadt, FADT_RESET_REG),
         fadt[FADT_RESET_VALUE]);
  printf("acpi: sleep_status=0x%lx hw_reduced=%d reset_reg_sup=%d\n",
         gas_address(fadt, FADT_SLEEP_STATUS_REG), !!(flags & FADT_FLAG_HW_REDUCED_ACPI),
         !!(flags & FADT_FLAG_RESET_REG_SUP));
}
