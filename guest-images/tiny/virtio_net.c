/* virtio-net driver side: see virtio_net.h. */
#include "virtio_net.h"

#include "lib.h"

#define PIECE_WAIT_MS 1000 /* for the rest of a packet once its first buffer is back */
#define RX_POISON 0xa5     /* receive buffers are filled with it, so bytes never written show */

static uint8_t rx_ring[VIRTQ_MEM_SIZE(NET_QUEUE_BIG)] __attribute__((aligned(4096)));
static uint8_t tx_ring[VIRTQ_MEM_SIZE(NET_QUEUE_BIG)] __attribute__((aligned(4096)));
static uint8_t rx_bufs[NET_RX_BUFS][NET_RX_BUF_BYTES] __attribute__((aligned(64)));
/* One-descriptor frames: header and frame together. */
static uint8_t tx_one[sizeof(struct virtio_net_hdr) + NET_FRAME_MAX] __attribute__((aligned(64)));
/* Two-descriptor frames: header and frame in memory apart, so a device that
 * reads past the first descriptor gets neither. */
static struct virtio_net_hdr tx_hdr __attribute__((aligned(64)));
static uint8_t tx_frame[NET_FRAME_MAX] __attribute__((aligned(64)));

#define HDR_BYTES ((uint32_t)sizeof(struct virtio_net_hdr))

/* The largest power of two up to `want` the device allows (0: no queue). */
static unsigned queue_size(struct net* n, unsigned index, unsigned want) {
  uint32_t max = virtio_queue_max(&n->dev, index);
  unsigned size = want;
  while (size > max) size >>= 1;
  return size;
}

static uint8_t* rx_buf(struct net* n, unsigned b) {
  return n->rx_area + (uint64_t)b * n->rx_stride;
}

static bool post(struct net* n, unsigned b) {
  if (n->rx_poison) memset(rx_buf(n, b), RX_POISON, n->rx_buf_bytes);
  struct virtq_buf buf = {VIRT_TO_PHYS(rx_buf(n, b)), n->rx_buf_bytes, true};
  int head = virtq_add(&n->rx, &buf, 1);
  if (head < 0) {
    snprintf(n->error, sizeof(n->error), "posting receive buffer %u: %s", b, n->rx.error);
    return false;
  }
  n->buf_of_head[head] = (int16_t)b;
  return true;
}

bool net_open(struct net* n, int nth, uint32_t rx_buf_bytes) {
  struct net_options o = {
      .queue_size = NET_QUEUE_MAX, .rx_bufs = NET_RX_BUFS, .rx_buf_bytes = rx_buf_bytes};
  return net_open_with(n, nth, &o);
}

bool net_open_with(struct net* n, int nth, const struct net_options* o) {
  memset(n, 0, sizeof(*n));
  memset(n->buf_of_head, -1, sizeof(n->buf_of_head));
  uint32_t rx_buf_bytes = o->rx_buf_bytes;
  if (rx_buf_bytes < NET_RX_BUF_MIN || rx_buf_bytes > NET_RX_BUF_BYTES) {
    snprintf(n->error, sizeof(n->error), "receive buffers of %u bytes: want %u..%u", rx_buf_bytes,
             NET_RX_BUF_MIN, NET_RX_BUF_BYTES);
    return false;
  }
  unsigned want = o->queue_size;
  if (want < 2 || want > NET_QUEUE_BIG || (want & (want - 1))) {
    snprintf(n->error, sizeof(n->error), "queue size %u: want a power of two, 2..%u", want,
             NET_QUEUE_BIG);
    return false;
  }
  unsigned bufs_max = o->rx_area ? NET_QUEUE_BIG : NET_RX_BUFS;
  if (o->rx_bufs < 1 || o->rx_bufs > bufs_max) {
    snprintf(n->error, sizeof(n->error), "%u receive buffers: want 1..%u", o->rx_bufs, bufs_max);
    return false;
  }
  n->rx_buf_bytes = rx_buf_bytes;
  n->rx_area = o->rx_area ? o->rx_area : &rx_bufs[0][0];
  n->rx_stride = o->rx_area ? rx_buf_bytes : NET_RX_BUF_BYTES;
  n->rx_poison = !o->no_poison;
  if (!virtio_find(VIRTIO_ID_NET, nth, &n->dev)) {
    snprintf(n->error, sizeof(n->error), "%s", n->dev.error);
    return false;
  }
  if (!virtio_init(&n->dev, VIRTIO_NET_WANTED)) {
    snprintf(n->error, sizeof(n->error), "init: %s", n->dev.error);
    return false;
  }
  uint64_t f = n->dev.features;
  n->mrg_rxbuf = f & VIRTIO_NET_F_MRG_RXBUF;
  n->mac_offered = f & VIRTIO_NET_F_MAC;
  if (n->mac_offered) {
    virtio_config_bytes(&n->dev, VIRTIO_NET_CFG_MAC, n->mac, 6); /* generation-checked */
  } else { /* the spec's advice: a random locally administered one; fixed is enough here */
    static const uint8_t local[6] = {0x02, 'm', 'o', 't', 'e', 0x01};
    memcpy(n->mac, local, sizeof(local));
  }
  n->has_status = f & VIRTIO_NET_F_STATUS;
  if (n->has_status) n->status = virtio_config16(&n->dev, VIRTIO_NET_CFG_STATUS);

  unsigned rx_size = queue_size(n, NET_RXQ, want), tx_size = queue_size(n, NET_TXQ, want);
  if (rx_size < 1 || tx_size < 2) { /* a two-descriptor frame needs two */
    snprintf(n->error, sizeof(n->error), "QueueNumMax rx %u tx %u: need at least 1 and 2",
             virtio_queue_max(&n->dev, NET_RXQ), virtio_queue_max(&n->dev, NET_TXQ));
    return false;
  }
  if (!virtio_setup_queue(&n->dev, &n->rx, NET_RXQ, rx_size, rx_ring) ||
      !virtio_setup_queue(&n->dev, &n->tx, NET_TXQ, tx_size, tx_ring)) {
    snprintf(n->error, sizeof(n->error), "%s", n->dev.error);
    return false;
  }
  /* Linux's order: DRIVER_OK, then fill the receive queue and kick it. */
  virtio_driver_ok(&n->dev);
  n->rx_bufs = rx_size < o->rx_bufs ? rx_size : o->rx_bufs;
  for (unsigned b = 0; b < n->rx_bufs; ++b) {
    if (!post(n, b)) return false;
  }
  virtq_kick(&n->rx);
  return true;
}

bool net_send(struct net* n, const uint8_t* frame, uint32_t len, bool split, uint64_t ms) {
  if (len > NET_FRAME_MAX) {
    snprintf(n->error, sizeof(n->error), "frame of %u bytes, at most %u", len, NET_FRAME_MAX);
    return false;
  }
  struct virtq_buf bufs[2];
  unsigned count;
  if (split) {
    memset(&tx_hdr, 0, sizeof(tx_hdr));
    memcpy(tx_frame, frame, len);
    bufs[0] = (struct virtq_buf){VIRT_TO_PHYS(&tx_hdr), HDR_BYTES, false};
    bufs[1] = (struct virtq_buf){VIRT_TO_PHYS(tx_frame), len, false};
    count = 2;
  } else {
    memset(tx_one, 0, HDR_BYTES);
    memcpy(tx_one + HDR_BYTES, frame, len);
    bufs[0] = (struct virtq_buf){VIRT_TO_PHYS(tx_one), HDR_BYTES + len, false};
    count = 1;
  }
  /* Nothing in it is writable: virtq_poll fails a used len other than 0. */
  uint32_t used;
  if (!virtq_submit_wait(&n->tx, bufs, count, &used, ms)) {
    snprintf(n->error, sizeof(n->error), "transmit: %s", n->tx.error);
    return false;
  }
  return true;
}

/* The receive buffer behind a used element for `head`, which is no longer
 * in flight; -1 if there is none (virtq_poll already checked the head). */
static int take(struct net* n, uint16_t head) {
  int b = head < NET_QUEUE_BIG ? n->buf_of_head[head] : -1;
  if (b >= 0)
    n->buf_of_head[head] = -1;
  else
    snprintf(n->error, sizeof(n->error), "used element for head %u, which holds no receive buffer",
             head);
  return b;
}

int net_poll(struct net* n, uint8_t* frame, uint32_t size, uint32_t* len,
             struct virtio_net_hdr* hdr) {
  int r = net_rx_take(n, frame, size, len, hdr);
  if (r == 1) virtq_kick(&n->rx);
  return r;
}

void net_rx_kick(struct net* n) { virtq_kick(&n->rx); }

int net_rx_take(struct net* n, uint8_t* frame, uint32_t size, uint32_t* len,
                struct virtio_net_hdr* hdr) {
  uint16_t head;
  uint32_t used;
  int r = virtq_poll(&n->rx, &head, &used);
  if (r == 0) return 0;
  if (r < 0) { /* includes used len > the buffer */
    snprintf(n->error, sizeof(n->error), "receive: %s", n->rx.error);
    return -1;
  }
  int b = take(n, head);
  if (b < 0) return -1;
  if (used < HDR_BYTES) {
    snprintf(n->error, sizeof(n->error), "receive: used len %u, below the %u-byte header", used,
             HDR_BYTES);
    return -1;
  }
  memcpy(hdr, rx_buf(n, (unsigned)b), HDR_BYTES);
  /* Without MRG_RXBUF a packet is one buffer whatever num_buffers says: the
   * caller judges the field. */
  unsigned pieces = n->mrg_rxbuf ? hdr->num_buffers : 1;
  if (pieces == 0 || pieces > n->rx_bufs) {
    snprintf(n->error, sizeof(n->error), "receive: num_buffers %u, %u buffers posted",
             hdr->num_buffers, n->rx_bufs);
    return -1;
  }
  uint32_t total = 0;
  for (unsigned p = 0;;) {
    /* The first buffer's data follows the header; later pieces are all data. */
    uint32_t skip = p == 0 ? HDR_BYTES : 0, bytes = used - skip;
    if (bytes > size - total) {
      snprintf(n->error, sizeof(n->error), "receive: packet longer than %u bytes", size);
      return -1;
    }
    memcpy(frame + total, rx_buf(n, (unsigned)b) + skip, bytes);
    total += bytes;
    if (!post(n, (unsigned)b)) return -1;
    if (++p == pieces) break;
    r = virtq_wait(&n->rx, &head, &used, PIECE_WAIT_MS);
    if (r <= 0) {
      snprintf(n->error, sizeof(n->error), "receive: piece %u of %u: %s", p + 1, pieces,
               n->rx.error);
      return -1;
    }
    if ((b = take(n, head)) < 0) return -1;
  }
  *len = total;
  return 1;
}

int net_tx_queue(struct net* n, const void* buf, uint32_t len) {
  if (len <= HDR_BYTES || len > HDR_BYTES + NET_FRAME_MAX) {
    snprintf(n->error, sizeof(n->error), "transmit buffer of %u bytes: want %u..%u", len,
             HDR_BYTES + 1, HDR_BYTES + NET_FRAME_MAX);
    return -1;
  }
  struct virtq_buf b = {VIRT_TO_PHYS(buf), len, false};
  int head = virtq_add(&n->tx, &b, 1);
  if (head < 0) snprintf(n->error, sizeof(n->error), "transmit: %s", n->tx.error);
  return head;
}

void net_tx_kick(struct net* n) { virtq_kick(&n->tx); }

int net_tx_poll(struct net* n, uint16_t* head) {
  uint32_t used;
  int r = virtq_poll(&n->tx, head, &used); /* nothing is writable: a used len above 0 fails there */
  if (r < 0) snprintf(n->error, sizeof(n->error), "transmit: %s", n->tx.error);
  return r;
}
