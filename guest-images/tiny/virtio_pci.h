/* Virtio over PCI, modern interface only (virtio 1.2, 4.1): finding virtio
 * functions on bus 0 (vendor 0x1af4, device 0x1040 + type; transitional
 * 0x1000..0x103f only with the modern capabilities, typed by their
 * subsystem ID), the vendor capabilities (common, notify, ISR, device cfg),
 * their memory BARs (given addresses below 4 GiB when they have none there,
 * pci.c), and MSI-X: one table entry per vector, each its own IDT vector
 * (VEC_VIRTIO_FIRST.., counted in traps.c), vector 0 for configuration
 * changes and 1 + q for queue q (shared when the table is smaller).
 * `msix=off` on the command line leaves MSI-X disabled: the driver then
 * only polls and reads ISR. All from ring 3, register accesses at their
 * natural widths. */
#ifndef MOTETEST_VIRTIO_PCI_H_
#define MOTETEST_VIRTIO_PCI_H_

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "virtio.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_MODERN 0x1040       /* + device type */
#define VIRTIO_PCI_DEVICE_TRANSITIONAL 0x1000 /* ..0x103f: type in the subsystem ID */

/* cfg_type of the vendor capabilities (4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

/* struct virtio_pci_cap: offsets from the capability. */
#define VIRTIO_PCI_CAP_LEN 2
#define VIRTIO_PCI_CAP_CFG_TYPE 3
#define VIRTIO_PCI_CAP_BAR 4
#define VIRTIO_PCI_CAP_OFFSET 8
#define VIRTIO_PCI_CAP_LENGTH 12
#define VIRTIO_PCI_NOTIFY_MULTIPLIER 16 /* notify cap only */

/* struct virtio_pci_common_cfg (4.1.4.3). */
#define VIRTIO_PCI_COMMON_DFSELECT 0x00      /* le32 device_feature_select */
#define VIRTIO_PCI_COMMON_DF 0x04            /* le32 device_feature */
#define VIRTIO_PCI_COMMON_GFSELECT 0x08      /* le32 driver_feature_select */
#define VIRTIO_PCI_COMMON_GF 0x0c            /* le32 driver_feature */
#define VIRTIO_PCI_COMMON_MSIX 0x10          /* le16 config_msix_vector */
#define VIRTIO_PCI_COMMON_NUMQ 0x12          /* le16 num_queues */
#define VIRTIO_PCI_COMMON_STATUS 0x14        /* u8 device_status */
#define VIRTIO_PCI_COMMON_CFGGENERATION 0x15 /* u8 config_generation */
#define VIRTIO_PCI_COMMON_Q_SELECT 0x16      /* le16 */
#define VIRTIO_PCI_COMMON_Q_SIZE 0x18        /* le16 */
#define VIRTIO_PCI_COMMON_Q_MSIX 0x1a        /* le16 */
#define VIRTIO_PCI_COMMON_Q_ENABLE 0x1c      /* le16 */
#define VIRTIO_PCI_COMMON_Q_NOFF 0x1e        /* le16 queue_notify_off */
#define VIRTIO_PCI_COMMON_Q_DESCLO 0x20      /* le64 as two le32 */
#define VIRTIO_PCI_COMMON_Q_AVAILLO 0x28
#define VIRTIO_PCI_COMMON_Q_USEDLO 0x30
#define VIRTIO_PCI_COMMON_MIN_LEN 0x38 /* everything up to queue_notify_data */

#define VIRTIO_MSI_NO_VECTOR 0xffff

/* MSI-X capability (PCI 3.0, 6.8.2). */
#define MSIX_CONTROL 2
#define MSIX_TABLE 4
#define MSIX_PBA 8
#define MSIX_CONTROL_ENABLE 0x8000
#define MSIX_CONTROL_FUNCTION_MASK 0x4000
#define MSIX_CONTROL_SIZE 0x7ff
#define MSIX_ENTRY_BYTES 16
#define MSIX_ENTRY_CONTROL_MASKED 1

#define VIRTIO_PCI_QUEUES_MAX 8  /* queues a driver here may set up */
#define VIRTIO_PCI_VECTORS_MAX 8 /* MSI-X vectors used per device: 0 config, 1.. queues */

/* One structure a vendor capability points at. */
struct virtio_pci_region {
  bool present;
  uint8_t bar;
  uint32_t offset, length;
  uint64_t addr; /* BAR address + offset, once the BAR is mapped */
};

/* The transport's part of a struct virtio_dev (virtio_transport.h). */
struct virtio_pci {
  struct pci_fn fn;
  struct virtio_pci_region common, notify, isr, device;
  uint32_t notify_mult;
  uint8_t pci_cfg_cap; /* VIRTIO_PCI_CAP_PCI_CFG's offset (0: none); not used */
  uint8_t bars_mapped; /* bit i: bars[i] is read and usable */
  struct pci_bar bars[6];
  uint8_t msix_cap;         /* 0: no MSI-X capability */
  uint16_t msix_table_size; /* entries the device has */
  uint8_t table_bir, pba_bir;
  uint32_t table_offset, pba_offset;
  bool msix;        /* enabled and programmed */
  unsigned nvec;    /* entries used: 0 config, 1 + q queue q (the last one shared) */
  uint8_t vec_base; /* IDT vector of entry 0; entry i is vec_base + i */
  uint64_t notify_addr[VIRTIO_PCI_QUEUES_MAX];
  uint64_t seen_config, seen_queues; /* counts at the last virtio_ack_interrupt */
};

struct virtio_dev;
extern const struct virtio_ops virtio_pci_ops;

/* The virtio device type of a PCI function, or -1 when it is no virtio
 * device we can drive (a transitional one without the modern capabilities
 * included). */
int virtio_pci_type(const struct pci_fn* f);

/* The `nth` (from 0) function on bus 0 of type `device_id`: 1 when found and
 * set up (capabilities read, BARs mapped, MSI-X programmed unless msix=off),
 * -1 (dev->error set) when found but unusable, 0 when there are fewer
 * (*found: how many). */
int virtio_pci_find(uint32_t device_id, int nth, struct virtio_dev* dev, int* found);

#endif /* MOTETEST_VIRTIO_PCI_H_ */
