/* Virtio constants every transport shares (virtio 1.2): device types (5),
 * device status bits (2.1) and the transport-independent feature bits (6). */
#ifndef MOTETEST_VIRTIO_H_
#define MOTETEST_VIRTIO_H_

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* A modern (non-legacy) device; the only kind this kernel drives. */
#define VIRTIO_F_VERSION_1 (1ull << 32)

#endif /* MOTETEST_VIRTIO_H_ */
