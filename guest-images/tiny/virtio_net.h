/* virtio-net driver side (virtio 1.2, 5.1) over either transport, polled from
 * ring 3; tests/net.c and tests/netbench.c are the users.
 *
 * Queue 0 receives, queue 1 transmits; no control queue, one queue pair.
 * Accepted when offered: VERSION_1, MAC, STATUS, MRG_RXBUF, nothing else (no
 * checksum or segmentation offload: every frame is complete both ways).
 * Every buffer starts with the 12-byte header (VERSION_1 makes it 12 with or
 * without MRG_RXBUF). Receive buffers are single device-writable
 * descriptors, all posted (and kicked) right after DRIVER_OK and re-posted as
 * soon as their packet is copied out. One device at a time: rings and
 * buffers are static (net_open_with: receive buffers where the caller says). */
#ifndef MOTETEST_VIRTIO_NET_H_
#define MOTETEST_VIRTIO_NET_H_

#include <stdbool.h>
#include <stdint.h>

#include "virtio_transport.h"

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_MAC (1ull << 5)
#define VIRTIO_NET_F_MRG_RXBUF (1ull << 15)
#define VIRTIO_NET_F_STATUS (1ull << 16)

#define VIRTIO_NET_WANTED \
  (VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_MRG_RXBUF)

/* Config space (5.1.4). */
#define VIRTIO_NET_CFG_MAC 0    /* u8[6] */
#define VIRTIO_NET_CFG_STATUS 6 /* u16, with STATUS */
#define VIRTIO_NET_S_LINK_UP 1

#define NET_RXQ 0
#define NET_TXQ 1
#define NET_QUEUE_MAX 16  /* entries per queue, at most (net_open) */
#define NET_QUEUE_BIG 256 /* entries per queue, at most (net_open_with) */
#define NET_RX_BUFS 16    /* receive buffers posted, at most (the queue may be smaller; net_open) */
#define NET_RX_BUF_BYTES 2048 /* each, by default and at most */
#define NET_RX_BUF_MIN 128    /* 16 of them still hold a full frame and its header */
#define NET_FRAME_MAX 1514    /* Ethernet without FCS or VLAN tag: what we send */
/* A joined packet: every receive buffer's worth (MRG_RXBUF). */
#define NET_PACKET_MAX (NET_RX_BUFS * NET_RX_BUF_BYTES)

/* The header in front of every packet (5.1.6). */
struct virtio_net_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers; /* receive: buffers this packet took (1 without MRG_RXBUF) */
};
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "VERSION_1 header is 12 bytes");

struct net {
  struct virtio_dev dev;
  struct virtq rx, tx;
  uint8_t mac[6];
  bool mac_offered; /* false: mac is a made-up local address */
  bool has_status;  /* STATUS negotiated: status is valid */
  uint16_t status;
  bool mrg_rxbuf;
  unsigned rx_bufs;      /* posted */
  uint32_t rx_buf_bytes; /* each */
  uint8_t* rx_area;      /* receive buffer b is at rx_area + b * rx_stride */
  uint32_t rx_stride;
  bool rx_poison;                     /* fill each buffer with 0xa5 before posting it */
  int16_t buf_of_head[NET_QUEUE_BIG]; /* receive buffer behind each in-flight head, -1: none */
  char error[160];                    /* why the last call failed */
};

/* Finds the `nth` virtio device with DeviceID 1 (virtio_find), negotiates, reads the
 * config, sets up both queues, DRIVER_OK, then posts `rx_buf_bytes`-byte
 * receive buffers (NET_RX_BUF_MIN..NET_RX_BUF_BYTES) and kicks. */
bool net_open(struct net* n, int nth, uint32_t rx_buf_bytes);

/* net_open with bigger queues (tests/netbench.c). */
struct net_options {
  unsigned queue_size;   /* entries per queue wanted: a power of two up to NET_QUEUE_BIG (the
                          * device may allow fewer) */
  unsigned rx_bufs;      /* receive buffers to post (capped by the receive queue's size) */
  uint32_t rx_buf_bytes; /* each, NET_RX_BUF_MIN..NET_RX_BUF_BYTES */
  uint8_t* rx_area;      /* rx_bufs * rx_buf_bytes bytes of RAM; NULL: the driver's static
                          * buffers (then at most NET_RX_BUFS) */
  bool no_poison;        /* post buffers as they are (not filled with 0xa5 first) */
};
bool net_open_with(struct net* n, int nth, const struct net_options* o);

/* Sends one frame (`len` <= NET_FRAME_MAX) behind a zeroed header and waits
 * up to `ms` for the device to return it (used len 0). `split`: header and
 * frame in two descriptors (separate memory), else one. */
bool net_send(struct net* n, const uint8_t* frame, uint32_t len, bool split, uint64_t ms);

/* Takes the next received packet, if any: 1 with the frame (header removed,
 * MRG_RXBUF pieces joined) in `frame` (`size` bytes, NET_PACKET_MAX is
 * always enough), its length in *len and the first buffer's header in *hdr;
 * 0 when nothing has arrived; -1 (error set) when the device returned
 * something wrong (used len beyond a buffer or below the header, num_buffers
 * 0 or beyond the buffers posted, a missing piece). The buffers go back to
 * the device before it returns. */
int net_poll(struct net* n, uint8_t* frame, uint32_t size, uint32_t* len,
             struct virtio_net_hdr* hdr);

/* Pipelining (tests/netbench.c): the same without telling the device about
 * the buffers that went back (they are in the available ring, but a device
 * that ran out only looks again when kicked): net_rx_kick does. */
int net_rx_take(struct net* n, uint8_t* frame, uint32_t size, uint32_t* len,
                struct virtio_net_hdr* hdr);
void net_rx_kick(struct net* n);

/* Pipelined transmit: queues `buf` (`len` bytes: a zeroed header, then the
 * frame, NET_FRAME_MAX at most) as one descriptor without kicking or
 * waiting; the caller owns `buf` until net_tx_poll returns its head. The
 * head, or -1 (error set) when the queue is full. */
int net_tx_queue(struct net* n, const void* buf, uint32_t len);
void net_tx_kick(struct net* n);
/* Takes back the next transmitted buffer: 1 with its head, 0 when none is
 * back yet, -1 (error set) for a bad used element (one not in flight, or
 * used len other than 0). */
int net_tx_poll(struct net* n, uint16_t* head);

#endif /* MOTETEST_VIRTIO_NET_H_ */
