/* Thin wrappers around single x86 instructions: port and MMIO access, cpuid,
 * rdtsc, the int 0x80 services, and a spinlock. All usable from ring 3 (IOPL 3
 * or the TSS I/O bitmap, and the U/S identity map, make in/out and MMIO legal
 * there). */
#ifndef MOTETEST_ARCH_H_
#define MOTETEST_ARCH_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu.h"

static inline void outb(uint16_t port, uint8_t v) {
  __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v) {
  __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v) {
  __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint16_t inw(uint16_t port) {
  uint16_t v;
  __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint32_t inl(uint16_t port) {
  uint32_t v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

/* Device registers: one 32-bit access each, never merged or split. */
static inline uint32_t mmio_read32(uint64_t addr) { return *(volatile uint32_t*)addr; }
static inline void mmio_write32(uint64_t addr, uint32_t v) { *(volatile uint32_t*)addr = v; }

static inline void cpuid(uint32_t leaf, uint32_t* a, uint32_t* b, uint32_t* c, uint32_t* d) {
  __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}
/* Initial APIC ID (CPUID.1:EBX[31:24]). Ring 0 only: under kvm_pvm cpuid in
 * ring 3 runs on the host CPU unintercepted and returns the host's values. */
static inline uint32_t cpuid_apic_id(void) {
  uint32_t a, b, c, d;
  cpuid(1, &a, &b, &c, &d);
  return b >> 24;
}

static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

/* System calls: the few things ring 3 cannot do itself (hlt is ring 0 only).
 * Not `int 0x80` (there is a DPL 3 gate for it too): under kvm_pvm a software
 * interrupt from ring 3 comes back as #UD, because the host's emulator only
 * emulates `int n` in real mode. A fault is reflected faithfully, so a system
 * call is `ud2` followed by the bytes "MT"; the #UD handler recognises the
 * pair, does the call (number in rax) and resumes after it. */
static inline void syscall0(uint64_t nr) {
  __asm__ volatile("ud2\n\t.ascii \"MT\"" : "+a"(nr) : : "memory");
}
/* CPUID as the guest kernel sees it (ring 0; see cpuid_apic_id): regs[0..3]
 * are EAX, EBX, ECX, EDX of leaf/subleaf. */
static inline void cpuid0(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]) {
  uint64_t a = SYS_CPUID, b, c, d;
  __asm__ volatile("ud2\n\t.ascii \"MT\""
                   : "+a"(a), "=b"(b), "=c"(c), "=d"(d)
                   : "D"((uint64_t)leaf), "S"((uint64_t)subleaf)
                   : "memory");
  regs[0] = (uint32_t)a;
  regs[1] = (uint32_t)b;
  regs[2] = (uint32_t)c;
  regs[3] = (uint32_t)d;
}
static inline __attribute__((noreturn)) void sys_halt(void) {
  syscall0(SYS_HALT);
  __builtin_unreachable();
}
static inline void sys_wait_for_interrupt(void) { syscall0(SYS_WAIT); }
/* Not sti/cli: under kvm_pvm ring 3 has IOPL 0 whatever RFLAGS we ask for
 * (and takes interrupts regardless of IF there). */
static inline void irq_enable(void) { syscall0(SYS_STI); }
static inline void irq_disable(void) { syscall0(SYS_CLI); }

/* Ring-3 spinlock. xchg/lock-prefixed instructions are fine here: ring 3 runs
 * natively, not through the host's instruction emulator. */
typedef struct {
  volatile uint32_t locked;
} spinlock_t;
static inline void spin_lock(spinlock_t* l) {
  while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE)) {
    while (l->locked) cpu_relax();
  }
}
static inline void spin_unlock(spinlock_t* l) { __atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE); }

#endif /* MOTETEST_ARCH_H_ */
