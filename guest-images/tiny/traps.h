/* Ring-0 side: per-CPU setup (TSS, IDT) called from entry64.S, and the
 * interrupt/exception/syscall dispatcher called from vectors.S. */
#ifndef MOTETEST_TRAPS_H_
#define MOTETEST_TRAPS_H_

#include <stdint.h>

#include "cpu.h"

/* Register save area built by trap_common (vectors.S), lowest address first. */
struct trap_frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
  uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error;
  uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

/* Timer interrupts seen so far (VEC_TIMER handler). */
extern volatile uint64_t timer_ticks;
/* MSI-X messages seen so far, per vector from VEC_VIRTIO_FIRST. */
extern volatile uint64_t virtio_irqs[VEC_VIRTIO_COUNT];

void cpu_setup_bsp(uint32_t cpu);
void cpu_setup_ap(uint32_t cpu);
void trap_dispatch(struct trap_frame* f);

/* Ring-3 entry points (entry64.S jumps to them). */
__attribute__((noreturn)) void bsp_user_main(uint32_t cpu);
__attribute__((noreturn)) void ap_user_main(uint32_t cpu);

/* Each CPU's CPUID.1 APIC ID, read in ring 0 by cpu_setup_*. */
extern uint8_t cpuid_apic_ids[MAX_CPUS];

/* APIC ID -> CPU index, filled by the boot CPU before it starts the APs;
 * 0xff for unknown. */
extern uint8_t apic_to_cpu[256];

#endif /* MOTETEST_TRAPS_H_ */
