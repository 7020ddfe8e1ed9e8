/* test=echo: reads one line from COM1 (polled, 10 s at most) and prints it
 * back as "echo: LINE", so a host test can check that console input reaches
 * the guest intact. */
#include "../lib.h"
#include "../machine.h"
#include "../test.h"

void test_echo(void) {
  char line[128];
  unsigned len = 0;
  printf("echo: ready\n");
  boot_done();
  uint64_t deadline = deadline_ms(10000);
  for (;;) {
    int c = console_getc(deadline);
    if (c < 0) {
      expect(false, "echo_input", "no complete line within 10 s (got %u bytes)", len);
      test_finish();
    }
    if (c == '\n' || c == '\r') break;
    if (len + 1 < sizeof(line)) line[len++] = (char)c;
  }
  line[len] = '\0';
  printf("echo: %s\n", line);
  expect(len > 0, "echo_input", "empty line");
  test_finish();
}
