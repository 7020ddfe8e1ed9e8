/* virtio-mmio registers behind virtio_transport.h's operations (see
 * virtio_mmio.h). Command-line parsing is in virtio_mmio_cmdline.c. */
#include "virtio_mmio.h"

#include "arch.h"
#include "lib.h"
#include "virtio_transport.h"

uint32_t virtio_mmio_read(const struct virtio_mmio* m, uint32_t reg) {
  return mmio_read32(m->base + reg);
}

void virtio_mmio_write(const struct virtio_mmio* m, uint32_t reg, uint32_t v) {
  mmio_write32(m->base + reg, v);
}

int virtio_mmio_find(uint32_t device_id, int nth, struct virtio_dev* dev, int* found) {
  struct virtio_mmio_slot slots[VIRTIO_MMIO_MAX_DEVICES];
  int n = virtio_mmio_slots(slots, VIRTIO_MMIO_MAX_DEVICES, NULL);
  *found = 0;
  for (int i = 0; i < n && i < VIRTIO_MMIO_MAX_DEVICES; ++i) {
    if (mmio_read32(slots[i].base + VIRTIO_MMIO_DEVICE_ID) != device_id) continue;
    if ((*found)++ != nth) continue;
    dev->ops = &virtio_mmio_ops;
    dev->mmio =
        (struct virtio_mmio){.base = slots[i].base, .size = slots[i].size, .irq = slots[i].irq};
    return 1;
  }
  return 0;
}

static uint32_t rd(struct virtio_dev* d, uint32_t reg) { return virtio_mmio_read(&d->mmio, reg); }
static void wr(struct virtio_dev* d, uint32_t reg, uint32_t v) {
  virtio_mmio_write(&d->mmio, reg, v);
}

static bool check(struct virtio_dev* d) {
  uint32_t magic = rd(d, VIRTIO_MMIO_MAGIC_VALUE);
  uint32_t version = rd(d, VIRTIO_MMIO_VERSION);
  if (magic != VIRTIO_MMIO_MAGIC) {
    snprintf(d->error, sizeof(d->error), "MagicValue 0x%x at 0x%lx, want 0x%x", magic, d->mmio.base,
             VIRTIO_MMIO_MAGIC);
    return false;
  }
  if (version != VIRTIO_MMIO_VERSION_MODERN) {
    snprintf(d->error, sizeof(d->error), "Version %u, only %u (modern) is supported", version,
             VIRTIO_MMIO_VERSION_MODERN);
    return false;
  }
  return true;
}

static uint32_t get_status(struct virtio_dev* d) { return rd(d, VIRTIO_MMIO_STATUS); }
static void set_status(struct virtio_dev* d, uint32_t status) { wr(d, VIRTIO_MMIO_STATUS, status); }

static uint64_t get_features(struct virtio_dev* d) {
  wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  uint64_t f = (uint64_t)rd(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
  wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  return f | rd(d, VIRTIO_MMIO_DEVICE_FEATURES);
}

static void set_features(struct virtio_dev* d, uint64_t f) {
  wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
  wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

static uint32_t queue_max(struct virtio_dev* d, unsigned index) {
  wr(d, VIRTIO_MMIO_QUEUE_SEL, index);
  return rd(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
}

static uint32_t queue_ready(struct virtio_dev* d, unsigned index) {
  wr(d, VIRTIO_MMIO_QUEUE_SEL, index);
  return rd(d, VIRTIO_MMIO_QUEUE_READY);
}

static void write_addr(struct virtio_dev* d, uint32_t low_reg, const void* p) {
  uint64_t a = VIRT_TO_PHYS(p);
  wr(d, low_reg, (uint32_t)a);
  wr(d, low_reg + 4, (uint32_t)(a >> 32));
}

static bool queue_setup(struct virtio_dev* d, struct virtq* vq) {
  wr(d, VIRTIO_MMIO_QUEUE_SEL, vq->index);
  wr(d, VIRTIO_MMIO_QUEUE_NUM, vq->size);
  write_addr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, vq->desc);
  write_addr(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, vq->avail);
  write_addr(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, vq->used);
  wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
  uint32_t ready = rd(d, VIRTIO_MMIO_QUEUE_READY);
  if (ready != 1) {
    snprintf(d->error, sizeof(d->error), "queue %u: QueueReady reads %u after writing 1", vq->index,
             ready);
    return false;
  }
  return true;
}

static void notify(struct virtio_dev* d, unsigned index) { wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, index); }

static uint32_t isr(struct virtio_dev* d) {
  uint32_t bits = rd(d, VIRTIO_MMIO_INTERRUPT_STATUS);
  if (bits) wr(d, VIRTIO_MMIO_INTERRUPT_ACK, bits);
  return bits;
}

static uint8_t config8(struct virtio_dev* d, uint32_t offset) {
  return *(volatile uint8_t*)(d->mmio.base + VIRTIO_MMIO_CONFIG + offset);
}

static uint16_t config16(struct virtio_dev* d, uint32_t offset) {
  return *(volatile uint16_t*)(d->mmio.base + VIRTIO_MMIO_CONFIG + offset);
}

static uint32_t config32(struct virtio_dev* d, uint32_t offset) {
  return mmio_read32(d->mmio.base + VIRTIO_MMIO_CONFIG + offset);
}

static uint32_t generation(struct virtio_dev* d) { return rd(d, VIRTIO_MMIO_CONFIG_GENERATION); }

static void describe(struct virtio_dev* d, char* where, unsigned size) {
  snprintf(where, size, "mmio 0x%lx irq %u", d->mmio.base, d->mmio.irq);
}

const struct virtio_ops virtio_mmio_ops = {
    .name = "mmio",
    .check = check,
    .get_status = get_status,
    .set_status = set_status,
    .get_features = get_features,
    .set_features = set_features,
    .queue_max = queue_max,
    .queue_ready = queue_ready,
    .queue_setup = queue_setup,
    .notify = notify,
    .isr = isr,
    .config8 = config8,
    .config16 = config16,
    .config32 = config32,
    .generation = generation,
    .describe = describe,
};
