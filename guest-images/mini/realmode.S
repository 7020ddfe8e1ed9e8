/* A Multiboot kernel linked at 0x8000, below 1 MiB, as QEMU users' real-mode
 * test kernels are: entered in 32-bit protected mode, it drops to real mode
 * through a 16-bit segment, proves it is there (CR0.PE clear, and a segment
 * register of 0x0800 addressing its own first bytes at 0x8000, which would
 * fault in protected mode), prints the result on COM1 and leaves through the
 * debug-exit port from real mode: 0 (mote exits 1) on success, 1 (exit 3)
 * on any failed check. */
#define COM1 0x3f8
#define DEBUG_EXIT 0xf4
#define MB_MAGIC 0x1badb002
#define MB_BOOTLOADER_MAGIC 0x2badb002
#define LOAD_SEGMENT 0x0800 /* 0x8000 >> 4 */
#define REAL_STACK 0x7c00   /* below the kernel, above the Multiboot info */

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
  .ascii "real mode: cr0.pe=0, segment 0x0800 reads the kernel at 0x8000\n"
ok_end:
fail_message:
  .ascii "FAIL real mode: not in real mode, or the kernel is not at 0x8000\n"
fail_end:
