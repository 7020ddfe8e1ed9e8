/* A Multiboot kernel linked below 1 MiB (BASE: 0x8000, where QEMU users'
 * real-mode test kernels link, or 0x5000 with 8 KiB of bss over the place of
 * mote's Multiboot information, which must then move): entered in 32-bit
 * protected mode, it checks that the Multiboot information is outside its
 * own image and that its command line starts with "real", drops to real
 * mode through a 16-bit segment, proves it is there (CR0.PE clear, and a
 * segment register of BASE >> 4 addressing its own first bytes, which would
 * fault in protected mode), prints the result on COM1 and leaves through the
 * debug-exit port from real mode: 0 (mote exits 1) on success, 1 (exit 3)
 * on any failed check. */
#define COM1 0x3f8
#define DEBUG_EXIT 0xf4
#define MB_MAGIC 0x1badb002
#define MB_BOOTLOADER_MAGIC 0x2badb002
#define MB_INFO_CMDLINE 16
#define LOAD_SEGMENT (BASE >> 4)
#define REAL_STACK 0x4000 /* below the kernel, above the GDT */

  .section .text
  .code32
  .globl start
header: /* first, so it sits at 0x8000, where the real-mode check reads it */
  .long MB_MAGIC
  .long 0
  .long -MB_MAGIC

start:
  cmpl $MB_BOOTLOADER_MAGIC, %eax
  jne fail32
  cmpl $image_end, %ebx /* the information lies outside [BASE, image_end) */
  jae 1f
  cmpl $(BASE - 0x1000), %ebx
  ja fail32
1:
  movl MB_INFO_CMDLINE(%ebx), %esi
  cmpl $0x6c616572, (%esi) /* "real" */
  jne fail32
  lgdt gdt_descriptor
  ljmp $0x08, $protected16 /* 16-bit code segment, base 0 */

fail32:
  movw $DEBUG_EXIT, %dx
  movl $1, %eax
  outl %eax, %dx
  hlt

  .code16
protected16:
  movw $0x10, %ax /* 16-bit data segment, base 0, 64 KiB */
  movw %ax, %ds
  movw %ax, %es
  movw %ax, %ss
  movl %cr0, %eax
  andl $~1, %eax
  movl %eax, %cr0
  ljmp $0, $real

real:
  xorw %ax, %ax
  movw %ax, %ds
  movw %ax, %es
  movw %ax, %ss
  movw $REAL_STACK, %sp
  smsw %ax
  testw $1, %ax
  jnz fail16
  movw $LOAD_SEGMENT, %ax
  movw %ax, %fs
  cmpl $MB_MAGIC, %fs:0
  jne fail16
  movw $ok_message, %si
  movw $(ok_end - ok_message), %cx
  xorl %ebx, %ebx
  jmp finish
fail16:
  movw $fail_message, %si
  movw $(fail_end - fail_message), %cx
  movl $1, %ebx
finish:
  movw $COM1, %dx
  rep outsb
  movw $DEBUG_EXIT, %dx
  movl %ebx, %eax
  outl %eax, %dx
1:
  hlt
  jmp 1b

  .balign 8
gdt:
  .quad 0
  .quad 0x00009b000000ffff /* 0x08: code, 16-bit, base 0, limit 64 KiB */
  .quad 0x000093000000ffff /* 0x10: data, 16-bit, base 0, limit 64 KiB */
gdt_end:
gdt_descriptor:
  .word gdt_end - gdt - 1
  .long gdt

ok_message:
  .ascii "real mode: cr0.pe=0, the kernel's segment reads its first bytes\n"
ok_end:
fail_message:
  .ascii "FAIL real mode: not in real mode, or the kernel is not at its address\n"
fail_end:

#ifdef SPAN
  .section .bss
  .space 0x2000 /* to BASE + 0x2000 and beyond: over 0x6000 for BASE 0x5000 */
#endif
