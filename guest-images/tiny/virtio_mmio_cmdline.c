/* Parses the virtio_mmio.device=SIZE@BASE:IRQ[:ID] words of the command
 * line, the syntax of Linux's virtio_mmio driver. Unlike cmdline_get (the
 * last occurrence wins), every occurrence counts: one word per device. */
#include "boot.h"
#include "lib.h"
#include "virtio_mmio.h"

#define KEY "virtio_mmio.device="
#define IDENTITY_MAP_END 0x100000000ull /* pagetables.S maps 0..4 GiB */

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

/* A number at *p: 0x-prefixed hex or decimal; advances *p past it. */
static bool parse_number(const char** p, const char* end, uint64_t* out) {
  const char* s = *p;
  unsigned base = 10;
  if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  }
  uint64_t v = 0;
  const char* digits = s;
  for (; s < end; ++s) {
    unsigned d;
    if (*s >= '0' && *s <= '9')
      d = *s - '0';
    else if (base == 16 && *s >= 'a' && *s <= 'f')
      d = *s - 'a' + 10;
    else if (base == 16 && *s >= 'A' && *s <= 'F')
      d = *s - 'A' + 10;
    else
      break;
    if (v > (UINT64_MAX - d) / base) return false;
    v = v * base + d;
  }
  if (s == digits) return false;
  *p = s;
  *out = v;
  return true;
}

/* SIZE@BASE:IRQ[:ID] in [p, end). */
static bool parse_device(const char* p, const char* end, struct virtio_mmio_slot* dev) {
  uint64_t size, base, irq, id;
  if (!parse_number(&p, end, &size)) return false;
  if (p < end) { /* memparse suffixes, as Linux accepts */
    unsigned shift = 0;
    switch (*p) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
    }
    if (shift) {
      size <<= shift;
      ++p;
    }
  }
  if (p == end || *p++ != '@' || !parse_number(&p, end, &base)) return false;
  if (p == end || *p++ != ':' || !parse_number(&p, end, &irq)) return false;
  if (p < end && (*p++ != ':' || !parse_number(&p, end, &id))) return false;
  if (p != end) return false;
  dev->base = base;
  dev->size = size;
  dev->irq = (uint32_t)irq;
  return true;
}

int virtio_mmio_slots(struct virtio_mmio_slot* slots, int max, int* malformed) {
  int n = 0, bad = 0;
  size_t klen = strlen(KEY);
  const char* p = boot.cmdline;
  while (*p) {
    while (is_space(*p)) ++p;
    const char* word = p;
    while (*p && !is_space(*p)) ++p;
    if ((size_t)(p - word) < klen || strncmp(word, KEY, klen) != 0) continue;
    struct virtio_mmio_slot dev;
    char text[80]; /* the word, for messages (printf has no %.*s) */
    size_t len = (size_t)(p - word) < sizeof(text) - 1 ? (size_t)(p - word) : sizeof(text) - 1;
    memcpy(text, word, len);
    text[len] = '\0';
    if (!parse_device(word + klen, p, &dev)) {
      if (malformed) printf("virtio-mmio: malformed '%s' (want SIZE@BASE:IRQ)\n", text);
      bad++;
    } else if (dev.size < VIRTIO_MMIO_CONFIG || dev.base + dev.size > IDENTITY_MAP_END ||
               dev.base + dev.size < dev.base) {
      if (malformed) {
        printf("virtio-mmio: '%s': registers not inside 0..4 GiB or smaller than 0x%x bytes\n",
               text, VIRTIO_MMIO_CONFIG);
      }
      bad++;
    } else {
      if (n < max) slots[n] = dev;
      n++;
    }
  }
  if (malformed) *malformed = bad;
  return n;
}
