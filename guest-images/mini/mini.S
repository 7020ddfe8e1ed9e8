/* The smallest guests: what the start-up benchmark boots (tests/bench/).
 * A PVH ELF entered in 32-bit protected mode with paging off; it prints one
 * line on COM1, writes the boot-timer port 0x440 and leaves through the
 * debug-exit port with 0 (mote, QEMU and the floor then exit with 1). A few
 * dozen instructions in all, because ring-0 code runs in the host's
 * instruction emulator on nested KVM: the time is the monitor's.
 *
 * With -DSMP (mini-smp2.pvh) the boot CPU first starts the other vCPUs with
 * INIT and SIPI through the local APIC; each runs a real-mode trampoline at
 * 0x8000 that counts itself in and halts; the boot CPU waits for one. It
 * needs exactly 2 vCPUs and an in-kernel LAPIC. */
#define COM1 0x3f8
#define BOOT_TIMER 0x440
#define DEBUG_EXIT 0xf4
#define LAPIC 0xfee00000
#define TRAMPOLINE 0x8000
#define AP_COUNT 0x7ff0 /* below the trampoline, reachable with DS = 0 */

  .section .note.pvh, "a", @note
  .balign 4
  .long 4            /* name size: "Xen\0" */
  .long 4            /* desc size */
  .long 18           /* XEN_ELFNOTE_PHYS32_ENTRY */
  .asciz "Xen"
  .long pvh_start

  .text
  .code32
  .globl pvh_start
pvh_start:
#ifdef SMP
  movl $0, AP_COUNT
  /* Copy the trampoline below 1 MiB, where a SIPI can start a CPU. */
  movl $trampoline, %esi
  movl $TRAMPOLINE, %edi
  movl $(trampoline_end - trampoline), %ecx
  rep movsb
  movl $0x1ff, LAPIC + 0xf0      /* SVR: APIC on, spurious vector 0xff */
  movl $0xc4500, LAPIC + 0x300   /* INIT, all but self */
  movl $0xc4600 | (TRAMPOLINE >> 12), LAPIC + 0x300  /* SIPI, vector 0x08 */
1:
  pause
  cmpl $1, AP_COUNT
  jb 1b
#endif
  movl $message, %esi
  movl $(message_end - message), %ecx
  movw $COM1, %dx
  rep outsb
  movw $BOOT_TIMER, %dx
  xorl %eax, %eax
  outb %al, %dx
  movw $DEBUG_EXIT, %dx
  outl %eax, %dx
2:
  hlt
  jmp 2b

#ifdef SMP
  .code16
trampoline:
  xorw %ax, %ax
  movw %ax, %ds
  lock incl AP_COUNT
3:
  cli
  hlt
  jmp 3b
trampoline_end:
#endif

  .section .rodata
message:
#ifdef SMP
  .ascii "mote mini guest: 2 cpus up\n"
#else
  .ascii "mote mini guest: hello\n"
#endif
message_end:
