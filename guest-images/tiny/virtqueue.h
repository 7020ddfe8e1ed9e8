/* Split virtqueues (virtio 1.2, 2.7), the driver side, independent of the
 * transport: the transport (virtio_transport.c over virtio_pci.c or
 * virtio_mmio.c) tells the device where the three parts are and fills in
 * notify/ack.
 *
 * The rings live in memory the caller provides (VIRTQ_MEM_SIZE(size) bytes,
 * 16-byte aligned; a static page-aligned array is simplest): the kernel is
 * identity-mapped, so its addresses are the guest-physical ones the device
 * is given. Single-threaded: one CPU drives a queue. */
#ifndef MOTETEST_VIRTQUEUE_H_
#define MOTETEST_VIRTQUEUE_H_

#include <stdbool.h>
#include <stdint.h>

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_USED_F_NO_NOTIFY 1

/* Largest queue this driver sets up (its private arrays are this big). */
#define VIRTQ_MAX_SIZE 256

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

struct virtq_avail {
  uint16_t flags;
  uint16_t idx;
  uint16_t ring[]; /* [size], then used_event (unused: no EVENT_IDX) */
};

struct virtq_used_elem {
  uint32_t id;  /* head of the returned chain */
  uint32_t len; /* bytes the device wrote into it */
};

struct virtq_used {
  uint16_t flags;
  uint16_t idx;
  struct virtq_used_elem ring[]; /* [size], then avail_event */
};

/* Packed layout in one area: descriptors (16-aligned), then the available
 * ring (2-aligned), then the used ring at the next 4-byte boundary. Tighter
 * than Linux's legacy page alignment on purpose: a device must only rely on
 * the alignments the spec gives. */
#define VIRTQ_AVAIL_OFFSET(n) (16u * (n))
#define VIRTQ_USED_OFFSET(n) ((VIRTQ_AVAIL_OFFSET(n) + 6u + 2u * (n) + 3u) & ~3u)
#define VIRTQ_MEM_SIZE(n) (VIRTQ_USED_OFFSET(n) + 6u + 8u * (n))

/* Identity map: a kernel pointer is the guest-physical address. */
#define VIRT_TO_PHYS(p) ((uint64_t)(uintptr_t)(p))

/* One buffer of a request chain. Device-readable ones must come first. */
struct virtq_buf {
  uint64_t addr;
  uint32_t len;
  bool writable;
};

struct virtq {
  uint16_t index; /* queue number on the device */
  uint16_t size;  /* power of two */
  struct virtq_desc* desc;
  struct virtq_avail* avail;
  struct virtq_used* used;
  uint16_t avail_idx; /* our copy of avail->idx */
  uint16_t used_seen; /* used->idx up to which elements were consumed */
  uint16_t free_head, num_free;
  /* Driver-private chain links and per-head bookkeeping: the device can read
   * the descriptor table but nothing it writes there can corrupt these. */
  uint16_t next[VIRTQ_MAX_SIZE];
  uint16_t chain_len[VIRTQ_MAX_SIZE];  /* descriptors in the chain at this head; 0: not in flight */
  uint32_t chain_wlen[VIRTQ_MAX_SIZE]; /* writable bytes in it: used len may not exceed this */
  /* Filled in by the transport. ack returns the interrupt bits it cleared. */
  void (*notify)(struct virtq* vq);
  uint32_t (*ack)(struct virtq* vq);
  void* transport;
  uint32_t isr_seen; /* OR of every ack() result: did the device flag its interrupts */
  char error[112];   /* why the last call failed */
};

/* Lays out and zeroes the rings in `mem` and puts every descriptor on the
 * free list. `size` must be a power of two up to VIRTQ_MAX_SIZE. Leaves
 * notify/ack alone. */
bool virtq_init(struct virtq* vq, unsigned index, unsigned size, void* mem);

/* Writes a chain of `n` buffers and publishes it in the available ring
 * (without notifying). Returns the head descriptor index, or -1 (error set)
 * when there are not enough free descriptors. */
int virtq_add(struct virtq* vq, const struct virtq_buf* bufs, unsigned n);

/* Tells the device there is new work. */
void virtq_kick(struct virtq* vq);

/* Consumes the next used element, if there is one, and frees its chain:
 * 1 with *head and *len filled in, 0 when nothing new, -1 (error set) when the
 * device returned something that was not in flight or claimed to write more
 * than the chain holds. Acknowledges the transport's interrupt bits. */
int virtq_poll(struct virtq* vq, uint16_t* head, uint32_t* len);

/* virtq_poll until an element comes or `ms` pass (polled in ring 3, no
 * interrupts): 1 with *head and *len, 0 (error set) on timeout, -1 (error set)
 * on a bad element. */
int virtq_wait(struct virtq* vq, uint16_t* head, uint32_t* len, uint64_t ms);

/* add + kick + wait for one chain, with nothing else in flight. The used
 * length goes to *len. */
bool virtq_submit_wait(struct virtq* vq, const struct virtq_buf* bufs, unsigned n, uint32_t* len,
                       uint64_t ms);

#endif /* MOTETEST_VIRTQUEUE_H_ */
