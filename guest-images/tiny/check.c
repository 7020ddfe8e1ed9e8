/* PASS/FAIL bookkeeping and bounded waits for the tests. */
#include <stdarg.h>

#include "arch.h"
#include "lib.h"
#include "machine.h"
#include "test.h"

static int failures;

bool expect(bool ok, const char* name, const char* fmt, ...) {
  if (ok) {
    printf("PASS %s\n", name);
    return true;
  }
  failures++;
  char detail[160] = "";
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
  }
  printf("FAIL %s%s%s\n", name, detail[0] ? ": " : "", detail);
  return false;
}

int test_failures(void) { return failures; }

void test_finish(void) {
  guest_exit(failures ? 1 : 0);
  still_running();
}

#define TSC_PER_MS 4000000ull /* 4 GHz: see test.h */

uint64_t deadline_ms(uint64_t ms) { return rdtsc() + ms * TSC_PER_MS; }

bool deadline_passed(uint64_t deadline) { return (int64_t)(rdtsc() - deadline) >= 0; }
