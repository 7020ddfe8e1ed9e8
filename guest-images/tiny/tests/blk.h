/* test=blk's operations that build their own descriptor chains (tests/
 * blk_hostile.c, tests/blk_bench.c), called by tests/blk.c on a device it
 * brought up. */
#ifndef MOTETEST_TESTS_BLK_H_
#define MOTETEST_TESTS_BLK_H_

#include "../virtio_blk.h"

/* op=hostile: malformed requests, each followed by a good read. */
void blk_hostile(struct blk* b);
/* op=framing: valid requests with unusual descriptor layouts. */
void blk_framing(struct blk* b);
/* op=bench: throughput timed by the host (tests/blk_bench.c). */
void blk_bench(struct blk* b);

#endif /* MOTETEST_TESTS_BLK_H_ */
