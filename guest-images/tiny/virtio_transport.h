/* A virtio device behind either transport, modern interface only (virtio
 * 1.2, 3.1 and 4): the drivers (virtio_blk.c, virtio_net.c, tests/rng.c)
 * talk to `struct virtio_dev` and never to registers, so each test runs over
 * virtio-pci (virtio_pci.c) or virtio-mmio (virtio_mmio.c) unchanged.
 *
 * Finding a device: virtio_find looks at the PCI functions on bus 0 first,
 * then the virtio_mmio.device= words of the command line. `transport=pci`
 * or `transport=mmio` on the command line allows only one of them. It prints
 * one line saying where the device is:
 *   virtio: blk via pci 00:01.0 bar0 0xc0000000 msix 2 vectors
 *   virtio: blk via pci 00:01.0 bar4 0xc0004000 msix off
 *   virtio: blk via mmio 0xd0000000 irq 5
 * Polled from ring 3 throughout; over PCI with MSI-X the device's messages
 * are only counted (virtio_report_interrupts). */
#ifndef MOTETEST_VIRTIO_TRANSPORT_H_
#define MOTETEST_VIRTIO_TRANSPORT_H_

#include <stdbool.h>
#include <stdint.h>

#include "virtio.h"
#include "virtio_mmio.h"
#include "virtio_pci.h"
#include "virtqueue.h"

/* What a transport provides; the sequence (3.1.1) is virtio_transport.c's.
 * Status and config offsets are the device's; queue operations select the
 * queue themselves. */
struct virtio_ops {
  const char* name; /* "pci", "mmio" */
  /* Before the first reset: is this something we can drive (error set if not). */
  bool (*check)(struct virtio_dev* d);
  uint32_t (*get_status)(struct virtio_dev* d);
  void (*set_status)(struct virtio_dev* d, uint32_t status);
  uint64_t (*get_features)(struct virtio_dev* d);
  void (*set_features)(struct virtio_dev* d, uint64_t features);
  /* After FEATURES_OK: where configuration change interrupts go (NULL: nowhere to say). */
  bool (*config_irq)(struct virtio_dev* d);
  uint32_t (*queue_max)(struct virtio_dev* d, unsigned index); /* 0: no such queue */
  uint32_t (*queue_ready)(struct virtio_dev* d, unsigned index);
  /* Tells the device the size and addresses of vq (laid out by virtq_init),
   * its interrupt, and enables it; checks what reads back. */
  bool (*queue_setup)(struct virtio_dev* d, struct virtq* vq);
  void (*notify)(struct virtio_dev* d, unsigned index);
  /* Reads the interrupt status register and clears what it read. */
  uint32_t (*isr)(struct virtio_dev* d);
  /* virtio_ack_interrupt, virtio_mask_interrupts, virtio_report_interrupts
   * (NULL: isr, nothing, nothing). */
  uint32_t (*ack)(struct virtio_dev* d);
  void (*mask)(struct virtio_dev* d, bool masked);
  void (*report)(struct virtio_dev* d);
  uint8_t (*config8)(struct virtio_dev* d, uint32_t offset);
  uint16_t (*config16)(struct virtio_dev* d, uint32_t offset);
  uint32_t (*config32)(struct virtio_dev* d, uint32_t offset);
  uint32_t (*generation)(struct virtio_dev* d);
  /* The "virtio: NAME via ..." line's tail ("pci 00:01.0 bar0 ..."), and
   * any detail lines before it. */
  void (*describe)(struct virtio_dev* d, char* where, unsigned size);
};

struct virtio_dev {
  const struct virtio_ops* ops;
  uint32_t device_id;
  uint64_t device_features; /* offered, read by virtio_init */
  uint64_t features;        /* negotiated */
  union {
    struct virtio_mmio mmio;
    struct virtio_pci pci;
  };
  char error[112]; /* why the last call failed */
};

/* Interrupt status bits (ISR on PCI, InterruptStatus on MMIO). */
#define VIRTIO_INT_VRING 1  /* a used buffer was returned */
#define VIRTIO_INT_CONFIG 2 /* the configuration changed */

/* The `nth` (from 0) device of type `device_id`: PCI functions on bus 0
 * first, then virtio_mmio.device= words (transport= may rule one out). Sets
 * up what the transport needs (BARs, MSI-X) and prints the "virtio:" line.
 * False with `error` set when there is none or it cannot be used. */
bool virtio_find(uint32_t device_id, int nth, struct virtio_dev* dev);

/* "blk", "net", "rng", ... */
const char* virtio_device_name(uint32_t device_id);

/* Status = 0, then waits (bounded) for it to read back 0. */
bool virtio_reset(struct virtio_dev* dev);

/* The transport's check, reset, ACKNOWLEDGE, DRIVER, reads the offered
 * features, accepts (offered & wanted), which must contain VERSION_1,
 * FEATURES_OK and checks the device kept it, then points configuration
 * interrupts somewhere. On failure sets FAILED in Status (when the device
 * got that far) and `error`. */
bool virtio_init(struct virtio_dev* dev, uint64_t wanted);

uint32_t virtio_status(struct virtio_dev* dev);

/* The most entries queue `index` may have (0: the queue does not exist). */
uint32_t virtio_queue_max(struct virtio_dev* dev, unsigned index);
/* QueueReady / queue_enable of queue `index`. */
uint32_t virtio_queue_ready(struct virtio_dev* dev, unsigned index);

/* Lays out queue `index` with `size` entries in `mem` (VIRTQ_MEM_SIZE(size)
 * bytes, 16-aligned), tells the device where it is and enables it. Between
 * virtio_init and virtio_driver_ok. */
bool virtio_setup_queue(struct virtio_dev* dev, struct virtq* vq, unsigned index, unsigned size,
                        void* mem);

/* Sets DRIVER_OK: the device is live. */
void virtio_driver_ok(struct virtio_dev* dev);

/* The interrupt bits (VIRTIO_INT_*) raised since the last call: the
 * interrupt status register, read and cleared, or with MSI-X (where the
 * driver should not read ISR) whether any message came for a queue or for
 * the configuration. */
uint32_t virtio_ack_interrupt(struct virtio_dev* dev);

/* Masks (or unmasks) the device's MSI-X messages, e.g. while a benchmark
 * polls; pending ones are delivered on unmasking. No-op without MSI-X. */
void virtio_mask_interrupts(struct virtio_dev* dev, bool masked);

/* Over PCI: "virtio: msix interrupts=N (config C, queues Q)" or "virtio:
 * msix off"; nothing over MMIO. */
void virtio_report_interrupts(struct virtio_dev* dev);

/* Device-specific configuration at the access widths the spec requires;
 * 64-bit fields as two 32-bit reads, and byte strings, retried until the
 * configuration generation is stable (bounded). */
uint8_t virtio_config8(struct virtio_dev* dev, uint32_t offset);
uint16_t virtio_config16(struct virtio_dev* dev, uint32_t offset);
uint32_t virtio_config32(struct virtio_dev* dev, uint32_t offset);
uint64_t virtio_config64(struct virtio_dev* dev, uint32_t offset);
void virtio_config_bytes(struct virtio_dev* dev, uint32_t offset, uint8_t* out, unsigned n);

#endif /* MOTETEST_VIRTIO_TRANSPORT_H_ */
