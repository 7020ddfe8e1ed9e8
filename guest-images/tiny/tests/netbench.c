/* test=netbench dir=tx|rx [count=N] [size=BYTES] [nic=N] [queue=N] [batch=N]:
 * virtio-net throughput through whatever is behind the device (a TAP under
 * mote), used by tests/bench/net_bench.py. Polled in ring 3 through
 * virtio_net.c with both queues as big as the device allows (queue=, default
 * and at most NET_QUEUE_BIG = 256), interrupts suppressed (the available
 * rings' NO_INTERRUPT flag) and no interrupt-status reads while timed.
 *
 * Time: the TSC, whose rate is first measured against the CMOS RTC (the TSC
 * cycles between two seconds ticks, so 1..2 s before anything is timed):
 * "netbench: tsc N kHz (RTC)". deadline_ms's 4 GHz guess is only used to bound
 * that measurement.
 *
 * dir=tx: sends `count` (default 100000) frames of `size` bytes (default 1514,
 *   60..1514): ff:ff:ff:ff:ff:ff, the device MAC, EtherType 0x88b5, then
 *   "mote-bench seq=<i> " (decimal i from 0) and bytes (offset & 0xff) to the
 *   end. Each frame is one descriptor (header and frame together) in a slot
 *   of its own at 16 MiB; the queue is refilled, and kicked once, whenever
 *   `batch` (default half the queue) entries are free or all that is left
 *   fits, and used entries are reclaimed as they come back. Prints
 *   "netbench: tx frames=N bytes=B ms=T" (B = N * size; T from just before
 *   the first frame is queued to the reclaim of the last, in ms with three
 *   decimals).
 * dir=rx: posts one 2048-byte receive buffer (at 16 MiB + 512 KiB) per
 *   receive queue entry, prints "netbench: rx ready", then counts frames with
 *   EtherType 0x88b5 whose payload starts "mote-host bench" (others are only
 *   counted as ignored), each buffer going back at once (kicked every quarter
 *   queue, or after 1 ms without a frame). Stops after `count` (default
 *   100000) such frames, 2 s without one after the first, or 20 s without
 *   any; prints "netbench: rx frames=N bytes=B ms=T" (B: their frame bytes,
 *   T from the first to the last counted frame) and "netbench: rx ignored N
 *   other frames". Fails (netbench_rx) only on a driver error or when no
 *   frame came at all.
 * Nothing is printed while timed (each console byte is a VM exit). */
#include <stdarg.h>

#include "../arch.h"
#include "../boot.h"
#include "../lib.h"
#include "../platform.h"
#include "../test.h"
#include "../virtio_net.h"

#define ETH_HLEN 14
#define ETH_P_MOTE 0x88b5
#define FRAME_MIN 60
#define HDR_BYTES ((uint32_t)sizeof(struct virtio_net_hdr))
#define SLOT_BYTES 2048u
#define BENCH_BASE (16ul << 20)
#define RX_BASE (BENCH_BASE + NET_QUEUE_BIG * SLOT_BYTES)
#define BENCH_END (RX_BASE + NET_QUEUE_BIG * SLOT_BYTES)
#define TX_PREFIX "mote-bench seq="
#define TX_PREFIX_MAX 40 /* "mote-bench seq=" + 20 digits + " " fits */
#define RX_PREFIX "mote-host bench"
#define STALL_MS 10000    /* tx: no buffer back for this long fails */
#define RX_IDLE_MS 2000   /* rx: after the first frame */
#define RX_FIRST_MS 20000 /* rx: before it */
#define RX_KICK_IDLE_US 1000
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define RTC_SECONDS 0x00

static struct net net;

/* A parameter check: only a failure prints (a PASS line is for results). */
static bool check(bool ok, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static bool check(bool ok, const char* fmt, ...) {
  if (ok) return true;
  char detail[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  return expect(false, "netbench", "%s", detail);
}
static uint8_t packet[NET_PACKET_MAX];
static uint16_t slot_of_head[NET_QUEUE_BIG];
static uint64_t tsc_khz; /* TSC cycles per ms */

static uint8_t rtc_seconds(void) {
  outb(CMOS_INDEX_PORT, RTC_SECONDS);
  return inb(CMOS_DATA_PORT);
}

/* TSC cycles between two ticks of the RTC's seconds (each poll is two port
 * exits, so an edge is seen within tens of microseconds). */
static bool calibrate(void) {
  uint64_t deadline = deadline_ms(3000); /* >= 3 s at up to 4 GHz */
  uint8_t s = rtc_seconds();
  while (rtc_seconds() == s) {
    if (deadline_passed(deadline)) return false;
  }
  uint64_t t0 = rdtsc();
  s = rtc_seconds();
  while (rtc_seconds() == s) {
    if (deadline_passed(deadline)) return false;
  }
  tsc_khz = (rdtsc() - t0) / 1000;
  return tsc_khz > 0;
}

static uint64_t tsc_us(uint64_t cycles) { return cycles * 1000 / tsc_khz; }

/* One timing result: "frames=N bytes=B ms=T.TTT". */
static void report(const char* dir, uint64_t frames, uint64_t bytes, uint64_t cycles) {
  uint64_t us = tsc_us(cycles);
  printf("netbench: %s frames=%lu bytes=%lu ms=%lu.%03lu\n", dir, frames, bytes, us / 1000,
         us % 1000);
}

/* Over the bench: no interrupts asked for, no interrupt-status reads. */
static uint32_t (*saved_ack[2])(struct virtq*);
static void quiet(bool on) {
  struct virtq* q[2] = {&net.rx, &net.tx};
  for (int i = 0; i < 2; ++i) {
    if (on) {
      saved_ack[i] = q[i]->ack;
      q[i]->ack = NULL;
    } else {
      q[i]->ack = saved_ack[i];
    }
    __atomic_store_n(&q[i]->avail->flags, on ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0, __ATOMIC_RELAXED);
  }
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static uint8_t* slot(unsigned s) { return (uint8_t*)(BENCH_BASE + (uint64_t)s * SLOT_BYTES); }

static void bench_tx(uint64_t count, uint32_t size, unsigned batch) {
  unsigned q = net.tx.size;
  /* Every slot: zeroed header, the constant frame; only the prefix changes. */
  for (unsigned s = 0; s < q; ++s) {
    uint8_t *p = slot(s), *f = p + HDR_BYTES;
    memset(p, 0, HDR_BYTES);
    memset(f, 0xff, 6);
    memcpy(f + 6, net.mac, 6);
    f[12] = ETH_P_MOTE >> 8;
    f[13] = ETH_P_MOTE & 0xff;
    for (uint32_t off = ETH_HLEN; off < size; ++off) f[off] = (uint8_t)off;
  }
  uint16_t free_slots[NET_QUEUE_BIG];
  unsigned nfree = q;
  for (unsigned s = 0; s < q; ++s) free_slots[s] = (uint16_t)(q - 1 - s);
  uint32_t room = size - ETH_HLEN < TX_PREFIX_MAX ? size - ETH_HLEN : TX_PREFIX_MAX;

  printf("netbench: dir=tx count=%lu size=%u queue=%u batch=%u\n", count, size, q, batch);
  quiet(true);
  uint64_t issued = 0, done = 0, kicks = 0;
  char why[160] = "";
  uint64_t t0 = rdtsc(), last_progress = t0;
  while (done < count) {
    uint16_t head;
    int r;
    bool progress = false;
    while ((r = net_tx_poll(&net, &head)) > 0) {
      free_slots[nfree++] = slot_of_head[head];
      done++;
      progress = true;
    }
    if (r < 0) {
      snprintf(why, sizeof(why), "after %lu of %lu frames: %s", done, count, net.error);
      break;
    }
    uint64_t left = count - issued;
    if (nfree && left && (nfree >= batch || nfree >= left)) {
      unsigned n = left < nfree ? (unsigned)left : nfree;
      for (unsigned k = 0; k < n; ++k) {
        unsigned s = free_slots[--nfree];
        uint8_t* f = slot(s) + HDR_BYTES;
        char text[TX_PREFIX_MAX + 1];
        uint32_t len = (uint32_t)snprintf(text, sizeof(text), TX_PREFIX "%lu ", issued);
        if (len > room) len = room;
        memcpy(f + ETH_HLEN, text, len);
        /* Bytes a longer earlier prefix left behind go back to the pattern. */
        for (uint32_t off = ETH_HLEN + len; off < ETH_HLEN + room; ++off) f[off] = (uint8_t)off;
        int h = net_tx_queue(&net, slot(s), HDR_BYTES + size);
        if (h < 0) {
          snprintf(why, sizeof(why), "frame %lu: %s", issued, net.error);
          break;
        }
        slot_of_head[h] = (uint16_t)s;
        issued++;
      }
      if (why[0]) break;
      net_tx_kick(&net);
      kicks++;
      progress = true;
    }
    uint64_t now = rdtsc();
    if (progress) {
      last_progress = now;
    } else if (now - last_progress > STALL_MS * tsc_khz) {
      snprintf(why, sizeof(why),
               "no transmit buffer back for %u ms (%lu of %lu frames done, %lu queued)", STALL_MS,
               done, count, issued);
      break;
    } else {
      cpu_relax();
    }
  }
  uint64_t t1 = rdtsc();
  quiet(false);
  if (why[0]) {
    expect(false, "netbench_tx", "%s", why);
    return;
  }
  report("tx", done, done * size, t1 - t0);
  printf("netbench: tx kicks=%lu\n", kicks);
  expect(true, "netbench_tx", NULL);
}

static bool is_bench_frame(const uint8_t* f, uint32_t len) {
  size_t plen = strlen(RX_PREFIX);
  return len >= ETH_HLEN + plen && f[12] == (ETH_P_MOTE >> 8) && f[13] == (ETH_P_MOTE & 0xff) &&
         memcmp(f + ETH_HLEN, RX_PREFIX, plen) == 0;
}

static void bench_rx(uint64_t count) {
  unsigned kick_every = net.rx_bufs / 4 ? net.rx_bufs / 4 : 1;
  printf("netbench: dir=rx count=%lu queue=%u buffers=%u of %u bytes\n", count, net.rx.size,
         net.rx_bufs, net.rx_buf_bytes);
  quiet(true);
  printf("netbench: rx ready\n");
  uint64_t frames = 0, bytes = 0, other = 0, kicks = 0;
  unsigned unkicked = 0;
  char why[160] = "";
  uint64_t start = rdtsc(), first = 0, last = 0, last_any = start;
  while (frames < count) {
    uint32_t len;
    struct virtio_net_hdr h;
    int r = net_rx_take(&net, packet, sizeof(packet), &len, &h);
    if (r < 0) {
      snprintf(why, sizeof(why), "after %lu frames: %s", frames, net.error);
      break;
    }
    uint64_t now = rdtsc();
    if (r > 0) {
      last_any = now;
      if (++unkicked >= kick_every) {
        net_rx_kick(&net);
        kicks++;
        unkicked = 0;
      }
      if (!is_bench_frame(packet, len)) {
        other++;
        continue;
      }
      if (!frames) first = now;
      last = now;
      frames++;
      bytes += len;
      continue;
    }
    if (unkicked && tsc_us(now - last_any) >= RX_KICK_IDLE_US) {
      net_rx_kick(&net);
      kicks++;
      unkicked = 0;
    }
    if (frames ? now - last > RX_IDLE_MS * tsc_khz : now - start > RX_FIRST_MS * tsc_khz) break;
    cpu_relax();
  }
  quiet(false);
  if (why[0]) {
    expect(false, "netbench_rx", "%s", why);
    return;
  }
  report("rx", frames, bytes, last - first);
  printf("netbench: rx ignored %lu other frames, kicks=%lu\n", other, kicks);
  expect(frames > 0, "netbench_rx", "no \"" RX_PREFIX "\" frame within %u ms", RX_FIRST_MS);
}

void test_netbench(void) {
  char dir[16] = "";
  cmdline_get("dir", dir, sizeof(dir));
  bool tx = strcmp(dir, "tx") == 0;
  if (!check(tx || strcmp(dir, "rx") == 0, "dir=%s: want tx or rx", dir)) return;
  uint64_t count = cmdline_u64("count", 100000);
  uint32_t size = (uint32_t)cmdline_u64("size", NET_FRAME_MAX);
  unsigned queue = (unsigned)cmdline_u64("queue", NET_QUEUE_BIG);
  int nic = (int)cmdline_u64("nic", 0);
  if (!check(count > 0, "count=0: nothing to do")) return;
  if (!check(size >= FRAME_MIN && size <= NET_FRAME_MAX, "size=%u: want %u..%u", size, FRAME_MIN,
             NET_FRAME_MAX))
    return;
  if (!check(boot.mem_bytes >= BENCH_END, "needs %lu MiB of RAM, have %lu MiB", BENCH_END >> 20,
             boot.mem_bytes >> 20))
    return;

  struct net_options o = {.queue_size = queue,
                          .rx_bufs = queue,
                          .rx_buf_bytes = SLOT_BYTES,
                          .rx_area = (uint8_t*)RX_BASE,
                          .no_poison = true};
  if (!check(net_open_with(&net, nic, &o), "%s", net.error)) return;
  const uint8_t* m = net.mac;
  printf("netbench: mac=%02x:%02x:%02x:%02x:%02x:%02x queues rx=%u tx=%u mrg_rxbuf=%d\n", m[0],
         m[1], m[2], m[3], m[4], m[5], net.rx.size, net.tx.size, net.mrg_rxbuf);
  if (!check(calibrate(), "the RTC's seconds did not tick within 3 s: no time base")) return;
  printf("netbench: tsc %lu kHz (RTC)\n", tsc_khz);

  if (tx) {
    unsigned batch = (unsigned)cmdline_u64("batch", net.tx.size / 2);
    if (batch < 1) batch = 1;
    if (batch > net.tx.size) batch = net.tx.size;
    bench_tx(count, size, batch);
  } else {
    bench_rx(count);
  }
  virtio_report_interrupts(&net.dev);
}
