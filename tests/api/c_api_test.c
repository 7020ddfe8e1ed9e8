/* libmote's C API against real tiny guests: every call, its errors, and the
 * events and exit codes a program sees. Each check prints "ok NAME" or
 * "FAIL NAME: why"; the exit status is the number of failures (0: all held).
 *
 * Usage: c_api_test KERNEL   (build/guest-images/motetest.pvh)
 * Exits 77 (meson's skip) where /dev/kvm is missing. */
#include <mote/mote.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(int ok, const char* name, const char* fmt, ...) {
  if (ok) {
    printf("ok %s\n", name);
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL %s: ", name);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  failures++;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int contains(const char* text, const char* part) {
  return text && strstr(text, part) != NULL;
}

/* Events of one VM, as the callback saw them. */
struct events {
  pthread_mutex_t mu;
  char names[1024]; /* "STOP RESUME ..." */
  char last_shutdown[256];
  long long last_time_us;
  int out_of_order;
};

static void on_event(void* opaque, const char* name, const char* data, long long timestamp_us) {
  struct events* e = opaque;
  pthread_mutex_lock(&e->mu);
  if (strlen(e->names) + strlen(name) + 2 < sizeof(e->names)) {
    strcat(e->names, name);
    strcat(e->names, " ");
  }
  if (strcmp(name, "SHUTDOWN") == 0)
    snprintf(e->last_shutdown, sizeof(e->last_shutdown), "%s", data);
  if (timestamp_us < e->last_time_us) e->out_of_order = 1;
  e->last_time_us = timestamp_us;
  pthread_mutex_unlock(&e->mu);
}

static void events_init(struct events* e) {
  memset(e, 0, sizeof(*e));
  pthread_mutex_init(&e->mu, NULL);
}

static int events_have(struct events* e, const char* names) {
  pthread_mutex_lock(&e->mu);
  int yes = strstr(e->names, names) != NULL;
  pthread_mutex_unlock(&e->mu);
  return yes;
}

/* Waits up to 10 s for `names` among the events. */
static int wait_events(struct events* e, const char* names) {
  for (int i = 0; i < 1000; ++i) {
    if (events_have(e, names)) return 1;
    usleep(10000);
  }
  return 0;
}

static char* read_file(const char* path) {
  static char buf[65536];
  FILE* f = fopen(path, "r");
  if (!f) return NULL;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

/* Waits up to 10 s for `line` in a console file. */
static int wait_console(const char* path, const char* line) {
  for (int i = 0; i < 1000; ++i) {
    if (contains(read_file(path), line)) return 1;
    usleep(10000);
  }
  return 0;
}

static mote_config* guest_config(const char* kernel, const char* cmdline, const char* console) {
  mote_config* c = mote_config_new();
  if (!c || mote_config_set_string(c, "kernel", kernel) != 0 ||
      mote_config_set_string(c, "cmdline", cmdline) != 0 ||
      mote_config_set_string(c, "console", console) != 0) {
    printf("FAIL config for %s: %s\n", cmdline, mote_last_error());
    exit(1);
  }
  return c;
}

static void expect_string(char* got, const char* want, const char* name) {
  check(got && strcmp(got, want) == 0, name, "got %s, want %s (%s)", got ? got : "NULL", want,
        got ? "" : mote_last_error());
  mote_free(got);
}

static void test_config_errors(const char* kernel) {
  check(strcmp(mote_version(), "") != 0, "version", "empty");
  mote_config* c = mote_config_new();
  check(mote_config_set_int(c, "cpus", 0) == -1 &&
            contains(mote_last_error(), "cpus: expected an integer"),
        "bad cpus named", "%s", mote_last_error());
  check(mote_config_set_string(c, "colour", "red") == -1 &&
            contains(mote_last_error(), "colour: unknown member"),
        "unknown member named", "%s", mote_last_error());
  check(
      mote_config_set_string(c, "memory", "lots") == -1 && contains(mote_last_error(), "memory: "),
      "bad memory named", "%s", mote_last_error());
  check(mote_config_set_bool(c, "cpus", 1) == -1, "bool for an integer refused", "accepted");
  check(mote_config_set_json(c, "cpus", "{") == -1 && contains(mote_last_error(), "not JSON"),
        "set_json refuses bad JSON", "%s", mote_last_error());
  check(mote_config_add_disk(c, "readonly=on") == -1 && contains(mote_last_error(), "no path=FILE"),
        "disk spec without a path", "%s", mote_last_error());
  check(mote_config_add_net(c, "tap=a,fd=3") == -1 && contains(mote_last_error(), "exactly one"),
        "net spec with two backends", "%s", mote_last_error());
  check(mote_set_log_level("loud") == -1 && mote_set_log_level("warn") == 0, "log level checked",
        "%s", mote_last_error());
  /* No kernel yet: create says which member is missing. */
  check(mote_vm_create(c, NULL, NULL) == NULL && contains(mote_last_error(), "kernel: missing"),
        "create without a kernel", "%s", mote_last_error());
  check(mote_config_set_int(c, "cpus", 3) == 0 &&
            mote_config_set_string(c, "kernel", kernel) == 0 &&
            mote_config_add_disk(c, "path=/tmp/x.img,readonly=on,serial=S1") == 0,
        "good members taken", "%s", mote_last_error());
  char* json = mote_config_to_json(c);
  check(contains(json, "\"cpus\":3") && contains(json, "\"serial\":\"S1\"") &&
            contains(json, "\"readonly\":true"),
        "to_json shows the members", "%s", json);
  mote_config* again = mote_config_from_json(json);
  check(again != NULL, "from_json takes to_json's text", "%s", mote_last_error());
  mote_free(json);
  mote_config_free(again);
  check(mote_config_from_json("{\"kernel\": \"k\", \"cpus\": }") == NULL &&
            contains(mote_last_error(), "config: line 1"),
        "from_json syntax error", "%s", mote_last_error());
  check(mote_config_from_file("/nonexistent/vm.json") == NULL &&
            contains(mote_last_error(), "cannot read config /nonexistent/vm.json"),
        "from_file names the file", "%s", mote_last_error());
  mote_config_free(c);

  /* A kernel that is not there: create is fine, start says why, wait gives 2. */
  c = guest_config("/nonexistent/kernel", "", "none");
  mote_vm* vm = mote_vm_create(c, NULL, NULL);
  check(vm != NULL, "create with a missing kernel file", "%s", mote_last_error());
  check(mote_vm_pause(vm) == -1 && contains(mote_last_error(), "not been started"),
        "pause before start", "%s", mote_last_error());
  check(mote_vm_start(vm) == -1 && contains(mote_last_error(), "/nonexistent/kernel"),
        "start names the kernel", "%s", mote_last_error());
  check(mote_vm_wait(vm) == 2, "wait after a failed start", "not 2");
  check(mote_vm_start(vm) == -1, "start only once", "started again");
  mote_vm_destroy(vm);
  mote_config_free(c);
}

/* stop, cont, status, counters, execute, system_reset and quit on one
 * running guest, with the events each one brings. */
static void test_lifecycle(const char* kernel, const char* dir) {
  char console[512];
  snprintf(console, sizeof(console), "file:%s/clock.log", dir);
  mote_config* c = guest_config(kernel, "test=clock", console);
  mote_config_set_int(c, "cpus", 2);
  mote_config_set_bool(c, "paused", 1);
  mote_config_set_string(c, "name", "c-api-guest");
  struct events ev;
  events_init(&ev);
  mote_vm* vm = mote_vm_create(c, on_event, &ev);
  mote_config_free(c); /* the VM keeps its own copy */
  check(vm != NULL && mote_vm_start(vm) == 0, "start paused", "%s", mote_last_error());
  expect_string(mote_vm_status(vm), "prelaunch", "status prelaunch");
  check(mote_vm_resume(vm) == 0 && wait_events(&ev, "RESUME"), "resume brings RESUME", "%s",
        ev.names);
  expect_string(mote_vm_status(vm), "running", "status running");
  check(wait_console(console + 5, "clock: ns="), "the guest runs", "no clock line");
  check(mote_vm_pause(vm) == 0 && wait_events(&ev, "RESUME STOP"), "pause brings STOP", "%s",
        ev.names);
  expect_string(mote_vm_status(vm), "paused", "status paused");
  char* counters = mote_vm_counters(vm);
  check(contains(counters, "\"vcpus\":[") && contains(counters, "\"cpu-index\":1") &&
            contains(counters, "\"io\":") && contains(counters, "\"thread-id\":"),
        "counters per vCPU", "%s", counters ? counters : mote_last_error());
  mote_free(counters);
  char* cpus = mote_vm_execute(vm, "query-cpus-fast", NULL);
  check(contains(cpus, "\"thread-id\"") && contains(cpus, "\"cpu-index\":1"),
        "execute query-cpus-fast", "%s", cpus ? cpus : mote_last_error());
  mote_free(cpus);
  expect_string(mote_vm_execute(vm, "query-name", "{}"), "{\"name\":\"c-api-guest\"}",
                "execute query-name");
  check(mote_vm_execute(vm, "no-such-command", NULL) == NULL &&
            contains(mote_last_error(), "has not been found"),
        "execute an unknown command", "%s", mote_last_error());
  check(mote_vm_set_disk_throttle(vm, "disk0", "bps=1,bps_rd=2") == -1 &&
            contains(mote_last_error(), "cannot be used at the same time"),
        "set_disk_throttle: QEMU's rules", "%s", mote_last_error());
  check(mote_vm_set_disk_throttle(vm, "disk0", "path=x") == -1 &&
            contains(mote_last_error(), "'path' is not one"),
        "set_disk_throttle: only rate limits", "%s", mote_last_error());
  check(mote_vm_set_disk_throttle(vm, "disk0", "iops=10") == -1 &&
            contains(mote_last_error(), "Device 'disk0' not found"),
        "set_disk_throttle: a VM without disks", "%s", mote_last_error());
  check(mote_vm_set_net_throttle(vm, 0, "tx_pps=10") == -1 &&
            contains(mote_last_error(), "NIC 0 not found"),
        "set_net_throttle: a VM without NICs", "%s", mote_last_error());
  check(mote_vm_set_net_throttle(vm, 0, "rx_pps_max=10") == -1 &&
            contains(mote_last_error(), "needs its rate"),
        "set_net_throttle: a burst without its rate", "%s", mote_last_error());
  check(mote_vm_execute(vm, "query-status", "[1]") == NULL && contains(mote_last_error(), "object"),
        "execute with non-object arguments", "%s", mote_last_error());
  check(mote_vm_execute(vm, "query-status", "{\"x\": 1}") == NULL &&
            contains(mote_last_error(), "'x'"),
        "execute with an unknown argument", "%s", mote_last_error());
  char snap_dir[] = "/tmp/mote-c-api-XXXXXX";
  check(mkdtemp(snap_dir) != NULL && mote_vm_snapshot(vm, snap_dir, 0) == 0 &&
            wait_events(&ev, "MIGRATION"),
        "snapshot of the paused VM, with MIGRATION events", "%s", mote_last_error());
  char* migrated = mote_vm_query_migrate(vm);
  check(contains(migrated, "\"status\":\"completed\""), "query-migrate: completed", "%s",
        migrated ? migrated : mote_last_error());
  mote_free(migrated);
  check(mote_vm_snapshot(vm, NULL, 0) == -1, "snapshot into no directory refused", "accepted");
  check(mote_vm_migrate(vm, "nowhere") == -1 && strstr(mote_last_error(), "unix:") != NULL,
        "a migration to no unix: or tcp: address refused", "%s", mote_last_error());
  char rm[64];
  snprintf(rm, sizeof(rm), "rm -rf %s", snap_dir);
  check(system(rm) == 0, "remove the snapshot", "rm failed");
  check(mote_vm_resume(vm) == 0 && mote_vm_reset(vm) == 0 && wait_events(&ev, "RESET"),
        "reset brings RESET", "%s", ev.names);
  expect_string(mote_vm_status(vm), "running", "running after reset");
  check(mote_vm_wait_timeout(vm, 200) == -1 && contains(mote_last_error(), "still running"),
        "wait_timeout on a running guest", "%s", mote_last_error());
  check(mote_vm_shutdown(vm) == 0, "shutdown", "%s", mote_last_error());
  check(mote_vm_wait(vm) == 0, "exit code after shutdown", "not 0");
  check(strcmp(mote_vm_end_reason(vm), "host-qmp-quit") == 0, "end reason host-qmp-quit", "%s",
        mote_vm_end_reason(vm));
  /* Wait returns after the last event was delivered. */
  check(events_have(&ev, "RESUME STOP MIGRATION MIGRATION MIGRATION RESUME RESET SHUTDOWN"),
        "events in order", "%s", ev.names);
  check(contains(ev.last_shutdown, "\"reason\":\"host-qmp-quit\""), "SHUTDOWN data", "%s",
        ev.last_shutdown);
  check(!ev.out_of_order && ev.last_time_us > 1600000000000000LL, "event timestamps", "%lld",
        ev.last_time_us);
  check(mote_vm_pause(vm) == -1 && contains(mote_last_error(), "ended"), "pause after the end",
        "%s", mote_last_error());
  mote_vm_destroy(vm);
}

/* The guest ends itself: power button, panic, debug-exit. */
static void test_guest_endings(const char* kernel, const char* dir) {
  char console[512];
  snprintf(console, sizeof(console), "file:%s/button.log", dir);
  mote_config* c = guest_config(kernel, "test=powerbutton", console);
  struct events ev;
  events_init(&ev);
  mote_vm* vm = mote_vm_create(c, on_event, &ev);
  check(vm && mote_vm_start(vm) == 0, "start powerbutton", "%s", mote_last_error());
  check(wait_console(console + 5, "waiting on gsi"), "guest listens for the button", "no line");
  check(mote_vm_powerdown(vm) == 0, "powerdown", "%s", mote_last_error());
  check(mote_vm_wait(vm) == 0 && strcmp(mote_vm_end_reason(vm), "guest-shutdown") == 0,
        "the guest powers off on the button", "%s", mote_vm_end_reason(vm));
  check(events_have(&ev, "POWERDOWN SHUTDOWN"), "POWERDOWN then SHUTDOWN", "%s", ev.names);
  mote_vm_destroy(vm);
  mote_config_free(c);

  c = guest_config(kernel, "test=panic", "none");
  events_init(&ev);
  vm = mote_vm_create(c, on_event, &ev);
  check(vm && mote_vm_start(vm) == 0 && mote_vm_wait(vm) == 6, "panic exit code 6", "%s",
        mote_last_error());
  check(strcmp(mote_vm_end_reason(vm), "guest-panic") == 0 &&
            events_have(&ev, "GUEST_PANICKED SHUTDOWN"),
        "GUEST_PANICKED then SHUTDOWN", "%s / %s", mote_vm_end_reason(vm), ev.names);
  mote_vm_destroy(vm);
  mote_config_free(c);

  c = guest_config(kernel, "test=hello exit=5", "none");
  vm = mote_vm_create(c, NULL, NULL);
  check(vm && mote_vm_start(vm) == 0 && mote_vm_wait(vm) == 11, "debug-exit 5 gives 11", "%s",
        mote_last_error());
  check(strcmp(mote_vm_end_reason(vm), "x-mote-debug-exit") == 0 &&
            contains(mote_vm_end_detail(vm), "0x5"),
        "debug-exit reason and detail", "%s: %s", mote_vm_end_reason(vm), mote_vm_end_detail(vm));
  mote_vm_destroy(vm);
  mote_config_free(c);

  /* Destroying a running VM ends it, promptly. */
  c = guest_config(kernel, "test=spin", "none");
  vm = mote_vm_create(c, NULL, NULL);
  check(vm && mote_vm_start(vm) == 0, "start spin", "%s", mote_last_error());
  double start = now_s();
  mote_vm_destroy(vm);
  check(now_s() - start < 5, "destroy a running VM", "took %.1f s", now_s() - start);
  mote_config_free(c);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s KERNEL\n", argv[0]);
    return 2;
  }
  if (access("/dev/kvm", F_OK) != 0) {
    printf("/dev/kvm is missing: skipping\n");
    return 77;
  }
  char dir[] = "/tmp/mote-c-api-XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  mote_set_log_level("warn");
  test_config_errors(argv[1]);
  test_lifecycle(argv[1], dir);
  test_guest_endings(argv[1], dir);
  char path[600];
  snprintf(path, sizeof(path), "%s/clock.log", dir);
  unlink(path);
  snprintf(path, sizeof(path), "%s/button.log", dir);
  unlink(path);
  rmdir(dir);
  printf("%d failed\n", failures);
  return failures > 0 ? 1 : 0;
}
