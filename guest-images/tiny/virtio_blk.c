/* virtio-blk driver side: see virtio_blk.h. */
#include "virtio_blk.h"

#include "lib.h"

#define WAIT_MS \
  10000 /* per completion: a loaded host may be slow, a lost request is still caught */

static uint8_t ring[VIRTQ_MEM_SIZE(BLK_QUEUE_MAX)] __attribute__((aligned(4096)));
/* 512 KiB of the image: enough for BLK_SLOTS full requests in flight. */
static uint8_t data_buffers[BLK_SLOTS][BLK_REQ_BYTES] __attribute__((aligned(4096)));

static uint32_t min32(uint32_t a, uint32_t b) { return a < b ? a : b; }

bool blk_open(struct blk* b, int nth, uint32_t seg_limit) {
  memset(b, 0, sizeof(*b));
  if (!virtio_find(VIRTIO_ID_BLOCK, nth, &b->dev)) {
    snprintf(b->error, sizeof(b->error), "%s", b->dev.error);
    return false;
  }
  b->seg_limit = seg_limit;
  return blk_setup(b);
}

/* How requests are cut: descriptors of seg_bytes (the caller's seg=, at most
 * 64 KiB and size_max), at most segs of them (seg_max, and the queue must
 * hold header and status too), whole blk_size blocks per request. */
static bool plan(struct blk* b) {
  uint32_t seg = min32(b->seg_limit ? b->seg_limit : BLK_REQ_BYTES, BLK_REQ_BYTES);
  if (b->size_max) seg = min32(seg, b->size_max);
  unsigned segs = min32(BLK_SEGS_MAX, b->vq.size - 2);
  /* Linux reads seg_max 0 as 1; so does this driver. */
  if (b->dev.features & VIRTIO_BLK_F_SEG_MAX) segs = min32(segs, b->seg_max ? b->seg_max : 1);
  uint32_t unit = VIRTIO_BLK_SECTOR;
  if (b->blk_size > unit && b->blk_size <= BLK_REQ_BYTES && !(b->blk_size & (b->blk_size - 1))) {
    unit = b->blk_size;
  }
  uint32_t bytes = (uint32_t)((uint64_t)segs * seg > BLK_REQ_BYTES ? BLK_REQ_BYTES : segs * seg);
  bytes -= bytes % unit;
  if (!bytes) {
    snprintf(
        b->error, sizeof(b->error),
        "cannot build a %u-byte request from %u descriptors of %u bytes (seg_max %u size_max %u)",
        unit, segs, seg, b->seg_max, b->size_max);
    return false;
  }
  b->seg_bytes = seg;
  b->segs = (bytes + seg - 1) / seg;
  b->req_sectors = bytes / VIRTIO_BLK_SECTOR;
  b->inflight = min32(BLK_SLOTS, b->vq.size / (b->segs + 2));
  return true;
}

bool blk_setup(struct blk* b) {
  if (!virtio_init(&b->dev, VIRTIO_BLK_WANTED)) {
    snprintf(b->error, sizeof(b->error), "init: %s", b->dev.error);
    return false;
  }
  uint64_t f = b->dev.features;
  b->capacity = virtio_config64(&b->dev, VIRTIO_BLK_CFG_CAPACITY);
  b->size_max = f & VIRTIO_BLK_F_SIZE_MAX ? virtio_config32(&b->dev, VIRTIO_BLK_CFG_SIZE_MAX) : 0;
  b->seg_max = f & VIRTIO_BLK_F_SEG_MAX ? virtio_config32(&b->dev, VIRTIO_BLK_CFG_SEG_MAX) : 0;
  b->blk_size = f & VIRTIO_BLK_F_BLK_SIZE ? virtio_config32(&b->dev, VIRTIO_BLK_CFG_BLK_SIZE) : 0;
  b->ro = f & VIRTIO_BLK_F_RO;
  b->flush = f & VIRTIO_BLK_F_FLUSH;

  uint32_t max = virtio_queue_max(&b->dev, 0);
  unsigned size = BLK_QUEUE_MAX;
  while (size > max) size >>= 1; /* split rings are a power of two */
  if (size < 4) {                /* header, data, status, and a power of two */
    snprintf(b->error, sizeof(b->error), "queue 0: QueueNumMax %u, need at least 4 entries", max);
    return false;
  }
  if (!virtio_setup_queue(&b->dev, &b->vq, 0, size, ring)) {
    snprintf(b->error, sizeof(b->error), "queue 0: %s", b->dev.error);
    return false;
  }
  if (!plan(b)) return false;
  for (unsigned i = 0; i < BLK_SLOTS; ++i) {
    b->slots[i] = (struct blk_slot){.data = data_buffers[i]};
  }
  b->single = (struct blk_slot){0};
  memset(b->slot_of_head, 0, sizeof(b->slot_of_head));
  virtio_driver_ok(&b->dev);
  return true;
}

/* Adds the request in `s` (header from type/sector, `bytes` of `data`) as one
 * chain, without kicking. */
static bool submit(struct blk* b, struct blk_slot* s, uint32_t type, uint64_t sector, uint8_t* data,
                   uint32_t bytes, bool data_writable) {
  static struct virtq_buf bufs[BLK_SEGS_MAX + 2]; /* off the 16 KiB ring-3 stack */
  unsigned n = 0;
  s->hdr = (struct virtio_blk_hdr){.type = type, .sector = sector};
  s->status = 0xff;
  s->done = false;
  s->len = 0;
  bufs[n++] = (struct virtq_buf){VIRT_TO_PHYS(&s->hdr), sizeof(s->hdr), false};
  for (uint32_t off = 0; off < bytes; off += b->seg_bytes) {
    if (n == b->segs + 1) {
      snprintf(b->error, sizeof(b->error), "%u data bytes need more than %u descriptors of %u",
               bytes, b->segs, b->seg_bytes);
      return false;
    }
    bufs[n++] = (struct virtq_buf){VIRT_TO_PHYS(data + off), min32(b->seg_bytes, bytes - off),
                                   data_writable};
  }
  bufs[n++] = (struct virtq_buf){VIRT_TO_PHYS(&s->status), 1, true};
  s->wlen = (data_writable ? bytes : 0) + 1;
  int head = virtq_add(&b->vq, bufs, n);
  if (head < 0) {
    snprintf(b->error, sizeof(b->error), "%s", b->vq.error);
    return false;
  }
  b->slot_of_head[head] = s;
  return true;
}

/* Waits for the next request of ours to come back and marks its slot done
 * (strays go to b->stray). Checks the used len of successful requests. */
static struct blk_slot* reap(struct blk* b) {
  for (;;) {
    uint16_t head;
    uint32_t len;
    int r = virtq_wait(&b->vq, &head, &len, WAIT_MS);
    if (r <= 0) {
      snprintf(b->error, sizeof(b->error), "%s", b->vq.error);
      return NULL;
    }
    struct blk_slot* s = b->slot_of_head[head];
    if (!s) {
      if (b->stray && b->stray(b, head, len)) continue;
      snprintf(b->error, sizeof(b->error),
               "used element for head %u, which is no request in flight", head);
      return NULL;
    }
    b->slot_of_head[head] = NULL;
    s->done = true;
    s->len = len;
    /* Read the status only after used->idx (virtq_wait's acquire load). */
    if (s->status == VIRTIO_BLK_S_OK && len != s->wlen) {
      snprintf(b->error, sizeof(b->error),
               "request type %u sector %lu: status OK but used len %u, want %u (data + status)",
               s->hdr.type, s->hdr.sector, len, s->wlen);
      return NULL;
    }
    return s;
  }
}

int blk_request(struct blk* b, uint32_t type, uint64_t sector, void* data, uint32_t bytes,
                bool data_writable, uint32_t* len) {
  *len = 0;
  if (data_writable) memset(data, BLK_POISON, bytes);
  if (!submit(b, &b->single, type, sector, data, bytes, data_writable)) return -1;
  virtq_kick(&b->vq);
  struct blk_slot* s = reap(b);
  if (s && s != &b->single) {
    snprintf(b->error, sizeof(b->error), "a request that was not in flight came back");
    return -1;
  }
  *len = b->single.len;
  return s ? b->single.status : -1;
}

int blk_transfer(struct blk* b, uint32_t type, uint64_t sector, uint64_t count, blk_data_fn fn,
                 void* ctx) {
  bool in = type == VIRTIO_BLK_T_IN;
  uint64_t next = sector, end = sector + count;
  unsigned submitted = 0, finished = 0; /* request numbers; request i uses slot i % inflight */
  int result = 0;
  for (;;) {
    bool kick = false;
    while (submitted - finished < b->inflight && next < end) {
      struct blk_slot* s = &b->slots[submitted % b->inflight];
      s->sector = next;
      s->sectors = end - next < b->req_sectors ? (unsigned)(end - next) : b->req_sectors;
      uint32_t bytes = s->sectors * VIRTIO_BLK_SECTOR;
      if (in)
        memset(s->data, BLK_POISON, bytes); /* so data the device never wrote shows */
      else
        fn(ctx, s->data, next, s->sectors);
      if (!submit(b, s, type, next, s->data, bytes, in)) return -1;
      next += s->sectors;
      submitted++;
      kick = true;
    }
    if (kick) virtq_kick(&b->vq);
    if (finished == submitted) return result;
    if (!reap(b)) return -1;
    /* Completions may come in any order; hand the data on in disk order. */
    while (finished < submitted && b->slots[finished % b->inflight].done) {
      struct blk_slot* s = &b->slots[finished % b->inflight];
      if (s->status != VIRTIO_BLK_S_OK) {
        if (!result) result = s->status;
      } else if (in) {
        fn(ctx, s->data, s->sector, s->sectors);
      }
      s->done = false;
      finished++;
    }
  }
}
