/* The CMOS real-time clock: a consistent date/time read and Unix time. */
#ifndef MOTETEST_CMOS_H_
#define MOTETEST_CMOS_H_

#include <stdbool.h>
#include <stdint.h>

struct rtc_time {
  int year, month, day, hour, minute, second;
};

/* Reads the RTC, honouring its BCD/binary and 12/24-hour modes. false if the
 * update-in-progress flag never cleared or two reads never agreed. */
bool rtc_read(struct rtc_time* t);
/* Seconds since 1970-01-01 00:00:00 UTC (the RTC is assumed to hold UTC). */
int64_t rtc_epoch(const struct rtc_time* t);

#endif /* MOTETEST_CMOS_H_ */
