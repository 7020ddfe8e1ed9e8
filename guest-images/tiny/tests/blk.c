/* test=blk [disk=N] [op=OP] [seg=BYTES] ...: drives a virtio-blk device
 * (DeviceID 2; the N-th such, PCI functions first, then virtio_mmio.device=
 * words; default 0) through
 * virtio_blk.c, polling in ring 3. Negotiates VERSION_1 and, when offered,
 * FLUSH, RO, BLK_SIZE, SEG_MAX and SIZE_MAX; requests honour seg_max and
 * size_max, carry at most 128 sectors (64 KiB) and are cut into data
 * descriptors of at most seg= bytes (default 65536; e.g. seg=512 or seg=1000
 * makes long chains that split sectors). Every op first prints
 *   blk: disk N capacity=C sectors ro=0|1 flush=0|1 seg_max=S size_max=Z
 * (seg_max/size_max 0 when not offered) and a line of details, then:
 *
 * op=info (default): GET_ID; prints "blk: id=SERIAL" (up to the first NUL,
 *   non-printable bytes as '?') or "blk: id unsupported" (status UNSUPP).
 * op=checksum: reads all `capacity` sectors, up to 8 requests in flight, and
 *   prints "blk: read C sectors crc32=0x%08x", Python's zlib.crc32 of the
 *   whole disk.
 * op=write sector=S count=N tag=T [hold=1] [expect=ioerr]: writes N sectors
 *   from S with the pattern below, then FLUSH if negotiated; prints
 *   "blk: wrote N sectors at S status=X" and "blk: flushed status=Y" or
 *   "blk: flush unsupported"; hold=1 then prints "blk: holding" and spins
 *   (the host kills the VMM and looks at the file). expect=ioerr: the device
 *   is read-only and must refuse the write with IOERR; the first request's
 *   worth of sectors must read the same before and after.
 * op=readback sector=S count=N tag=T: reads them back, compares.
 * op=records count=N sectors=K [tag=T]: N numbered records, one after the
 *   other: record R is K sectors at R * K with the pattern of tag T + "r" +
 *   R (e.g. "recr17"; T default "rec"), written, then flushed; only when
 *   both succeeded it prints "blk: record R flushed" (the host may kill the
 *   VMM at any moment and then finds every such record in the file). Stops
 *   at the first failure; after the last, "blk: records N flushed" and spins.
 * op=hostile, op=framing: tests/blk_hostile.c.
 * op=bench mode=... bs=... depth=... count=... seed=...: tests/blk_bench.c.
 *
 * The pattern: sector S+k (k = 0..N-1) holds the line
 *   "mote " + T + " sector " + decimal(S+k) + "\n"
 * repeated as many whole times as fit in 512 bytes, then '.' up to 512. T
 * (default "test", at most 63 bytes) is one command-line word. In Python:
 *   line = b"mote %s sector %d\n" % (tag, s); n = 512 // len(line)
 *   sector = line * n + b"." * (512 - n * len(line))
 * Statuses print as decimal: 0 OK, 1 IOERR, 2 UNSUPP, 255 never written,
 * -1 the request did not come back properly (a FAIL line says why). */
#include "blk.h"

#include "../boot.h"
#include "../crc32.h"
#include "../lib.h"
#include "../test.h"

#define TAG_MAX 64

static struct blk blk;
static uint8_t id[VIRTIO_BLK_ID_BYTES];

static void print_info(int disk) {
  printf("blk: disk %d capacity=%lu sectors ro=%d flush=%d seg_max=%u size_max=%u\n", disk,
         blk.capacity, blk.ro, blk.flush, blk.seg_max, blk.size_max);
  printf(
      "blk: features offered 0x%lx accepted 0x%lx blk_size=%u queue=%u; requests: sectors<=%u "
      "data_descriptors<=%u bytes_each<=%u in_flight<=%u\n",
      blk.dev.device_features, blk.dev.features, blk.blk_size, blk.vq.size, blk.req_sectors,
      blk.segs, blk.seg_bytes, blk.inflight);
}

static void op_info(void) {
  uint32_t len;
  int st = blk_request(&blk, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id), true, &len);
  if (st == VIRTIO_BLK_S_UNSUPP) {
    printf("blk: id unsupported\n");
  } else if (st == VIRTIO_BLK_S_OK) {
    char text[VIRTIO_BLK_ID_BYTES + 1];
    unsigned n = 0;
    for (; n < VIRTIO_BLK_ID_BYTES && id[n]; ++n)
      text[n] = id[n] >= 0x20 && id[n] < 0x7f ? id[n] : '?';
    text[n] = '\0';
    printf("blk: id=%s\n", text);
    /* The spec says NUL-padded; QEMU only writes the NUL after the string. */
    for (unsigned i = n; i < VIRTIO_BLK_ID_BYTES; ++i) {
      if (id[i]) {
        printf("blk: id bytes %u..19 not all NUL (0x%02x at %u)\n", n, id[i], i);
        break;
      }
    }
  }
  if (st < 0)
    expect(false, "blk_id", "%s", blk.error);
  else
    expect(st == VIRTIO_BLK_S_OK || st == VIRTIO_BLK_S_UNSUPP, "blk_id", "status %d, used len %u",
           st, len);
}

static void crc_data(void* ctx, uint8_t* data, uint64_t sector, unsigned sectors) {
  (void)sector;
  uint32_t* crc = ctx;
  *crc = crc32_update(*crc, data, (size_t)sectors * VIRTIO_BLK_SECTOR);
}

static void op_checksum(void) {
  uint32_t crc = 0;
  int st = blk_transfer(&blk, VIRTIO_BLK_T_IN, 0, blk.capacity, crc_data, &crc);
  if (st == 0) printf("blk: read %lu sectors crc32=0x%08x\n", blk.capacity, crc);
  if (st < 0)
    expect(false, "blk_checksum", "%s", blk.error);
  else
    expect(st == 0, "blk_checksum", "a read returned status %d", st);
}

struct pattern {
  char tag[TAG_MAX];
  uint64_t mismatched, first_bad; /* readback */
  char first_bad_text[48];
};

/* The 512 bytes of `sector` (see the header comment). */
static void pattern_sector(const struct pattern* p, uint64_t sector, uint8_t* out) {
  char line[TAG_MAX + 40];
  unsigned len = (unsigned)snprintf(line, sizeof(line), "mote %s sector %lu\n", p->tag, sector);
  unsigned n = VIRTIO_BLK_SECTOR / len * len;
  for (unsigned i = 0; i < n; i += len) memcpy(out + i, line, len);
  memset(out + n, '.', VIRTIO_BLK_SECTOR - n);
}

static void fill_pattern(void* ctx, uint8_t* data, uint64_t sector, unsigned sectors) {
  for (unsigned i = 0; i < sectors; ++i)
    pattern_sector(ctx, sector + i, data + i * VIRTIO_BLK_SECTOR);
}

static void compare_pattern(void* ctx, uint8_t* data, uint64_t sector, unsigned sectors) {
  struct pattern* p = ctx;
  uint8_t want[VIRTIO_BLK_SECTOR];
  for (unsigned i = 0; i < sectors; ++i) {
    const uint8_t* got = data + i * VIRTIO_BLK_SECTOR;
    pattern_sector(p, sector + i, want);
    if (memcmp(got, want, sizeof(want)) == 0) continue;
    if (!p->mismatched++) {
      p->first_bad = sector + i;
      for (unsigned j = 0; j + 1 < sizeof(p->first_bad_text); ++j) {
        p->first_bad_text[j] = got[j] >= 0x20 && got[j] < 0x7f ? got[j] : '?';
      }
    }
  }
}

/* The CRC of the first request's worth of sectors at `sector`, or -1. */
static int64_t crc_first(uint64_t sector, uint64_t count) {
  uint32_t crc = 0;
  if (count > blk.req_sectors) count = blk.req_sectors;
  int st = blk_transfer(&blk, VIRTIO_BLK_T_IN, sector, count, crc_data, &crc);
  if (st < 0)
    expect(false, "blk_ro_unchanged", "read: %s", blk.error);
  else if (st)
    expect(false, "blk_ro_unchanged", "read: status %d", st);
  if (st) return -1;
  return crc;
}

static void op_write(void) {
  static struct pattern p = {.tag = "test"};
  cmdline_get("tag", p.tag, sizeof(p.tag));
  uint64_t sector = cmdline_u64("sector", 0), count = cmdline_u64("count", 1);
  char want[8] = "ok";
  cmdline_get("expect", want, sizeof(want));
  bool refuse = strcmp(want, "ioerr") == 0;

  int64_t before = refuse ? crc_first(sector, count) : 0;
  int st = blk_transfer(&blk, VIRTIO_BLK_T_OUT, sector, count, fill_pattern, &p);
  printf("blk: wrote %lu sectors at %lu status=%d\n", count, sector, st);
  if (st < 0)
    expect(false, refuse ? "blk_write_refused" : "blk_write", "%s", blk.error);
  else if (refuse)
    expect(st == VIRTIO_BLK_S_IOERR, "blk_write_refused", "status %d, want 1 (IOERR)", st);
  else
    expect(st == VIRTIO_BLK_S_OK, "blk_write", "status %d", st);

  if (blk.flush) {
    uint32_t len;
    int fst = blk_request(&blk, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, &len);
    printf("blk: flushed status=%d\n", fst);
    /* A read-only device may take or refuse a flush: only the write counts there. */
    if (fst < 0)
      expect(false, "blk_flush", "%s", blk.error);
    else if (!refuse)
      expect(fst == VIRTIO_BLK_S_OK, "blk_flush", "status %d", fst);
  } else {
    printf("blk: flush unsupported\n");
  }

  if (refuse && before >= 0) {
    int64_t after = crc_first(sector, count);
    if (after >= 0) {
      expect(after == before, "blk_ro_unchanged",
             "crc32 of the first sectors 0x%08x before, 0x%08x after", (uint32_t)before,
             (uint32_t)after);
    }
  }
  if (cmdline_u64("hold", 0)) {
    printf("blk: holding\n");
    for (;;) __asm__ volatile("pause");
  }
}

static void op_records(void) {
  char base[TAG_MAX / 2] = "rec";
  cmdline_get("tag", base, sizeof(base));
  uint64_t count = cmdline_u64("count", 1), sectors = cmdline_u64("sectors", 8);
  if (!blk.flush) {
    expect(false, "blk_records", "the device does not offer FLUSH");
    return;
  }
  for (uint64_t r = 0; r < count; ++r) {
    static struct pattern p;
    snprintf(p.tag, sizeof(p.tag), "%sr%lu", base, r);
    int st = blk_transfer(&blk, VIRTIO_BLK_T_OUT, r * sectors, sectors, fill_pattern, &p);
    const char* step = "write";
    uint32_t len;
    if (st == VIRTIO_BLK_S_OK) {
      st = blk_request(&blk, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, &len);
      step = "flush";
    }
    if (st != VIRTIO_BLK_S_OK) {
      expect(false, "blk_records", "record %lu: %s status %d %s", r, step, st,
             st < 0 ? blk.error : "");
      return;
    }
    printf("blk: record %lu flushed\n", r);
  }
  printf("blk: records %lu flushed\n", count);
  expect(true, "blk_records", NULL);
  for (;;) __asm__ volatile("pause");
}

static void op_readback(void) {
  static struct pattern p = {.tag = "test"};
  cmdline_get("tag", p.tag, sizeof(p.tag));
  uint64_t sector = cmdline_u64("sector", 0), count = cmdline_u64("count", 1);
  int st = blk_transfer(&blk, VIRTIO_BLK_T_IN, sector, count, compare_pattern, &p);
  if (st < 0) {
    expect(false, "blk_readback", "%s", blk.error);
    return;
  }
  if (st) {
    expect(false, "blk_readback", "a read returned status %d", st);
    return;
  }
  printf("blk: read back %lu sectors at %lu: %lu differ\n", count, sector, p.mismatched);
  expect(!p.mismatched, "blk_readback", "%lu of %lu sectors differ, first %lu starts '%s'",
         p.mismatched, count, p.first_bad, p.first_bad_text);
}

void test_blk(void) {
  int disk = (int)cmdline_u64("disk", 0);
  uint32_t seg = (uint32_t)cmdline_u64("seg", BLK_REQ_BYTES);
  char op[16] = "info";
  cmdline_get("op", op, sizeof(op));
  if (!expect(blk_open(&blk, disk, seg), "blk_init", "disk %d: %s", disk, blk.error)) return;
  print_info(disk);
  if (strcmp(op, "info") == 0)
    op_info();
  else if (strcmp(op, "checksum") == 0)
    op_checksum();
  else if (strcmp(op, "write") == 0)
    op_write();
  else if (strcmp(op, "readback") == 0)
    op_readback();
  else if (strcmp(op, "records") == 0)
    op_records();
  else if (strcmp(op, "hostile") == 0)
    blk_hostile(&blk);
  else if (strcmp(op, "framing") == 0)
    blk_framing(&blk);
  else if (strcmp(op, "bench") == 0)
    blk_bench(&blk);
  else
    expect(false, "blk_op",
           "op=%s: want info, checksum, write, readback, records, hostile, framing or bench", op);
  virtio_report_interrupts(&blk.dev);
}
