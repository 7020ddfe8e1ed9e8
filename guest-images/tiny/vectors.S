/* Interrupt entry stubs: each pushes a dummy error code where the CPU pushes
 * none, then its vector number, and joins trap_common, which saves the
 * registers as a struct trap_frame (traps.h) and calls trap_dispatch.
 * Only the vectors we use get a stub; any other vector finds a not-present
 * gate and turns into a #NP/#GP that names it in the error code. */
	.code64
	.text

.macro TRAP vec
	.balign 16
trap_stub_\vec:
	/* Exceptions that push an error code themselves. */
	.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$\vec
	jmp	trap_common
.endm

#include "cpu.h"

/* 48: VEC_TIMER; 64..95: VEC_VIRTIO_FIRST.. (MSI-X); 128: VEC_SYSCALL; 255: VEC_SPURIOUS. */
#if VEC_TIMER != 48 || VEC_VIRTIO_FIRST != 64 || VEC_VIRTIO_COUNT != 32
#error "cpu.h's vectors changed: update VECTORS"
#endif
#define VECTORS 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,48,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,128,255

	.irp v, VECTORS
	TRAP \v
	.endr

trap_common:
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, %rdi	/* 22 quadwords on a 16-aligned frame: aligned for the call */
	cld
	call	trap_dispatch
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rbp
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rbx
	pop	%rax
	add	$16, %rsp	/* vector and error code */
	iretq

	/* {stub address, vector} pairs for idt_init (traps.c). */
	.section .rodata
	.balign 8
	.globl trap_stubs, trap_stubs_end
trap_stubs:
	.irp v, VECTORS
	.quad	trap_stub_\v, \v
	.endr
trap_stubs_end:
