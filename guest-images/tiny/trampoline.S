/* Application processor start-up code. smp.c copies the bytes between
 * trampoline_start and trampoline_end to AP_TRAMPOLINE_ADDR and sends
 * INIT/SIPI with vector AP_TRAMPOLINE_ADDR >> 12, so an AP starts here in real
 * mode at CS = 0x7000, IP = 0. It hops through 32-bit protected mode into long
 * mode on the boot CPU's page tables and GDT, then jumps to ap_entry64 in the
 * kernel image. APs run this in parallel, so nothing here uses a stack or
 * writes memory. */
#include "cpu.h"
#include "longmode.h"
#include "platform.h"

/* Address of a trampoline label once copied. */
#define TRAMP(label) (AP_TRAMPOLINE_ADDR + (label - trampoline_start))

	.section .rodata.trampoline, "a"
	.globl trampoline_start, trampoline_end
	.code16
trampoline_start:
	cli
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	(tramp_gdt_ptr - trampoline_start)	/* ds-relative */
	mov	%cr0, %eax
	or	$CR0_PE, %eax
	mov	%eax, %cr0
	ljmpl	$KERNEL_CS32, $TRAMP(tramp32)

	.code32
tramp32:
	mov	$KERNEL_DS, %eax	/* ds still has the real-mode base 0x70000 */
	mov	%eax, %ds
	ENABLE_LONG_MODE
	ljmp	$KERNEL_CS, $ap_entry64

	/* 32-bit base: the kernel's GDT is below 4 GiB. */
	.balign 8
tramp_gdt_ptr:
	.word	GDT_SIZE - 1
	.long	gdt
trampoline_end:
