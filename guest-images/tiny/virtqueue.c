/* Split virtqueue driver side: see virtqueue.h. */
#include "virtqueue.h"

#include "arch.h"
#include "lib.h"
#include "test.h"

bool virtq_init(struct virtq* vq, unsigned index, unsigned size, void* mem) {
  if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1))) {
    snprintf(vq->error, sizeof(vq->error), "queue size %u: want a power of two up to %u", size,
             VIRTQ_MAX_SIZE);
    return false;
  }
  if ((uintptr_t)mem & 15) {
    snprintf(vq->error, sizeof(vq->error), "ring memory %p not 16-byte aligned", mem);
    return false;
  }
  memset(mem, 0, VIRTQ_MEM_SIZE(size));
  vq->index = index;
  vq->size = size;
  vq->desc = mem;
  vq->avail = (void*)((uint8_t*)mem + VIRTQ_AVAIL_OFFSET(size));
  vq->used = (void*)((uint8_t*)mem + VIRTQ_USED_OFFSET(size));
  vq->avail_idx = 0;
  vq->used_seen = 0;
  vq->free_head = 0;
  vq->num_free = size;
  for (unsigned i = 0; i < size; ++i) {
    vq->next[i] = (i + 1) % size;
    vq->chain_len[i] = 0;
  }
  vq->isr_seen = 0;
  vq->error[0] = '\0';
  return true;
}

int virtq_add(struct virtq* vq, const struct virtq_buf* bufs, unsigned n) {
  if (n == 0 || n > vq->num_free) {
    snprintf(vq->error, sizeof(vq->error), "chain of %u buffers, %u descriptors free", n,
             vq->num_free);
    return -1;
  }
  uint16_t head = vq->free_head, d = head;
  uint32_t wlen = 0;
  for (unsigned i = 0; i < n; ++i) {
    vq->desc[d].addr = bufs[i].addr;
    vq->desc[d].len = bufs[i].len;
    vq->desc[d].flags =
        (bufs[i].writable ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
    vq->desc[d].next = i + 1 < n ? vq->next[d] : 0;
    if (bufs[i].writable) wlen += bufs[i].len;
    if (i + 1 < n) d = vq->next[d];
  }
  vq->free_head = vq->next[d];
  vq->num_free -= n;
  vq->chain_len[head] = n;
  vq->chain_wlen[head] = wlen;

  vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
  /* The descriptors and the ring entry must be visible before the index that
   * hands them to the device. */
  __atomic_thread_fence(__ATOMIC_RELEASE);
  vq->avail_idx++;
  __atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELAXED);
  return head;
}

void virtq_kick(struct virtq* vq) {
  /* avail->idx before the doorbell. Always notify, even if the device set
   * VIRTQ_USED_F_NO_NOTIFY (a SHOULD NOT, and a device must cope): polling
   * then never depends on the device polling too. */
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  vq->notify(vq);
}

int virtq_poll(struct virtq* vq, uint16_t* head, uint32_t* len) {
  uint16_t used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
  if (used_idx == vq->used_seen) return 0;
  struct virtq_used_elem e = vq->used->ring[vq->used_seen & (vq->size - 1)];
  vq->used_seen++;
  if (vq->ack) vq->isr_seen |= vq->ack(vq);
  if (e.id >= vq->size || vq->chain_len[e.id] == 0) {
    snprintf(vq->error, sizeof(vq->error), "used element %u: id %u is not a chain in flight",
             (uint16_t)(vq->used_seen - 1), e.id);
    return -1;
  }
  /* Free the chain along our private links: the tail's successor is the old
   * free head. */
  uint16_t tail = e.id;
  for (unsigned i = 1; i < vq->chain_len[e.id]; ++i) tail = vq->next[tail];
  vq->next[tail] = vq->free_head;
  vq->free_head = e.id;
  vq->num_free += vq->chain_len[e.id];
  vq->chain_len[e.id] = 0;
  *head = e.id;
  *len = e.len;
  if (e.len > vq->chain_wlen[e.id]) {
    snprintf(vq->error, sizeof(vq->error), "used element for head %u: len %u > %u writable bytes",
             e.id, e.len, vq->chain_wlen[e.id]);
    return -1;
  }
  return 1;
}

int virtq_wait(struct virtq* vq, uint16_t* head, uint32_t* len, uint64_t ms) {
  uint64_t deadline = deadline_ms(ms);
  for (;;) {
    int r = virtq_poll(vq, head, len);
    if (r) return r;
    if (deadline_passed(deadline)) break;
    cpu_relax();
  }
  snprintf(vq->error, sizeof(vq->error),
           "no used element within %lu ms (avail idx %u, used idx %u)", ms, vq->avail_idx,
           __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
  return 0;
}

bool virtq_submit_wait(struct virtq* vq, const struct virtq_buf* bufs, unsigned n, uint32_t* len,
                       uint64_t ms) {
  int head = virtq_add(vq, bufs, n);
  if (head < 0) return false;
  virtq_kick(vq);
  uint16_t got;
  if (virtq_wait(vq, &got, len, ms) <= 0) return false;
  if (got != head) {
    snprintf(vq->error, sizeof(vq->error), "device returned head %u, submitted %d", got, head);
    return false;
  }
  return true;
}
