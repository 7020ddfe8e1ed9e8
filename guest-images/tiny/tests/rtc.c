/* test=rtc [epoch=N]: reads the CMOS clock and computes Unix time in the
 * guest. With epoch=N (the host's time when the VM started) the clock must
 * be within two minutes of it. */
#include "../boot.h"
#include "../cmos.h"
#include "../lib.h"
#include "../test.h"

void test_rtc(void) {
  struct rtc_time t;
  if (!expect(rtc_read(&t), "rtc_read", "update-in-progress never cleared or reads never agreed"))
    return;
  int64_t epoch = rtc_epoch(&t);
  printf("rtc: %04d-%02d-%02d %02d:%02d:%02d epoch=%ld\n", t.year, t.month, t.day, t.hour, t.minute,
         t.second, epoch);
  bool sane = t.year >= 2000 && t.year < 2100 && t.month >= 1 && t.month <= 12 && t.day >= 1 &&
              t.day <= 31 && t.hour < 24 && t.minute < 60 && t.second < 60;
  expect(sane, "rtc_fields", "fields out of range");
  char want[24];
  if (cmdline_get("epoch", want, sizeof(want))) {
    int64_t host = (int64_t)cmdline_u64("epoch", 0);
    int64_t diff = epoch - host;
    expect(diff >= -120 && diff <= 120, "rtc_epoch", "guest %ld, host %ld", epoch, host);
  }
}
