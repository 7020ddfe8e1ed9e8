/* CRC-32 of IEEE 802.3 (reflected, polynomial 0xedb88320, init and final
 * xor 0xffffffff): the value of zlib's crc32() and Python's zlib.crc32, so a
 * host test can check what a guest read. */
#ifndef MOTETEST_CRC32_H_
#define MOTETEST_CRC32_H_

#include <stddef.h>
#include <stdint.h>

/* crc32_update(0, data, n) is the CRC of data; feeding the result back in
 * continues it: crc32_update(crc32_update(0, a, n), b, m) is the CRC of a||b. */
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);

#endif /* MOTETEST_CRC32_H_ */
