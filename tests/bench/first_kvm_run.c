/* LD_PRELOAD shim for the start-up benchmark: notes when a process first
 * enters a guest, the same way for mote, QEMU and the floor program. The
 * first ioctl(KVM_RUN) writes CLOCK_MONOTONIC, in nanoseconds, to the file
 * named by $FIRST_KVM_RUN_FILE, then every ioctl goes on to libc's.
 * Built by tests/bench/compare.py; not part of mote. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int seen;

int ioctl(int fd, unsigned long request, ...) {
  static int (*real)(int, unsigned long, void*);
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (request == KVM_RUN && !__atomic_exchange_n(&seen, 1, __ATOMIC_SEQ_CST)) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    const char* path = getenv("FIRST_KVM_RUN_FILE");
    if (path) {
      char line[32];
      int n =
          snprintf(line, sizeof(line), "%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
      int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (out >= 0) {
        (void)!write(out, line, (size_t)n);
        close(out);
      }
    }
  }
  if (!real) real = (int (*)(int, unsigned long, void*))dlsym(RTLD_NEXT, "ioctl");
  return real(fd, request, arg);
}
