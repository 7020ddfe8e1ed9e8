/* virtio-pci modern transport behind virtio_transport.h's operations (see
 * virtio_pci.h): capability parsing, BARs, MSI-X, and the common cfg,
 * notify, ISR and device cfg structures. */
#include "virtio_pci.h"

#include "apic.h"
#include "arch.h"
#include "boot.h"
#include "lib.h"
#include "traps.h"
#include "virtio_transport.h"

#define MSI_ADDRESS_BASE 0xfee00000u /* physical destination, fixed delivery */

static uint8_t next_vector = VEC_VIRTIO_FIRST;

/* First virtio vendor capability of `type` we can use (its BAR a memory
 * BAR 0..5: 4.1.4 lets a driver skip the others); 0 when there is none. */
static uint8_t vendor_cap(const struct pci_fn* f, uint8_t type) {
  for (uint8_t cap = 0; (cap = pci_find_cap(f, PCI_CAP_ID_VENDOR, cap)) != 0;) {
    if (pci_read8(f, cap + VIRTIO_PCI_CAP_CFG_TYPE) != type) continue;
    if (pci_read8(f, cap + VIRTIO_PCI_CAP_LEN) < 16) continue;
    uint8_t bar = pci_read8(f, cap + VIRTIO_PCI_CAP_BAR);
    if (type == VIRTIO_PCI_CAP_PCI_CFG)
      return cap; /* its bar field is the window's, not a mapping */
    if (bar > 5 || (pci_read32(f, (uint8_t)(PCI_BAR0 + 4 * bar)) & 1)) continue;
    return cap;
  }
  return 0;
}

int virtio_pci_type(const struct pci_fn* f) {
  if (f->vendor != VIRTIO_PCI_VENDOR || (f->header_type & 0x7f) != 0) return -1;
  if (f->device >= VIRTIO_PCI_DEVICE_MODERN && f->device < VIRTIO_PCI_DEVICE_MODERN + 0x40) {
    return f->device - VIRTIO_PCI_DEVICE_MODERN;
  }
  /* Transitional: only the modern interface is driven here (4.1.2.1). */
  if (f->device >= VIRTIO_PCI_DEVICE_TRANSITIONAL && f->device < VIRTIO_PCI_DEVICE_MODERN &&
      vendor_cap(f, VIRTIO_PCI_CAP_COMMON_CFG)) {
    return f->subsys_id;
  }
  return -1;
}

#define P(d) (&(d)->pci)
#define FN(d) (&(d)->pci.fn)

static void bdf(const struct pci_fn* f, char* out) {
  snprintf(out, 8, "00:%02x.%x", f->dev, f->fn);
}

/* Reads BAR `i` once (giving it an address if needed); false with error set. */
static bool map_bar(struct virtio_dev* d, unsigned i) {
  struct virtio_pci* p = P(d);
  if (p->bars_mapped & (1u << i)) return true;
  char why[96];
  if (!pci_bar_map(FN(d), i, &p->bars[i], why, sizeof(why))) {
    snprintf(d->error, sizeof(d->error), "%s", why);
    return false;
  }
  p->bars_mapped |= 1u << i;
  const struct pci_bar* b = &p->bars[i];
  if (b->assigned) {
    char where[8];
    bdf(FN(d), where);
    if (b->old) {
      printf(
          "virtio-pci %s: bar%u at 0x%lx is beyond the 4 GiB identity map: moved to 0x%lx (0x%lx "
          "bytes)\n",
          where, i, b->old, b->addr, b->size);
    } else {
      printf("virtio-pci %s: bar%u unassigned: assigned 0x%lx (0x%lx bytes)\n", where, i, b->addr,
             b->size);
    }
  }
  return true;
}

/* The structure behind vendor capability `type`; `min` bytes at least. */
static bool region(struct virtio_dev* d, uint8_t type, const char* name, uint32_t min,
                   bool required, struct virtio_pci_region* r) {
  const struct pci_fn* f = FN(d);
  uint8_t cap = vendor_cap(f, type);
  *r = (struct virtio_pci_region){0};
  if (!cap) {
    if (required)
      snprintf(d->error, sizeof(d->error), "no %s capability (cfg_type %u)", name, type);
    return !required;
  }
  r->bar = pci_read8(f, cap + VIRTIO_PCI_CAP_BAR);
  r->offset = pci_read32(f, cap + VIRTIO_PCI_CAP_OFFSET);
  r->length = pci_read32(f, cap + VIRTIO_PCI_CAP_LENGTH);
  if (r->length < min) {
    snprintf(d->error, sizeof(d->error), "%s capability: length %u, at least %u needed", name,
             r->length, min);
    return false;
  }
  if (!map_bar(d, r->bar)) return false;
  const struct pci_bar* b = &P(d)->bars[r->bar];
  if ((uint64_t)r->offset + r->length > b->size) {
    snprintf(d->error, sizeof(d->error),
             "%s capability: 0x%x bytes at 0x%x beyond bar%u (0x%lx bytes)", name, r->length,
             r->offset, r->bar, b->size);
    return false;
  }
  r->addr = b->addr + r->offset;
  r->present = true;
  return true;
}

static bool msix_off(void) {
  char v[8] = "";
  return cmdline_get("msix", v, sizeof(v)) && strcmp(v, "off") == 0;
}

/* MSI-X on, one entry per vector used, each to its own IDT vector on this
 * CPU; left off (and turned off if firmware had it on) with msix=off. */
static bool setup_msix(struct virtio_dev* d) {
  struct virtio_pci* p = P(d);
  const struct pci_fn* f = FN(d);
  uint8_t cap = p->msix_cap = pci_find_cap(f, PCI_CAP_ID_MSIX, 0);
  if (!cap) return true;
  uint16_t ctrl = pci_read16(f, cap + MSIX_CONTROL);
  uint32_t table = pci_read32(f, cap + MSIX_TABLE), pba = pci_read32(f, cap + MSIX_PBA);
  p->msix_table_size = (ctrl & MSIX_CONTROL_SIZE) + 1;
  p->table_bir = table & 7;
  p->table_offset = table & ~7u;
  p->pba_bir = pba & 7;
  p->pba_offset = pba & ~7u;
  if (msix_off()) {
    if (ctrl & MSIX_CONTROL_ENABLE) pci_write16(f, cap + MSIX_CONTROL, ctrl & ~MSIX_CONTROL_ENABLE);
    return true;
  }
  if (p->table_bir > 5 || p->pba_bir > 5) {
    snprintf(d->error, sizeof(d->error), "MSI-X table BIR %u, PBA BIR %u: want 0..5", p->table_bir,
             p->pba_bir);
    return false;
  }
  if (!map_bar(d, p->table_bir) || !map_bar(d, p->pba_bir)) return false;
  const struct pci_bar* tb = &p->bars[p->table_bir];
  if ((uint64_t)p->table_offset + p->msix_table_size * MSIX_ENTRY_BYTES > tb->size) {
    snprintf(d->error, sizeof(d->error),
             "MSI-X table of %u entries at 0x%x beyond bar%u (0x%lx bytes)", p->msix_table_size,
             p->table_offset, p->table_bir, tb->size);
    return false;
  }
  p->nvec =
      p->msix_table_size < VIRTIO_PCI_VECTORS_MAX ? p->msix_table_size : VIRTIO_PCI_VECTORS_MAX;
  if (next_vector + p->nvec > VEC_VIRTIO_FIRST + VEC_VIRTIO_COUNT) {
    snprintf(d->error, sizeof(d->error), "out of IDT vectors for MSI-X (%u wanted)", p->nvec);
    return false;
  }
  p->vec_base = next_vector;
  next_vector += p->nvec;

  lapic_enable(); /* a software-disabled LAPIC would drop the messages */
  uint32_t apic = lapic_id();
  /* Function-masked while the table is written, so no entry fires half-set. */
  pci_write16(f, cap + MSIX_CONTROL, ctrl | MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK);
  uint64_t t = tb->addr + p->table_offset;
  for (unsigned i = 0; i < p->nvec; ++i) {
    uint64_t e = t + i * MSIX_ENTRY_BYTES;
    mmio_write32(e + 0, MSI_ADDRESS_BASE | apic << 12);
    mmio_write32(e + 4, 0);
    mmio_write32(e + 8, p->vec_base + i);
    mmio_write32(e + 12, 0); /* unmasked */
  }
  for (unsigned i = 0; i < p->nvec; ++i) {
    uint64_t e = t + i * MSIX_ENTRY_BYTES;
    uint32_t addr = mmio_read32(e), data = mmio_read32(e + 8), vc = mmio_read32(e + 12);
    if (addr != (MSI_ADDRESS_BASE | apic << 12) || data != p->vec_base + i ||
        (vc & MSIX_ENTRY_CONTROL_MASKED)) {
      snprintf(d->error, sizeof(d->error),
               "MSI-X entry %u reads address 0x%x data 0x%x control 0x%x after writing", i, addr,
               data, vc);
      return false;
    }
  }
  pci_write16(f, cap + MSIX_CONTROL, (ctrl | MSIX_CONTROL_ENABLE) & ~MSIX_CONTROL_FUNCTION_MASK);
  p->msix = true;
  /* Polling stays the way completions are found; interrupts are counted.
   * Ring 3 takes them with IF set (kvm_pvm delivers them regardless). */
  irq_enable();
  return true;
}

static bool probe(struct virtio_dev* d) {
  struct virtio_pci* p = P(d);
  const struct pci_fn* f = FN(d);
  char where[8];
  bdf(f, where);
  if (!region(d, VIRTIO_PCI_CAP_COMMON_CFG, "common cfg", VIRTIO_PCI_COMMON_MIN_LEN, true,
              &p->common) ||
      !region(d, VIRTIO_PCI_CAP_NOTIFY_CFG, "notify", 2, true, &p->notify) ||
      !region(d, VIRTIO_PCI_CAP_ISR_CFG, "ISR", 1, true, &p->isr) ||
      !region(d, VIRTIO_PCI_CAP_DEVICE_CFG, "device cfg", 0, false, &p->device)) {
    return false;
  }
  uint8_t ncap = vendor_cap(f, VIRTIO_PCI_CAP_NOTIFY_CFG);
  if (pci_read8(f, ncap + VIRTIO_PCI_CAP_LEN) < 20) {
    snprintf(d->error, sizeof(d->error), "notify capability of %u bytes: no notify_off_multiplier",
             pci_read8(f, ncap + VIRTIO_PCI_CAP_LEN));
    return false;
  }
  p->notify_mult = pci_read32(f, ncap + VIRTIO_PCI_NOTIFY_MULTIPLIER);
  p->pci_cfg_cap = vendor_cap(f, VIRTIO_PCI_CAP_PCI_CFG);
  if (!setup_msix(d)) return false;
  printf(
      "virtio-pci %s: %04x:%04x rev %u subsystem %04x:%04x: common bar%u+0x%x notify bar%u+0x%x "
      "(x%u) "
      "isr bar%u+0x%x device ",
      where, f->vendor, f->device, f->revision, f->subsys_vendor, f->subsys_id, p->common.bar,
      p->common.offset, p->notify.bar, p->notify.offset, p->notify_mult, p->isr.bar, p->isr.offset);
  if (p->device.present)
    printf("bar%u+0x%x", p->device.bar, p->device.offset);
  else
    printf("none");
  if (p->msix_cap) {
    printf(" msix table bar%u+0x%x pba bar%u+0x%x (%u entries)\n", p->table_bir, p->table_offset,
           p->pba_bir, p->pba_offset, p->msix_table_size);
  } else {
    printf(" no msix\n");
  }
  return true;
}

int virtio_pci_find(uint32_t device_id, int nth, struct virtio_dev* dev, int* found) {
  const struct pci_fn* fns;
  int n = pci_functions(&fns);
  *found = 0;
  for (int k = 0; k < n; ++k) {
    if (virtio_pci_type(&fns[k]) != (int)device_id) continue;
    if ((*found)++ != nth) continue;
    dev->ops = &virtio_pci_ops;
    dev->pci.fn = fns[k];
    if (probe(dev)) return 1;
    char where[8], why[sizeof(dev->error)];
    bdf(&fns[k], where);
    memcpy(why, dev->error, sizeof(why));
    snprintf(dev->error, sizeof(dev->error), "virtio-pci %s: %s", where, why);
    return -1;
  }
  return 0;
}

/* Common cfg fields, each at its own width (4.1.3.1). */
static uint8_t r8(struct virtio_dev* d, uint32_t off) {
  return *(volatile uint8_t*)(P(d)->common.addr + off);
}
static uint16_t r16(struct virtio_dev* d, uint32_t off) {
  return *(volatile uint16_t*)(P(d)->common.addr + off);
}
static uint32_t r32(struct virtio_dev* d, uint32_t off) {
  return mmio_read32(P(d)->common.addr + off);
}
static void w8(struct virtio_dev* d, uint32_t off, uint8_t v) {
  *(volatile uint8_t*)(P(d)->common.addr + off) = v;
}
static void w16(struct virtio_dev* d, uint32_t off, uint16_t v) {
  *(volatile uint16_t*)(P(d)->common.addr + off) = v;
}
static void w32(struct virtio_dev* d, uint32_t off, uint32_t v) {
  mmio_write32(P(d)->common.addr + off, v);
}

static bool check(struct virtio_dev* d) {
  (void)d; /* the capabilities were checked when it was found */
  return true;
}

static uint32_t get_status(struct virtio_dev* d) { return r8(d, VIRTIO_PCI_COMMON_STATUS); }
static void set_status(struct virtio_dev* d, uint32_t status) {
  w8(d, VIRTIO_PCI_COMMON_STATUS, (uint8_t)status);
}

static uint64_t get_features(struct virtio_dev* d) {
  w32(d, VIRTIO_PCI_COMMON_DFSELECT, 1);
  uint64_t f = (uint64_t)r32(d, VIRTIO_PCI_COMMON_DF) << 32;
  w32(d, VIRTIO_PCI_COMMON_DFSELECT, 0);
  return f | r32(d, VIRTIO_PCI_COMMON_DF);
}

static void set_features(struct virtio_dev* d, uint64_t f) {
  w32(d, VIRTIO_PCI_COMMON_GFSELECT, 0);
  w32(d, VIRTIO_PCI_COMMON_GF, (uint32_t)f);
  w32(d, VIRTIO_PCI_COMMON_GFSELECT, 1);
  w32(d, VIRTIO_PCI_COMMON_GF, (uint32_t)(f >> 32));
}

/* Writes a vector to a *_msix_vector field and checks it stuck. */
static bool set_vector(struct virtio_dev* d, uint32_t reg, uint16_t v, const char* what) {
  w16(d, reg, v);
  uint16_t got = r16(d, reg);
  if (got != v) {
    snprintf(d->error, sizeof(d->error), "%s reads 0x%x after writing %u%s", what, got, v,
             got == VIRTIO_MSI_NO_VECTOR ? " (NO_VECTOR: the device refused it)" : "");
    return false;
  }
  return true;
}

static bool config_irq(struct virtio_dev* d) {
  return !P(d)->msix || set_vector(d, VIRTIO_PCI_COMMON_MSIX, 0, "config_msix_vector");
}

static uint32_t queue_max(struct virtio_dev* d, unsigned index) {
  if (index >= r16(d, VIRTIO_PCI_COMMON_NUMQ)) return 0;
  w16(d, VIRTIO_PCI_COMMON_Q_SELECT, (uint16_t)index);
  return r16(d, VIRTIO_PCI_COMMON_Q_SIZE);
}

static uint32_t queue_ready(struct virtio_dev* d, unsigned index) {
  w16(d, VIRTIO_PCI_COMMON_Q_SELECT, (uint16_t)index);
  return r16(d, VIRTIO_PCI_COMMON_Q_ENABLE);
}

static void write64(struct virtio_dev* d, uint32_t reg, const void* ptr) {
  uint64_t a = VIRT_TO_PHYS(ptr);
  w32(d, reg, (uint32_t)a);
  w32(d, reg + 4, (uint32_t)(a >> 32));
}

static bool queue_setup(struct virtio_dev* d, struct virtq* vq) {
  struct virtio_pci* p = P(d);
  unsigned q = vq->index;
  if (q >= VIRTIO_PCI_QUEUES_MAX) {
    snprintf(d->error, sizeof(d->error), "queue %u: this driver sets up queues 0..%u only", q,
             VIRTIO_PCI_QUEUES_MAX - 1);
    return false;
  }
  w16(d, VIRTIO_PCI_COMMON_Q_SELECT, (uint16_t)q);
  w16(d, VIRTIO_PCI_COMMON_Q_SIZE, vq->size);
  uint16_t size = r16(d, VIRTIO_PCI_COMMON_Q_SIZE);
  if (size != vq->size) {
    snprintf(d->error, sizeof(d->error), "queue %u: queue_size reads %u after writing %u", q, size,
             vq->size);
    return false;
  }
  if (p->msix) {
    char what[32];
    snprintf(what, sizeof(what), "queue %u: queue_msix_vector", q);
    uint16_t v = (uint16_t)(1 + q < p->nvec ? 1 + q : p->nvec - 1);
    if (!set_vector(d, VIRTIO_PCI_COMMON_Q_MSIX, v, what)) return false;
  }
  write64(d, VIRTIO_PCI_COMMON_Q_DESCLO, vq->desc);
  write64(d, VIRTIO_PCI_COMMON_Q_AVAILLO, vq->avail);
  write64(d, VIRTIO_PCI_COMMON_Q_USEDLO, vq->used);
  uint64_t off = (uint64_t)r16(d, VIRTIO_PCI_COMMON_Q_NOFF) * p->notify_mult;
  if (off + 2 > p->notify.length) {
    snprintf(d->error, sizeof(d->error),
             "queue %u: notify offset 0x%lx beyond the 0x%x-byte notify region", q, off,
             p->notify.length);
    return false;
  }
  p->notify_addr[q] = p->notify.addr + off;
  w16(d, VIRTIO_PCI_COMMON_Q_ENABLE, 1);
  uint16_t enabled = r16(d, VIRTIO_PCI_COMMON_Q_ENABLE);
  if (enabled != 1) {
    snprintf(d->error, sizeof(d->error), "queue %u: queue_enable reads %u after writing 1", q,
             enabled);
    return false;
  }
  return true;
}

static void notify(struct virtio_dev* d, unsigned index) {
  *(volatile uint16_t*)P(d)->notify_addr[index] = (uint16_t)index;
}

static uint32_t isr(struct virtio_dev* d) {
  return *(volatile uint8_t*)P(d)->isr.addr; /* read clears */
}

static uint64_t count(const struct virtio_pci* p, unsigned from, unsigned to) {
  uint64_t n = 0;
  for (unsigned i = from; i < to; ++i) n += virtio_irqs[p->vec_base - VEC_VIRTIO_FIRST + i];
  return n;
}

/* With MSI-X the driver should not read ISR (4.1.4.5.2): the counters say
 * which kind of message came. One shared vector counts as a queue's. */
static uint32_t ack(struct virtio_dev* d) {
  struct virtio_pci* p = P(d);
  if (!p->msix) return isr(d);
  uint64_t config = p->nvec > 1 ? count(p, 0, 1) : 0,
           queues = count(p, p->nvec > 1 ? 1 : 0, p->nvec);
  uint32_t bits = (queues != p->seen_queues ? VIRTIO_INT_VRING : 0) |
                  (config != p->seen_config ? VIRTIO_INT_CONFIG : 0);
  p->seen_queues = queues;
  p->seen_config = config;
  return bits;
}

static void mask(struct virtio_dev* d, bool masked) {
  struct virtio_pci* p = P(d);
  if (!p->msix) return;
  uint8_t reg = p->msix_cap + MSIX_CONTROL;
  uint16_t ctrl = pci_read16(FN(d), reg);
  pci_write16(FN(d), reg,
              masked ? ctrl | MSIX_CONTROL_FUNCTION_MASK : ctrl & ~MSIX_CONTROL_FUNCTION_MASK);
}

static void report(struct virtio_dev* d) {
  struct virtio_pci* p = P(d);
  if (!p->msix) {
    printf("virtio: msix off (%s)\n", p->msix_cap ? "msix=off" : "no MSI-X capability");
    return;
  }
  uint64_t config = p->nvec > 1 ? count(p, 0, 1) : 0, total = count(p, 0, p->nvec);
  printf("virtio: msix interrupts=%lu (config %lu, queues %lu)\n", total, config, total - config);
}

/* Device cfg reads; outside the structure they read as zero. */
static bool in_device(struct virtio_dev* d, uint32_t offset, uint32_t width) {
  return P(d)->device.present && (uint64_t)offset + width <= P(d)->device.length;
}

static uint8_t config8(struct virtio_dev* d, uint32_t offset) {
  return in_device(d, offset, 1) ? *(volatile uint8_t*)(P(d)->device.addr + offset) : 0;
}

static uint16_t config16(struct virtio_dev* d, uint32_t offset) {
  return in_device(d, offset, 2) ? *(volatile uint16_t*)(P(d)->device.addr + offset) : 0;
}

static uint32_t config32(struct virtio_dev* d, uint32_t offset) {
  return in_device(d, offset, 4) ? mmio_read32(P(d)->device.addr + offset) : 0;
}

static uint32_t generation(struct virtio_dev* d) { return r8(d, VIRTIO_PCI_COMMON_CFGGENERATION); }

static void describe(struct virtio_dev* d, char* where, unsigned size) {
  struct virtio_pci* p = P(d);
  char at[8];
  bdf(FN(d), at);
  char msix[24];
  if (p->msix)
    snprintf(msix, sizeof(msix), "msix %u vectors", p->nvec);
  else
    snprintf(msix, sizeof(msix), "msix off");
  snprintf(where, size, "pci %s bar%u 0x%lx %s", at, p->common.bar, p->bars[p->common.bar].addr,
           msix);
}

const struct virtio_ops virtio_pci_ops = {
    .name = "pci",
    .check = check,
    .get_status = get_status,
    .set_status = set_status,
    .get_features = get_features,
    .set_features = set_features,
    .config_irq = config_irq,
    .queue_max = queue_max,
    .queue_ready = queue_ready,
    .queue_setup = queue_setup,
    .notify = notify,
    .isr = isr,
    .ack = ack,
    .mask = mask,
    .report = report,
    .config8 = config8,
    .config16 = config16,
    .config32 = config32,
    .generation = generation,
    .describe = describe,
};
