/* CRC-32 (see crc32.h), slicing-by-8: eight bytes per step from eight
 * 256-entry tables, several times faster than a byte at a time, which
 * matters when a test checksums a whole disk (no SSE/PCLMUL: the kernel is
 * built general-registers-only). */
#include "crc32.h"

#include <stdbool.h>

#define POLY 0xedb88320u

/* Buffers are bytes: read them four at a time without breaking aliasing rules. */
typedef uint32_t __attribute__((may_alias)) u32_alias;

static uint32_t table[8][256];
static bool ready;

/* table[0] is the classic byte table; table[k][b] is the CRC of byte b
 * followed by k zero bytes. Built on first use, in ring 3 (8 KiB: cheaper
 * than carrying it in the image). */
static void build_tables(void) {
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ (POLY & -(c & 1));
    table[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; ++b) {
    for (int k = 1; k < 8; ++k)
      table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xff];
  }
  ready = true;
}

uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
  if (!ready) build_tables();
  const uint8_t* p = data;
  uint32_t c = ~crc;
  while (n && ((uintptr_t)p & 7)) {
    c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    n--;
  }
  for (; n >= 8; n -= 8, p += 8) {
    /* Little-endian: the first four bytes fold into c, the next four go
     * through the tables on their own. */
    uint32_t lo = c ^ *(const u32_alias*)p, hi = *(const u32_alias*)(p + 4);
    c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
        table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
        table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
  }
  while (n--) c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
  return ~c;
}
