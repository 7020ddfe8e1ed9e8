/* Linker script of all three variants, run through cpp first: only the PVH
 * variant (-DPVH_NOTE) gets a PT_NOTE segment, so the other images carry no
 * trace of a PVH note (a loader tries PVH before multiboot and ELF64).
 *
 * One image linked at 1 MiB (physical = virtual). Everything the kernel needs
 * at run time is in the file (page tables, GDT, IDT, zero-initialised C
 * data) except the stacks, so no loader has to zero anything and nothing is
 * built by slow ring-0 code. The boot marker of the variant (.boot.header:
 * multiboot; .note.pvh: PVH) comes first so it lands in the first 8 KiB of
 * the file. No ELF or program header is loaded: below 1 MiB it would land in
 * the BIOS area where the VMM puts the ACPI tables. */
OUTPUT_FORMAT("elf64-x86-64")
OUTPUT_ARCH(i386:x86-64)

PHDRS {
  image PT_LOAD FLAGS(7);
#ifdef PVH_NOTE
  note PT_NOTE FLAGS(4);
#endif
}

SECTIONS {
  . = 0x100000;
  __image_start = .;

  .boot.header : { KEEP(*(.boot.header)) } :image
#ifdef PVH_NOTE
  .note.pvh : { KEEP(*(.note.pvh)) } :image :note
#endif
  .text : { *(.text .text.*) } :image
  .rodata : { *(.rodata .rodata.*) }
  .data : {
    *(.data .data.*)
    /* C zero-initialised data, kept in the file on purpose (see above). */
    *(.bss .bss.*) *(COMMON)
  }
  /* NOBITS but inside the PT_LOAD (p_memsz > p_filesz), so a loader sees
   * the whole footprint. Contents need no zeroing. */
  .stacks : { *(.stacks) }
  __image_end = .;

  /DISCARD/ : { *(.note.pvh) *(.eh_frame*) *(.note.gnu.property) *(.note.GNU-stack) *(.comment) }
}

/* Keep the image well below 4 MiB so a 16 MiB guest has room. */
ASSERT(__image_end <= 0x400000, "motetest image grew past 4 MiB");
