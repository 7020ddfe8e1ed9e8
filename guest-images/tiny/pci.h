/* PCI on bus 0 through configuration mechanism #1 (a 32-bit address written
 * to port 0xcf8, the data at 0xcfc..0xcff), from ring 3 (the TSS I/O bitmap
 * allows every port, traps.c): config space access, the function scan, the
 * capability list and memory BARs, which are assigned from a small window
 * when no firmware did (or put them beyond the kernel's 4 GiB identity map). */
#ifndef MOTETEST_PCI_H_
#define MOTETEST_PCI_H_

#include <stdbool.h>
#include <stdint.h>

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc

/* Type 0 header (PCI 3.0, 6.1). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS 0x09 /* prog-if, subclass, class: 3 bytes */
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAP_PTR 0x34
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_HEADER_MULTI_FUNCTION 0x80
#define PCI_CAP_ID_VENDOR 0x09
#define PCI_CAP_ID_MSIX 0x11

/* BARs go here when they need an address: the window mote describes in its
 * DSDT (arch/x86/layout.h kPciMmioStart..End), inside the uncached MMIO hole. */
#define PCI_WINDOW_START 0xc0000000ul
#define PCI_WINDOW_END 0xd0000000ul

#define PCI_MAX_FUNCTIONS 64

/* Bus 0 only: bdf = dev << 3 | fn. */
struct pci_fn {
  uint8_t dev, fn;
  uint16_t vendor, device;
  uint16_t subsys_vendor, subsys_id;
  uint8_t revision, header_type;
  uint32_t class_code; /* class << 16 | subclass << 8 | prog-if */
};

uint32_t pci_read32(const struct pci_fn* f, uint8_t off);
uint16_t pci_read16(const struct pci_fn* f, uint8_t off);
uint8_t pci_read8(const struct pci_fn* f, uint8_t off);
void pci_write32(const struct pci_fn* f, uint8_t off, uint32_t v);
void pci_write16(const struct pci_fn* f, uint8_t off, uint16_t v);

/* The functions on bus 0 (devices 0..31, functions 1..7 of multi-function
 * devices), in bdf order; scanned once. Returns how many (at most
 * PCI_MAX_FUNCTIONS). 0 when there is no PCI (reads of all ones or zeros). */
int pci_functions(const struct pci_fn** list);

/* Next capability with `id` after the one at `after` (0: from the start);
 * 0 when there is none. The walk is bounded (48 steps) and offsets are
 * masked to dword alignment, so a looping or wild list ends. */
uint8_t pci_find_cap(const struct pci_fn* f, uint8_t id, uint8_t after);

struct pci_bar {
  uint64_t addr, size;
  bool is64, prefetch, io;
  bool assigned; /* the address was given by us (pci_bar_map) */
  uint64_t old;  /* what it read before that */
};

/* Memory BAR `i` (0..5) usable from the kernel: read and sized (memory
 * decode off meanwhile); if it reads 0 or does not lie wholly below 4 GiB,
 * it gets an address in the window (naturally aligned, clear of every other
 * bus-0 BAR). Then sets memory space and bus master in the command register.
 * False with `error` for an I/O BAR, the upper half of a 64-bit one, an
 * empty one or a full window. */
bool pci_bar_map(const struct pci_fn* f, unsigned i, struct pci_bar* bar, char* error,
                 unsigned error_size);

#endif /* MOTETEST_PCI_H_ */
