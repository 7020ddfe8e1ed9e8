/* virtio-blk driver side (virtio 1.2, 5.2) over either transport, polled from
 * ring 3: bring-up, one-off requests and a pipelined bulk transfer. The
 * request and config layouts are the spec's; tests/blk.c is the user.
 *
 * A request is a 16-byte device-readable header, the data (device-readable
 * for OUT, device-writable for IN and GET_ID) as up to `segs` descriptors of
 * at most `seg_bytes` each, then a 1-byte device-writable status. Status
 * bytes are preset to 0xff, so one the device never wrote shows up, and a
 * successful request's used len must be exactly the writable bytes (data + 1
 * for IN/GET_ID, 1 otherwise): the status is the last of them, and only the
 * first `len` bytes are defined (2.7.8.2). One device at a time: the rings
 * and data buffers are static. */
#ifndef MOTETEST_VIRTIO_BLK_H_
#define MOTETEST_VIRTIO_BLK_H_

#include <stdbool.h>
#include <stdint.h>

#include "virtio_transport.h"

/* Request types (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

/* Status byte values. */
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX (1ull << 1)
#define VIRTIO_BLK_F_SEG_MAX (1ull << 2)
#define VIRTIO_BLK_F_RO (1ull << 5)
#define VIRTIO_BLK_F_BLK_SIZE (1ull << 6)
#define VIRTIO_BLK_F_FLUSH (1ull << 9)
#define VIRTIO_BLK_F_TOPOLOGY (1ull << 10)
#define VIRTIO_BLK_F_MQ (1ull << 12)
#define VIRTIO_BLK_F_DISCARD (1ull << 13)
#define VIRTIO_BLK_F_WRITE_ZEROES (1ull << 14)

/* Config space offsets (5.2.4), little-endian. */
#define VIRTIO_BLK_CFG_CAPACITY 0  /* u64, 512-byte sectors */
#define VIRTIO_BLK_CFG_SIZE_MAX 8  /* u32, bytes per data descriptor */
#define VIRTIO_BLK_CFG_SEG_MAX 12  /* u32, data descriptors per request */
#define VIRTIO_BLK_CFG_BLK_SIZE 20 /* u32 */

#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_ID_BYTES 20 /* GET_ID: the serial, NUL-padded */

/* What this driver accepts when offered. */
#define VIRTIO_BLK_WANTED                                                              \
  (VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_RO | VIRTIO_BLK_F_BLK_SIZE | \
   VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_SIZE_MAX)

#define BLK_SLOTS 8         /* requests in flight in a transfer, at most */
#define BLK_REQ_BYTES 65536 /* data per request (128 sectors), at most */
#define BLK_SEGS_MAX 128    /* data descriptors per request, at most */
#define BLK_QUEUE_MAX 256   /* queue entries, at most */
#define BLK_POISON 0xa5     /* read buffers are filled with it before submission */

struct virtio_blk_hdr {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

/* One request's own memory: the header the device reads and the status it
 * writes; `data` is one of the static BLK_REQ_BYTES buffers (or the caller's). */
struct blk_slot {
  struct virtio_blk_hdr hdr;
  uint8_t status;
  bool done;
  uint32_t len;  /* used len */
  uint32_t wlen; /* writable bytes in the chain */
  uint64_t sector;
  unsigned sectors;
  uint8_t* data;
};

struct blk {
  struct virtio_dev dev;
  struct virtq vq;
  /* Config; the optional fields read 0 when their feature is not offered. */
  uint64_t capacity;
  uint32_t size_max, seg_max, blk_size;
  bool ro;    /* RO offered (and accepted) */
  bool flush; /* FLUSH negotiated */
  /* Request shape, from the limits above and the seg= the caller gave. */
  uint32_t seg_limit;   /* the caller's cap on seg_bytes */
  uint32_t seg_bytes;   /* per data descriptor */
  unsigned segs;        /* data descriptors per request */
  unsigned req_sectors; /* per request */
  unsigned inflight;    /* requests in flight in a transfer */
  struct blk_slot slots[BLK_SLOTS];
  struct blk_slot single; /* blk_request's */
  struct blk_slot* slot_of_head[BLK_QUEUE_MAX];
  /* A used element for a chain that is no request of ours (a test's own
   * chain): handed here; true if it was expected. */
  bool (*stray)(struct blk* b, uint16_t head, uint32_t len);
  char error[160]; /* why the last call failed */
};

/* Finds the `nth` virtio device with DeviceID 2 (virtio_find) and brings it up with
 * blk_setup. `seg_limit` caps the bytes per data descriptor (at most 64 KiB;
 * smaller values make longer chains). */
bool blk_open(struct blk* b, int nth, uint32_t seg_limit);

/* Reset, negotiate VIRTIO_BLK_WANTED, read the config, set up queue 0 and
 * the request shape, DRIVER_OK. Also the way back after DEVICE_NEEDS_RESET:
 * whatever was in flight is forgotten. */
bool blk_setup(struct blk* b);

/* One request with nothing else in flight: `bytes` of `data` (device-
 * writable if `data_writable`, then poisoned first), split as the request
 * shape allows. Returns the status byte (0xff: the device never wrote it),
 * or -1 (error set) when the request did not come back properly; *len gets
 * the used len. */
int blk_request(struct blk* b, uint32_t type, uint64_t sector, void* data, uint32_t bytes,
                bool data_writable, uint32_t* len);

/* Called for each request of a transfer with its data: for OUT before it is
 * submitted (to fill it), for IN once it completed OK, in disk order. */
typedef void (*blk_data_fn)(void* ctx, uint8_t* data, uint64_t sector, unsigned sectors);

/* Moves `count` sectors from `sector` on (IN or OUT) with up to `inflight`
 * requests in flight. Returns 0 when every request came back OK, the first
 * other status byte otherwise (the rest still run), or -1 (error set) when a
 * request did not come back properly (the transfer stops there). */
int blk_transfer(struct blk* b, uint32_t type, uint64_t sector, uint64_t count, blk_data_fn fn,
                 void* ctx);

#endif /* MOTETEST_VIRTIO_BLK_H_ */
