/* test=blk op=hostile and op=framing: descriptor chains of our own, on the
 * queue virtio_blk.c set up.
 *
 * op=hostile: requests a device must refuse without harm, each submitted
 * alone, then a good read of the first sectors that must match a reference
 * read made at the start (blk_after_NAME):
 *   writable_header   IN sector 0 with the header device-writable
 *   no_status         IN sector 0, header and a 512-byte buffer both
 *                     device-readable: nowhere to put data or status
 *   data_outside_ram  IN sector 0 into 0xfffff0000000
 *   past_end          IN of 1 sector at sector = capacity
 *   straddle_end      IN of 2 sectors at capacity - 1
 *   sector_wrap       IN at sector 2^55 (sector * 512 wraps to 0)
 *   bad_type          header-only request (and status) of type 99
 *   write_past_end    OUT of 1 sector at capacity
 * A request may come back (with an error status where it has a status
 * byte, or with used len 0) or the device may set DEVICE_NEEDS_RESET, after
 * which the test resets and sets it up again; one that does neither within
 * a second is reported as lost and judged if it comes back later. FAIL
 * (blk_hostile_NAME) only for status 0 (success), a used len beyond the
 * chain's writable bytes, or (no_status) a change to the device-readable
 * buffer; and when the good read after it fails.
 *
 * op=framing: the spec lets the driver lay a request out over descriptors
 * as it likes (2.7.4, Message Framing); a read of 2 sectors at 0 with the
 * header split 5 + 11 bytes and the status in the same descriptor as the
 * last 724 data bytes, and (writable devices) a write of the same 2 sectors
 * back with header and data in one descriptor, must both work. */
#include "../lib.h"
#include "../test.h"
#include "blk.h"

#define HOSTILE_WAIT_MS 1000
#define BAD_ADDR 0xfffff0000000ul /* far above any guest RAM */
#define REF_SECTORS 8
#define REF_BYTES (REF_SECTORS * VIRTIO_BLK_SECTOR)
#define FRAME_BYTES (2 * VIRTIO_BLK_SECTOR)

enum {
  WRITABLE_HEADER,
  NO_STATUS,
  DATA_OUTSIDE_RAM,
  PAST_END,
  STRADDLE_END,
  SECTOR_WRAP,
  BAD_TYPE,
  WRITE_PAST_END,
  NCASES
};

static const char* const case_names[NCASES] = {
    "writable_header", "no_status",   "data_outside_ram", "past_end",
    "straddle_end",    "sector_wrap", "bad_type",         "write_past_end",
};

/* Each case has its own memory, so one that comes back late cannot touch
 * another's. */
struct hostile {
  struct virtio_blk_hdr hdr;
  uint8_t status;
  bool has_status;
  int head; /* in flight (or lost) while >= 0 */
  uint8_t data[FRAME_BYTES];
};

static struct hostile cases[NCASES] __attribute__((aligned(64)));
static uint8_t ref[REF_BYTES] __attribute__((aligned(64)));
static uint8_t check[REF_BYTES] __attribute__((aligned(64)));
static unsigned ref_sectors;

/* The chain of case `i` in bufs; returns its length. */
static unsigned build(struct blk* b, unsigned i, struct virtq_buf* bufs) {
  struct hostile* c = &cases[i];
  uint64_t hdr = VIRT_TO_PHYS(&c->hdr), data = VIRT_TO_PHYS(c->data),
           status = VIRT_TO_PHYS(&c->status);
  c->hdr = (struct virtio_blk_hdr){.type = VIRTIO_BLK_T_IN, .sector = 0};
  c->status = 0xff;
  c->has_status = true;
  memset(c->data, BLK_POISON, sizeof(c->data));
  unsigned n = 0;
  bufs[n++] = (struct virtq_buf){hdr, sizeof(c->hdr), false};
  switch (i) {
    case WRITABLE_HEADER:
      bufs[0].writable = true;
      bufs[n++] = (struct virtq_buf){data, VIRTIO_BLK_SECTOR, true};
      break;
    case NO_STATUS:
      c->has_status = false;
      bufs[n++] = (struct virtq_buf){data, VIRTIO_BLK_SECTOR, false};
      return n;
    case DATA_OUTSIDE_RAM:
      bufs[n++] = (struct virtq_buf){BAD_ADDR, VIRTIO_BLK_SECTOR, true};
      break;
    case PAST_END:
    case SECTOR_WRAP:
      c->hdr.sector = i == PAST_END ? b->capacity : 1ull << 55;
      bufs[n++] = (struct virtq_buf){data, VIRTIO_BLK_SECTOR, true};
      break;
    case STRADDLE_END:
      c->hdr.sector = b->capacity ? b->capacity - 1 : 0;
      bufs[n++] = (struct virtq_buf){data, FRAME_BYTES, true};
      break;
    case BAD_TYPE:
      c->hdr.type = 99;
      break;
    case WRITE_PAST_END:
      c->hdr = (struct virtio_blk_hdr){.type = VIRTIO_BLK_T_OUT, .sector = b->capacity};
      bufs[n++] = (struct virtq_buf){data, VIRTIO_BLK_SECTOR, false};
      break;
  }
  bufs[n++] = (struct virtq_buf){status, 1, true};
  return n;
}

static bool untouched(const uint8_t* p, unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    if (p[i] != BLK_POISON) return false;
  }
  return true;
}

/* Prints what case `i` came back with. */
static void describe(unsigned i, uint32_t len, bool late) {
  struct hostile* c = &cases[i];
  c->head = -1;
  printf("blk: hostile %s: returned%s, used len %u", case_names[i], late ? " late" : "", len);
  if (c->has_status)
    printf(", status %u\n", c->status);
  else
    printf("\n");
}

/* Case `i` came back with used len `len` (within the chain's writable bytes). */
static void judge(unsigned i, uint32_t len, bool late) {
  struct hostile* c = &cases[i];
  describe(i, len, late);
  char name[40];
  snprintf(name, sizeof(name), "blk_hostile_%s", case_names[i]);
  if (c->has_status) {
    expect(c->status != VIRTIO_BLK_S_OK, name, "device reported success (status 0, used len %u)",
           len);
  } else {
    expect(untouched(c->data, VIRTIO_BLK_SECTOR), name,
           "device wrote into a device-readable buffer");
  }
}

/* A used element for no request of virtio_blk.c's: a lost case coming back. */
static bool stray(struct blk* b, uint16_t head, uint32_t len) {
  (void)b;
  for (unsigned i = 0; i < NCASES; ++i) {
    if (cases[i].head == head) {
      judge(i, len, true);
      return true;
    }
  }
  return false;
}

static void forget_all(void) {
  for (unsigned i = 0; i < NCASES; ++i) cases[i].head = -1;
}

/* Reads the first ref_sectors into `buf`. */
static int read_first(struct blk* b, uint8_t* buf, uint32_t* len) {
  return blk_request(b, VIRTIO_BLK_T_IN, 0, buf, ref_sectors * VIRTIO_BLK_SECTOR, true, len);
}

/* The good read after a case (or any step): must work and match `ref`. */
static void check_first(struct blk* b, const char* name) {
  uint32_t len;
  int st = read_first(b, check, &len);
  if (st < 0)
    expect(false, name, "%s", b->error);
  else if (st)
    expect(false, name, "status %d, used len %u", st, len);
  else
    expect(memcmp(check, ref, ref_sectors * VIRTIO_BLK_SECTOR) == 0, name,
           "data differs from the first read");
}

static void run_case(struct blk* b, unsigned i) {
  struct virtq_buf bufs[4];
  char name[40];
  snprintf(name, sizeof(name), "blk_hostile_%s", case_names[i]);
  unsigned n = build(b, i, bufs);
  int head = virtq_add(&b->vq, bufs, n);
  if (head < 0) {
    expect(false, name, "%s", b->vq.error);
    return;
  }
  cases[i].head = head;
  virtq_kick(&b->vq);
  for (;;) {
    uint16_t got = 0xffff;
    uint32_t len = 0;
    int r = virtq_wait(&b->vq, &got, &len, HOSTILE_WAIT_MS);
    if (r < 0) { /* a used len beyond the chain, or a head not in flight */
      if (got == head)
        describe(i, len, false);
      else if (got != 0xffff)
        stray(b, got, len);
      expect(false, name, "%s", b->vq.error);
      cases[i].head = -1;
      break;
    }
    if (r > 0) { /* this case, or an earlier lost one coming back late */
      if (got == head) {
        judge(i, len, false);
        break;
      }
      if (!stray(b, got, len)) expect(false, name, "device returned head %u, not in flight", got);
      continue;
    }
    uint32_t status = virtio_status(&b->dev);
    if (status & VIRTIO_STATUS_NEEDS_RESET) {
      printf(
          "blk: hostile %s: not returned within %u ms, Status 0x%x (DEVICE_NEEDS_RESET): "
          "resetting\n",
          case_names[i], HOSTILE_WAIT_MS, status);
      forget_all();
      if (!blk_setup(b)) {
        expect(false, name, "setting the device up again: %s", b->error);
        return;
      }
      expect(true, name, NULL);
    } else {
      printf("blk: hostile %s: not returned within %u ms, Status 0x%x: lost\n", case_names[i],
             HOSTILE_WAIT_MS, status);
    }
    break;
  }
  snprintf(name, sizeof(name), "blk_after_%s", case_names[i]);
  check_first(b, name);
}

void blk_hostile(struct blk* b) {
  ref_sectors = b->req_sectors < REF_SECTORS ? b->req_sectors : REF_SECTORS;
  b->stray = stray;
  forget_all();
  uint32_t len;
  int st = read_first(b, ref, &len);
  if (st < 0)
    expect(false, "blk_first_read", "%s", b->error);
  else
    expect(st == VIRTIO_BLK_S_OK, "blk_first_read", "status %d, used len %u", st, len);
  if (st) return;
  for (unsigned i = 0; i < NCASES; ++i) run_case(b, i);
}

/* op=framing's own memory: a header, and data followed by the status. */
static struct virtio_blk_hdr frame_hdr __attribute__((aligned(16)));
static uint8_t frame_data[FRAME_BYTES + 1] __attribute__((aligned(64)));
static struct {
  struct virtio_blk_hdr hdr;
  uint8_t data[FRAME_BYTES];
} frame_out __attribute__((aligned(64)));
static uint8_t frame_status;

/* Submits one chain, nothing else in flight; true when it came back. */
static bool submit_wait(struct blk* b, const struct virtq_buf* bufs, unsigned n, uint32_t* len,
                        const char* name) {
  if (virtq_submit_wait(&b->vq, bufs, n, len, HOSTILE_WAIT_MS)) return true;
  return expect(false, name, "%s", b->vq.error);
}

void blk_framing(struct blk* b) {
  ref_sectors = FRAME_BYTES / VIRTIO_BLK_SECTOR;
  uint32_t len;
  int st = read_first(b, ref, &len);
  if (st < 0)
    expect(false, "blk_first_read", "%s", b->error);
  else
    expect(st == VIRTIO_BLK_S_OK, "blk_first_read", "status %d, used len %u", st, len);
  if (st) return;

  /* Header as 5 + 11 bytes; data as 300 bytes, then 724 bytes + the status. */
  frame_hdr = (struct virtio_blk_hdr){.type = VIRTIO_BLK_T_IN, .sector = 0};
  memset(frame_data, BLK_POISON, FRAME_BYTES);
  frame_data[FRAME_BYTES] = 0xff;
  struct virtq_buf in[4] = {
      {VIRT_TO_PHYS(&frame_hdr), 5, false},
      {VIRT_TO_PHYS(&frame_hdr) + 5, sizeof(frame_hdr) - 5, false},
      {VIRT_TO_PHYS(frame_data), 300, true},
      {VIRT_TO_PHYS(frame_data) + 300, FRAME_BYTES - 300 + 1, true},
  };
  if (submit_wait(b, in, 4, &len, "blk_framing_read")) {
    st = frame_data[FRAME_BYTES];
    printf("blk: framed read: used len %u, status %d\n", len, st);
    expect(st == VIRTIO_BLK_S_OK && len == FRAME_BYTES + 1 &&
               memcmp(frame_data, ref, FRAME_BYTES) == 0,
           "blk_framing_read", "status %d, used len %u (want %u), data %s", st, len,
           FRAME_BYTES + 1, memcmp(frame_data, ref, FRAME_BYTES) ? "differs" : "same");
  }

  if (b->ro) {
    printf("blk: read-only: no framed write\n");
    return;
  }
  /* The same 2 sectors written back: header and data in one descriptor. */
  frame_out.hdr = (struct virtio_blk_hdr){.type = VIRTIO_BLK_T_OUT, .sector = 0};
  memcpy(frame_out.data, ref, FRAME_BYTES);
  frame_status = 0xff;
  struct virtq_buf out[2] = {
      {VIRT_TO_PHYS(&frame_out), sizeof(frame_out), false},
      {VIRT_TO_PHYS(&frame_status), 1, true},
  };
  if (submit_wait(b, out, 2, &len, "blk_framing_write")) {
    printf("blk: framed write: used len %u, status %d\n", len, frame_status);
    expect(frame_status == VIRTIO_BLK_S_OK && len == 1, "blk_framing_write",
           "status %d, used len %u (want 1)", frame_status, len);
  }
  check_first(b, "blk_framing_after");
}
