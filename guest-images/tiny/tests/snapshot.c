/* test=snapshot [mib=N] [rounds=R] [dirty=N] [disk=N] [net=N] [check=K]: a guest whose whole
 * state a snapshot or a migration must carry, and which notices any bit it
 * lost. It fills N MiB (default 16) from 32 MiB up with a pattern (each
 * 8-byte word a hash of its address and of its 64 KiB stretch's
 * generation), then counts: every 20 ms of kvmclock time it prints
 *   snapshot: count=C
 * and every K-th count (default 8; 0: never, for benchmarks that measure
 * what a restored guest keeps resident) it checks the whole pattern and prints
 *   snapshot: pattern ok count=C    (or FAIL snapshot_pattern ...)
 * With dirty=N each count also rewrites N stretches, over and over, with
 * their next generations (at least one, even when the guest is behind),
 * so memory is dirtied all the time. With disk=N it first writes
 * a tagged sector 7 to that virtio-blk disk, and at each check reads it back
 * through the same queue ("snapshot: disk ok count=C"). With net=N, at each
 * check it sends a frame "mote-snap count=C" (EtherType 0x88b5) on that
 * virtio-net NIC and waits up to a second for the host's "mote-echo
 * count=C" ("snapshot: net ok count=C"; three tries). After R counts
 * (default 100) it leaves with guest_exit(0) if nothing failed (mote
 * status 1), 1 otherwise. The host stops it, snapshots it and restores it
 * in a new process (or migrates it) in between: the counts on the console
 * must run on without a gap or a repeat. */
#include "../arch.h"
#include "../boot.h"
#include "../kvmclock.h"
#include "../lib.h"
#include "../machine.h"
#include "../test.h"
#include "../virtio_blk.h"
#include "../virtio_net.h"

#define AREA_BASE (32ull << 20)
#define STRETCH (64u << 10)
#define MAX_STRETCHES 4096
#define PERIOD_NS 20000000ull
#define DISK_SECTOR 7

static uint32_t generation[MAX_STRETCHES];
static uint64_t stretches;
static struct blk blk;
static bool have_disk;
static uint8_t sector_out[512], sector_in[512];
static struct net net;
static bool have_net;
static uint8_t packet[NET_PACKET_MAX];

static uint64_t word_value(uint64_t addr, uint32_t gen) {
  uint64_t x = addr * 0x9e3779b97f4a7c15ull ^ ((uint64_t)gen << 32 | gen);
  x ^= x >> 29;
  return x * 0xbf58476d1ce4e5b9ull;
}

static void fill_stretch(uint64_t s) {
  volatile uint64_t* w = (volatile uint64_t*)(AREA_BASE + s * STRETCH);
  for (uint64_t i = 0; i < STRETCH / 8; ++i) w[i] = word_value((uint64_t)&w[i], generation[s]);
}

/* The first wrong word, or 0 when the whole pattern holds. */
static uint64_t check_pattern(void) {
  for (uint64_t s = 0; s < stretches; ++s) {
    volatile uint64_t* w = (volatile uint64_t*)(AREA_BASE + s * STRETCH);
    for (uint64_t i = 0; i < STRETCH / 8; ++i) {
      if (w[i] != word_value((uint64_t)&w[i], generation[s])) return (uint64_t)&w[i];
    }
  }
  return 0;
}

static bool disk_setup(int disk) {
  if (!expect(blk_open(&blk, disk, 65536), "snapshot_disk", "disk %d: %s", disk, blk.error))
    return false;
  for (unsigned i = 0; i < sizeof(sector_out); ++i)
    sector_out[i] = (uint8_t)("snapshot"[i % 8] + i / 8);
  uint32_t len;
  int status = blk_request(&blk, VIRTIO_BLK_T_OUT, DISK_SECTOR, sector_out, 512, false, &len);
  return expect(status == 0, "snapshot_disk_write", "status %d: %s", status, blk.error);
}

static void disk_check(uint64_t count) {
  uint32_t len;
  memset(sector_in, 0, sizeof(sector_in));
  int status = blk_request(&blk, VIRTIO_BLK_T_IN, DISK_SECTOR, sector_in, 512, true, &len);
  if (expect(status == 0 && memcmp(sector_in, sector_out, 512) == 0, "snapshot_disk_read",
             "count %lu: status %d, data %s (%s)", count, status,
             memcmp(sector_in, sector_out, 512) == 0 ? "same" : "different", blk.error)) {
    printf("snapshot: disk ok count=%lu\n", count);
  }
}

/* One frame out, its echo back: the NIC and the host's end both work. A
 * frame in flight while the VM moves may be lost, as on any network: three
 * tries, a second each. */
static void net_check(uint64_t count) {
  uint8_t frame[64];
  memset(frame, 0xff, 6);
  memcpy(frame + 6, net.mac, 6);
  frame[12] = 0x88;
  frame[13] = 0xb5;
  memset(frame + 14, 0, sizeof(frame) - 14);
  snprintf((char*)frame + 14, sizeof(frame) - 14, "mote-snap count=%lu", count);
  char want[32];
  snprintf(want, sizeof(want), "mote-echo count=%lu", count);
  bool sent = false, echoed = false;
  for (int attempt = 0; attempt < 3 && !echoed; ++attempt) {
    sent = net_send(&net, frame, sizeof(frame), false, 1000);
    uint64_t deadline = kvmclock_ns() + 1000000000ull;
    while (sent && !echoed && kvmclock_ns() < deadline) {
      uint32_t len;
      struct virtio_net_hdr hdr;
      int r = net_poll(&net, packet, sizeof(packet), &len, &hdr);
      if (r < 0) break;
      echoed = r == 1 && len >= 14 + strlen(want) && memcmp(packet + 14, want, strlen(want)) == 0;
    }
  }
  if (expect(sent && echoed, "snapshot_net", "count %lu: %s (%s)", count,
             sent ? "no echo" : "not sent", net.error))
    printf("snapshot: net ok count=%lu\n", count);
}

void test_snapshot(void) {
  uint64_t mib = cmdline_u64("mib", 16);
  uint64_t rounds = cmdline_u64("rounds", 100);
  uint64_t dirty = cmdline_u64("dirty", 0);
  uint64_t check_every = cmdline_u64("check", 8);
  char disk_arg[8];
  have_disk = cmdline_get("disk", disk_arg, sizeof(disk_arg));
  stretches = mib * (1 << 20) / STRETCH;
  if (stretches > MAX_STRETCHES) stretches = MAX_STRETCHES;
  if (!expect(kvmclock_enable(), "snapshot_kvmclock", "no kvmclock")) return;
  if (have_disk && !disk_setup((int)cmdline_u64("disk", 0))) return;
  char net_arg[8];
  have_net = cmdline_get("net", net_arg, sizeof(net_arg));
  if (have_net && !expect(net_open(&net, (int)cmdline_u64("net", 0), NET_RX_BUF_BYTES),
                          "snapshot_net_open", "%s", net.error))
    return;
  for (uint64_t s = 0; s < stretches; ++s) fill_stretch(s);
  printf("snapshot: ready area=%lu MiB dirty=%lu disk=%d\n", stretches * STRETCH >> 20, dirty,
         have_disk);
  uint64_t next = kvmclock_ns() + PERIOD_NS;
  for (uint64_t count = 1; count <= rounds; ++count) {
    /* At least one stretch per count: a guest that has fallen behind its
     * schedule (a slow console, a starved host) still dirties memory. */
    uint64_t i = 0;
    do {
      if (dirty) {
        uint64_t s = (count * 7 + i % dirty) % stretches;
        generation[s]++;
        fill_stretch(s);
      } else {
        cpu_relax();
      }
      ++i;
    } while (kvmclock_ns() < next);
    next += PERIOD_NS;
    printf("snapshot: count=%lu\n", count);
    if (check_every != 0 && count % check_every == 0) {
      uint64_t bad = check_pattern();
      if (expect(bad == 0, "snapshot_pattern", "count %lu: word at 0x%lx changed", count, bad))
        printf("snapshot: pattern ok count=%lu\n", count);
      if (have_disk) disk_check(count);
      if (have_net) net_check(count);
    }
    if (test_failures() > 0) break;
  }
}
