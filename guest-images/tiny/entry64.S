/* 64-bit ring-0 entry of the boot CPU and the APs: segments, stack, the C
 * per-CPU setup (TSS, IDT: traps.c), then iretq into ring 3 with IOPL 3,
 * where the tests run at native speed. Also holds the GDT and the stacks. */
#include "cpu.h"
#include "platform.h"

	.code64
	.text

/* Boot CPU, from entry32_common or elf_start. */
	.globl bsp_entry64
bsp_entry64:
	mov	$KERNEL_DS, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	$(kstacks + KSTACK_SIZE), %rsp
	xor	%edi, %edi
	call	cpu_setup_bsp
	mov	$bsp_user_main, %edi
	mov	$(ustacks + USTACK_SIZE - 8), %esi	/* as if called: rsp = 8 mod 16 */
	xor	%edx, %edx
	jmp	enter_user

/* Application processor, from the trampoline. The CPU index comes from the
 * table the boot CPU filled (apic_to_cpu, smp.c), keyed by the LAPIC ID
 * register (the ID that INIT/SIPI addressed). */
	.globl ap_entry64
ap_entry64:
	mov	$KERNEL_DS, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	$(LAPIC_ADDR + 0x20), %eax	/* LAPIC ID register */
	mov	(%rax), %ebx
	shr	$24, %ebx
	movzbl	apic_to_cpu(%rbx), %ebx
	cmp	$MAX_CPUS, %ebx
	jae	park			/* not one we were told about */
	mov	%ebx, %eax
	inc	%eax
	imul	$KSTACK_SIZE, %eax
	lea	kstacks(%rax), %rsp
	mov	%ebx, %edi
	call	cpu_setup_ap
	mov	$ap_user_main, %edi
	mov	%ebx, %eax
	inc	%eax
	imul	$USTACK_SIZE, %eax
	lea	(ustacks - 8)(%rax), %rsi
	mov	%ebx, %edx
	jmp	enter_user
park:
	cli
	hlt
	jmp	park

/* enter_user(entry, user_rsp, arg): iretq to ring 3 at entry(arg) with
 * IOPL 3 and interrupts off (a test turns them on when it wants). Null data
 * segments: fine in 64-bit mode, and nothing for kvm_pvm to translate. */
	.globl enter_user
enter_user:
	xor	%eax, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %fs
	mov	%eax, %gs
	pushq	$USER_DS
	pushq	%rsi
	pushq	$USER_RFLAGS
	pushq	$USER_CS
	pushq	%rdi
	mov	%rdx, %rdi
	iretq

	.section .data.gdt, "aw"
	.balign 16
	.globl gdt, gdt_ptr
gdt:
	.quad	0
	.quad	0x00af9b000000ffff	/* KERNEL_CS: 64-bit, DPL 0 (accessed bit preset) */
	.quad	0x00cf93000000ffff	/* KERNEL_DS */
	.quad	0x00cf9b000000ffff	/* KERNEL_CS32 */
	.quad	0x00cff3000000ffff	/* USER_DS: DPL 3 */
	.quad	0x00affb000000ffff	/* USER_CS: 64-bit, DPL 3 */
	.fill	2 * MAX_CPUS, 8, 0	/* TSS descriptors, written by cpu_setup */
gdt_end:
	.if	gdt_end - gdt != GDT_SIZE
	.error	"GDT_SIZE in cpu.h does not match the GDT"
	.endif
	/* Read as 6 bytes by 32-bit lgdt and 10 by 64-bit lgdt: both work. */
	.balign 8
gdt_ptr:
	.word	GDT_SIZE - 1
	.quad	gdt

	/* Stacks need no initial contents: NOBITS, kept out of the file. */
	.section .stacks, "aw", @nobits
	.balign 4096
	.globl kstacks, ustacks
kstacks:
	.skip	KSTACK_SIZE * MAX_CPUS
ustacks:
	.skip	USTACK_SIZE * MAX_CPUS
