/* test=hello [exit=N]: the smallest boot check. Prints a greeting and the
 * command line, marks boot done, exits through debug-exit with N (mote
 * status 2N+1). */
#include "../boot.h"
#include "../lib.h"
#include "../machine.h"
#include "../test.h"

void test_hello(void) {
  printf("Hello from the mote test kernel\n");
  printf("cmdline: %s\n", boot.cmdline);
  printf("boot: protocol=%s mem=%lu MiB rsdp=0x%lx\n", boot.protocol, boot.mem_bytes >> 20, boot.rsdp);
  boot_done();
  if (!boot.valid) {
    expect(false, "bootinfo", "no valid boot info at 0x%lx", boot_info_addr);
    test_finish();
  }
  guest_exit((uint32_t)cmdline_u64("exit", 0));
  still_running();
}
