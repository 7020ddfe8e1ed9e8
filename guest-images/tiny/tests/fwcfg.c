/* test=fwcfg [file=NAME]: reads QEMU's firmware configuration device (fw_cfg,
 * ports 0x510/0x511, DMA at 0x514) as firmware and Linux's qemu_fw_cfg do:
 * the signature, the feature bits, the CPU count and RAM size, then the file
 * directory; the file NAME is read through the data port and again by DMA,
 * and its size and CRC-32 printed for the host test to compare. A DMA whose
 * buffer lies outside RAM must come back with the error bit set. */
#include "../arch.h"
#include "../boot.h"
#include "../crc32.h"
#include "../lib.h"
#include "../platform.h"
#include "../test.h"

enum {
  FW_CFG_SELECTOR = FW_CFG_PORT,
  FW_CFG_DATA = FW_CFG_PORT + 1,
  FW_CFG_DMA_HIGH = FW_CFG_PORT + 4,
  FW_CFG_DMA_LOW = FW_CFG_PORT + 8,
  KEY_SIGNATURE = 0x00,
  KEY_ID = 0x01,
  KEY_RAM_SIZE = 0x03,
  KEY_NB_CPUS = 0x05,
  KEY_FILE_DIR = 0x19,
  DMA_ERROR = 0x01,
  DMA_READ = 0x02,
  DMA_SELECT = 0x08,
};

static uint32_t be32(uint32_t v) { return __builtin_bswap32(v); }

static void fw_select(uint16_t key) { outw(FW_CFG_SELECTOR, key); }

static void fw_read(void* out, uint32_t n) {
  uint8_t* p = out;
  for (uint32_t i = 0; i < n; ++i) p[i] = inb(FW_CFG_DATA);
}

/* FWCfgDmaAccess: all big-endian. */
struct dma_access {
  uint32_t control;
  uint32_t length;
  uint64_t address;
} __attribute__((packed, aligned(16)));

static struct dma_access access;

/* Selects `key` and reads `n` bytes to guest-physical `to` by DMA; returns
 * the control word the device left. */
static uint32_t fw_dma_read(uint16_t key, uint64_t to, uint32_t n) {
  access.control = be32(((uint32_t)key << 16) | DMA_SELECT | DMA_READ);
  access.length = be32(n);
  access.address = __builtin_bswap64(to);
  uint64_t at = (uint64_t)(uintptr_t)&access;
  outl(FW_CFG_DMA_HIGH, be32((uint32_t)(at >> 32)));
  outl(FW_CFG_DMA_LOW, be32((uint32_t)at));
  return be32(*(volatile uint32_t*)&access.control);
}

static uint8_t file_data[64 * 1024];

void test_fwcfg(void) {
  char signature[5] = {0};
  fw_select(KEY_SIGNATURE);
  fw_read(signature, 4);
  uint32_t id = 0, cpus = 0;
  uint64_t ram = 0;
  fw_select(KEY_ID);
  fw_read(&id, 4);
  fw_select(KEY_NB_CPUS);
  fw_read(&cpus, 2);
  fw_select(KEY_RAM_SIZE);
  fw_read(&ram, 8);
  printf("fwcfg: signature=%s id=0x%x cpus=%u ram=%lu MiB\n", signature, id, cpus, ram >> 20);
  if (!expect(strcmp(signature, "QEMU") == 0, "fwcfg_signature", "read \"%s\"", signature)) return;

  char want[56] = "";
  cmdline_get("file", want, sizeof(want));
  uint32_t count;
  fw_select(KEY_FILE_DIR);
  fw_read(&count, 4);
  count = be32(count);
  printf("fwcfg: %u files\n", count);
  uint32_t size = 0;
  uint16_t key = 0;
  for (uint32_t i = 0; i < count && i < 64; ++i) {
    struct {
      uint32_t size;
      uint16_t select;
      uint16_t reserved;
      char name[56];
    } entry;
    fw_read(&entry, sizeof(entry));
    entry.name[55] = 0;
    printf("fwcfg: file %s size=%u key=0x%x\n", entry.name, be32(entry.size),
           __builtin_bswap16(entry.select));
    if (strcmp(entry.name, want) == 0) {
      size = be32(entry.size);
      key = __builtin_bswap16(entry.select);
    }
  }
  if (want[0] == 0) return;
  if (!expect(key != 0, "fwcfg_file_found", "no file %s", want)) return;
  if (!expect(size <= sizeof(file_data), "fwcfg_file_size", "%u bytes", size)) return;

  fw_select(key);
  fw_read(file_data, size);
  uint32_t crc = crc32_update(0, file_data, size);
  printf("fwcfg: read %s size=%u crc32=0x%08x\n", want, size, crc);

  if (!expect(id & 2, "fwcfg_dma_offered", "id 0x%x", id)) return;
  memset(file_data, 0, sizeof(file_data));
  uint32_t control = fw_dma_read(key, (uint64_t)(uintptr_t)file_data, size);
  uint32_t dma_crc = crc32_update(0, file_data, size);
  printf("fwcfg: dma %s control=0x%x crc32=0x%08x\n", want, control, dma_crc);
  expect(control == 0 && dma_crc == crc, "fwcfg_dma_read", "control 0x%x crc 0x%08x", control,
         dma_crc);
  /* Past the end of RAM: the device refuses, the guest learns it. */
  control = fw_dma_read(key, 0xfffffffff000ull, size);
  expect(control & DMA_ERROR, "fwcfg_dma_bad_address", "control 0x%x", control);
}
