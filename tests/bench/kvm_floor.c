/* The floor for mote's start-up figures: the least a program can do to run a
 * PVH tiny kernel on KVM. It creates exactly the KVM objects mote creates for
 * such a guest (a VM, the TSS address, optionally the in-kernel irqchip and
 * PIT, one memory slot, one vCPU with KVM's supported CPUID), loads the ELF,
 * writes an hvm_start_info, runs the vCPU on the main thread and exits with
 * the guest's debug-exit code, (v << 1) | 1, like mote and QEMU. COM1 bytes
 * go to stdout; a write to the boot-timer port 0x440 prints "boot-timer" on
 * stderr, as mote logs it, for the harness to time.
 *
 * Usage: kvm_floor [--irqchip] [--pit] [--memory MIB] KERNEL.pvh [CMDLINE]
 * Built by tests/bench/compare.py; not part of mote. */
#include <elf.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define START_INFO 0x6000
#define CMDLINE 0x7000
#define MEMMAP 0x8000
#define GDT 0x500
#define XEN_ELFNOTE_PHYS32_ENTRY 18

struct hvm_start_info {
  uint32_t magic, version, flags, nr_modules;
  uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
  uint32_t memmap_entries, reserved;
};
struct hvm_memmap_entry {
  uint64_t addr, size;
  uint32_t type, reserved;
};

static void die(const char* what) {
  perror(what);
  exit(2);
}

static int kvm_ioctl(int fd, unsigned long request, void* arg, const char* what) {
  int r = ioctl(fd, request, arg);
  if (r < 0) die(what);
  return r;
}

/* Copies the PT_LOADs into guest memory; returns the PVH entry. */
static uint32_t load_pvh(const char* path, uint8_t* ram, uint64_t ram_bytes) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  struct stat st;
  if (fstat(fd, &st) < 0) die("fstat");
  uint8_t* file = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (file == MAP_FAILED) die("mmap kernel");
  close(fd);
  const Elf64_Ehdr* eh = (const Elf64_Ehdr*)file;
  uint32_t entry = 0;
  for (int i = 0; i < eh->e_phnum; ++i) {
    const Elf64_Phdr* ph = (const Elf64_Phdr*)(file + eh->e_phoff + (size_t)i * eh->e_phentsize);
    if (ph->p_type == PT_LOAD) {
      if (ph->p_paddr + ph->p_memsz > ram_bytes) {
        fprintf(stderr, "segment beyond RAM\n");
        exit(2);
      }
      memcpy(ram + ph->p_paddr, file + ph->p_offset, ph->p_filesz);
    } else if (ph->p_type == PT_NOTE) {
      for (uint64_t off = 0; off + sizeof(Elf64_Nhdr) <= ph->p_filesz;) {
        const Elf64_Nhdr* n = (const Elf64_Nhdr*)(file + ph->p_offset + off);
        uint64_t name = (n->n_namesz + 3) & ~3u, desc = (n->n_descsz + 3) & ~3u;
        const uint8_t* d = (const uint8_t*)(n + 1) + name;
        if (n->n_type == XEN_ELFNOTE_PHYS32_ENTRY && n->n_descsz >= 4) memcpy(&entry, d, 4);
        off += sizeof(*n) + name + desc;
      }
    }
  }
  if (entry == 0) {
    fprintf(stderr, "%s: no PVH entry note\n", path);
    exit(2);
  }
  return entry;
}

static struct kvm_segment flat(uint16_t selector, uint8_t type) {
  struct kvm_segment s = {.base = 0,
                          .limit = 0xffffffff,
                          .selector = selector,
                          .type = type,
                          .present = 1,
                          .dpl = 0,
                          .db = 1,
                          .s = 1,
                          .l = 0,
                          .g = 1};
  return s;
}

int main(int argc, char** argv) {
  int irqchip = 0, pit = 0, arg = 1;
  uint64_t mib = 128;
  for (; arg < argc && strncmp(argv[arg], "--", 2) == 0; ++arg) {
    if (strcmp(argv[arg], "--irqchip") == 0)
      irqchip = 1;
    else if (strcmp(argv[arg], "--pit") == 0)
      pit = 1;
    else if (strcmp(argv[arg], "--memory") == 0 && arg + 1 < argc)
      mib = strtoull(argv[++arg], NULL, 0);
    else
      break;
  }
  if (arg >= argc) {
    fprintf(stderr, "usage: %s [--irqchip] [--pit] [--memory MIB] KERNEL.pvh [CMDLINE]\n", argv[0]);
    return 2;
  }
  const char* cmdline = arg + 1 < argc ? argv[arg + 1] : "";
  uint64_t ram_bytes = mib << 20;

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("/dev/kvm");
  int vm = kvm_ioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
  kvm_ioctl(vm, KVM_SET_TSS_ADDR, (void*)0xfffbd000ul, "KVM_SET_TSS_ADDR");
  if (irqchip) kvm_ioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
  if (pit) {
    struct kvm_pit_config pc = {.flags = KVM_PIT_SPEAKER_DUMMY};
    kvm_ioctl(vm, KVM_CREATE_PIT2, &pc, "KVM_CREATE_PIT2");
  }
  uint8_t* ram = mmap(NULL, ram_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ram == MAP_FAILED) die("mmap RAM");
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = ram_bytes, .userspace_addr = (uint64_t)ram};
  kvm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");

  uint32_t entry = load_pvh(argv[arg], ram, ram_bytes);
  strncpy((char*)ram + CMDLINE, cmdline, 4095);
  struct hvm_memmap_entry mm = {.addr = 0, .size = ram_bytes, .type = 1};
  memcpy(ram + MEMMAP, &mm, sizeof(mm));
  struct hvm_start_info si = {.magic = 0x336ec578,
                              .version = 1,
                              .cmdline_paddr = CMDLINE,
                              .memmap_paddr = MEMMAP,
                              .memmap_entries = 1};
  memcpy(ram + START_INFO, &si, sizeof(si));
  uint64_t gdt[4] = {0, 0x00cf9b000000ffff, 0x00cf93000000ffff, 0x008f8b000000ffff};
  memcpy(ram + GDT, gdt, sizeof(gdt));

  int vcpu = kvm_ioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
  struct {
    struct kvm_cpuid2 head;
    struct kvm_cpuid_entry2 entries[256];
  } cpuid = {.head = {.nent = 256}};
  kvm_ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid, "KVM_GET_SUPPORTED_CPUID");
  kvm_ioctl(vcpu, KVM_SET_CPUID2, &cpuid, "KVM_SET_CPUID2");
  long run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run* run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");

  struct kvm_sregs sregs;
  kvm_ioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
  sregs.cs = flat(0x08, 0xb);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat(0x10, 0x3);
  sregs.tr = flat(0x18, 0xb);
  sregs.tr.s = 0;
  sregs.tr.limit = 0xffff;
  sregs.tr.g = 0;
  sregs.tr.db = 0;
  sregs.gdt.base = GDT;
  sregs.gdt.limit = sizeof(gdt) - 1;
  sregs.cr0 = 0x11; /* PE, ET */
  sregs.cr4 = 0;
  sregs.efer = 0;
  kvm_ioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
  struct kvm_regs regs = {.rip = entry, .rbx = START_INFO, .rflags = 2};
  kvm_ioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");

  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
    switch (run->exit_reason) {
      case KVM_EXIT_IO: {
        uint8_t* data = (uint8_t*)run + run->io.data_offset;
        if (run->io.direction == KVM_EXIT_IO_OUT) {
          if (run->io.port == 0x3f8) (void)!write(1, data, run->io.size * run->io.count);
          if (run->io.port == 0x440) (void)!write(2, "boot-timer\n", 11);
          if (run->io.port == 0xf4) return (int)(((data[0] << 1) | 1) & 0xff);
        } else {
          memset(data, run->io.port == 0x3fd ? 0x60 : 0xff, run->io.size * run->io.count);
        }
        break;
      }
      case KVM_EXIT_MMIO:
        if (!run->mmio.is_write) memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
        break;
      case KVM_EXIT_HLT:
        return 0;
      default:
        fprintf(stderr, "kvm_floor: exit reason %u\n", run->exit_reason);
        return 12;
    }
  }
}
