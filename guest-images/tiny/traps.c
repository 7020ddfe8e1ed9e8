/* Everything that runs in ring 0 after the mode switches. Ring-0 guest code
 * runs through the host's instruction emulator here, so this is kept to
 * straight-line setup and very short handlers; the tests run in ring 3. */
#include "traps.h"

#include <stdbool.h>

#include "apic.h"
#include "arch.h"
#include "kvmclock.h"
#include "lib.h"
#include "machine.h"

struct tss {
  uint32_t reserved0;
  uint64_t rsp[3]; /* rsp[0]: stack for entries from ring 3 */
  uint64_t reserved1;
  uint64_t ist[7];
  uint64_t reserved2;
  uint16_t reserved3;
  uint16_t iomap_base; /* offset of the I/O permission bitmap from this TSS */
} __attribute__((packed));

/* All TSSes, then one I/O permission bitmap they all point at (each TSS's
 * limit reaches its end). Under software nested KVM (kvm_pvm) ring 3 always
 * runs with IOPL 0 whatever we put in RFLAGS, and an in/out there is emulated
 * only if this bitmap allows the port: so it allows every port. The byte
 * after the bitmap must be all ones. */
static struct {
  struct tss tss[MAX_CPUS];
  uint8_t io_bitmap[65536 / 8];
  uint8_t io_bitmap_end;
} __attribute__((packed)) tss_block = {.io_bitmap_end = 0xff};

struct idt_gate {
  uint16_t offset_lo;
  uint16_t selector;
  uint8_t ist;
  uint8_t type; /* present | DPL | 64-bit interrupt gate (IF cleared on entry) */
  uint16_t offset_mid;
  uint32_t offset_hi;
  uint32_t reserved;
} __attribute__((packed));

#define PIC1_DATA 0x21
#define PIC2_DATA 0xa1

struct stub {
  uint64_t address, vector;
};

extern uint64_t gdt[];
extern const struct stub trap_stubs[], trap_stubs_end[];
extern uint8_t kstacks[];

static struct idt_gate idt[256] __attribute__((aligned(16)));
volatile uint64_t timer_ticks;
volatile uint64_t virtio_irqs[VEC_VIRTIO_COUNT];

static void idt_init(void) {
  for (const struct stub* s = trap_stubs; s < trap_stubs_end; ++s) {
    struct idt_gate* g = &idt[s->vector];
    g->offset_lo = (uint16_t)s->address;
    g->selector = KERNEL_CS;
    g->type = s->vector == VEC_SYSCALL ? 0xee : 0x8e; /* int 0x80 callable from ring 3 */
    g->offset_mid = (uint16_t)(s->address >> 16);
    g->offset_hi = (uint32_t)(s->address >> 32);
  }
}

/* TSS descriptor (always rewritten as "available": a re-run after a reset
 * must not trip over a busy one), then ltr and lidt. */
void cpu_setup_ap(uint32_t cpu) {
  struct tss* tss = &tss_block.tss[cpu];
  uint64_t base = (uint64_t)tss;
  uint64_t limit = (uint64_t)&tss_block.io_bitmap_end - base;
  tss->rsp[0] = (uint64_t)kstacks + (cpu + 1) * KSTACK_SIZE;
  tss->iomap_base = (uint64_t)tss_block.io_bitmap - base;
  uint32_t slot = (GDT_TSS_BASE >> 3) + 2 * cpu;
  gdt[slot] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 | (limit >> 16) << 48 |
              ((base >> 24) & 0xff) << 56;
  gdt[slot + 1] = base >> 32;
  uint16_t selector = GDT_TSS_BASE + 16 * cpu;
  __asm__ volatile("ltr %0" : : "r"(selector));
  struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) idtr = {sizeof(idt) - 1, (uint64_t)idt};
  __asm__ volatile("lidt %0" : : "m"(idtr));
  cpuid_apic_ids[cpu] = cpuid_apic_id(); /* ring 0: the guest's value */
}

void cpu_setup_bsp(uint32_t cpu) {
  /* Mask both 8259s before anything can enable interrupts: with no firmware
   * to program them, KVM's PIC would deliver IRQs as vectors 0-15 (through
   * LINT0 in virtual-wire mode), which look like CPU exceptions. */
  outb(PIC1_DATA, 0xff);
  outb(PIC2_DATA, 0xff);
  idt_init();
  cpu_setup_ap(cpu);
}

uint8_t cpuid_apic_ids[MAX_CPUS];

static const char* const exception_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "?",   "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

static __attribute__((noreturn)) void exception(struct trap_frame* f) {
  uint64_t cr2;
  __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
  const char* name =
      f->vector < 32 && exception_names[f->vector] ? exception_names[f->vector] : "?";
  printf_unlocked(
      "FAIL exception vector=%lu (%s) rip=0x%lx err=0x%lx cs=0x%lx rflags=0x%lx rsp=0x%lx "
      "cr2=0x%lx\n",
      f->vector, name, f->rip, f->error, f->cs, f->rflags, f->rsp, cr2);
  guest_exit(EXIT_EXCEPTION_BASE + (uint32_t)f->vector);
  for (;;) __asm__ volatile("cli; hlt");
}

static void syscall(struct trap_frame* f) {
  if (f->rax == SYS_HALT) {
    for (;;) __asm__ volatile("cli; hlt");
  } else if (f->rax == SYS_WAIT) {
    /* sti's one-instruction shadow makes "sti; hlt" race-free; the
     * interrupt nests on this stack and returns to after the hlt. */
    __asm__ volatile("sti; hlt; cli" ::: "memory");
  } else if (f->rax == SYS_STI) {
    f->rflags |= RFLAGS_IF;
  } else if (f->rax == SYS_CLI) {
    f->rflags &= ~(uint64_t)RFLAGS_IF;
  } else if (f->rax == SYS_CMPXCHG16B) {
    /* Ring-0 code goes through the host's instruction emulator on nested
     * software KVM, which cannot emulate this one (the VMM must say so). */
    static __attribute__((aligned(16))) uint64_t pair[2];
    uint64_t lo = 0, hi = 0;
    __asm__ volatile("lock cmpxchg16b %0"
                     : "+m"(pair), "+a"(lo), "+d"(hi)
                     : "b"((uint64_t)1), "c"((uint64_t)2)
                     : "memory", "cc");
  } else if (f->rax == SYS_KVMCLOCK) {
    /* MSR_KVM_SYSTEM_TIME_NEW: the structure's address, bit 0 = enable. */
    uint64_t v = (uint64_t)(uintptr_t)&kvmclock | 1;
    __asm__ volatile("wrmsr" : : "c"(0x4b564d01u), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
  } else if (f->rax == SYS_CPUID) {
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid"
                     : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
                     : "a"((uint32_t)f->rdi), "c"((uint32_t)f->rsi));
    f->rax = a;
    f->rbx = b;
    f->rcx = c;
    f->rdx = d;
  } else if (f->rax == SYS_TRIPLE_FAULT) {
    struct __attribute__((packed)) {
      uint16_t limit;
      uint64_t base;
    } empty_idt = {0, 0};
    __asm__ volatile("lidt %0; ud2" : : "m"(empty_idt) : "memory");
  }
}

/* ud2 followed by "MT", from ring 3 (see syscall0 in arch.h). */
static bool is_syscall_ud2(const struct trap_frame* f) {
  const uint8_t* ip = (const uint8_t*)f->rip;
  return (f->cs & 3) == 3 && ip[0] == 0x0f && ip[1] == 0x0b && ip[2] == 'M' && ip[3] == 'T';
}

void trap_dispatch(struct trap_frame* f) {
  switch (f->vector) {
    case VEC_TIMER:
      timer_ticks++;
      lapic_eoi();
      return;
    case VEC_VIRTIO_FIRST ... VEC_VIRTIO_FIRST + VEC_VIRTIO_COUNT -
        1: /* virtio-pci MSI-X: only counted */
      virtio_irqs[f->vector - VEC_VIRTIO_FIRST]++;
      lapic_eoi();
      return;
    case VEC_SPURIOUS: /* no EOI for spurious interrupts */
      return;
    case VEC_SYSCALL:
      syscall(f);
      return;
    case VEC_UD:
      if (is_syscall_ud2(f)) {
        f->rip += 4;
        syscall(f);
        return;
      }
      exception(f);
    default:
      exception(f);
  }
}
