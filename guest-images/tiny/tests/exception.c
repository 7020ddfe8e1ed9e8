/* test=exception: a #GP in ring 3, to exercise the exception path. It must
 * print "FAIL exception vector=13 ..." and exit with EXIT_EXCEPTION_BASE + 13
 * (mote status 155). */
#include "../lib.h"
#include "../test.h"

void test_exception(void) {
  printf("exception: loading selector 0x1000 (past the GDT limit) into ds\n");
  __asm__ volatile("mov %0, %%ds" : : "r"((uint16_t)0x1000) : "memory");
  expect(false, "exception", "the bad selector load did not fault");
}
