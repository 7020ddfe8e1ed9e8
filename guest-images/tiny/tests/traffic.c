/* test=traffic [disk=N] [nic=N] [slots=N] [hold=1]: steady virtio-blk and virtio-net
 * traffic for the control plane's stop/cont test (README.md), until the
 * host says stop. Round r (from 0):
 *
 * 1. writes 8 sectors (4 KiB) at sector 8 * (r % slots) (slots default 256),
 *    byte k being (r * 7 + k) & 0xff after a header "traffic round=<r> ";
 *    flushes; reads them back and compares;
 * 2. sends one frame like test=net's ("mote-guest seq=<r> ", then bytes
 *    (r + k) & 0xff; 200 bytes) and waits for the host's answer: a
 *    "mote-host seq=<r> " frame (test=net's pattern, j = r), which it checks,
 *    or "mote-host stop", which ends the test;
 * 3. prints "traffic: round <r> ok" (or a FAIL line, and stops).
 *
 * At the end: "traffic: <n> rounds, <n> writes flushed and read back, <n>
 * frames each way" and guest_exit(0) (status 1) if every check passed;
 * with hold=1 it prints "traffic: holding" and spins instead (the host reads
 * the device counters of a VM at rest, then quits). Every
 * wait is long (30 s of TSC): the host pauses the guest while it runs. */
#include "../arch.h"
#include "../boot.h"
#include "../lib.h"
#include "../test.h"
#include "../virtio_blk.h"
#include "../virtio_net.h"

#define ETH_HLEN 14
#define ETH_P_MOTE 0x88b5
#define FRAME_BYTES 200
#define WAIT_MS 30000
#define SECTORS 8
#define BLOCK_BYTES (SECTORS * VIRTIO_BLK_SECTOR)

static struct blk blk;
static struct net net;
static uint8_t block[BLOCK_BYTES] __attribute__((aligned(4096)));
static uint8_t readback[BLOCK_BYTES] __attribute__((aligned(4096)));
static uint8_t frame[NET_FRAME_MAX];
static uint8_t packet[NET_PACKET_MAX];

static void fill_block(unsigned r) {
  unsigned head = (unsigned)snprintf((char*)block, sizeof(block), "traffic round=%u ", r);
  for (unsigned k = head; k < BLOCK_BYTES; ++k) block[k] = (uint8_t)(r * 7 + k);
}

static bool blk_round(unsigned r, unsigned slots) {
  uint64_t sector = (uint64_t)SECTORS * (r % slots);
  uint32_t len;
  fill_block(r);
  int st = blk_request(&blk, VIRTIO_BLK_T_OUT, sector, block, BLOCK_BYTES, false, &len);
  if (st != VIRTIO_BLK_S_OK)
    return expect(false, "traffic_write", "round %u: status %d %s", r, st, blk.error);
  st = blk_request(&blk, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, &len);
  if (st != VIRTIO_BLK_S_OK)
    return expect(false, "traffic_flush", "round %u: status %d %s", r, st, blk.error);
  st = blk_request(&blk, VIRTIO_BLK_T_IN, sector, readback, BLOCK_BYTES, true, &len);
  if (st != VIRTIO_BLK_S_OK)
    return expect(false, "traffic_read", "round %u: status %d %s", r, st, blk.error);
  for (unsigned k = 0; k < BLOCK_BYTES; ++k) {
    if (readback[k] != block[k]) {
      return expect(false, "traffic_readback", "round %u: byte %u is 0x%02x, want 0x%02x", r, k,
                    readback[k], block[k]);
    }
  }
  return true;
}

static bool is_mote_frame(const uint8_t* f, uint32_t len, const char* prefix) {
  size_t plen = strlen(prefix);
  return len >= ETH_HLEN + plen && f[12] == (ETH_P_MOTE >> 8) && f[13] == (ETH_P_MOTE & 0xff) &&
         memcmp(f + ETH_HLEN, prefix, plen) == 0;
}

/* 1: the host's answer to round r came intact; 0: the host said stop; -1: failed. */
static int net_round(unsigned r) {
  memset(frame, 0xff, 6);
  memcpy(frame + 6, net.mac, 6);
  frame[12] = ETH_P_MOTE >> 8;
  frame[13] = ETH_P_MOTE & 0xff;
  uint32_t off = ETH_HLEN + (uint32_t)snprintf((char*)frame + ETH_HLEN, FRAME_BYTES - ETH_HLEN,
                                               "mote-guest seq=%u ", r);
  for (uint32_t k = 0; off + k < FRAME_BYTES; ++k) frame[off + k] = (uint8_t)(r + k);
  if (!net_send(&net, frame, FRAME_BYTES, false, WAIT_MS)) {
    expect(false, "traffic_tx", "round %u: %s", r, net.error);
    return -1;
  }
  char want[32];
  snprintf(want, sizeof(want), "mote-host seq=%u ", r);
  uint64_t deadline = deadline_ms(WAIT_MS);
  while (!deadline_passed(deadline)) {
    uint32_t len;
    struct virtio_net_hdr h;
    int got = net_poll(&net, packet, sizeof(packet), &len, &h);
    if (got < 0) {
      expect(false, "traffic_rx", "round %u: %s", r, net.error);
      return -1;
    }
    if (got == 0) {
      cpu_relax();
      continue;
    }
    if (is_mote_frame(packet, len, "mote-host stop")) return 0;
    if (!is_mote_frame(packet, len, want)) continue; /* an old answer, or not ours */
    uint32_t at = ETH_HLEN + (uint32_t)strlen(want);
    for (uint32_t k = 0; at + k < len; ++k) {
      if (packet[at + k] != (uint8_t)(r * 3 + k)) {
        expect(false, "traffic_rx_data", "round %u: byte %u is 0x%02x", r, at + k, packet[at + k]);
        return -1;
      }
    }
    return 1;
  }
  expect(false, "traffic_rx", "round %u: no answer within %u ms", r, WAIT_MS);
  return -1;
}

void test_traffic(void) {
  int disk = (int)cmdline_u64("disk", 0);
  int nic = (int)cmdline_u64("nic", 0);
  unsigned slots = (unsigned)cmdline_u64("slots", 256);
  if (slots == 0) slots = 1;
  if (!expect(blk_open(&blk, disk, BLK_REQ_BYTES), "traffic_blk_init", "%s", blk.error)) return;
  if (!expect(blk.capacity >= (uint64_t)SECTORS * slots, "traffic_capacity", "%lu sectors, need %u",
              blk.capacity, SECTORS * slots)) {
    return;
  }
  if (!expect(net_open(&net, nic, NET_RX_BUF_BYTES), "traffic_net_init", "%s", net.error)) return;
  printf("traffic: disk %d (%lu sectors), nic %d, %u slots\n", disk, blk.capacity, nic, slots);
  unsigned r = 0;
  for (;; ++r) {
    if (!blk_round(r, slots)) return;
    int answer = net_round(r);
    if (answer < 0) return;
    if (answer == 0) break;
    printf("traffic: round %u ok\n", r);
  }
  /* Round r wrote and flushed its block too; only its frame had no answer. */
  printf("traffic: %u rounds, %u writes flushed and read back, %u frames each way\n", r, r + 1, r);
  expect(true, "traffic", NULL);
  if (cmdline_u64("hold", 0)) {
    printf("traffic: holding\n");
    for (;;) __asm__ volatile("pause");
  }
}
