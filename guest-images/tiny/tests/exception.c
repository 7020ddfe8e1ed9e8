/* test=exception: a #GP in ring 3, to exercise the exception path. It must
 * print "FAIL exception vector=13 ..." and exit with EXIT_EXCEPTION_BASE + 13
 * (mote status 155). */
#include "../arch.h"
#include "../lib.h"
#include "../test.h"

void test_exception(void) {
  printf("exception: loading selector 0x1000 (past the GDT limit) into ds\n");
  __asm__ volatile("mov %0, %%ds" : : "r"((uint16_t)0x1000) : "memory");
  expect(false, "exception", "the bad selector load did not fault");
}

/* test=emulation: a lock cmpxchg16b in ring 0. Hardware KVM runs it and the
 * test passes; this project's nested software KVM cannot emulate it, and mote
 * must stop with its KVM-error code and show the instruction bytes. */
void test_emulation(void) {
  printf("emulation: lock cmpxchg16b in ring 0\n");
  syscall0(SYS_CMPXCHG16B);
  printf("emulation: the host ran it\n");
  test_finish();
}

/* test=triplefault: an exception (ud2; the host emulator cannot run int3) with no usable IDT; the
 * CPU shuts down, which mote treats as a reset (exit status 4 with --on-reboot exit). */
void test_triple_fault(void) {
  printf("triplefault: empty IDT, then ud2\n");
  syscall0(SYS_TRIPLE_FAULT);
  expect(false, "triplefault", "the CPU survived a fault with no IDT");
}
