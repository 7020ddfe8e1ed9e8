/* libmote's C API: mote's embedding API (mote/vm.h) for C and for any
 * language with a C FFI. Handles are opaque; no C++ type or exception
 * crosses it. A function that fails returns -1 or NULL and leaves one line
 * saying why in mote_last_error() (per thread, until that thread's next
 * failing call). Strings returned as `char *` are the caller's, freed with
 * mote_free().
 *
 *   mote_config *c = mote_config_new();
 *   mote_config_set_string(c, "kernel", "motetest.pvh");
 *   mote_config_set_string(c, "console", "none");
 *   mote_vm *vm = mote_vm_create(c, NULL, NULL);
 *   if (!vm || mote_vm_start(vm) != 0) fprintf(stderr, "%s\n", mote_last_error());
 *   int code = mote_vm_wait(vm);   // as `mote run` would exit
 *   mote_vm_destroy(vm);
 *   mote_config_free(c);
 *
 * Members are those of the JSON VM description (docs/vm-config.md).
 * Thread-safety: a mote_config is used by one thread at a time; every
 * mote_vm function may be called from any thread, except that an event
 * callback must not call mote_vm_wait or mote_vm_destroy on its own VM. */
#ifndef MOTE_INCLUDE_MOTE_MOTE_H_
#define MOTE_INCLUDE_MOTE_MOTE_H_

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mote_config mote_config;
typedef struct mote_vm mote_vm;

/* "0.1.0". */
const char* mote_version(void);
/* Why this thread's last failing call failed ("" if none did). */
const char* mote_last_error(void);
/* Frees a string this API returned. NULL is fine. */
void mote_free(void* p);
/* The process-wide log level (stderr): trace, debug, info, warn, error, off. */
int mote_set_log_level(const char* level);

/* A VM description with every member at its default (no kernel yet). */
mote_config* mote_config_new(void);
/* A whole description, from JSON text or a file of it. */
mote_config* mote_config_from_json(const char* json);
mote_config* mote_config_from_file(const char* path);
void mote_config_free(mote_config* config);
/* Sets one top-level member ("kernel", "cpus", "memory", ...), replacing it
 * (for "disks" and "nets": the whole list). The value is checked at once:
 * an unknown member or a bad value fails with the member named. */
int mote_config_set_string(mote_config* config, const char* member, const char* value);
int mote_config_set_int(mote_config* config, const char* member, long long value);
int mote_config_set_bool(mote_config* config, const char* member, int value);
/* Any member, its value as JSON text ("2", "\"512M\"", "[{\"path\": ...}]"). */
int mote_config_set_json(mote_config* config, const char* member, const char* json_value);
/* Appends a disk or a NIC, in the `mote run --disk` / `--net` syntax:
 * "path=disk.img,readonly=on", "tap=tap0,mac=52:54:00:00:00:01". */
int mote_config_add_disk(mote_config* config, const char* spec);
int mote_config_add_net(mote_config* config, const char* spec);
/* The description as JSON text (mote_free it). */
char* mote_config_to_json(const mote_config* config);

/* An event (QMP's name and "data" object as JSON text; time in microseconds
 * since the Unix epoch), on a thread of the VM's own, one at a time. */
typedef void (*mote_event_fn)(void* opaque, const char* name, const char* data_json,
                              long long timestamp_us);

/* Checks `config` (it may be freed afterwards) and opens its control socket
 * if it has one; nothing is booted yet. `on_event` may be NULL. */
mote_vm* mote_vm_create(const mote_config* config, mote_event_fn on_event, void* opaque);
/* Builds and starts the VM (paused if the config says so). Once. */
int mote_vm_start(mote_vm* vm);
/* QMP stop, cont, system_powerdown (ACPI power button), system_reset, quit. */
int mote_vm_pause(mote_vm* vm);
int mote_vm_resume(mote_vm* vm);
int mote_vm_powerdown(mote_vm* vm);
int mote_vm_reset(mote_vm* vm);
int mote_vm_shutdown(mote_vm* vm);
/* Waits until the VM has ended; returns the exit code `mote run` would give
 * (0 power-off, (v << 1) | 1 debug-exit, 2 host error, 4 reset, 6 panic, 8
 * timeout, ...). Before a successful start: 2 at once. */
int mote_vm_wait(mote_vm* vm);
/* The same, or -1 with mote_last_error() "still running" after `timeout_ms`. */
int mote_vm_wait_timeout(mote_vm* vm, int timeout_ms);
/* After a wait: the SHUTDOWN reason (guest-shutdown, host-qmp-quit,
 * x-mote-debug-exit, ...) and one line for a person. Owned by the VM. */
const char* mote_vm_end_reason(mote_vm* vm);
const char* mote_vm_end_detail(mote_vm* vm);
/* QMP query-status's status: "prelaunch", "running", "paused", "shutdown". */
char* mote_vm_status(mote_vm* vm);
/* A snapshot of the VM into directory `dir` (QMP migrate to "file:DIR"); a
 * new VM starts from it with the config member "restore". With `incremental`
 * non-zero, only the pages written since the VM's last snapshot (its parent).
 * 0, or -1 with mote_last_error(). */
int mote_vm_snapshot(mote_vm* vm, const char* dir, int incremental);
/* A live migration to another mote waiting at `uri` ("unix:PATH" or
 * "tcp:IP:PORT", config member "incoming"); returns once it has started,
 * mote_vm_query_migrate follows it. 0, or -1 with mote_last_error(). */
int mote_vm_migrate(mote_vm* vm, const char* uri);
/* New rate limits for disk `disk_id` ("disk0", or its id=), in the --disk
 * syntax of its rate-limit members: "bps_rd=1048576,iops_wr=100"; what is
 * not named is unlimited, so "" lifts every limit (block_set_io_throttle). */
int mote_vm_set_disk_throttle(mote_vm* vm, const char* disk_id, const char* limits);
/* The same for NIC `index` (in --net order): "rx_bps=1000000,tx_pps=100". */
int mote_vm_set_net_throttle(mote_vm* vm, unsigned index, const char* limits);
/* QMP query-migrate: the last snapshot's or migration's status and figures
 * (JSON text). */
char* mote_vm_query_migrate(mote_vm* vm);
/* Per-vCPU exits by reason and per-device counters (x-mote-query-counters). */
char* mote_vm_counters(mote_vm* vm);
/* Any control-socket command; `arguments_json` an object or NULL. The reply's
 * "return" value as JSON text; NULL (error set) for a QMP error. */
char* mote_vm_execute(mote_vm* vm, const char* command, const char* arguments_json);
/* Ends the VM if it still runs, waits for its threads and frees it. */
void mote_vm_destroy(mote_vm* vm);

#ifdef __cplusplus
}
#endif

#endif /* MOTE_INCLUDE_MOTE_MOTE_H_ */
