/* CPU-level constants shared by the assembly entry code and the C runtime:
 * GDT selectors, per-CPU stack sizes, interrupt vectors, boot protocol ids.
 * Plain #defines so both gas (through cpp) and C can use them. */
#ifndef MOTETEST_CPU_H_
#define MOTETEST_CPU_H_

/* GDT layout (entry64.S). One shared GDT; each CPU owns one TSS slot. */
#define KERNEL_CS 0x08    /* 64-bit code, DPL 0 */
#define KERNEL_DS 0x10    /* flat data, DPL 0 */
#define KERNEL_CS32 0x18  /* 32-bit code: only the AP trampoline's hop through protected mode */
#define USER_DS 0x23      /* flat data, DPL 3 (0x20 | RPL 3) */
#define USER_CS 0x2b      /* 64-bit code, DPL 3 (0x28 | RPL 3) */
#define GDT_TSS_BASE 0x30 /* TSS descriptors, 16 bytes each, one per CPU */
#define GDT_SIZE (GDT_TSS_BASE + 16 * MAX_CPUS)

#define MAX_CPUS 32
#define KSTACK_SIZE 4096  /* ring 0: only trap handlers and setup run here */
#define USTACK_SIZE 16384 /* ring 3: the tests */

/* RFLAGS for ring 3: IOPL 3 so in/out work there (bit 1 is reserved-one).
 * Software nested KVM (kvm_pvm) forces IOPL 0 in ring 3 regardless, so the
 * TSS I/O bitmap (traps.c) allows every port too, and cli/sti are system
 * calls. */
#define USER_RFLAGS 0x3002
#define RFLAGS_IF 0x200

/* Interrupt vectors (vectors.S, traps.c). */
#define VEC_TIMER 0x30    /* PIT through the IOAPIC */
#define VEC_UD 6          /* also the system call: ud2 + "MT" (arch.h) */
#define VEC_SYSCALL 0x80  /* int 0x80, DPL 3: works on hardware KVM, not kvm_pvm */
#define VEC_SPURIOUS 0xff /* LAPIC spurious-interrupt vector */
/* MSI-X messages of virtio-pci devices (virtio_pci.c): one IDT vector per
 * table entry in use, handed out from here on, counted per vector. */
#define VEC_VIRTIO_FIRST 0x40
#define VEC_VIRTIO_COUNT 32

/* System call numbers (rax), see syscall0() in arch.h. */
#define SYS_HALT 0         /* cli; hlt forever: an idle vCPU sleeps in KVM */
#define SYS_WAIT 1         /* sti; hlt once: sleep until the next interrupt */
#define SYS_STI 2          /* return with interrupts enabled */
#define SYS_CLI 3          /* return with interrupts disabled */
#define SYS_CMPXCHG16B 4   /* one lock cmpxchg16b in ring 0 (test=emulation) */
#define SYS_TRIPLE_FAULT 5 /* load an empty IDT and trap: a triple fault */
#define SYS_KVMCLOCK 6     /* point this CPU's kvmclock at `kvmclock` (kvmclock.h) */
#define SYS_CPUID 7        /* cpuid in ring 0: leaf in rdi, subleaf in rsi; see cpuid0() */

/* How we were entered (boot_protocol in entry32.S / boot_elf.S). */
#define BOOT_PVH 1
#define BOOT_MULTIBOOT 2
#define BOOT_ELF64 3
#define BOOT_BAD_MULTIBOOT_MAGIC 4

/* Control registers and MSRs used by the mode switches. */
#define CR0_PE 0x00000001
#define CR0_NW 0x20000000
#define CR0_CD 0x40000000
#define CR0_PG 0x80000000
#define CR4_TSD 0x00000004
#define CR4_PAE 0x00000020
#define CR4_SMEP 0x00100000
#define CR4_SMAP 0x00200000
#define MSR_EFER 0xc0000080
#define EFER_LME 0x00000100

/* Exceptions exit through debug-exit with this plus the vector (#GP -> 0x4d,
 * mote status 155), so a test runner can tell a crash from a failed check. */
#define EXIT_EXCEPTION_BASE 0x40

#endif /* MOTETEST_CPU_H_ */
