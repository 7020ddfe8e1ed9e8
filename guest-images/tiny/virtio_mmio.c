/* virtio-mmio registers: device initialisation, queue setup, doorbell and
 * interrupt acknowledgement (see virtio_mmio.h). Command-line parsing is in
 * virtio_mmio_cmdline.c. */
#include "virtio_mmio.h"

#include "arch.h"
#include "lib.h"
#include "test.h"

uint32_t virtio_mmio_read(const struct virtio_mmio *dev, uint32_t reg) {
  return mmio_read32(dev->base + reg);
}

void virtio_mmio_write(const struct virtio_mmio *dev, uint32_t reg, uint32_t v) {
  mmio_write32(dev->base + reg, v);
}

bool virtio_mmio_find(uint32_t device_id, int nth, struct virtio_mmio *dev) {
  struct virtio_mmio_slot slots[VIRTIO_MMIO_MAX_DEVICES];
  int n = virtio_mmio_slots(slots, VIRTIO_MMIO_MAX_DEVICES, NULL);
  for (int i = 0; i < n && i < VIRTIO_MMIO_MAX_DEVICES; ++i) {
    if (mmio_read32(slots[i].base + VIRTIO_MMIO_DEVICE_ID) == device_id && nth-- == 0) {
      memset(dev, 0, sizeof(*dev));
      dev->base = slots[i].base;
      dev->size = slots[i].size;
      dev->irq = slots[i].irq;
      return true;
    }
  }
  return false;
}

bool virtio_mmio_reset(struct virtio_mmio *dev) {
  virtio_mmio_write(dev, VIRTIO_MMIO_STATUS, 0);
  /* The device may finish a reset asynchronously (4.2.3.1.1 / 2.4.1). */
  uint64_t deadline = deadline_ms(1000);
  uint32_t status;
  while ((status = virtio_mmio_read(dev, VIRTIO_MMIO_STATUS)) != 0) {
    if (deadline_passed(deadline)) {
      snprintf(dev->error, sizeof(dev->error), "Status still 0x%x 1 s after writing 0 (reset)", status);
      return false;
    }
    cpu_relax();
  }
  return true;
}

static void set_status(struct virtio_mmio *dev, uint32_t bits) {
  virtio_mmio_write(dev, VIRTIO_MMIO_STATUS, virtio_mmio_read(dev, VIRTIO_MMIO_STATUS) | bits);
}

static bool fail(struct virtio_mmio *dev) {
  set_status(dev, VIRTIO_STATUS_FAILED); /* the driver gave up on it (2.1) */
  return false;
}

bool virtio_mmio_init(struct virtio_mmio *dev, uint64_t wanted) {
  uint32_t magic = virtio_mmio_read(dev, VIRTIO_MMIO_MAGIC_VALUE);
  uint32_t version = virtio_mmio_read(dev, VIRTIO_MMIO_VERSION);
  if (magic != VIRTIO_MMIO_MAGIC) {
    snprintf(dev->error, sizeof(dev->error), "MagicValue 0x%x at 0x%lx, want 0x%x", magic, dev->base,
             VIRTIO_MMIO_MAGIC);
    return false;
  }
  if (version != VIRTIO_MMIO_VERSION_MODERN) {
    snprintf(dev->error, sizeof(dev->error), "Version %u, only %u (modern) is supported", version,
             VIRTIO_MMIO_VERSION_MODERN);
    return false;
  }
  if (!virtio_mmio_reset(dev)) return false;
  set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
  set_status(dev, VIRTIO_STATUS_DRIVER);

  virtio_mmio_write(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  uint64_t offered = (uint64_t)virtio_mmio_read(dev, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
  virtio_mmio_write(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  offered |= virtio_mmio_read(dev, VIRTIO_MMIO_DEVICE_FEATURES);
  dev->device_features = offered;
  if (!(offered & VIRTIO_F_VERSION_1)) {
    snprintf(dev->error, sizeof(dev->error), "device features 0x%lx lack VERSION_1 (bit 32)", offered);
    return fail(dev);
  }
  uint64_t accept = offered & wanted;
  if (!(accept & VIRTIO_F_VERSION_1)) {
    snprintf(dev->error, sizeof(dev->error), "driver must accept VERSION_1 (wanted 0x%lx)", wanted);
    return fail(dev);
  }
  virtio_mmio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  virtio_mmio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)accept);
  virtio_mmio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  virtio_mmio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(accept >> 32));
  dev->features = accept;

  set_status(dev, VIRTIO_STATUS_FEATURES_OK);
  uint32_t status = virtio_mmio_read(dev, VIRTIO_MMIO_STATUS);
  if (!(status & VIRTIO_STATUS_FEATURES_OK)) {
    snprintf(dev->error, sizeof(dev->error), "device refused features 0x%lx (Status 0x%x)", accept,
             status);
    return fail(dev);
  }
  return true;
}

uint32_t virtio_mmio_queue_max(struct virtio_mmio *dev, unsigned index) {
  virtio_mmio_write(dev, VIRTIO_MMIO_QUEUE_SEL, index);
  return virtio_mmio_read(dev, VIRTIO_MMIO_QUEUE_NUM_MAX);
}

static void mmio_notify(struct virtq *vq) {
  virtio_mmio_write(vq->transport, VIRTIO_MMIO_QUEUE_NOTIFY, vq->index);
}

static uint32_t mmio_ack(struct virtq *vq) { return virtio_mmio_ack_interrupt(vq->transport); }

static void write_addr(struct virtio_mmio *dev, uint32_t low_reg, const void *p) {
  uint64_t a = VIRT_TO_PHYS(p);
  virtio_mmio_write(dev, low_reg, (uint32_t)a);
  virtio_mmio_write(dev, low_reg + 4, (uint32_t)(a >> 32));
}

bool virtio_mmio_setup_queue(struct virtio_mmio *dev, struct virtq *vq, unsigned index, unsigned size,
                             void *mem) {
  virtio_mmio_write(dev, VIRTIO_MMIO_QUEUE_SEL, index);
  uint32_t ready = virtio_mmio_read(dev, VIRTIO_MMIO_QUEUE_READY);
  uint32_t max = virtio_mmio_read(dev, VIRTIO_MMIO_QUEUE_NUM_MAX);
  if (ready != 0) {
    snprintf(dev->error, sizeof(dev->error), "queue %u: QueueReady reads %u before setup", index, ready);
    return fail(dev);
  }
  if (max == 0 || size > max) {
    snprintf(dev->error, sizeof(dev->error), "queue %u: size %u, QueueNumMax %u", index, size, max);
    return fail(dev);
  }
  if (!virtq_init(vq, index, size, mem)) {
    snprintf(dev->error, sizeof(dev->error), "queue %u: %s", index, vq->error);
    return fail(dev);
  }
  virtio_mmio_write(dev, VIRTIO_MMIO_QUEUE_NUM, size);
  write_addr(dev, VIRTIO_MMIO_QUEUE_DESC_LOW, vq->desc);
  write_addr(dev, VIRTIO_MMIO_QUEUE_DRIVER_LOW, vq->avail);
  write_addr(dev, VIRTIO_MMIO_QUEUE_DEVICE_LOW, vq->used);
  vq->notify = mmio_notify;
  vq->ack = mmio_ack;
  vq->transport = dev;
  /* The rings (zeroed by virtq_init) must be in memory before the device may use them. */
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  virtio_mmio_write(dev, VIRTIO_MMIO_QUEUE_READY, 1);
  ready = virtio_mmio_read(dev, VIRTIO_MMIO_QUEUE_READY);
  if (ready != 1) {
    snprintf(dev->error, sizeof(dev->error), "queue %u: QueueReady reads %u after writing 1", index, ready);
    return fail(dev);
  }
  return true;
}

void virtio_mmio_driver_ok(struct virtio_mmio *dev) { set_status(dev, VIRTIO_STATUS_DRIVER_OK); }

uint32_t virtio_mmio_ack_interrupt(struct virtio_mmio *dev) {
  uint32_t bits = virtio_mmio_read(dev, VIRTIO_MMIO_INTERRUPT_STATUS);
  if (bits) virtio_mmio_write(dev, VIRTIO_MMIO_INTERRUPT_ACK, bits);
  return bits;
}

uint8_t virtio_mmio_config8(const struct virtio_mmio *dev, uint32_t offset) {
  return *(volatile uint8_t *)(dev->base + VIRTIO_MMIO_CONFIG + offset);
}

uint16_t virtio_mmio_config16(const struct virtio_mmio *dev, uint32_t offset) {
  return *(volatile uint16_t *)(dev->base + VIRTIO_MMIO_CONFIG + offset);
}

uint32_t virtio_mmio_config32(const struct virtio_mmio *dev, uint32_t offset) {
  return mmio_read32(dev->base + VIRTIO_MMIO_CONFIG + offset);
}

uint64_t virtio_mmio_config64(const struct virtio_mmio *dev, uint32_t offset) {
  uint32_t gen, lo, hi;
  do { /* a config change between the halves would tear the value */
    gen = virtio_mmio_read(dev, VIRTIO_MMIO_CONFIG_GENERATION);
    lo = virtio_mmio_config32(dev, offset);
    hi = virtio_mmio_config32(dev, offset + 4);
  } while (virtio_mmio_read(dev, VIRTIO_MMIO_CONFIG_GENERATION) != gen);
  return ((uint64_t)hi << 32) | lo;
}
