/* Checks and the test table. A check prints "PASS name" or "FAIL name:
 * detail"; test_finish() leaves through debug-exit with 0 when every check
 * passed (mote status 1) and 1 otherwise (status 3). */
#ifndef MOTETEST_TEST_H_
#define MOTETEST_TEST_H_

#include <stdbool.h>
#include <stdint.h>

/* Records and prints one check. `fmt` (may be NULL) describes a failure. */
bool expect(bool ok, const char* name, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
int test_failures(void);
__attribute__((noreturn)) void test_finish(void);

/* Bounded waits that depend on no emulated timer: `ms` milliseconds of TSC
 * at 4 GHz, so at least that long on any host up to 4 GHz (longer on slower
 * ones). */
uint64_t deadline_ms(uint64_t ms);
bool deadline_passed(uint64_t deadline);

/* The tests (one file each in tests/), chosen by test=NAME in main.c. */
void test_demo(void);
void test_hello(void);
void test_smp(void);
void test_rtc(void);
void test_pit(void);
void test_acpi(void);
void test_poweroff(void);
void test_reset(void);
void test_spin(void);
void test_clock(void);
void test_powerbutton(void);
void test_panic(void);
void test_exception(void);
void test_echo(void);
void test_emulation(void);
void test_triple_fault(void);
void test_rng(void);
void test_blk(void);
void test_net(void);
void test_netbench(void);
void test_traffic(void);
void test_exits(void);
void test_chaos(void);
void test_cpuid(void);
void test_fwcfg(void);
void test_hpet(void);
void test_acpipm(void);
void test_s3(void);
void test_snapshot(void);
/* Set by test=s3: what the boot CPU runs when it comes back from S3. */
extern void (*volatile s3_resume)(void);

#endif /* MOTETEST_TEST_H_ */
