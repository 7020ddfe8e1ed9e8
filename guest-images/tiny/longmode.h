/* The 32-bit protected mode -> long mode switch, as a gas macro because both
 * the boot CPU (entry32.S) and every AP (trampoline.S) need it and neither has
 * a usable stack at that point (APs start in parallel). Include from .S only.
 *
 * In: 32-bit protected mode, flat segments, paging off. Out: paging on with
 * the static identity map (pagetables.S), EFER.LME set, so the CPU is in
 * compatibility mode; the caller then far-jumps to a 64-bit code segment.
 * Clobbers eax, ecx, edx. */
/* gas, not C: */
/* clang-format off */
#ifndef MOTETEST_LONGMODE_H_
#define MOTETEST_LONGMODE_H_

#include "cpu.h"

.macro ENABLE_LONG_MODE
	lgdt	gdt_ptr		/* our GDT: the loader's may live in memory we reuse */
	mov	$KERNEL_DS, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%eax, %fs
	mov	%eax, %gs
	mov	$CR4_PAE, %eax	/* write the whole register: nothing else we rely on */
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$EFER_LME, %eax
	wrmsr
	mov	%cr0, %eax
	and	$~(CR0_CD | CR0_NW), %eax	/* an AP comes out of INIT with caches off */
	or	$(CR0_PG | CR0_PE), %eax
	mov	%eax, %cr0
.endm

#endif /* MOTETEST_LONGMODE_H_ */
