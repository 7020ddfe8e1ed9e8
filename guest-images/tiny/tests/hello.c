/* test=hello [exit=N]: the smallest boot check. Prints a greeting, the
 * command line and the first line of the first module (initrd), if any,
 * marks boot done, exits through debug-exit with N (mote status 2N+1). */
#include "../boot.h"
#include "../lib.h"
#include "../machine.h"
#include "../test.h"

void test_hello(void) {
  printf("Hello from the mote test kernel\n");
  printf("cmdline: %s\n", boot.cmdline);
  printf("boot: protocol=%s mem=%lu MiB rsdp=0x%lx\n", boot.protocol, boot.mem_bytes >> 20,
         boot.rsdp);
  if (boot.modules) {
    /* The first line of the initrd/module, so a host test can check the bytes arrived. */
    char head[48];
    unsigned n = 0;
    const char* data = (const char*)boot.module0_addr;
    while (n < boot.module0_size && n + 1 < sizeof(head) && data[n] != '\n') {
      head[n] = data[n];
      n++;
    }
    head[n] = '\0';
    printf("module: %lu bytes at 0x%lx: %s\n", boot.module0_size, boot.module0_addr, head);
  }
  boot_done();
  if (!boot.valid) {
    expect(false, "bootinfo", "no valid boot info at 0x%lx", boot_info_addr);
    test_finish();
  }
  guest_exit((uint32_t)cmdline_u64("exit", 0));
  still_running();
}
