/* port-write PORT VALUE: writes one byte to an x86 I/O port from a Linux
 * guest's userspace. Debian's cloud kernel has no /dev/port, so the guest's
 * /init uses this to reach mote's boot timer (port 0x440). Static, so it
 * runs from a busybox initramfs with no C library. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: port-write PORT VALUE\n");
    return 2;
  }
  char* end;
  unsigned long port = strtoul(argv[1], &end, 0);
  if (*end || port > 0xffff) {
    fprintf(stderr, "port-write: bad port %s\n", argv[1]);
    return 2;
  }
  unsigned long value = strtoul(argv[2], &end, 0);
  if (*end || value > 0xff) {
    fprintf(stderr, "port-write: bad byte %s\n", argv[2]);
    return 2;
  }
  if (ioperm(port, 1, 1) != 0) {
    perror("port-write: ioperm");
    return 1;
  }
  outb((unsigned char)value, (unsigned short)port);
  return 0;
}
