/* CMOS RTC reading. The clock may tick between the reads of its fields, so
 * the whole set is read until two passes agree, each pass starting only when
 * the update-in-progress flag is clear. */
#include "cmos.h"

#include "arch.h"
#include "platform.h"

#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
#define RTC_DAY 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_CENTURY 0x32 /* the usual place (the FADT can name another) */
#define REG_A_UIP 0x80
#define REG_B_24H 0x02
#define REG_B_BINARY 0x04
#define HOUR_PM 0x80

static uint8_t cmos_read(uint8_t reg) {
  outb(CMOS_INDEX_PORT, reg);
  return inb(CMOS_DATA_PORT);
}

/* An update keeps UIP set for under 2 ms; each read is two port exits
 * (>= ~10 us), so 5000 reads are plenty and a missing RTC fails fast. */
static bool wait_not_updating(void) {
  for (int i = 0; i < 5000; ++i) {
    if (!(cmos_read(RTC_REG_A) & REG_A_UIP)) return true;
  }
  return false;
}

static void read_raw(uint8_t r[7]) {
  static const uint8_t regs[7] = {RTC_SECONDS, RTC_MINUTES, RTC_HOURS,  RTC_DAY,
                                  RTC_MONTH,   RTC_YEAR,    RTC_CENTURY};
  for (int i = 0; i < 7; ++i) r[i] = cmos_read(regs[i]);
}

static int from_bcd(uint8_t v) { return (v >> 4) * 10 + (v & 0x0f); }

bool rtc_read(struct rtc_time* t) {
  uint8_t a[7], b[7];
  bool stable = false;
  for (int tries = 0; tries < 10 && !stable; ++tries) {
    if (!wait_not_updating()) return false;
    read_raw(a);
    if (!wait_not_updating()) return false;
    read_raw(b);
    stable = true;
    for (int i = 0; i < 7; ++i) stable = stable && a[i] == b[i];
  }
  if (!stable) return false;
  uint8_t reg_b = cmos_read(RTC_REG_B);
  bool binary = reg_b & REG_B_BINARY;
  bool pm = !(reg_b & REG_B_24H) && (b[2] & HOUR_PM);
  uint8_t hour = b[2] & ~HOUR_PM;
  int v[7];
  for (int i = 0; i < 7; ++i) v[i] = binary ? b[i] : from_bcd(b[i]);
  v[2] = binary ? hour : from_bcd(hour);
  if (!(reg_b & REG_B_24H)) v[2] = (v[2] % 12) + (pm ? 12 : 0); /* 12 AM is 0 */
  int century = (v[6] >= 19 && v[6] <= 30) ? v[6] : 20;
  t->second = v[0];
  t->minute = v[1];
  t->hour = v[2];
  t->day = v[3];
  t->month = v[4];
  t->year = century * 100 + v[5];
  return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int64_t rtc_epoch(const struct rtc_time* t) {
  return days_from_civil(t->year, t->month, t->day) * 86400 + t->hour * 3600 + t->minute * 60 +
         t->second;
}
