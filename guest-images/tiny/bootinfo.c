/* Normalises the loader's boot information into `boot`. Runs in ring 3: the
 * entry code only saved the protocol id and the pointer. */
#include "boot.h"
#include "cpu.h"

#define HVM_START_MAGIC 0x336ec578
#define E820_RAM 1

/* Xen's struct hvm_start_info (version 1) and its memory map entries. */
struct hvm_start_info {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr; /* version >= 1 */
  uint32_t memmap_entries;
  uint32_t reserved;
} __attribute__((packed));

struct hvm_modlist_entry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
} __attribute__((packed));

struct hvm_memmap_entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
} __attribute__((packed));

/* Multiboot v1 information (the fields we read). */
struct multiboot_info {
  uint32_t flags;
  uint32_t mem_lower; /* KiB below 1 MiB */
  uint32_t mem_upper; /* KiB above 1 MiB (up to the first hole) */
  uint32_t boot_device;
  uint32_t cmdline;
  uint32_t mods_count;
  uint32_t mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length;
  uint32_t mmap_addr;
} __attribute__((packed));

#define MB_INFO_MEM 0x001
#define MB_INFO_CMDLINE 0x004
#define MB_INFO_MODS 0x008
#define MB_INFO_MMAP 0x040

struct multiboot_module {
  uint32_t mod_start;
  uint32_t mod_end; /* exclusive */
  uint32_t string;
  uint32_t reserved;
} __attribute__((packed));

/* Multiboot memory map entry; `size` does not count itself. */
struct multiboot_mmap_entry {
  uint32_t size;
  uint64_t addr;
  uint64_t len;
  uint32_t type;
} __attribute__((packed));

struct boot_info boot = {.protocol = "unknown", .cmdline = ""};

static void from_start_info(const struct hvm_start_info* si) {
  if (!si || si->magic != HVM_START_MAGIC) return;
  boot.valid = true;
  if (si->cmdline_paddr) boot.cmdline = (const char*)si->cmdline_paddr;
  boot.rsdp = si->rsdp_paddr;
  boot.modules = si->nr_modules;
  if (si->nr_modules && si->modlist_paddr) {
    const struct hvm_modlist_entry* m = (const void*)si->modlist_paddr;
    boot.module0_addr = m->paddr;
    boot.module0_size = m->size;
  }
  if (si->version >= 1 && si->memmap_paddr) {
    const struct hvm_memmap_entry* e = (const void*)si->memmap_paddr;
    boot.memmap_entries = si->memmap_entries;
    for (uint32_t i = 0; i < si->memmap_entries; ++i) {
      if (e[i].type == E820_RAM) boot.mem_bytes += e[i].size;
    }
  }
}

static void from_multiboot(const struct multiboot_info* mb) {
  if (!mb) return;
  boot.valid = true;
  if ((mb->flags & MB_INFO_CMDLINE) && mb->cmdline)
    boot.cmdline = (const char*)(uint64_t)mb->cmdline;
  if (mb->flags & MB_INFO_MODS) {
    boot.modules = mb->mods_count;
    if (mb->mods_count && mb->mods_addr) {
      const struct multiboot_module* m = (const void*)(uint64_t)mb->mods_addr;
      boot.module0_addr = m->mod_start;
      boot.module0_size = m->mod_end - m->mod_start;
    }
  }
  if (mb->flags & MB_INFO_MMAP) {
    uint64_t p = mb->mmap_addr, end = p + mb->mmap_length;
    while (p < end) {
      const struct multiboot_mmap_entry* e = (const void*)p;
      if (e->type == E820_RAM) boot.mem_bytes += e->len;
      boot.memmap_entries++;
      p += e->size + sizeof(e->size);
    }
  } else if (mb->flags & MB_INFO_MEM) {
    boot.mem_bytes = ((uint64_t)mb->mem_lower + mb->mem_upper) * 1024;
  }
  /* Multiboot v1 has no RSDP field: acpi.c scans for it. */
}

void bootinfo_init(void) {
  switch (boot_protocol) {
    case BOOT_PVH:
      boot.protocol = "pvh";
      from_start_info((const void*)boot_info_addr);
      break;
    case BOOT_ELF64:
      boot.protocol = "elf64";
      from_start_info((const void*)boot_info_addr);
      break;
    case BOOT_MULTIBOOT:
      boot.protocol = "multiboot";
      from_multiboot((const void*)boot_info_addr);
      break;
    case BOOT_BAD_MULTIBOOT_MAGIC:
      boot.protocol = "multiboot(bad magic)";
      break;
  }
}
