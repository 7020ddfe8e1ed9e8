/* Virtio over MMIO, modern interface only (virtio 1.2, 4.2, version 2):
 * finding devices on the kernel command line, device initialisation,
 * queue setup and the doorbell. The rings themselves are virtqueue.c's.
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
#include "virtqueue.h"

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

struct virtio_mmio {
  uint64_t base, size; /* from the command line */
  uint32_t irq;
  uint64_t device_features; /* offered, read by virtio_mmio_init */
  uint64_t features;        /* negotiated */
  char error[112];          /* why the last call failed */
};

/* The well-formed virtio_mmio.device= words, in command-line order: stores
 * up to `max`, returns how many there are (may be more than `max`). With
 * `malformed` non-NULL, the malformed words are counted there and printed
 * ("virtio-mmio: ..."). */
int virtio_mmio_slots(struct virtio_mmio_slot *slots, int max, int *malformed);

/* The `nth` (from 0) device on the command line whose DeviceID register reads
 * `device_id`. Only DeviceID is looked at: virtio_mmio_init checks the rest. */
bool virtio_mmio_find(uint32_t device_id, int nth, struct virtio_mmio *dev);

uint32_t virtio_mmio_read(const struct virtio_mmio *dev, uint32_t reg);
void virtio_mmio_write(const struct virtio_mmio *dev, uint32_t reg, uint32_t v);

/* Status = 0, then waits (bounded) for it to read back 0. */
bool virtio_mmio_reset(struct virtio_mmio *dev);

/* Checks MagicValue and Version, resets, sets ACKNOWLEDGE and DRIVER, reads
 * the offered features, accepts (offered & wanted), which must contain
 * VIRTIO_F_VERSION_1, sets FEATURES_OK and checks the device kept it. On
 * failure sets FAILED in Status (when the device got that far) and `error`. */
bool virtio_mmio_init(struct virtio_mmio *dev, uint64_t wanted);

/* QueueNumMax of queue `index` (0: the queue does not exist). */
uint32_t virtio_mmio_queue_max(struct virtio_mmio *dev, unsigned index);

/* Lays out queue `index` with `size` entries in `mem` (VIRTQ_MEM_SIZE(size)
 * bytes, 16-aligned), tells the device where it is and sets QueueReady.
 * Between virtio_mmio_init and virtio_mmio_driver_ok. */
bool virtio_mmio_setup_queue(struct virtio_mmio *dev, struct virtq *vq, unsigned index, unsigned size,
                             void *mem);

/* Sets DRIVER_OK: the device is live. */
void virtio_mmio_driver_ok(struct virtio_mmio *dev);

/* Reads InterruptStatus and acknowledges every bit set; returns them. */
uint32_t virtio_mmio_ack_interrupt(struct virtio_mmio *dev);

/* Device-specific configuration, at the access widths 4.2.2.2 requires
 * (8/16/32-bit fields with their own width, 64-bit ones as two 32-bit reads
 * retried until ConfigGeneration is stable). */
uint8_t virtio_mmio_config8(const struct virtio_mmio *dev, uint32_t offset);
uint16_t virtio_mmio_config16(const struct virtio_mmio *dev, uint32_t offset);
uint32_t virtio_mmio_config32(const struct virtio_mmio *dev, uint32_t offset);
uint64_t virtio_mmio_config64(const struct virtio_mmio *dev, uint32_t offset);

#endif /* MOTETEST_VIRTIO_MMIO_H_ */
