/* test=acpipm: the fixed ACPI hardware of a full FADT (mote --acpi full), as
 * an OS finds it: the FADT is not hardware-reduced, FIRMWARE_CTRL points at
 * a FACS, the PM timer (PM_TMR_BLK, 32 bits with TMR_VAL_EXT) runs at
 * 3.579545 MHz against kvmclock (within 2 %), PM1a control reads SCI_EN, and
 * SLP_TYP=S5 with SLP_EN written to PM1a control powers off. */
#include "../acpi.h"
#include "../arch.h"
#include "../kvmclock.h"
#include "../lib.h"
#include "../machine.h"
#include "../platform.h"
#include "../test.h"

#define FADT_FIRMWARE_CTRL 36
#define FADT_PM1A_CNT_BLK 64
#define FADT_PM_TMR_BLK 76
#define FADT_FLAGS 112
#define FLAG_TMR_VAL_EXT (1u << 8)
#define FLAG_HW_REDUCED (1u << 20)
#define PM_TIMER_HZ 3579545ull
#define SCI_EN 1u
#define SLP_EN_PM1 (1u << 13)

static uint32_t le32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

void test_acpipm(void) {
  const uint8_t* fadt = (const uint8_t*)acpi_find("FACP");
  if (!expect(fadt != NULL, "acpipm_fadt", "no FADT")) return;
  uint32_t flags = le32(fadt + FADT_FLAGS), facs = le32(fadt + FADT_FIRMWARE_CTRL);
  uint32_t pm1a_cnt = le32(fadt + FADT_PM1A_CNT_BLK), pm_tmr = le32(fadt + FADT_PM_TMR_BLK);
  char facs_sig[5] = "";
  if (facs) memcpy(facs_sig, (const void*)(uintptr_t)facs, 4);
  printf("acpipm: hw_reduced=%u facs=%s pm1a_cnt=0x%x pm_tmr=0x%x tmr_32bit=%u\n",
         (flags & FLAG_HW_REDUCED) != 0, facs_sig, pm1a_cnt, pm_tmr,
         (flags & FLAG_TMR_VAL_EXT) != 0);
  if (!expect(!(flags & FLAG_HW_REDUCED) && pm_tmr && pm1a_cnt, "acpipm_full_fadt", "flags 0x%x",
              flags))
    return;
  expect(strcmp(facs_sig, "FACS") == 0, "acpipm_facs", "FIRMWARE_CTRL 0x%x", facs);
  expect(inw((uint16_t)pm1a_cnt) & SCI_EN, "acpipm_sci_en", "PM1a control without SCI_EN");

  if (!expect(kvmclock_enable(), "acpipm_kvmclock", "no kvmclock to time the PM timer")) return;
  uint32_t t0 = inl((uint16_t)pm_tmr);
  uint64_t ns0 = kvmclock_ns();
  while (kvmclock_ns() - ns0 < 200000000ull) cpu_relax();
  uint32_t t1 = inl((uint16_t)pm_tmr);
  uint64_t ns = kvmclock_ns() - ns0;
  uint64_t rate = (uint64_t)(uint32_t)(t1 - t0) * 1000000000ull / ns;
  printf("acpipm: PM timer %lu Hz against kvmclock\n", rate);
  expect(rate > PM_TIMER_HZ - PM_TIMER_HZ / 50 && rate < PM_TIMER_HZ + PM_TIMER_HZ / 50,
         "acpipm_timer_rate", "%lu Hz", rate);
  if (test_failures()) return;
  printf("acpipm: powering off through PM1a control\n");
  outw((uint16_t)pm1a_cnt, (uint16_t)(ACPI_S5_SLEEP_TYPE << 10 | SLP_EN_PM1));
  still_running();
}
