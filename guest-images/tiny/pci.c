/* PCI bus 0 through configuration mechanism #1: see pci.h. Every access is
 * two port exits (address, data), so the scan reads as little as it can. */
#include "pci.h"

#include "arch.h"
#include "lib.h"

#define IDENTITY_MAP_END 0x100000000ull /* pagetables.S maps 0..4 GiB */
#define CAP_WALK_LIMIT 48               /* (256 - 64) / 4 capabilities at most */
#define BAR_MEM_64 0x4
#define BAR_MEM_PREFETCH 0x8
#define MAX_RANGES 96

static uint32_t address(const struct pci_fn* f, uint8_t off) {
  return 0x80000000u | (uint32_t)f->dev << 11 | (uint32_t)f->fn << 8 | (off & 0xfc);
}

uint32_t pci_read32(const struct pci_fn* f, uint8_t off) {
  outl(PCI_CONFIG_ADDRESS, address(f, off));
  return inl(PCI_CONFIG_DATA);
}

uint16_t pci_read16(const struct pci_fn* f, uint8_t off) {
  outl(PCI_CONFIG_ADDRESS, address(f, off));
  return inw(PCI_CONFIG_DATA + (off & 2));
}

uint8_t pci_read8(const struct pci_fn* f, uint8_t off) {
  outl(PCI_CONFIG_ADDRESS, address(f, off));
  return inb(PCI_CONFIG_DATA + (off & 3));
}

void pci_write32(const struct pci_fn* f, uint8_t off, uint32_t v) {
  outl(PCI_CONFIG_ADDRESS, address(f, off));
  outl(PCI_CONFIG_DATA, v);
}

void pci_write16(const struct pci_fn* f, uint8_t off, uint16_t v) {
  outl(PCI_CONFIG_ADDRESS, address(f, off));
  outw(PCI_CONFIG_DATA + (off & 2), v);
}

static struct pci_fn functions[PCI_MAX_FUNCTIONS];
static int nfunctions = -1;

/* Reads the identity of dev/fn into `f`; false if nothing answers (all ones
 * on real hardware and QEMU, 0 on a VMM that ignores the ports). */
static bool probe(uint8_t dev, uint8_t fn, struct pci_fn* f) {
  *f = (struct pci_fn){.dev = dev, .fn = fn};
  uint32_t id = pci_read32(f, PCI_VENDOR_ID);
  if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0) return false;
  f->vendor = (uint16_t)id;
  f->device = (uint16_t)(id >> 16);
  uint32_t class_rev = pci_read32(f, PCI_REVISION);
  f->revision = (uint8_t)class_rev;
  f->class_code = class_rev >> 8;
  f->header_type = pci_read8(f, PCI_HEADER_TYPE);
  if ((f->header_type & 0x7f) == 0) {
    uint32_t subsys = pci_read32(f, PCI_SUBSYSTEM_VENDOR);
    f->subsys_vendor = (uint16_t)subsys;
    f->subsys_id = (uint16_t)(subsys >> 16);
  }
  return true;
}

int pci_functions(const struct pci_fn** list) {
  if (nfunctions < 0) {
    nfunctions = 0;
    for (uint8_t dev = 0; dev < 32; ++dev) {
      struct pci_fn f;
      if (!probe(dev, 0, &f)) continue;
      uint8_t fns = f.header_type & PCI_HEADER_MULTI_FUNCTION ? 8 : 1;
      for (uint8_t fn = 0; fn < fns && nfunctions < PCI_MAX_FUNCTIONS; ++fn) {
        if (fn == 0 || probe(dev, fn, &f)) functions[nfunctions++] = f;
      }
    }
  }
  *list = functions;
  return nfunctions;
}

uint8_t pci_find_cap(const struct pci_fn* f, uint8_t id, uint8_t after) {
  if (!(pci_read16(f, PCI_STATUS) & PCI_STATUS_CAP_LIST)) return 0;
  uint8_t off = after ? pci_read8(f, after + 1) : pci_read8(f, PCI_CAP_PTR);
  for (int steps = 0; steps < CAP_WALK_LIMIT; ++steps) {
    off &= 0xfc;
    if (off < 0x40) return 0;           /* 0 ends the list; the header is no capability */
    uint16_t head = pci_read16(f, off); /* id, next */
    if ((head & 0xff) == id) return off;
    off = (uint8_t)(head >> 8);
  }
  return 0;
}

/* Reads and sizes BAR `i` with decode off. `size` 0: not implemented. */
static void size_bar(const struct pci_fn* f, unsigned i, struct pci_bar* bar) {
  uint8_t reg = (uint8_t)(PCI_BAR0 + 4 * i);
  *bar = (struct pci_bar){0};
  uint16_t cmd = pci_read16(f, PCI_COMMAND);
  pci_write16(f, PCI_COMMAND, cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
  uint32_t lo = pci_read32(f, reg);
  pci_write32(f, reg, 0xffffffff);
  uint32_t mask_lo = pci_read32(f, reg);
  pci_write32(f, reg, lo);
  uint64_t mask;
  if (lo & 1) {
    bar->io = true;
    bar->addr = lo & ~3u;
    mask = 0xffffffff00000000ull | (mask_lo & ~3u) | 0xffff0000u; /* 16-bit port space */
  } else {
    bar->is64 = (lo & 6) == BAR_MEM_64 && i < 5;
    bar->prefetch = lo & BAR_MEM_PREFETCH;
    bar->addr = lo & ~0xfu;
    mask = 0xffffffff00000000ull | (mask_lo & ~0xfu);
    if (bar->is64) {
      uint32_t hi = pci_read32(f, reg + 4);
      pci_write32(f, reg + 4, 0xffffffff);
      uint32_t mask_hi = pci_read32(f, reg + 4);
      pci_write32(f, reg + 4, hi);
      bar->addr |= (uint64_t)hi << 32;
      mask = (uint64_t)mask_hi << 32 | (mask_lo & ~0xfu);
    }
  }
  pci_write16(f, PCI_COMMAND, cmd);
  bar->size = (mask_lo & ~0xfu) || (bar->is64 && mask >> 32) ? ~mask + 1 : 0;
}

/* Memory ranges taken on bus 0 (below 4 GiB), found the first time a BAR
 * needs an address, plus the ones given out since. */
struct range {
  uint64_t start, end;
};
static struct range taken[MAX_RANGES];
static int ntaken = -1;

static void add_range(uint64_t start, uint64_t size) {
  if (ntaken < MAX_RANGES) taken[ntaken++] = (struct range){start, start + size};
}

static void find_taken(void) {
  const struct pci_fn* fns;
  int n = pci_functions(&fns);
  ntaken = 0;
  for (int k = 0; k < n; ++k) {
    unsigned bars = (fns[k].header_type & 0x7f) == 0 ? 6 : (fns[k].header_type & 0x7f) == 1 ? 2 : 0;
    for (unsigned i = 0; i < bars; ++i) {
      struct pci_bar b;
      size_bar(&fns[k], i, &b);
      if (!b.io && b.size && b.addr && b.addr + b.size <= IDENTITY_MAP_END)
        add_range(b.addr, b.size);
      if (b.is64) ++i;
    }
  }
}

/* A naturally aligned free block of `size` bytes in the window, or 0. */
static uint64_t allocate(uint64_t size) {
  if (ntaken < 0) find_taken();
  uint64_t at = PCI_WINDOW_START;
  for (;;) {
    at = (at + size - 1) & ~(size - 1);
    if (at + size > PCI_WINDOW_END || at < PCI_WINDOW_START) return 0;
    bool clash = false;
    for (int k = 0; k < ntaken; ++k) {
      if (at < taken[k].end && taken[k].start < at + size) {
        at = taken[k].end;
        clash = true;
        break;
      }
    }
    if (!clash) break;
  }
  add_range(at, size);
  return at;
}

bool pci_bar_map(const struct pci_fn* f, unsigned i, struct pci_bar* bar, char* error,
                 unsigned error_size) {
  if (i > 5) {
    snprintf(error, error_size, "BAR %u does not exist", i);
    return false;
  }
  /* The upper half of a 64-bit BAR is no BAR of its own. */
  for (unsigned j = 0; j < i; ++j) {
    uint32_t v = pci_read32(f, (uint8_t)(PCI_BAR0 + 4 * j));
    if (!(v & 1) && (v & 6) == BAR_MEM_64 && ++j == i) {
      snprintf(error, error_size, "BAR %u is the upper half of 64-bit BAR %u", i, i - 1);
      return false;
    }
  }
  size_bar(f, i, bar);
  if (bar->io) {
    snprintf(error, error_size, "BAR %u is I/O space; only memory BARs are supported", i);
    return false;
  }
  if (!bar->size || (bar->size & (bar->size - 1))) {
    snprintf(error, error_size, "BAR %u is not implemented (size 0x%lx)", i, bar->size);
    return false;
  }
  if (!bar->addr || bar->addr + bar->size > IDENTITY_MAP_END || bar->addr + bar->size < bar->addr) {
    uint64_t at = bar->size <= PCI_WINDOW_END - PCI_WINDOW_START ? allocate(bar->size) : 0;
    if (!at) {
      snprintf(error, error_size,
               "BAR %u (0x%lx bytes at 0x%lx) needs an address: none free in 0x%lx..0x%lx", i,
               bar->size, bar->addr, PCI_WINDOW_START, PCI_WINDOW_END);
      return false;
    }
    uint16_t cmd = pci_read16(f, PCI_COMMAND);
    pci_write16(f, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
    uint8_t reg = (uint8_t)(PCI_BAR0 + 4 * i);
    pci_write32(f, reg, (uint32_t)at);
    if (bar->is64) pci_write32(f, reg + 4, 0);
    pci_write16(f, PCI_COMMAND, cmd);
    bar->old = bar->addr;
    bar->addr = at;
    bar->assigned = true;
    uint32_t check = pci_read32(f, reg) & ~0xfu;
    if (check != at) {
      snprintf(error, error_size, "BAR %u reads 0x%x after writing 0x%lx", i, check, at);
      return false;
    }
  }
  uint16_t cmd = pci_read16(f, PCI_COMMAND);
  if ((cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) !=
      (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) {
    pci_write16(f, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  }
  return true;
}
