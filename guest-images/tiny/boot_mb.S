/* Multiboot v1 variant (built as an ELF32 file, which loaders such as QEMU's
 * require). The header asks only for memory info (flag bit 1); without the
 * a.out kludge (bit 16) the loader takes the load layout and entry point from
 * the ELF headers. Linked only into motetest.mb. */
#include "cpu.h"

#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00000002
#define MB_BOOT_MAGIC 0x2badb002

	/* The linker script puts .boot.header first, so this lands in the first
	 * 8 KiB of the file where loaders search for it. */
	.section .boot.header, "a"
	.balign 4
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)

	.code32
	.text
	.globl mb_start
mb_start:
	cmp	$MB_BOOT_MAGIC, %eax
	mov	$BOOT_MULTIBOOT, %eax
	je	1f
	mov	$BOOT_BAD_MULTIBOOT_MAGIC, %eax	/* reported from ring 3 */
1:	jmp	entry32_common
