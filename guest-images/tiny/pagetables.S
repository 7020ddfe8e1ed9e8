/* Identity map of 0..4 GiB with 2 MiB pages, emitted as data so ring 0 never
 * runs a loop to build it (ring-0 guest code is emulated, ~1-2 M instr/s).
 * Every level has U/S set: the tests run in ring 3 and touch everything,
 * RAM, the boot info, the ACPI tables and the LAPIC/IOAPIC MMIO. */
#include "platform.h"

#define PTE_P 0x001
#define PTE_RW 0x002
#define PTE_US 0x004
#define PTE_PWT 0x008
#define PTE_PCD 0x010
#define PTE_PS 0x080

	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad	pdpt + (PTE_P | PTE_RW | PTE_US)
	.fill	511, 8, 0

	.balign 4096
pdpt:
	.quad	pd + 0 * 4096 + (PTE_P | PTE_RW | PTE_US)
	.quad	pd + 1 * 4096 + (PTE_P | PTE_RW | PTE_US)
	.quad	pd + 2 * 4096 + (PTE_P | PTE_RW | PTE_US)
	.quad	pd + 3 * 4096 + (PTE_P | PTE_RW | PTE_US)
	.fill	508, 8, 0

	/* Four page directories, 2048 entries of 2 MiB. The MMIO hole (3..4 GiB)
	 * is mapped uncached so device registers are never cached. */
	.balign 4096
pd:
	.set	page, 0
	.rept	2048
	.if	(page << 21) >= MMIO_HOLE_START
	.quad	(page << 21) | (PTE_P | PTE_RW | PTE_US | PTE_PS | PTE_PCD | PTE_PWT)
	.else
	.quad	(page << 21) | (PTE_P | PTE_RW | PTE_US | PTE_PS)
	.endif
	.set	page, page + 1
	.endr
