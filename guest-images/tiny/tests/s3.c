/* test=s3 [rounds=N] [wake=rtc]: suspend to RAM (ACPI S3, mote --acpi full)
 * and back, N times (default 1). The guest fills 64 KiB with a pattern, points the
 * FACS's waking vector at the AP trampoline (real mode, as an OS's wakeup
 * code starts), and writes SLP_TYP=\_S3 | SLP_EN to PM1a control. It wakes
 * when the host says so (QMP system_wakeup, or the power button), or with
 * wake=rtc when the RTC alarm it set 3 s ahead fires (RTC_EN); the boot
 * CPU then comes back through the trampoline (ap_user_main with CPU 0, see
 * s3_resume) and checks the pattern survived and WAK_STS is set. */
#include "../acpi.h"
#include "../apic.h"
#include "../arch.h"
#include "../boot.h"
#include "../crc32.h"
#include "../lib.h"
#include "../machine.h"
#include "../platform.h"
#include "../test.h"
#include "../traps.h"

#define FADT_FIRMWARE_CTRL 36
#define FADT_PM1A_EVT_BLK 56
#define FADT_PM1A_CNT_BLK 64
#define FACS_WAKING_VECTOR 12
#define SLP_EN_PM1 (1u << 13)
#define WAK_STS (1u << 15)
#define S3_SLEEP_TYPE 1 /* kAcpiS3SleepType, \_S3 in mote's DSDT */

extern const char trampoline_start[], trampoline_end[];
extern uint8_t apic_to_cpu[256];

void (*volatile s3_resume)(void);

static uint8_t pattern[64 * 1024];
static uint32_t pattern_crc;
static uint16_t pm1a_evt, pm1a_cnt;
static uint64_t rounds, round;
static bool rtc_wake;

static uint8_t cmos_read(uint8_t reg) {
  outb(CMOS_INDEX_PORT, reg);
  return inb(CMOS_DATA_PORT);
}
static void cmos_write(uint8_t reg, uint8_t value) {
  outb(CMOS_INDEX_PORT, reg);
  outb(CMOS_DATA_PORT, value);
}

/* The RTC alarm 3 s ahead (any minute and hour: BCD seconds only), its
 * interrupt enabled, and RTC_EN in PM1 enable so it may wake the system. */
static void set_rtc_alarm(void) {
  uint8_t bcd = cmos_read(0x00);
  unsigned s = ((bcd >> 4) * 10 + (bcd & 0xf) + 3) % 60;
  cmos_write(0x01, (uint8_t)((s / 10) << 4 | s % 10));
  cmos_write(0x03, 0xff);
  cmos_write(0x05, 0xff);
  (void)cmos_read(0x0c);         /* clear old flags */
  cmos_write(0x0b, 0x02 | 0x20); /* 24-hour, BCD, AIE */
  outw(pm1a_evt + 2, 1u << 10);  /* RTC_EN */
  printf("s3: rtc alarm at second %u\n", s);
}

static uint32_t le32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static __attribute__((noreturn)) void suspend(void) {
  if (rtc_wake) set_rtc_alarm();
  printf("s3: suspending (round %lu)\n", round + 1);
  outw(pm1a_cnt, (uint16_t)(S3_SLEEP_TYPE << 10 | SLP_EN_PM1));
  for (;;) cpu_relax(); /* the VMM stops this CPU; it comes back elsewhere */
}

static void resumed(void) {
  round++;
  uint16_t status = inw(pm1a_evt);
  uint32_t crc = crc32_update(0, pattern, sizeof(pattern));
  printf("s3: resumed (round %lu) pm1_status=0x%04x crc32=0x%08x\n", round, status, crc);
  outw(pm1a_evt, status); /* write-one-to-clear, as an OS does */
  if (rtc_wake) {
    uint8_t flags = cmos_read(0x0c);
    printf("s3: rtc register C=0x%02x\n", flags);
    expect(flags & 0x20, "s3_rtc_alarm_fired", "register C 0x%02x without AF", flags);
    expect(status & (1u << 10), "s3_rtc_status", "PM1 status 0x%04x without RTC_STS", status);
  }
  expect(crc == pattern_crc, "s3_memory_survived", "crc32 0x%08x, before 0x%08x", crc, pattern_crc);
  expect(status & WAK_STS, "s3_wake_status", "PM1 status 0x%04x without WAK_STS", status);
  if (round < rounds && test_failures() == 0) suspend();
  test_finish();
}

void test_s3(void) {
  rounds = cmdline_u64("rounds", 1);
  char wake[8] = "";
  cmdline_get("wake", wake, sizeof(wake));
  rtc_wake = strcmp(wake, "rtc") == 0;
  const uint8_t* fadt = (const uint8_t*)acpi_find("FACP");
  if (!expect(fadt != NULL, "s3_fadt", "no FADT")) return;
  uint8_t* facs = (uint8_t*)(uintptr_t)le32(fadt + FADT_FIRMWARE_CTRL);
  pm1a_evt = (uint16_t)le32(fadt + FADT_PM1A_EVT_BLK);
  pm1a_cnt = (uint16_t)le32(fadt + FADT_PM1A_CNT_BLK);
  if (!expect(facs != NULL && pm1a_cnt != 0, "s3_full_acpi", "no FACS or PM1a control")) return;
  for (size_t i = 0; i < sizeof(pattern); ++i) pattern[i] = (uint8_t)(i * 7 + (i >> 8));
  pattern_crc = crc32_update(0, pattern, sizeof(pattern));
  /* The boot CPU comes back through the trampoline as "CPU 0". */
  apic_to_cpu[lapic_id() & 0xff] = 0;
  memcpy((void*)AP_TRAMPOLINE_ADDR, trampoline_start, trampoline_end - trampoline_start);
  uint32_t vector = AP_TRAMPOLINE_ADDR; /* real mode: CS 0x7000, IP 0 */
  memcpy(facs + FACS_WAKING_VECTOR, &vector, 4);
  s3_resume = resumed;
  printf("s3: pattern crc32=0x%08x, waking vector 0x%x\n", pattern_crc, vector);
  suspend();
}
