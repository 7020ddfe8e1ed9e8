/* test=chaos seed=S [count=N] [every=N] [avoid=LO-HI,...] [only=KIND]: a hostile guest. From the
 * seed (xorshift64*), N actions (default 1000000), each one of:
 *   - a read or write of a random width and value at a random I/O port, or
 *     at a port some device of mote's or QEMU's claims; now and then a
 *     string (rep ins/outs) of up to 16;
 *   - the same across the 32-bit MMIO hole (3..4 GiB), half of them in the
 *     windows where PCI BARs, virtio-mmio slots and ECAM live;
 *   - PCI configuration space of bus 0, through ports 0xcf8/0xcfc and ECAM;
 *   - a register of a virtio device found at the start (every window of
 *     it: common, notify, ISR and device config, the MSI-X table and PBA;
 *     the whole virtio-mmio slot);
 *   - fw_cfg (0x510..0x51b): garbage selectors, reads of every width past an
 *     item's end, and DMA operations with random control words and
 *     lengths whose access structure and buffer lie in the chaos area,
 *     beyond RAM or at the top of the address space;
 *   - 1 in 100: a descriptor chain posted on a freshly set up queue: a loop,
 *     a self-loop, out-of-range addresses, huge lengths, an indirect table
 *     that is the descriptor table itself, bad indirect tables, next
 *     indexes past the queue, garbage, or a burst of heads; the device is
 *     notified and left running (or, 1 in 4, reset).
 * Prints "chaos: N actions" every 100000 (every=), then restores COM1 and checks
 * that every virtio device found at the start still works after a reset
 * (chaos_after_blk/net/rng), and prints the counts of each kind.
 *
 * What the guest keeps out of its own way, or it would end or corrupt
 * itself rather than test the VMM:
 *   - writes to ports that end the VM: debug-exit 0xf4..0xf7, pvpanic
 *     0x505, ACPI 0x600..0x605 (0x604: PM1a control, --acpi full), 0xcf9
 *     and 0x92 (QEMU's resets), and the i8042 reset commands (0xd1,
 *     0xf0..0xff become 0x51, 0x70..0x7f);
 *   - KVM's in-kernel devices (8259s and ELCR; the LAPIC, IOAPIC and HPET
 *     pages): they are not mote's code, and would route interrupts the
 *     guest never asked for;
 *   - MSI-X stays disabled (the enable bit is cleared in every config
 *     write), since a random MSI can be an INIT or SMI;
 *   - device memory access (DMA) stays in the chaos area below or outside
 *     RAM: a write that would set a queue address register (page offsets
 *     0x20..0x37 of virtio-pci common config, 0x80/0x90/0xa0 of
 *     virtio-mmio, wherever a BAR has moved to) writes a decoy address
 *     instead; the data window of the virtio PCI-config-access capability
 *     is only read; chains point at the chaos area or beyond RAM; random
 *     port writes leave fw_cfg's DMA register (0x514..0x51b) to the fw_cfg
 *     action, which aims it.
 * `only=pio|fwcfg|mmio|config|virtio|chain` makes every action of one kind.
 * `avoid=` names port ranges left alone altogether (for QEMU: its fw_cfg
 * DMA port makes it write guest memory, and its 16550 aborts on a wider
 * than 1-byte access). */
#include "../arch.h"
#include "../boot.h"
#include "../lib.h"
#include "../pci.h"
#include "../platform.h"
#include "../test.h"
#include "../virtio_transport.h"

#define DEFAULT_COUNT 1000000
#define PROGRESS_EVERY 100000
#define MAX_TARGETS 8
#define MAX_WINDOWS 8
#define MAX_AVOID 8
#define MAX_CAPS 16
#define VIRTIO_F_RING_PACKED (1ull << 34)

/* The chaos area: [0, 64K) rings of posted chains, [64K, 128K) the decoy
 * that random queue address writes point at (filled with descriptors that
 * point beyond RAM), [128K, 256K) buffers devices may read and write. */
#define AREA_BYTES (256u * 1024)
#define RINGS_BYTES (64u * 1024)
#define DECOY_OFFSET (64u * 1024)
#define DECOY_BYTES (64u * 1024)
#define BUFFERS_OFFSET (128u * 1024)
#define BUFFERS_BYTES (AREA_BYTES - BUFFERS_OFFSET)
static uint8_t area[AREA_BYTES] __attribute__((aligned(4096)));

struct range {
  uint64_t lo, hi; /* [lo, hi) */
};

struct target {
  struct virtio_dev dev;
  struct range windows[MAX_WINDOWS];
  unsigned nwindows;
};

static struct target targets[MAX_TARGETS];
static unsigned ntargets;
static struct range avoid[MAX_AVOID];
static unsigned navoid;
static uint8_t msix_caps[MAX_CAPS], pci_cfg_caps[MAX_CAPS];
static unsigned nmsix_caps, npci_cfg_caps;
static uint32_t cf8;     /* the config address last latched (32-bit writes to 0xcf8) */
static uint64_t ram_end; /* first address above RAM below the MMIO hole */
static uint64_t state;

static struct {
  uint64_t pio_reads, pio_writes, pio_strings, pio_refused, fw_cfg_dma;
  uint64_t mmio_reads, mmio_writes, mmio_decoys, cfg_accesses;
  uint64_t virtio_reads, virtio_writes, chains, chains_used, chains_setup_failed;
} n;

/* ---- Randomness ----------------------------------------------------------- */

static uint64_t rnd(void) {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545f4914f6cdd1dull;
}
static uint64_t below(uint64_t bound) { return bound ? rnd() % bound : 0; }

/* A value of `width` bytes: random, or one drivers and parsers care about. */
static uint64_t value_of(unsigned width) {
  static const uint64_t special[] = {0,      1,       2,          3,          4,          8,
                                     0x7f,   0x80,    0xff,       0x100,      0xfff,      0x1000,
                                     0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, ~0ull};
  uint64_t v = below(4) == 0 ? special[below(sizeof(special) / sizeof(special[0]))] : rnd();
  return width == 8 ? v : v & ((1ull << (8 * width)) - 1);
}

/* ---- Raw accesses ----------------------------------------------------------- */

static uint64_t pio_read(uint16_t port, unsigned w) {
  return w == 1 ? inb(port) : w == 2 ? inw(port) : inl(port);
}
static void pio_write(uint16_t port, unsigned w, uint64_t v) {
  if (w == 1)
    outb(port, (uint8_t)v);
  else if (w == 2)
    outw(port, (uint16_t)v);
  else
    outl(port, (uint32_t)v);
}

static uint64_t mmio_read(uint64_t a, unsigned w) {
  uint64_t v = 0;
  switch (w) {
    case 1: {
      uint8_t b;
      __asm__ volatile("movb (%1), %0" : "=q"(b) : "r"(a) : "memory");
      v = b;
      break;
    }
    case 2: {
      uint16_t h;
      __asm__ volatile("movw (%1), %0" : "=r"(h) : "r"(a) : "memory");
      v = h;
      break;
    }
    case 4: {
      uint32_t l;
      __asm__ volatile("movl (%1), %0" : "=r"(l) : "r"(a) : "memory");
      v = l;
      break;
    }
    default:
      __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(a) : "memory");
  }
  return v;
}
static void mmio_write(uint64_t a, unsigned w, uint64_t v) {
  switch (w) {
    case 1:
      __asm__ volatile("movb %0, (%1)" : : "q"((uint8_t)v), "r"(a) : "memory");
      break;
    case 2:
      __asm__ volatile("movw %0, (%1)" : : "r"((uint16_t)v), "r"(a) : "memory");
      break;
    case 4:
      __asm__ volatile("movl %0, (%1)" : : "r"((uint32_t)v), "r"(a) : "memory");
      break;
    default:
      __asm__ volatile("movq %0, (%1)" : : "r"(v), "r"(a) : "memory");
  }
}

static void pio_string(uint16_t port, unsigned w, bool out, void* buf, uint64_t count) {
  if (out) {
    if (w == 1)
      __asm__ volatile("rep outsb" : "+S"(buf), "+c"(count) : "d"(port) : "memory");
    else if (w == 2)
      __asm__ volatile("rep outsw" : "+S"(buf), "+c"(count) : "d"(port) : "memory");
    else
      __asm__ volatile("rep outsl" : "+S"(buf), "+c"(count) : "d"(port) : "memory");
  } else {
    if (w == 1)
      __asm__ volatile("rep insb" : "+D"(buf), "+c"(count) : "d"(port) : "memory");
    else if (w == 2)
      __asm__ volatile("rep insw" : "+D"(buf), "+c"(count) : "d"(port) : "memory");
    else
      __asm__ volatile("rep insl" : "+D"(buf), "+c"(count) : "d"(port) : "memory");
  }
}

/* ---- Addresses the devices may be given --------------------------------- */

static uint64_t phys(const void* p) { return VIRT_TO_PHYS(p); }

/* Somewhere no RAM is: above it, in the hole, or far beyond any guest. */
static uint64_t beyond_ram(void) {
  switch (below(3)) {
    case 0:
      return ram_end + below(MMIO_HOLE_START - ram_end + 1);
    case 1:
      return (1ull << 40) + rnd() % (1ull << 40);
    default:
      return ~0ull - below(0x10000);
  }
}

/* `len` bytes in the buffer part of the area. */
static uint64_t buffer_addr(uint32_t len) {
  if (len > BUFFERS_BYTES) len = BUFFERS_BYTES;
  return phys(area) + BUFFERS_OFFSET + below(BUFFERS_BYTES - len + 1);
}

/* What a random write to a queue address register gets instead. */
static uint64_t decoy_addr(void) {
  return below(2) ? phys(area) + DECOY_OFFSET + (below(DECOY_BYTES / 2) & ~15ull) : beyond_ram();
}

/* The decoy holds descriptors (and whatever a device reads as rings) that
 * all point beyond RAM. */
static void fill_decoy(void) {
  struct virtq_desc* d = (struct virtq_desc*)(area + DECOY_OFFSET);
  for (unsigned i = 0; i < DECOY_BYTES / sizeof(*d); ++i) {
    d[i] = (struct virtq_desc){beyond_ram(), (uint32_t)rnd(), (uint16_t)rnd(), (uint16_t)rnd()};
  }
}

/* ---- What the guest keeps out of its own way ------------------------------ */

static bool in_ranges(uint64_t x, const struct range* r, unsigned count) {
  for (unsigned i = 0; i < count; ++i) {
    if (x >= r[i].lo && x < r[i].hi) return true;
  }
  return false;
}

static const struct range never_written[] = {
    {0xf4, 0xf8},   {0x505, 0x506}, {0x600, 0x606}, {0x92, 0x93}, /* end the VM */
    {0x20, 0x22},   {0xa0, 0xa2},   {0x4d0, 0x4d2},               /* KVM's 8259s, ELCR */
    {0x514, 0x51c},                                               /* fw_cfg DMA: see action_fwcfg */
};
#define NEVER_WRITTEN (sizeof(never_written) / sizeof(never_written[0]))

static bool port_writable(uint16_t port) {
  return !in_ranges(port, never_written, NEVER_WRITTEN) && !in_ranges(port, avoid, navoid);
}

/* A config-space byte about to be written at register `reg` of any function. */
static bool config_byte_ok(uint32_t reg, uint8_t* b) {
  for (unsigned i = 0; i < npci_cfg_caps; ++i) {
    if (reg >= pci_cfg_caps[i] + 16u && reg < pci_cfg_caps[i] + 20u)
      return false; /* BAR access window */
  }
  for (unsigned i = 0; i < nmsix_caps; ++i) {
    if (reg == msix_caps[i] + 3u) *b &= 0x7f; /* MSI-X Enable, bit 15 of Message Control */
  }
  return true;
}

/* Checks (and may change) a port write; false: do not write it. */
static bool port_write_ok(uint16_t port, unsigned w, uint64_t* v) {
  if (port <= 0xcf9 && port + w > 0xcf9 && !(port == 0xcf8 && w == 4))
    return false; /* reset control */
  for (unsigned i = 0; i < w; ++i) {
    uint16_t p = (uint16_t)(port + i);
    uint8_t b = (uint8_t)(*v >> (8 * i));
    if (!port_writable(p)) return false;
    if (p == I8042_COMMAND_PORT && (b == 0xd1 || b >= 0xf0)) b &= 0x7f;
    if (p >= 0xcfc && p <= 0xcff && (cf8 & 0x80000000u) &&
        !config_byte_ok((cf8 & 0xfc) + (p - 0xcfc), &b)) {
      return false;
    }
    *v = (*v & ~(0xffull << (8 * i))) | (uint64_t)b << (8 * i);
  }
  if (port == PCI_CONFIG_ADDRESS && w == 4) cf8 = (uint32_t)*v;
  return true;
}

static bool mmio_excluded(uint64_t a) {
  uint64_t page = a & ~0xfffull;
  return page == IOAPIC_ADDR || page == HPET_ADDR || (a >= LAPIC_ADDR && a < LAPIC_ADDR + 0x100000);
}

static bool overlaps(uint64_t a, unsigned w, uint64_t lo, uint64_t hi) {
  return a < hi && a + w > lo;
}

/* Queue address registers: virtio-mmio's, from a slot's base (slots stay
 * put), and virtio-pci common config's, from any page boundary (where
 * mote's and QEMU's BARs put it; the chaos may move a BAR anywhere). */
static const struct range queue_address_regs[] = {
    {0x80, 0x88}, {0x90, 0x98}, {0xa0, 0xa8}, {0x20, 0x38}};

/* The virtio-mmio slot `a` is in (0: none). */
static uint64_t mmio_slot_of(uint64_t a) {
  for (unsigned i = 0; i < ntargets; ++i) {
    const struct virtio_mmio* m = &targets[i].dev.mmio;
    if (targets[i].dev.ops == &virtio_mmio_ops && a >= m->base && a < m->base + m->size)
      return m->base;
  }
  return 0;
}

/* Checks (and may change, or replace) an MMIO write; false: not written as is. */
static bool mmio_write_ok(uint64_t a, unsigned w, uint64_t* v) {
  if (mmio_excluded(a)) return false;
  uint64_t base = mmio_slot_of(a), off;
  unsigned regs = sizeof(queue_address_regs) / sizeof(queue_address_regs[0]);
  if (base) {
    regs--; /* a virtio-mmio slot: only its own registers */
  } else {
    base = a & ~0xfffull;
  }
  off = a - base;
  for (unsigned r = 0; r < regs; ++r) {
    for (uint64_t reg = queue_address_regs[r].lo; reg < queue_address_regs[r].hi; reg += 8) {
      if (!overlaps(off, w, reg, reg + 8)) continue;
      uint64_t decoy = decoy_addr();
      mmio_write(base + reg, 4, (uint32_t)decoy);
      mmio_write(base + reg + 4, 4, decoy >> 32);
      n.mmio_decoys++;
      return false;
    }
  }
  if (a >= PCI_ECAM_ADDR && a < PCI_ECAM_ADDR + PCI_ECAM_BYTES) {
    for (unsigned i = 0; i < w; ++i) {
      uint8_t b = (uint8_t)(*v >> (8 * i));
      if (!config_byte_ok((uint32_t)((a + i) & 0xfff), &b)) return false;
      *v = (*v & ~(0xffull << (8 * i))) | (uint64_t)b << (8 * i);
    }
  }
  return true;
}

/* ---- The actions -------------------------------------------------------------- */

static bool port_avoided(uint16_t port, unsigned w) {
  for (unsigned i = 0; i < w; ++i) {
    if (in_ranges((uint16_t)(port + i), avoid, navoid)) return true;
  }
  return false;
}

static void port_access(uint16_t port, unsigned w) {
  if ((uint32_t)port + w > 0x10000) port = (uint16_t)(0x10000 - w);
  if (port_avoided(port, w)) return;
  if (below(2)) {
    pio_read(port, w);
    n.pio_reads++;
    return;
  }
  uint64_t v = value_of(w);
  if (port_write_ok(port, w, &v)) {
    pio_write(port, w, v);
    n.pio_writes++;
  } else {
    pio_read(port, w);
    n.pio_refused++;
  }
}

/* Ports some device of mote's (or QEMU's) claims: [start, start + len). */
static const struct range device_ports[] = {
    {0x60, 0x61},   {0x64, 0x65},   {0x70, 0x72},   {0x3f8, 0x400}, {0x2f8, 0x300}, {0x440, 0x441},
    {0x505, 0x506}, {0x600, 0x610}, {0xf4, 0xf8},   {0xcf8, 0xd00}, {0x40, 0x44},   {0x61, 0x62},
    {0x80, 0x81},   {0x510, 0x51c}, {0x402, 0x403}, {0x3c0, 0x3e0},
};

static void action_pio(void) {
  unsigned w = 1u << below(3);
  uint16_t port;
  if (below(2)) {
    port = (uint16_t)rnd();
  } else {
    const struct range* r = &device_ports[below(sizeof(device_ports) / sizeof(device_ports[0]))];
    port = (uint16_t)(r->lo + below(r->hi - r->lo));
  }
  if (below(16) == 0) {
    /* A string of up to 16, from or into the buffer part of the area. */
    uint64_t count = 1 + below(16);
    bool out = below(2);
    if (port_avoided(port, w)) return;
    for (unsigned i = 0; i < w && out; ++i) {
      uint16_t p = (uint16_t)(port + i);
      if (!port_writable(p) || p == I8042_COMMAND_PORT || (p >= 0xcf8 && p <= 0xcff)) out = false;
    }
    pio_string(port, w, out, (void*)(uintptr_t)buffer_addr(16 * 4), count);
    n.pio_strings++;
    return;
  }
  port_access(port, w);
}

/* fw_cfg: any selector (the write and arch bits too), reads of any width,
 * often past the item's end, then half the time a DMA operation whose access
 * structure and buffer are the area's or nobody's. */
static void action_fwcfg(void) {
  if (port_avoided(FW_CFG_PORT, 12)) return;
  pio_write(FW_CFG_PORT, 2, rnd());
  for (uint64_t i = below(64); i; --i) pio_read(FW_CFG_PORT + 1, 1u << below(3));
  if (below(2)) return;
  uint32_t len = below(4) ? (uint32_t)below(8192) : (uint32_t)rnd();
  uint64_t at = buffer_addr(16) & ~15ull;
  uint8_t* access = (uint8_t*)(uintptr_t)at; /* identity-mapped, as every buffer here */
  uint32_t control = __builtin_bswap32((uint32_t)rnd());
  uint32_t length = __builtin_bswap32(len);
  uint64_t to = __builtin_bswap64(below(2) ? buffer_addr(len) : beyond_ram());
  memcpy(access, &control, 4);
  memcpy(access + 4, &length, 4);
  memcpy(access + 8, &to, 8);
  if (below(8) == 0) at = beyond_ram();
  pio_write(FW_CFG_PORT + 4, 4, __builtin_bswap32((uint32_t)(at >> 32)));
  pio_write(FW_CFG_PORT + 8, 4, __builtin_bswap32((uint32_t)at));
  n.fw_cfg_dma++;
}

/* A read or a write of `w` bytes at `a`; true if it was a read. */
static bool mmio_access(uint64_t a, unsigned w) {
  if ((a & 0xfff) + w > 0x1000) a = (a & ~0xfffull) + 0x1000 - w; /* one page: no split exits */
  if (mmio_excluded(a)) return false;
  if (below(2)) {
    mmio_read(a, w);
    n.mmio_reads++;
    return true;
  }
  uint64_t v = value_of(w);
  if (mmio_write_ok(a, w, &v)) {
    mmio_write(a, w, v);
    n.mmio_writes++;
  }
  return false;
}

static void action_mmio(void) {
  uint64_t a;
  switch (below(6)) {
    case 0:
      a = PCI_WINDOW_START + below(1u << 20);
      break;
    case 1:
      a = VIRTIO_MMIO_ADDR + below(1u << 16);
      break;
    case 2:
      a = PCI_ECAM_ADDR + below(PCI_ECAM_BYTES);
      break;
    default:
      a = MMIO_HOLE_START + below(0x100000000ull - MMIO_HOLE_START);
  }
  mmio_access(a, 1u << below(4));
}

static void action_config(void) {
  const struct pci_fn* fns;
  int count = pci_functions(&fns);
  uint32_t devfn = (uint32_t)below(256);
  if (count > 0 && below(4)) {
    const struct pci_fn* f = &fns[below((uint64_t)count)];
    devfn = (uint32_t)(f->dev << 3 | f->fn);
  }
  uint32_t reg = (uint32_t)(below(4) ? below(0x100) : below(0x40));
  unsigned w = 1u << below(3);
  reg &= ~(w - 1);
  if (below(4) == 0) {
    mmio_access(PCI_ECAM_ADDR + ((uint64_t)devfn << 12) + reg, w);
  } else {
    uint64_t address = 0x80000000u | devfn << 8 | (reg & 0xfc);
    port_access(PCI_CONFIG_ADDRESS, 4); /* sometimes garbage in between */
    if (port_write_ok(PCI_CONFIG_ADDRESS, 4, &address)) pio_write(PCI_CONFIG_ADDRESS, 4, address);
    port_access((uint16_t)(PCI_CONFIG_DATA + (reg & 3)), w);
  }
  n.cfg_accesses++;
}

static void action_virtio(void) {
  if (!ntargets) return action_mmio();
  struct target* t = &targets[below(ntargets)];
  if (!t->nwindows) return action_mmio();
  const struct range* win = &t->windows[below(t->nwindows)];
  unsigned w = 1u << below(4);
  uint64_t size = win->hi - win->lo;
  /* Registers are mostly in the first 256 bytes: aim there more often. */
  uint64_t off = below(2) && size > 0x100 ? below(0x100) : below(size);
  uint64_t a = win->lo + (below(4) ? off & ~(uint64_t)(w - 1) : off);
  if (mmio_access(a, w))
    n.virtio_reads++;
  else
    n.virtio_writes++;
}

/* Puts a function's BARs and command register back, so a device the chaos
 * moved or switched off can be set up again; MSI-X stays off. */
static void restore_pci(struct target* t) {
  if (t->dev.ops != &virtio_pci_ops) return;
  struct virtio_pci* p = &t->dev.pci;
  pci_write16(&p->fn, PCI_COMMAND, 0);
  for (unsigned i = 0; i < 6; ++i) {
    if (!(p->bars_mapped & (1u << i))) continue;
    pci_write32(&p->fn, (uint8_t)(PCI_BAR0 + 4 * i), (uint32_t)p->bars[i].addr);
    if (p->bars[i].is64)
      pci_write32(&p->fn, (uint8_t)(PCI_BAR0 + 4 * i + 4), (uint32_t)(p->bars[i].addr >> 32));
  }
  if (p->msix_cap) pci_write16(&p->fn, p->msix_cap + MSIX_CONTROL, 0);
  pci_write16(&p->fn, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

enum chain_kind {
  LOOP,
  SELF_LOOP,
  FAR,
  HUGE_LEN,
  INDIRECT_SELF,
  INDIRECT_BAD,
  NEXT_PAST_END,
  GARBAGE,
  BURST,
  REQUEST,
  CHAIN_KINDS
};

/* A request of the device's own kind with random fields: a virtio-blk
 * header (any type, any sector), data and a status byte; for net a header
 * and a frame; for rng a buffer. */
static void request_chain(struct virtq_desc* d, unsigned size, unsigned head) {
  unsigned parts = 1 + (unsigned)below(size < 4 ? size : 4);
  for (unsigned i = 0; i < parts; ++i) {
    uint32_t len = (uint32_t)(i == 0 ? 16 : i == parts - 1 ? 1 : 512 * (1 + below(16)));
    uint64_t a = buffer_addr(len);
    if (i == 0) {
      uint32_t* hdr = (uint32_t*)(uintptr_t)a;
      hdr[0] = (uint32_t)(below(2) ? below(16) : rnd());
      hdr[1] = 0;
      *(uint64_t*)(hdr + 2) = below(2) ? below(8192) : rnd();
    }
    unsigned at = (head + i) % size;
    d[at] = (struct virtq_desc){a, len,
                                (uint16_t)((i + 1 < parts ? VIRTQ_DESC_F_NEXT : 0) |
                                           (i > 0 && below(2) ? VIRTQ_DESC_F_WRITE : 0)),
                                (uint16_t)((head + i + 1) % size)};
  }
}

/* Writes chain `kind` into the queue's table; returns the heads to publish. */
static unsigned build_chain(struct virtq* vq, enum chain_kind kind, uint16_t* heads) {
  struct virtq_desc* d = vq->desc;
  unsigned size = vq->size, head = (unsigned)below(size), next = (head + 1) % size;
  uint16_t write = below(2) ? VIRTQ_DESC_F_WRITE : 0;
  heads[0] = (uint16_t)head;
  switch (kind) {
    case LOOP:
      d[head] = (struct virtq_desc){buffer_addr(64), 64, VIRTQ_DESC_F_NEXT, (uint16_t)next};
      d[next] = (struct virtq_desc){buffer_addr(64), 64, (uint16_t)(VIRTQ_DESC_F_NEXT | write),
                                    (uint16_t)head};
      return 1;
    case SELF_LOOP:
      d[head] = (struct virtq_desc){buffer_addr(64), 64, (uint16_t)(VIRTQ_DESC_F_NEXT | write),
                                    (uint16_t)head};
      return 1;
    case FAR:
      for (unsigned i = 0, k = 1 + (unsigned)below(3); i < k; ++i) {
        unsigned at = (head + i) % size;
        d[at] = (struct virtq_desc){
            beyond_ram(), (uint32_t)rnd(),
            (uint16_t)((i + 1 < k ? VIRTQ_DESC_F_NEXT : 0) | (below(2) ? VIRTQ_DESC_F_WRITE : 0)),
            (uint16_t)((at + 1) % size)};
      }
      return 1;
    case HUGE_LEN: {
      /* Past the end of RAM from anywhere in the area. */
      uint64_t a = buffer_addr(16);
      uint64_t len = ram_end - a + below(0x100000000ull - (ram_end - a));
      d[head] = (struct virtq_desc){a, (uint32_t)(len > 0xffffffffu ? 0xffffffffu : len), write, 0};
      return 1;
    }
    case INDIRECT_SELF:
      d[head] =
          (struct virtq_desc){phys(d), 16u * size, (uint16_t)(VIRTQ_DESC_F_INDIRECT | write), 0};
      return 1;
    case INDIRECT_BAD: {
      unsigned k = 1 + (unsigned)below(8);
      struct virtq_desc* table = (struct virtq_desc*)(uintptr_t)buffer_addr(16 * 8);
      for (unsigned i = 0; i < k; ++i) {
        table[i] =
            (struct virtq_desc){below(2) ? beyond_ram() : buffer_addr(512), (uint32_t)below(1024),
                                (uint16_t)(rnd() & 7), (uint16_t)(below(2) ? i + 1 : rnd())};
      }
      if (below(2))
        table[below(k)] = (struct virtq_desc){phys(table), 16u * k, VIRTQ_DESC_F_INDIRECT, 0};
      static const uint32_t lens[] = {0, 7, 17, 16, 16 * 8, 0x100000, 0xfffffff0};
      uint32_t len = below(2) ? 16u * k : lens[below(sizeof(lens) / sizeof(lens[0]))];
      uint64_t where = below(4) ? phys(table) : beyond_ram();
      d[head] = (struct virtq_desc){
          where, len, (uint16_t)(VIRTQ_DESC_F_INDIRECT | (below(4) ? 0 : VIRTQ_DESC_F_NEXT)),
          (uint16_t)next};
      return 1;
    }
    case NEXT_PAST_END:
      d[head] = (struct virtq_desc){buffer_addr(64), 64, VIRTQ_DESC_F_NEXT,
                                    (uint16_t)(size + below(0x10000 - size))};
      return 1;
    case GARBAGE:
      for (unsigned i = 0; i < size; ++i) {
        uint32_t len = (uint32_t)below(4096);
        d[i] = (struct virtq_desc){below(2) ? buffer_addr(len) : beyond_ram(), len, (uint16_t)rnd(),
                                   (uint16_t)rnd()};
      }
      return 1;
    case BURST: {
      /* More heads than the queue has, some of them past its end. */
      unsigned k = size + (unsigned)below(2 * size + 1);
      request_chain(d, size, head);
      for (unsigned i = 0; i < k && i < 3 * VIRTQ_MAX_SIZE; ++i) {
        heads[i] = (uint16_t)(below(4) ? below(size) : rnd());
      }
      return k < 3 * VIRTQ_MAX_SIZE ? k : 3 * VIRTQ_MAX_SIZE;
    }
    default:
      request_chain(d, size, head);
      return 1;
  }
}

static void action_chain(void) {
  if (!ntargets) return action_mmio();
  struct target* t = &targets[below(ntargets)];
  struct virtio_dev* dev = &t->dev;
  static struct virtq vq;
  static uint16_t heads[3 * VIRTQ_MAX_SIZE];
  n.chains++;
  restore_pci(t);
  unsigned queues = dev->device_id == VIRTIO_ID_NET ? 2 : 1;
  unsigned q = (unsigned)below(queues);
  unsigned size = 1u << below(9);
  if (!virtio_init(dev, ~VIRTIO_F_RING_PACKED)) {
    n.chains_setup_failed++;
    return;
  }
  uint32_t max = virtio_queue_max(dev, q);
  while (size > max) size >>= 1;
  void* rings = area + 8192 * below(RINGS_BYTES / 8192);
  if (!size || !virtio_setup_queue(dev, &vq, q, size, rings)) {
    n.chains_setup_failed++;
    return;
  }
  virtio_driver_ok(dev);
  unsigned count = build_chain(&vq, (enum chain_kind)below(CHAIN_KINDS), heads);
  for (unsigned i = 0; i < count; ++i) vq.avail->ring[(vq.avail_idx + i) % size] = heads[i];
  __atomic_store_n(&vq.avail->idx, (uint16_t)(vq.avail_idx + (below(8) ? count : rnd())),
                   __ATOMIC_RELEASE);
  dev->ops->notify(dev, q);
  uint64_t deadline = rdtsc() + 400000; /* about 0.1 ms */
  while (__atomic_load_n(&vq.used->idx, __ATOMIC_ACQUIRE) == 0 && !deadline_passed(deadline))
    cpu_relax();
  if (vq.used->idx) n.chains_used++;
  if (below(4) == 0) virtio_reset(dev);
}

/* ---- Setting up and checking afterwards ------------------------------------ */

/* One page per queue: a row of VIRTQ_MEM_SIZE(8) (222) bytes would leave
 * queue 1's rings off the 16-byte alignment the spec requires. */
static uint8_t after_ring[2][4096] __attribute__((aligned(4096)));
_Static_assert(VIRTQ_MEM_SIZE(8) <= sizeof(after_ring[0]), "an after_ring row holds 8 entries");
static uint8_t after_buf[1024] __attribute__((aligned(64)));

static void add_window(struct target* t, uint64_t addr, uint64_t len) {
  if (addr && len && t->nwindows < MAX_WINDOWS)
    t->windows[t->nwindows++] = (struct range){addr, addr + len};
}

static void add_cap(uint8_t* caps, unsigned* count, uint8_t cap) {
  for (unsigned i = 0; i < *count; ++i) {
    if (caps[i] == cap) return;
  }
  if (cap && *count < MAX_CAPS) caps[(*count)++] = cap;
}

static void find_targets(void) {
  static const uint32_t types[] = {VIRTIO_ID_BLOCK, VIRTIO_ID_NET, VIRTIO_ID_RNG};
  for (unsigned i = 0; i < 3; ++i) {
    for (int nth = 0; ntargets < MAX_TARGETS; ++nth) {
      struct target* t = &targets[ntargets];
      if (!virtio_find(types[i], nth, &t->dev)) break;
      if (t->dev.ops == &virtio_pci_ops) {
        struct virtio_pci* p = &t->dev.pci;
        /* MSI-X off for good (virtio_find may have turned it on): the
         * driver then polls, and no random table entry is ever live. */
        if (p->msix_cap) pci_write16(&p->fn, p->msix_cap + MSIX_CONTROL, 0);
        p->msix = false;
        p->nvec = 0;
        add_window(t, p->common.addr, p->common.length);
        add_window(t, p->notify.addr, p->notify.length);
        add_window(t, p->isr.addr, p->isr.length);
        add_window(t, p->device.addr, p->device.length);
        if (p->msix_cap && (p->bars_mapped & (1u << p->table_bir))) {
          add_window(t, p->bars[p->table_bir].addr + p->table_offset,
                     MSIX_ENTRY_BYTES * p->msix_table_size);
        }
        if (p->msix_cap && (p->bars_mapped & (1u << p->pba_bir))) {
          add_window(t, p->bars[p->pba_bir].addr + p->pba_offset, 8);
        }
      } else {
        add_window(t, t->dev.mmio.base, t->dev.mmio.size);
      }
      ntargets++;
    }
  }
  const struct pci_fn* fns;
  int count = pci_functions(&fns);
  for (int i = 0; i < count; ++i) {
    add_cap(msix_caps, &nmsix_caps, pci_find_cap(&fns[i], PCI_CAP_ID_MSIX, 0));
    for (uint8_t cap = pci_find_cap(&fns[i], PCI_CAP_ID_VENDOR, 0); cap;
         cap = pci_find_cap(&fns[i], PCI_CAP_ID_VENDOR, cap)) {
      if (pci_read8(&fns[i], cap + VIRTIO_PCI_CAP_CFG_TYPE) == VIRTIO_PCI_CAP_PCI_CFG) {
        add_cap(pci_cfg_caps, &npci_cfg_caps, cap);
      }
    }
  }
}

static void parse_avoid(void) {
  char spec[128];
  if (!cmdline_get("avoid", spec, sizeof(spec))) return;
  const char* p = spec;
  while (*p && navoid < MAX_AVOID) {
    uint64_t v[2] = {0, 0};
    for (int k = 0; k < 2; ++k) {
      if (p[0] == '0' && p[1] == 'x') p += 2;
      for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); ++p) {
        v[k] = v[k] * 16 + (uint64_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
      }
      if (k == 0 && *p == '-') ++p;
    }
    avoid[navoid++] = (struct range){v[0], v[1] + 1};
    if (*p == ',')
      ++p;
    else
      break;
  }
}

/* COM1 back to 8N1, no interrupts, no loopback, so the summary is seen. */
static void console_restore(void) {
  outb(COM1_PORT + 3, 0x80);
  outb(COM1_PORT + 0, 1);
  outb(COM1_PORT + 1, 0);
  outb(COM1_PORT + 3, 0x03);
  outb(COM1_PORT + 1, 0);
  outb(COM1_PORT + 2, 0x07);
  outb(COM1_PORT + 4, 0x03);
}

/* Reset, VERSION_1 only, one request of the device's kind: it must
 * complete. False with `why` set otherwise. */
static bool works_after(struct target* t, char* why, unsigned size) {
  static struct virtq vq[2];
  struct virtio_dev* dev = &t->dev;
  restore_pci(t);
  if (!virtio_init(dev, VIRTIO_F_VERSION_1)) {
    snprintf(why, size, "init: %s", dev->error);
    return false;
  }
  unsigned queues = dev->device_id == VIRTIO_ID_NET ? 2 : 1;
  for (unsigned q = 0; q < queues; ++q) {
    unsigned entries = 8;
    while (entries > virtio_queue_max(dev, q)) entries >>= 1;
    if (!entries || !virtio_setup_queue(dev, &vq[q], q, entries, after_ring[q])) {
      snprintf(why, size, "queue %u: %s", q, entries ? dev->error : "QueueNumMax 0");
      return false;
    }
  }
  virtio_driver_ok(dev);
  memset(after_buf, 0, sizeof(after_buf));
  struct virtq_buf bufs[3];
  unsigned nbufs = 1;
  struct virtq* used_vq = &vq[0];
  if (dev->device_id == VIRTIO_ID_BLOCK) { /* IN of sector 0: header, data, status */
    after_buf[64] = 0xff;
    bufs[0] = (struct virtq_buf){phys(after_buf), 16, false};
    bufs[1] = (struct virtq_buf){phys(after_buf + 512), 512, true};
    bufs[2] = (struct virtq_buf){phys(after_buf + 64), 1, true};
    nbufs = 3;
  } else if (dev->device_id == VIRTIO_ID_NET) { /* header, then a 60-byte broadcast frame */
    memset(after_buf + 12, 0xff, 12);
    bufs[0] = (struct virtq_buf){phys(after_buf), 12 + 60, false};
    used_vq = &vq[1];
  } else {
    bufs[0] = (struct virtq_buf){phys(after_buf), 64, true};
  }
  uint32_t len = 0;
  if (!virtq_submit_wait(used_vq, bufs, nbufs, &len, 1000)) {
    snprintf(why, size, "request: %s", used_vq->error);
    return false;
  }
  bool ok = dev->device_id == VIRTIO_ID_BLOCK ? after_buf[64] == 0 && len == 513
            : dev->device_id == VIRTIO_ID_RNG ? len > 0 && len <= 64
                                              : true;
  snprintf(why, size, "status %u, used len %u", after_buf[64], len);
  virtio_reset(dev);
  return ok;
}

static void check_after(struct target* t) {
  char check[32], why[128];
  snprintf(check, sizeof(check), "chaos_after_%s", virtio_device_name(t->dev.device_id));
  bool ok = works_after(t, why, sizeof(why));
  expect(ok, check, "%s", why);
}

void test_chaos(void) {
  uint64_t seed = cmdline_u64("seed", 1);
  uint64_t count = cmdline_u64("count", DEFAULT_COUNT);
  uint64_t every = cmdline_u64("every", PROGRESS_EVERY);
  state = seed ? seed : 1;
  ram_end = boot.mem_bytes && boot.mem_bytes < MMIO_HOLE_START ? boot.mem_bytes : MMIO_HOLE_START;
  parse_avoid();
  find_targets();
  fill_decoy();
  printf("chaos: seed=%lu count=%lu targets=%u ram_end=0x%lx msix_caps=%u pci_cfg_caps=%u\n", seed,
         count, ntargets, ram_end, nmsix_caps, npci_cfg_caps);
  char only[16] = "";
  cmdline_get("only", only, sizeof(only));
  static const struct {
    const char* name;
    unsigned lo, hi;
  } kinds[] = {{"pio", 0, 38},     {"fwcfg", 38, 40},  {"mmio", 40, 55},
               {"config", 55, 70}, {"virtio", 70, 99}, {"chain", 99, 100}};
  unsigned lo = 0, hi = 100;
  for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); ++k) {
    if (strcmp(only, kinds[k].name) == 0) lo = kinds[k].lo, hi = kinds[k].hi;
  }
  for (uint64_t i = 1; i <= count; ++i) {
    unsigned r = lo + (unsigned)below(hi - lo);
    if (r < 38)
      action_pio();
    else if (r < 40)
      action_fwcfg();
    else if (r < 55)
      action_mmio();
    else if (r < 70)
      action_config();
    else if (r < 99)
      action_virtio();
    else
      action_chain();
    if ((every && i % every == 0) || i == count) {
      console_restore();
      printf("\nchaos: %lu actions\n", i);
    }
  }
  console_restore();
  printf("\nchaos: pio reads=%lu writes=%lu strings=%lu refused=%lu; fw_cfg dma=%lu\n", n.pio_reads,
         n.pio_writes, n.pio_strings, n.pio_refused, n.fw_cfg_dma);
  printf(
      "chaos: mmio reads=%lu writes=%lu decoys=%lu; config accesses=%lu; virtio reads=%lu "
      "writes=%lu\n",
      n.mmio_reads, n.mmio_writes, n.mmio_decoys, n.cfg_accesses, n.virtio_reads, n.virtio_writes);
  printf("chaos: chains=%lu used=%lu setup_failed=%lu\n", n.chains, n.chains_used,
         n.chains_setup_failed);
  for (unsigned i = 0; i < ntargets; ++i) check_after(&targets[i]);
  printf("chaos: done seed=%lu actions=%lu\n", seed, count);
}
