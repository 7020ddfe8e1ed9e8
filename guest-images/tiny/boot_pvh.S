/* PVH variant: the Xen PVH ELF note (XEN_ELFNOTE_PHYS32_ENTRY) tells the VMM
 * to enter at pvh_start in 32-bit protected mode, paging off, with ebx =
 * struct hvm_start_info. Linked only into motetest.pvh, so that image carries
 * no other boot marker. */
#include "cpu.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

	/* 4-byte alignment matters: readers (QEMU among them) step over the name
	 * by the PT_NOTE alignment. The descriptor is 8 bytes, as Linux emits it;
	 * the entry address is its low 32 bits. */
	.section .note.pvh, "a", @note
	.balign 4
	.long	4		/* namesz: "Xen\0" */
	.long	8		/* descsz */
	.long	XEN_ELFNOTE_PHYS32_ENTRY
	.asciz	"Xen"
	.balign 4
	.quad	pvh_start

	.code32
	.text
	.globl pvh_start
pvh_start:
	mov	$BOOT_PVH, %eax
	jmp	entry32_common
