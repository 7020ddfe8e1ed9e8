/* test=rng [requests=N] [bad=N]: drives the first virtio-rng device
 * (DeviceID 4): PCI functions on bus 0 first, then the virtio_mmio.device=
 * words of the command line (virtio_find; transport= picks one), over the
 * modern interface, polling the used ring in ring 3.
 *
 * Lists the virtio devices it sees, checks the registers (MagicValue and
 * Version on MMIO), negotiates VERSION_1 only, sets up queue 0 (at most
 * 16 entries), reads 64 bytes (must be 64, not all zero), then N more
 * (default 8) with up to 8 outstanding per notify, every other one as a
 * chain of two 32-byte descriptors; no two results may be equal. bad=1 then
 * hands the device a buffer outside RAM (bad=N: a chain of N such buffers,
 * up to 4). It must come back with len 0; a device that does not return it
 * but sets DEVICE_NEEDS_RESET (QEMU, for bad=2) is reset and set up again;
 * either way a following good request must complete. The device must flag
 * used buffers: InterruptStatus/ISR bit 0, or with MSI-X a queue message.
 * Ends with a reset, which must clear Status, QueueReady and InterruptStatus
 * (ISR), and over PCI the MSI-X count line. */
#include "../arch.h"
#include "../boot.h"
#include "../lib.h"
#include "../test.h"
#include "../virtio_transport.h"

#define QUEUE_SIZE_MAX 16
#define REQ_BYTES 64
#define BATCH_MAX 8
#define MAX_REQUESTS 64
#define WAIT_MS 1000
#define BAD_ADDR 0xfffff0000000ul /* far above any guest RAM */
#define BAD_MAX 4

static uint8_t ring[VIRTQ_MEM_SIZE(QUEUE_SIZE_MAX)] __attribute__((aligned(4096)));
/* [0] the first request, [1..N] the others, [N + 1] the one after the bad buffer. */
static uint8_t results[MAX_REQUESTS + 2][REQ_BYTES] __attribute__((aligned(64)));
static struct virtio_dev rng;
static struct virtq vq;

static bool all_zero(const uint8_t* b, unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    if (b[i]) return false;
  }
  return true;
}

/* Reset, VERSION_1 only, queue 0, DRIVER_OK. On failure *step names the
 * check that failed and rng.error says why. */
static bool bring_up(const char** step) {
  *step = "rng_init";
  if (!virtio_init(&rng, VIRTIO_F_VERSION_1)) return false;
  printf("rng: features offered 0x%lx accepted 0x%lx\n", rng.device_features, rng.features);
  *step = "rng_queue";
  uint32_t max = virtio_queue_max(&rng, 0);
  unsigned size = QUEUE_SIZE_MAX;
  while (size > max) size >>= 1; /* split rings are a power of two */
  if (!virtio_setup_queue(&rng, &vq, 0, size, ring)) return false;
  printf("rng: queue 0 size %u (QueueNumMax %u) desc 0x%lx avail 0x%lx used 0x%lx\n", size, max,
         VIRT_TO_PHYS(vq.desc), VIRT_TO_PHYS(vq.avail), VIRT_TO_PHYS(vq.used));
  virtio_driver_ok(&rng);
  return true;
}

/* One request of 64 bytes into `buf`; `chained`: as two 32-byte descriptors. */
static int add_request(uint8_t* buf, bool chained) {
  memset(buf, 0, REQ_BYTES);
  struct virtq_buf bufs[2] = {
      {VIRT_TO_PHYS(buf), REQ_BYTES / 2, true},
      {VIRT_TO_PHYS(buf) + REQ_BYTES / 2, REQ_BYTES / 2, true},
  };
  if (!chained) bufs[0].len = REQ_BYTES;
  return virtq_add(&vq, bufs, chained ? 2 : 1);
}

static void print_first(const uint8_t* b) {
  char hex[33];
  for (int i = 0; i < 16; ++i) snprintf(hex + 2 * i, 3, "%02x", b[i]);
  printf("rng: 64 bytes: %s\n", hex);
}

/* Requests 1..n, up to BATCH_MAX (and half the queue, for the chains)
 * outstanding per notify. Returns how many completed with 64 bytes. */
static unsigned more_requests(unsigned n) {
  unsigned batch = vq.size / 2 < BATCH_MAX ? vq.size / 2 : BATCH_MAX;
  bool chains = batch > 0;
  if (!batch) batch = 1;
  int8_t req_of_head[QUEUE_SIZE_MAX];
  unsigned ok = 0;
  for (unsigned first = 1; first <= n; first += batch) {
    unsigned count = n - first + 1 < batch ? n - first + 1 : batch;
    for (unsigned i = 0; i < count; ++i) {
      unsigned r = first + i;
      int head = add_request(results[r], chains && (r & 1) == 0);
      if (head < 0) {
        expect(false, "rng_requests", "request %u: %s", r, vq.error);
        return ok;
      }
      req_of_head[head] = (int8_t)r;
    }
    virtq_kick(&vq);
    for (unsigned i = 0; i < count; ++i) {
      uint16_t head;
      uint32_t len;
      if (virtq_wait(&vq, &head, &len, WAIT_MS) <= 0) {
        expect(false, "rng_requests", "%u of requests %u..%u back: %s", i, first, first + count - 1,
               vq.error);
        return ok;
      }
      unsigned r = (unsigned)req_of_head[head];
      if (len != REQ_BYTES) {
        expect(false, "rng_requests", "request %u: used len %u, want %u", r, len, REQ_BYTES);
        return ok;
      }
      ok++;
    }
  }
  return ok;
}

static void check_distinct(unsigned n) {
  for (unsigned i = 0; i <= n; ++i) {
    if (all_zero(results[i], REQ_BYTES)) {
      expect(false, "rng_distinct", "request %u: all 64 bytes zero", i);
      return;
    }
    for (unsigned j = 0; j < i; ++j) {
      if (memcmp(results[i], results[j], REQ_BYTES) == 0) {
        expect(false, "rng_distinct", "requests %u and %u returned the same 64 bytes", j, i);
        return;
      }
    }
  }
  expect(true, "rng_distinct", NULL);
}

/* bad=N: a chain of N 64-byte writable descriptors outside guest RAM, then
 * a good request. */
static void bad_buffer(unsigned n, uint8_t* after) {
  struct virtq_buf bad[BAD_MAX];
  for (unsigned i = 0; i < n; ++i)
    bad[i] = (struct virtq_buf){BAD_ADDR + i * 0x1000, REQ_BYTES, true};
  printf("rng: bad=%u: %u x 64-byte writable buffer from 0x%lx (outside RAM)\n", n, n, BAD_ADDR);
  int bad_head = virtq_add(&vq, bad, n);
  if (bad_head < 0) {
    expect(false, "rng_bad_buffer", "%s", vq.error);
    return;
  }
  virtq_kick(&vq);
  uint16_t head;
  uint32_t len;
  int r = virtq_wait(&vq, &head, &len, WAIT_MS);
  if (r > 0 && head == bad_head) {
    printf("rng: bad buffer returned with len %u\n", len);
    expect(len == 0, "rng_bad_buffer", "device claims it wrote %u bytes outside RAM", len);
    bad_head = -1; /* its descriptors are free again: the next request may reuse the head */
  } else if (r != 0) {
    expect(false, "rng_bad_buffer", "%s",
           r > 0 ? "device returned a chain it was not given" : vq.error);
    return;
  } else {
    uint32_t status = virtio_status(&rng);
    printf("rng: bad buffer not returned within %u ms; Status 0x%x\n", WAIT_MS, status);
    if (status & VIRTIO_STATUS_NEEDS_RESET) {
      printf("rng: device set DEVICE_NEEDS_RESET: resetting and setting it up again\n");
      const char* step;
      if (!bring_up(&step)) {
        expect(false, step, "after DEVICE_NEEDS_RESET: %s", rng.error);
        return;
      }
      bad_head = -1;
    }
  }

  int good = add_request(after, false);
  if (good < 0) {
    expect(false, "rng_after_bad", "%s", vq.error);
    return;
  }
  virtq_kick(&vq);
  while ((r = virtq_wait(&vq, &head, &len, WAIT_MS)) > 0 && head == bad_head) {
    printf("rng: bad buffer returned late with len %u\n", len);
    expect(len == 0, "rng_bad_buffer", "device claims it wrote %u bytes outside RAM", len);
  }
  if (r <= 0) {
    expect(false, "rng_after_bad", "good request after the bad one: %s", vq.error);
    return;
  }
  expect(head == good && len == REQ_BYTES && !all_zero(after, REQ_BYTES), "rng_after_bad",
         "head %u (want %d) len %u, bytes %s", head, good, len,
         all_zero(after, REQ_BYTES) ? "all zero" : "set");
}

/* One line per virtio function on PCI bus 0 (the MMIO analogue is above). */
static void list_pci(void) {
  const struct pci_fn* fns;
  int n = pci_functions(&fns);
  for (int i = 0; i < n; ++i) {
    const struct pci_fn* f = &fns[i];
    if (f->vendor != VIRTIO_PCI_VENDOR) continue;
    printf(
        "rng: virtio-pci 00:%02x.%x vendor 0x%x device 0x%x revision %u subsystem 0x%x: type "
        "%d%s\n",
        f->dev, f->fn, f->vendor, f->device, f->revision, f->subsys_id, virtio_pci_type(f),
        virtio_pci_type(f) < 0 ? " (not driven: legacy-only or not virtio)" : "");
  }
}

void test_rng(void) {
  struct virtio_mmio_slot slots[VIRTIO_MMIO_MAX_DEVICES];
  int malformed;
  int n = virtio_mmio_slots(slots, VIRTIO_MMIO_MAX_DEVICES, &malformed);
  for (int i = 0; i < n && i < VIRTIO_MMIO_MAX_DEVICES; ++i) {
    uint64_t b = slots[i].base;
    printf(
        "rng: virtio-mmio 0x%lx size 0x%lx irq %u: magic 0x%x version %u device %u vendor 0x%x\n",
        b, slots[i].size, slots[i].irq, mmio_read32(b + VIRTIO_MMIO_MAGIC_VALUE),
        mmio_read32(b + VIRTIO_MMIO_VERSION), mmio_read32(b + VIRTIO_MMIO_DEVICE_ID),
        mmio_read32(b + VIRTIO_MMIO_VENDOR_ID));
  }
  list_pci();
  expect(malformed == 0 && n <= VIRTIO_MMIO_MAX_DEVICES, "rng_cmdline",
         "%d malformed virtio_mmio.device= words, %d well-formed (room for %d)", malformed, n,
         VIRTIO_MMIO_MAX_DEVICES);
  if (!expect(virtio_find(VIRTIO_ID_RNG, 0, &rng), "rng_device", "%s", rng.error)) return;
  if (rng.ops == &virtio_mmio_ops) {
    uint32_t magic = virtio_mmio_read(&rng.mmio, VIRTIO_MMIO_MAGIC_VALUE);
    uint32_t version = virtio_mmio_read(&rng.mmio, VIRTIO_MMIO_VERSION);
    if (!expect(magic == VIRTIO_MMIO_MAGIC, "rng_magic", "0x%x, want 0x%x", magic,
                VIRTIO_MMIO_MAGIC))
      return;
    if (!expect(version == VIRTIO_MMIO_VERSION_MODERN, "rng_version", "%u, want 2", version))
      return;
  }

  const char* step;
  if (!bring_up(&step)) {
    expect(false, step, "%s", rng.error);
    return;
  }
  expect(true, "rng_init", NULL);
  expect(true, "rng_queue", NULL);
  uint32_t want = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                  VIRTIO_STATUS_DRIVER_OK;
  uint32_t status = virtio_status(&rng);
  expect(status == want, "rng_status", "Status 0x%x after DRIVER_OK, want 0x%x", status, want);

  /* The first request, on its own. */
  memset(results[0], 0, REQ_BYTES);
  struct virtq_buf first = {VIRT_TO_PHYS(results[0]), REQ_BYTES, true};
  uint32_t len = 0;
  if (!expect(virtq_submit_wait(&vq, &first, 1, &len, WAIT_MS), "rng_first", "%s", vq.error))
    return;
  print_first(results[0]);
  expect(len == REQ_BYTES, "rng_len", "used len %u, want %u", len, REQ_BYTES);
  expect(!all_zero(results[0], REQ_BYTES), "rng_nonzero", "all 64 bytes still zero");

  unsigned requests = (unsigned)cmdline_u64("requests", 8);
  if (requests > MAX_REQUESTS) {
    printf("rng: requests=%u capped at %u\n", requests, MAX_REQUESTS);
    requests = MAX_REQUESTS;
  }
  unsigned ok = more_requests(requests);
  printf("rng: %u requests ok\n", ok);
  if (ok == requests) {
    expect(true, "rng_requests", NULL);
    check_distinct(requests);
  }

  /* The device must flag used buffers: in InterruptStatus/ISR (we never
   * unmask an IRQ line: the bit is what we can see), or with MSI-X by a
   * queue message. It may do so just after used->idx, so give it a moment. */
  uint64_t deadline = deadline_ms(100);
  while (!(vq.isr_seen & VIRTIO_INT_VRING) && !deadline_passed(deadline)) {
    vq.isr_seen |= virtio_ack_interrupt(&rng);
  }
  if (rng.ops == &virtio_mmio_ops)
    printf("rng: InterruptStatus bits seen 0x%x\n", vq.isr_seen);
  else
    printf("rng: interrupt bits seen 0x%x (%s)\n", vq.isr_seen,
           rng.pci.msix ? "MSI-X messages" : "ISR");
  expect(vq.isr_seen & VIRTIO_INT_VRING, "rng_interrupt_status", "bit 0 (used buffer) never set");

  unsigned bad = (unsigned)cmdline_u64("bad", 0);
  if (bad > BAD_MAX) {
    printf("rng: bad=%u capped at %u\n", bad, BAD_MAX);
    bad = BAD_MAX;
  }
  if (bad) bad_buffer(bad, results[requests + 1]);

  bool reset = virtio_reset(&rng);
  uint32_t ready = virtio_queue_ready(&rng, 0);
  uint32_t isr = rng.ops->isr(&rng);
  expect(reset && ready == 0 && isr == 0, "rng_reset", "%s; QueueReady %u InterruptStatus 0x%x",
         reset ? "Status 0" : rng.error, ready, isr);
  virtio_report_interrupts(&rng);
}
