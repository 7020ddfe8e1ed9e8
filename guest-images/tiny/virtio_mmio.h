/* Virtio over MMIO, modern interface only (virtio 1.2, 4.2, version 2):
 * finding devices on the kernel command line and the register side of
 * virtio_transport.h's operations (status, features, queue setup, doorbell,
 * InterruptStatus, config). The rings themselves are virtqueue.c's.
 *
 * Devices are described the Linux way, one word each:
 *   virtio_mmio.device=SIZE@BASE:IRQ[:ID]   e.g. virtio_mmio.device=4K@0xd0000000:5
 * SIZE takes a K/M/G suffix; BASE is hex (0x) or decimal. The registers must
 * be inside the kernel's identity map (below 4 GiB; the MMIO hole there is
 * mapped uncached). All register accesses are 32-bit, from ring 3. */
#ifndef MOTETEST_VIRTIO_MMIO_H_
#define MOTETEST_VIRTIO_MMIO_H_

#include <stdbool.h>
#include <stdint.h>

#include "virtio.h"

#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" */
#define VIRTIO_MMIO_VERSION_MODERN 2

/* Register offsets (4.2.2). */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

/* InterruptStatus bits. */
#define VIRTIO_MMIO_INT_VRING 1  /* a used buffer was returned */
#define VIRTIO_MMIO_INT_CONFIG 2 /* the configuration changed */

/* More than any VMM here describes (mote has 17 GSIs for them, QEMU microvm
 * 24 transports with ACPI). */
#define VIRTIO_MMIO_MAX_DEVICES 32

/* One virtio_mmio.device= word. */
struct virtio_mmio_slot {
  uint64_t base, size;
  uint32_t irq;
};

/* The transport's part of a struct virtio_dev (virtio_transport.h). */
struct virtio_mmio {
  uint64_t base, size; /* from the command line */
  uint32_t irq;
};

struct virtio_dev;
extern const struct virtio_ops virtio_mmio_ops;

/* The well-formed virtio_mmio.device= words, in command-line order: stores
 * up to `max`, returns how many there are (may be more than `max`). With
 * `malformed` non-NULL, the malformed words are counted there and printed
 * ("virtio-mmio: ..."). */
int virtio_mmio_slots(struct virtio_mmio_slot* slots, int max, int* malformed);

/* The `nth` (from 0) device on the command line whose DeviceID register reads
 * `device_id`: 1 with `dev` set up for virtio_mmio_ops, 0 when there are
 * fewer (*found: how many there are). Only DeviceID is looked at: the ops'
 * check looks at MagicValue and Version. */
int virtio_mmio_find(uint32_t device_id, int nth, struct virtio_dev* dev, int* found);

uint32_t virtio_mmio_read(const struct virtio_mmio* m, uint32_t reg);
void virtio_mmio_write(const struct virtio_mmio* m, uint32_t reg, uint32_t v);

#endif /* MOTETEST_VIRTIO_MMIO_H_ */
