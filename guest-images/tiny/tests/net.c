/* test=net [count=N] [size=BYTES] [rxbuf=BYTES]: drives a virtio-net device
 * (DeviceID 1: the nic=N-th, default 0, PCI functions first, then
 * virtio_mmio.device= words) through virtio_net.c,
 * polling in ring 3, against a host that answers (see README.md):
 *
 * 1. prints "net: mac=xx:xx:xx:xx:xx:xx link=up|down|unknown" (unknown:
 *    STATUS not negotiated) and "net: features mrg_rxbuf=0|1".
 * 2. sends `count` (default 8, at most 256) frames of `size` bytes (default
 *    200, 60..1514), frame i (from 0) being
 *      ff:ff:ff:ff:ff:ff, the device MAC, EtherType 0x88b5,
 *      "mote-guest seq=<i> " (decimal i), then bytes (i + k) & 0xff, k = 0..
 *    up to `size`; even i as one descriptor (header + frame), odd i as two
 *    (header, frame). Each must come back (used len 0) within 2 s; then
 *    "net: sent <count> frames".
 * 3. waits (10 s in all) for `count` frames with EtherType 0x88b5 whose
 *    payload starts "mote-host seq=", ignoring every other frame. The rest
 *    of such a frame must be "<j> " (decimal j) then bytes (j * 3 + k) & 0xff
 *    to its end, its length 60..1514, its header flags and gso_type 0 (no
 *    offload was negotiated) and, without MRG_RXBUF, num_buffers 1: prints
 *    "net: rx seq=<j> len=<frame length> ok" (or "... FAIL" and a FAIL
 *    line), then "net: host frames took <b> receive buffers", "net: ignored
 *    <n> other frames" and "net: received <count> frames".
 * 4. resets the device: Status and both QueueReady must read 0.
 * rxbuf= (128..2048, default 2048) sizes the 16 receive buffers: small ones
 * make a device with MRG_RXBUF spread a frame over several. */
#include "../arch.h"
#include "../boot.h"
#include "../lib.h"
#include "../test.h"
#include "../virtio_net.h"

#define ETH_HLEN 14
#define ETH_P_MOTE 0x88b5 /* IEEE local experimental EtherType 1 */
#define FRAME_MIN 60
#define COUNT_MAX 256
#define TX_WAIT_MS 2000
#define RX_WAIT_MS 10000
#define GUEST_PREFIX "mote-guest seq="
#define HOST_PREFIX "mote-host seq="

static struct net net;
static uint8_t frame[NET_FRAME_MAX];
static uint8_t packet[NET_PACKET_MAX];

/* Frame i of step 2, `size` bytes, in `frame`. */
static void build(unsigned i, uint32_t size) {
  memset(frame, 0xff, 6);
  memcpy(frame + 6, net.mac, 6);
  frame[12] = ETH_P_MOTE >> 8;
  frame[13] = ETH_P_MOTE & 0xff;
  uint32_t off = ETH_HLEN + (uint32_t)snprintf((char*)frame + ETH_HLEN, size - ETH_HLEN,
                                               GUEST_PREFIX "%u ", i);
  for (uint32_t k = 0; off + k < size; ++k) frame[off + k] = (uint8_t)(i + k);
}

static bool is_host_frame(const uint8_t* f, uint32_t len) {
  size_t plen = strlen(HOST_PREFIX);
  return len >= ETH_HLEN + plen && f[12] == (ETH_P_MOTE >> 8) && f[13] == (ETH_P_MOTE & 0xff) &&
         memcmp(f + ETH_HLEN, HOST_PREFIX, plen) == 0;
}

/* Checks a host frame (step 3); prints its line. */
static void check_host_frame(const uint8_t* f, uint32_t len, const struct virtio_net_hdr* h) {
  char why[96] = "";
  uint32_t off = ETH_HLEN + (uint32_t)strlen(HOST_PREFIX), seq = 0, digits = 0;
  for (; off < len && f[off] >= '0' && f[off] <= '9' && digits < 9; ++off, ++digits)
    seq = seq * 10 + (f[off] - '0');
  if (!digits || off >= len || f[off] != ' ') {
    snprintf(why, sizeof(why), "no \"<decimal> \" after \"" HOST_PREFIX "\"");
  } else {
    ++off;
    for (uint32_t k = 0; off + k < len; ++k) {
      uint8_t want = (uint8_t)(seq * 3 + k);
      if (f[off + k] != want) {
        snprintf(why, sizeof(why), "byte %u is 0x%02x, want 0x%02x", off + k, f[off + k], want);
        break;
      }
    }
  }
  if (!why[0] && (len < FRAME_MIN || len > NET_FRAME_MAX)) {
    snprintf(why, sizeof(why), "length outside %u..%u", FRAME_MIN, NET_FRAME_MAX);
  }
  if (!why[0] && (h->flags || h->gso_type)) {
    snprintf(why, sizeof(why), "header flags 0x%x gso_type %u without offloads negotiated",
             h->flags, h->gso_type);
  }
  if (!why[0] && !net.mrg_rxbuf && h->num_buffers != 1) {
    snprintf(why, sizeof(why), "num_buffers %u without MRG_RXBUF (must be 1)", h->num_buffers);
  }
  printf("net: rx seq=%u len=%u %s\n", seq, len, why[0] ? "FAIL" : "ok");
  if (why[0]) expect(false, "net_rx_frame", "seq=%u len=%u: %s", seq, len, why);
}

static bool send_all(unsigned count, uint32_t size) {
  for (unsigned i = 0; i < count; ++i) {
    build(i, size);
    if (!net_send(&net, frame, size, i & 1, TX_WAIT_MS)) {
      expect(false, "net_tx", "frame %u of %u: %s", i, count, net.error);
      return false;
    }
  }
  printf("net: sent %u frames\n", count);
  return expect(true, "net_tx", NULL);
}

static void receive_all(unsigned count) {
  unsigned got = 0, other = 0, buffers = 0;
  uint64_t deadline = deadline_ms(RX_WAIT_MS);
  while (got < count) {
    uint32_t len;
    struct virtio_net_hdr h;
    int r = net_poll(&net, packet, sizeof(packet), &len, &h);
    if (r < 0) {
      expect(false, "net_rx", "after %u host frames: %s", got, net.error);
      return;
    }
    if (r == 0) {
      if (deadline_passed(deadline)) break;
      cpu_relax();
      continue;
    }
    if (!is_host_frame(packet, len)) {
      other++;
      continue;
    }
    check_host_frame(packet, len, &h);
    buffers += net.mrg_rxbuf ? h.num_buffers : 1;
    got++;
  }
  printf("net: host frames took %u receive buffers\n", buffers); /* > got: pieces were joined */
  printf("net: ignored %u other frames\n", other);
  printf("net: received %u frames\n", got);
  expect(got == count, "net_rx", "%u of %u host frames within %u ms", got, count, RX_WAIT_MS);
}

static void reset(void) {
  bool ok = virtio_reset(&net.dev);
  uint32_t ready[2];
  for (unsigned q = 0; q < 2; ++q) ready[q] = virtio_queue_ready(&net.dev, q);
  expect(ok && !ready[0] && !ready[1], "net_reset", "%s; QueueReady %u %u",
         ok ? "Status 0" : net.dev.error, ready[0], ready[1]);
}

void test_net(void) {
  unsigned count = (unsigned)cmdline_u64("count", 8);
  uint32_t size = (uint32_t)cmdline_u64("size", 200);
  uint32_t rxbuf = (uint32_t)cmdline_u64("rxbuf", NET_RX_BUF_BYTES);
  if (count > COUNT_MAX) {
    printf("net: count=%u capped at %u\n", count, COUNT_MAX);
    count = COUNT_MAX;
  }
  if (size < FRAME_MIN || size > NET_FRAME_MAX) {
    uint32_t s = size < FRAME_MIN ? FRAME_MIN : NET_FRAME_MAX;
    printf("net: size=%u out of %u..%u, using %u\n", size, FRAME_MIN, NET_FRAME_MAX, s);
    size = s;
  }
  int nic =
      (int)cmdline_u64("nic", 0); /* which virtio-net device: PCI order, then command-line order */
  if (!expect(net_open(&net, nic, rxbuf), "net_init", "%s", net.error)) return;
  uint32_t status = virtio_status(&net.dev);
  uint32_t want = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                  VIRTIO_STATUS_DRIVER_OK;
  if (!expect(status == want, "net_status", "Status 0x%x after DRIVER_OK, want 0x%x", status, want))
    return;

  const uint8_t* m = net.mac;
  printf("net: mac=%02x:%02x:%02x:%02x:%02x:%02x link=%s\n", m[0], m[1], m[2], m[3], m[4], m[5],
         !net.has_status                     ? "unknown"
         : net.status & VIRTIO_NET_S_LINK_UP ? "up"
                                             : "down");
  printf("net: features mrg_rxbuf=%d\n", net.mrg_rxbuf);
  printf(
      "net: features offered 0x%lx accepted 0x%lx; queues rx=%u tx=%u; %u receive buffers of %u "
      "bytes%s\n",
      net.dev.device_features, net.dev.features, net.rx.size, net.tx.size, net.rx_bufs,
      net.rx_buf_bytes, net.mac_offered ? "" : "; no MAC feature, MAC made up");

  if (send_all(count, size)) receive_all(count);
  reset();
  virtio_report_interrupts(&net.dev);
}
