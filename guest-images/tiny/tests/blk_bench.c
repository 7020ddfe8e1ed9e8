/* test=blk op=bench: virtio-blk throughput, timed by the host.
 *
 *   mode=seqread|randread|seqwrite|randwrite (default seqread)
 *   bs=BYTES   per request: a multiple of 512, at most 1 MiB (default 65536
 *              for seq, 4096 for rand); cut into data descriptors of at most
 *              64 KiB (and size_max), at most seg_max of them
 *   depth=N    requests kept in flight, 1..64 (default 1), capped by what the
 *              queue holds (queue size / descriptors per request)
 *   count=N    requests: rand modes (default 10000); seq modes read or write
 *              the whole disk from sector 0 unless count= asks for fewer
 *   seed=N     xorshift64 seed of the rand offsets (default 1)
 *
 * Rand offsets are bs-aligned (like fio's default) and never touch sectors
 * 0..7. Write modes write a fixed text pattern (no FLUSH: like fio
 * --direct=1 without fsync). Data buffers live in guest RAM at 16 MiB and up
 * (one per request in flight, touched before the start so no first-touch
 * cost lands in the timed part; the guest needs 16 MiB + depth * bs).
 *
 * Prints the effective parameters, then "bench: start" immediately before the
 * first submission and "bench: done N requests B bytes" right after the last
 * completion, nothing in between (each console byte is a VM exit): the host
 * times the two lines. Requests are polled from the used ring with the
 * transport's interrupt acknowledgement switched off (two MMIO exits per
 * completion otherwise) and MSI-X function-masked (over PCI); the queue is refilled to `depth` and
 * kicked once per round of completions. Every request must come back with status OK and the exact
 * used len (blk_bench); the first bad one is described after the done line. */
#include <stdarg.h>

#include "../arch.h"
#include "../boot.h"
#include "../lib.h"
#include "../test.h"
#include "blk.h"

#define BENCH_DEPTH_MAX 64
#define BENCH_BS_MAX (1u << 20)
#define BENCH_DESC_MAX 65536u
#define BENCH_BUF_BASE (16ul << 20)
#define BENCH_WAIT_MS 10000 /* without any completion: the bench fails */

struct bench_req {
  struct virtio_blk_hdr hdr;
  uint8_t status;
  uint8_t* data;
  uint32_t bytes;
  uint32_t wlen;
};

static struct bench_req reqs[BENCH_DEPTH_MAX] __attribute__((aligned(64)));
static struct bench_req* req_of_head[BLK_QUEUE_MAX];
static struct virtq_buf bufs[BENCH_BS_MAX / 512 + 2];

static uint64_t xorshift64(uint64_t* s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* A parameter check: only a failure prints (FAIL blk_bench: ...). */
static bool check(bool ok, const char* name, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool check(bool ok, const char* name, const char* fmt, ...) {
  if (ok) return true;
  char detail[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  return expect(false, name, "%s", detail);
}

static const char* const modes[] = {"seqread", "randread", "seqwrite", "randwrite"};

void blk_bench(struct blk* b) {
  char mode[16] = "seqread";
  cmdline_get("mode", mode, sizeof(mode));
  int m = -1;
  for (int i = 0; i < 4; ++i) {
    if (strcmp(mode, modes[i]) == 0) m = i;
  }
  if (!check(m >= 0, "blk_bench", "mode=%s: want seqread, randread, seqwrite or randwrite", mode))
    return;
  bool rand = m == 1 || m == 3, write = m >= 2;
  uint32_t type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
  uint64_t bs = cmdline_u64("bs", rand ? 4096 : 65536);
  uint64_t depth_asked = cmdline_u64("depth", 1);
  uint64_t seed = cmdline_u64("seed", 1);
  if (!seed) seed = 0x9e3779b97f4a7c15ull; /* xorshift's one fixed point */

  /* Request shape: descriptors of at most 64 KiB and size_max, at most
   * seg_max of them (0 read as 1, like virtio_blk.c). */
  uint32_t desc = BENCH_DESC_MAX;
  if (b->size_max && b->size_max < desc) desc = b->size_max;
  desc -= desc % VIRTIO_BLK_SECTOR;
  uint64_t segs_max = b->vq.size - 2;
  if (b->dev.features & VIRTIO_BLK_F_SEG_MAX) {
    uint32_t s = b->seg_max ? b->seg_max : 1;
    if (s < segs_max) segs_max = s;
  }
  if (!check(bs && bs % VIRTIO_BLK_SECTOR == 0 && bs <= BENCH_BS_MAX, "blk_bench",
             "bs=%lu: want a multiple of 512 up to %u", bs, BENCH_BS_MAX))
    return;
  if (!check(desc && bs <= segs_max * desc, "blk_bench",
             "bs=%lu needs more than %lu descriptors of %u bytes (seg_max %u size_max %u)", bs,
             segs_max, desc, b->seg_max, b->size_max))
    return;
  if (!check(depth_asked >= 1 && depth_asked <= BENCH_DEPTH_MAX, "blk_bench",
             "depth=%lu: want 1..%u", depth_asked, BENCH_DEPTH_MAX))
    return;
  if (!check(!write || !b->ro, "blk_bench", "mode=%s on a read-only disk", mode)) return;
  unsigned segs = (unsigned)((bs + desc - 1) / desc);
  unsigned depth = (unsigned)depth_asked;
  if (depth > b->vq.size / (segs + 2)) depth = b->vq.size / (segs + 2);

  uint64_t disk_bytes = b->capacity * VIRTIO_BLK_SECTOR;
  uint64_t count, first_block = 0, blocks = 0;
  if (rand) {
    count = cmdline_u64("count", 10000);
    first_block = (8 * VIRTIO_BLK_SECTOR + bs - 1) / bs; /* clear of sectors 0..7 */
    uint64_t total_blocks = disk_bytes / bs;
    if (!check(total_blocks > first_block, "blk_bench",
               "a %lu-sector disk has no %lu-byte block past sector 7", b->capacity, bs))
      return;
    blocks = total_blocks - first_block;
  } else {
    count = (disk_bytes + bs - 1) / bs;
    uint64_t c = cmdline_u64("count", 0);
    if (c && c < count) count = c;
  }
  if (!check(count > 0, "blk_bench", "nothing to do (count=0 or an empty disk)")) return;

  /* Data buffers in RAM above the image, page-aligned, touched now. */
  uint64_t stride = (bs + 4095) & ~4095ul;
  uint64_t need = BENCH_BUF_BASE + depth * stride;
  if (!check(boot.mem_bytes >= need, "blk_bench",
             "need %lu MiB of guest RAM for %u buffers of %lu bytes, have %lu MiB",
             (need + (1 << 20) - 1) >> 20, depth, bs, boot.mem_bytes >> 20))
    return;
  static const char pattern[] = "mote blk bench: fixed pattern.\n"; /* 32 bytes with the NUL */
  for (unsigned i = 0; i < depth; ++i) {
    reqs[i].data = (uint8_t*)(BENCH_BUF_BASE + i * stride);
    if (write) {
      for (uint64_t off = 0; off < stride; off += sizeof(pattern) - 1) {
        uint64_t n = stride - off < sizeof(pattern) - 1 ? stride - off : sizeof(pattern) - 1;
        memcpy(reqs[i].data + off, pattern, n);
      }
    } else {
      memset(reqs[i].data, 0, stride);
    }
  }
  memset(req_of_head, 0, sizeof(req_of_head));

  printf(
      "bench: mode=%s bs=%lu depth=%u (asked %lu) requests=%lu descriptors=%u of <=%u bytes "
      "seed=%lu "
      "disk=%lu sectors\n",
      mode, bs, depth, depth_asked, count, segs, desc, seed, b->capacity);

  /* Free request slots, a stack. */
  struct bench_req* free_reqs[BENCH_DEPTH_MAX];
  unsigned nfree = depth;
  for (unsigned i = 0; i < depth; ++i) free_reqs[i] = &reqs[depth - 1 - i];

  uint32_t (*ack)(struct virtq*) = b->vq.ack;
  b->vq.ack = NULL;
  virtio_mask_interrupts(&b->dev, true); /* MSI-X: each message is a trip through ring 0 */
  uint64_t issued = 0, completed = 0, bytes_done = 0, next_sector = 0, bad = 0;
  uint64_t rng = seed;
  char why[160] = "";
  bool stuck = false;

  printf("bench: start\n");
  while (completed < count) {
    bool added = false;
    while (nfree && issued < count) {
      struct bench_req* r = free_reqs[--nfree];
      uint64_t sector;
      uint32_t bytes = (uint32_t)bs;
      if (rand) {
        sector = (first_block + xorshift64(&rng) % blocks) * (bs / VIRTIO_BLK_SECTOR);
      } else {
        sector = next_sector;
        uint64_t left = disk_bytes - sector * VIRTIO_BLK_SECTOR;
        if (left < bytes) bytes = (uint32_t)left;
        next_sector += bytes / VIRTIO_BLK_SECTOR;
      }
      r->hdr = (struct virtio_blk_hdr){.type = type, .sector = sector};
      r->status = 0xff;
      r->bytes = bytes;
      r->wlen = (write ? 0 : bytes) + 1;
      unsigned n = 0;
      bufs[n++] = (struct virtq_buf){VIRT_TO_PHYS(&r->hdr), sizeof(r->hdr), false};
      for (uint32_t off = 0; off < bytes; off += desc) {
        uint32_t len = bytes - off < desc ? bytes - off : desc;
        bufs[n++] = (struct virtq_buf){VIRT_TO_PHYS(r->data + off), len, !write};
      }
      bufs[n++] = (struct virtq_buf){VIRT_TO_PHYS(&r->status), 1, true};
      int head = virtq_add(&b->vq, bufs, n);
      if (head < 0) {
        snprintf(why, sizeof(why), "submit: %s", b->vq.error);
        stuck = true;
        break;
      }
      req_of_head[head] = r;
      issued++;
      added = true;
    }
    if (stuck) break;
    if (added) virtq_kick(&b->vq);

    /* Wait for at least one completion, then take every one that is there. */
    uint16_t head;
    uint32_t len;
    int got = virtq_poll(&b->vq, &head, &len);
    if (!got) {
      uint64_t deadline = deadline_ms(BENCH_WAIT_MS);
      while (!(got = virtq_poll(&b->vq, &head, &len))) {
        if (deadline_passed(deadline)) break;
        cpu_relax();
      }
    }
    if (got <= 0) {
      if (got == 0) {
        snprintf(why, sizeof(why), "no completion within %u ms (%lu of %lu issued requests done)",
                 BENCH_WAIT_MS, completed, issued);
      } else {
        snprintf(why, sizeof(why), "%s", b->vq.error);
      }
      stuck = true;
      break;
    }
    while (got > 0) {
      struct bench_req* r = req_of_head[head];
      if (!r) {
        snprintf(why, sizeof(why), "used element for head %u, which is no request in flight", head);
        stuck = true;
        break;
      }
      req_of_head[head] = NULL;
      /* The status only after used->idx (virtq_poll's acquire load). */
      if ((r->status != VIRTIO_BLK_S_OK || len != r->wlen) && !bad++) {
        snprintf(why, sizeof(why),
                 "request at sector %lu (%u bytes): status %u, used len %u (want 0, %u)",
                 r->hdr.sector, r->bytes, r->status, len, r->wlen);
      }
      bytes_done += r->bytes;
      completed++;
      free_reqs[nfree++] = r;
      got = virtq_poll(&b->vq, &head, &len);
    }
    if (stuck) break;
    if (got < 0) {
      snprintf(why, sizeof(why), "%s", b->vq.error);
      stuck = true;
      break;
    }
  }
  if (!stuck) printf("bench: done %lu requests %lu bytes\n", completed, bytes_done);
  virtio_mask_interrupts(&b->dev, false); /* what came meanwhile is delivered now */
  b->vq.ack = ack;
  if (ack) b->vq.isr_seen |= ack(&b->vq);
  if (stuck)
    expect(false, "blk_bench", "%s", why);
  else
    expect(!bad, "blk_bench", "%lu of %lu requests failed; first: %s", bad, completed, why);
}
