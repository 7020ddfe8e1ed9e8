/* The transport-independent side of virtio_transport.h: finding a device
 * over either transport, the initialisation sequence (virtio 1.2, 3.1.1),
 * queue setup checks and generation-checked config reads. */
#include "virtio_transport.h"

#include "arch.h"
#include "boot.h"
#include "lib.h"
#include "test.h"

#define RESET_WAIT_MS 1000
#define GENERATION_TRIES 1000 /* a device that never settles gets the last read */

const char* virtio_device_name(uint32_t device_id) {
  switch (device_id) {
    case VIRTIO_ID_NET:
      return "net";
    case VIRTIO_ID_BLOCK:
      return "blk";
    case VIRTIO_ID_CONSOLE:
      return "console";
    case VIRTIO_ID_RNG:
      return "rng";
    default:
      return "device";
  }
}

bool virtio_find(uint32_t device_id, int nth, struct virtio_dev* dev) {
  memset(dev, 0, sizeof(*dev));
  dev->device_id = device_id;
  char transport[8] = "";
  cmdline_get("transport", transport, sizeof(transport));
  bool pci = !transport[0] || strcmp(transport, "pci") == 0;
  bool mmio = !transport[0] || strcmp(transport, "mmio") == 0;
  if (!pci && !mmio) {
    snprintf(dev->error, sizeof(dev->error), "transport=%s: want pci or mmio", transport);
    return false;
  }
  int on_pci = 0, on_mmio = 0, r = 0;
  if (pci) r = virtio_pci_find(device_id, nth, dev, &on_pci);
  if (r == 0 && mmio) r = virtio_mmio_find(device_id, nth - on_pci, dev, &on_mmio);
  if (r < 0) return false;
  if (r == 0) {
    snprintf(dev->error, sizeof(dev->error),
             "no virtio device %d with DeviceID %u: %d on PCI bus 0%s, %d on the command line%s",
             nth, device_id, on_pci, pci ? "" : " (not looked at)", on_mmio,
             mmio ? "" : " (not looked at)");
    return false;
  }
  char where[96];
  dev->ops->describe(dev, where, sizeof(where));
  printf("virtio: %s via %s\n", virtio_device_name(device_id), where);
  return true;
}

bool virtio_reset(struct virtio_dev* dev) {
  dev->ops->set_status(dev, 0);
  /* The device may finish a reset asynchronously (2.4.1, 4.1.4.3.2). */
  uint64_t deadline = deadline_ms(RESET_WAIT_MS);
  uint32_t status;
  while ((status = dev->ops->get_status(dev)) != 0) {
    if (deadline_passed(deadline)) {
      snprintf(dev->error, sizeof(dev->error), "Status still 0x%x %u ms after writing 0 (reset)",
               status, RESET_WAIT_MS);
      return false;
    }
    cpu_relax();
  }
  return true;
}

uint32_t virtio_status(struct virtio_dev* dev) { return dev->ops->get_status(dev); }

static void set_status(struct virtio_dev* dev, uint32_t bits) {
  dev->ops->set_status(dev, dev->ops->get_status(dev) | bits);
}

static bool fail(struct virtio_dev* dev) {
  set_status(dev, VIRTIO_STATUS_FAILED); /* the driver gave up on it (2.1) */
  return false;
}

bool virtio_init(struct virtio_dev* dev, uint64_t wanted) {
  if (!dev->ops->check(dev)) return false;
  if (!virtio_reset(dev)) return false;
  set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
  set_status(dev, VIRTIO_STATUS_DRIVER);

  uint64_t offered = dev->ops->get_features(dev);
  dev->device_features = offered;
  if (!(offered & VIRTIO_F_VERSION_1)) {
    snprintf(dev->error, sizeof(dev->error), "device features 0x%lx lack VERSION_1 (bit 32)",
             offered);
    return fail(dev);
  }
  uint64_t accept = offered & wanted;
  if (!(accept & VIRTIO_F_VERSION_1)) {
    snprintf(dev->error, sizeof(dev->error), "driver must accept VERSION_1 (wanted 0x%lx)", wanted);
    return fail(dev);
  }
  dev->ops->set_features(dev, accept);
  dev->features = accept;

  set_status(dev, VIRTIO_STATUS_FEATURES_OK);
  uint32_t status = dev->ops->get_status(dev);
  if (!(status & VIRTIO_STATUS_FEATURES_OK)) {
    snprintf(dev->error, sizeof(dev->error), "device refused features 0x%lx (Status 0x%x)", accept,
             status);
    return fail(dev);
  }
  if (dev->ops->config_irq && !dev->ops->config_irq(dev)) return fail(dev);
  return true;
}

uint32_t virtio_queue_max(struct virtio_dev* dev, unsigned index) {
  return dev->ops->queue_max(dev, index);
}

uint32_t virtio_queue_ready(struct virtio_dev* dev, unsigned index) {
  return dev->ops->queue_ready(dev, index);
}

static void vq_notify(struct virtq* vq) {
  struct virtio_dev* dev = vq->transport;
  dev->ops->notify(dev, vq->index);
}

static uint32_t vq_ack(struct virtq* vq) { return virtio_ack_interrupt(vq->transport); }

bool virtio_setup_queue(struct virtio_dev* dev, struct virtq* vq, unsigned index, unsigned size,
                        void* mem) {
  uint32_t ready = dev->ops->queue_ready(dev, index);
  uint32_t max = dev->ops->queue_max(dev, index);
  if (ready != 0) {
    snprintf(dev->error, sizeof(dev->error), "queue %u: QueueReady reads %u before setup", index,
             ready);
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
  vq->notify = vq_notify;
  vq->ack = vq_ack;
  vq->transport = dev;
  /* The rings (zeroed by virtq_init) must be in memory before the device may use them. */
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (!dev->ops->queue_setup(dev, vq)) return fail(dev);
  return true;
}

void virtio_driver_ok(struct virtio_dev* dev) { set_status(dev, VIRTIO_STATUS_DRIVER_OK); }

uint32_t virtio_ack_interrupt(struct virtio_dev* dev) {
  return dev->ops->ack ? dev->ops->ack(dev) : dev->ops->isr(dev);
}

void virtio_mask_interrupts(struct virtio_dev* dev, bool masked) {
  if (dev->ops->mask) dev->ops->mask(dev, masked);
}

void virtio_report_interrupts(struct virtio_dev* dev) {
  if (dev->ops->report) dev->ops->report(dev);
}

uint8_t virtio_config8(struct virtio_dev* dev, uint32_t offset) {
  return dev->ops->config8(dev, offset);
}

uint16_t virtio_config16(struct virtio_dev* dev, uint32_t offset) {
  return dev->ops->config16(dev, offset);
}

uint32_t virtio_config32(struct virtio_dev* dev, uint32_t offset) {
  return dev->ops->config32(dev, offset);
}

uint64_t virtio_config64(struct virtio_dev* dev, uint32_t offset) {
  uint32_t gen, lo, hi;
  int tries = 0;
  do { /* a config change between the halves would tear the value */
    gen = dev->ops->generation(dev);
    lo = dev->ops->config32(dev, offset);
    hi = dev->ops->config32(dev, offset + 4);
  } while (dev->ops->generation(dev) != gen && ++tries < GENERATION_TRIES);
  return ((uint64_t)hi << 32) | lo;
}

void virtio_config_bytes(struct virtio_dev* dev, uint32_t offset, uint8_t* out, unsigned n) {
  uint32_t gen;
  int tries = 0;
  do { /* byte reads: a config change in between would tear the field */
    gen = dev->ops->generation(dev);
    for (unsigned i = 0; i < n; ++i) out[i] = dev->ops->config8(dev, offset + i);
  } while (dev->ops->generation(dev) != gen && ++tries < GENERATION_TRIES);
}
