/* Common 32-bit entry of the PVH and multiboot variants: remember how we were
 * booted and where the loader's boot info is, then go straight to long mode.
 * The boot info is parsed later, in ring 3 (bootinfo.c), where code runs at
 * native speed; ring 0 here only does what needs ring 0. */
#include "cpu.h"
#include "longmode.h"

	.code32
	.text
/* In: eax = BOOT_* protocol id, ebx = boot info physical address. No stack
 * needed (the loaders give none). */
	.globl entry32_common
entry32_common:
	cli
	cld
	mov	%eax, boot_protocol
	mov	%ebx, boot_info_addr
	ENABLE_LONG_MODE
	ljmp	$KERNEL_CS, $bsp_entry64

	.data
	.balign 8
	.globl boot_protocol, boot_info_addr
boot_protocol:
	.quad	0
boot_info_addr:
	.quad	0
