/* Plain ELF64 variant: the VMM enters at e_entry already in 64-bit mode with
 * paging on (an identity map of at least the low 4 GiB), CS a 64-bit code
 * segment and rdi = struct hvm_start_info (same format as PVH). We switch to
 * our own page tables, GDT and stack, so nothing of the VMM's setup beyond
 * that is relied on. Linked only into motetest.elf. */
#include "cpu.h"

	.code64
	.text
	.globl elf_start
elf_start:
	cli
	cld
	movq	$BOOT_ELF64, boot_protocol
	mov	%rdi, boot_info_addr
	/* Ring 0 touches user pages (its stacks are in the one U/S identity map),
	 * so SMEP/SMAP must be off; TSD would make rdtsc fault in ring 3. */
	mov	%cr4, %rax
	and	$~(CR4_TSD | CR4_SMEP | CR4_SMAP), %rax
	or	$CR4_PAE, %rax
	mov	%rax, %cr4
	mov	$pml4, %eax
	mov	%rax, %cr3
	lgdt	gdt_ptr
	mov	$(kstacks + KSTACK_SIZE), %rsp
	pushq	$KERNEL_CS		/* reload CS from our GDT */
	pushq	$bsp_entry64
	lretq
