/* Three tiny guests at once, each in its own mote VM, through libmote's C
 * API: a sketch of what a cloud agent does with many. Prints how each one
 * ended and exits 0 when every guest ended the way its test says it should.
 *
 *   cc -o three_guests examples/three_guests.c $(pkg-config --cflags --libs libmote)
 *   ./three_guests build/guest-images/motetest.pvh
 */
#include <mote/mote.h>
#include <stdio.h>
#include <string.h>

struct guest {
  const char* cmdline;
  int cpus;
  int want_exit; /* the exit code `mote run` would give */
  mote_vm* vm;
};

/* Called on a thread of each VM's own. */
static void on_event(void* opaque, const char* name, const char* data, long long timestamp_us) {
  const struct guest* g = opaque;
  if (strcmp(name, "SHUTDOWN") == 0) {
    printf("[%lld.%06lld] %s: %s %s\n", timestamp_us / 1000000, timestamp_us % 1000000, g->cmdline,
           name, data);
    fflush(stdout);
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s KERNEL (a mote tiny test kernel, e.g. motetest.pvh)\n", argv[0]);
    return 2;
  }
  struct guest guests[] = {
      {"test=hello exit=7", 1, (7 << 1) | 1, NULL}, /* leaves through the debug-exit port */
      {"test=smp", 2, 1, NULL},                     /* brings up both vCPUs: PASS is exit 0 */
      {"test=poweroff", 1, 0, NULL},                /* ACPI power-off */
  };
  const int n = sizeof(guests) / sizeof(guests[0]);
  printf("libmote %s\n", mote_version());
  mote_set_log_level("warn"); /* mote logs to stderr; only what is wrong */
  for (int i = 0; i < n; ++i) {
    mote_config* config = mote_config_new();
    if (!config || mote_config_set_string(config, "kernel", argv[1]) != 0 ||
        mote_config_set_string(config, "cmdline", guests[i].cmdline) != 0 ||
        mote_config_set_int(config, "cpus", guests[i].cpus) != 0 ||
        mote_config_set_string(config, "console", "none") != 0 ||
        (guests[i].vm = mote_vm_create(config, on_event, &guests[i])) == NULL ||
        mote_vm_start(guests[i].vm) != 0) {
      fprintf(stderr, "%s: %s\n", guests[i].cmdline, mote_last_error());
      return 2;
    }
    mote_config_free(config);
  }
  int wrong = 0;
  for (int i = 0; i < n; ++i) {
    int code = mote_vm_wait(guests[i].vm);
    printf("%s: exit code %d (%s: %s)\n", guests[i].cmdline, code, mote_vm_end_reason(guests[i].vm),
           mote_vm_end_detail(guests[i].vm));
    wrong += code != guests[i].want_exit;
    mote_vm_destroy(guests[i].vm);
  }
  printf("%d of %d guests ended as expected\n", n - wrong, n);
  return wrong ? 1 : 0;
}
