#!/usr/bin/env python3
"""Snapshot and restore boot tests: a tiny guest that counts and keeps a
checksummed pattern across its memory (test=snapshot) is saved with QMP
`migrate` to "file:DIR" and brought back in a new process with
`mote run --restore DIR`; the counts on the two consoles must run on without
a gap or a repeat, the pattern and the disk must read back, and every way a
snapshot can be unusable must be refused with its own exit code.

Usage: snapshot_test.py CASE --mote PATH --images DIR
Exits 0 on pass, 1 on failure, 77 (meson's "skip") when /dev/kvm is missing.
"""
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from boot_test import Failure, case_table, expect_eq, run_case
from control_test import Guest, Qmp, expect_error

CASES, case = case_table()

# mote's exit codes for refused restores (vmm/snapshot/restore_error.h).
UNREADABLE, CORRUPT, NEWER, CPUID, LAYOUT, MEMORY_FILE = 20, 22, 24, 26, 28, 30


def counts(text):
    return [int(n) for n in re.findall(r"snapshot: count=(\d+)", text)]


def check_counts_run_on(before, after, rounds):
    """The counts of both consoles together are exactly 1..rounds."""
    joined = counts(before + after)
    if joined != list(range(1, rounds + 1)):
        raise Failure(f"counts are not 1..{rounds} in order: before {counts(before)[-3:]}, "
                      f"after {counts(after)[:3]}...{counts(after)[-3:]}")
    if not counts(before) or not counts(after):
        raise Failure("the snapshot was not taken between two counts")
    print(f"counts run on: {counts(before)[-1]} before the snapshot, {counts(after)[0]} after")


def snapshot_guest(ctx, workdir, *extra, rounds=40, cmdline="", stop=True, wait_count=5,
                   via_ctl=False):
    """Starts test=snapshot, waits for `wait_count` counts, snapshots it into
    workdir/snap (stopped first when `stop`; through `mote ctl SOCKET
    snapshot DIR` with `via_ctl`), quits it; returns the snapshot directory
    and the source's console text."""
    guest = Guest(ctx, "snapshot", *extra, cmdline_extra=f"rounds={rounds} {cmdline}")
    snap = os.path.join(workdir, "snap")
    try:
        guest.wait_line(rf"snapshot: count={wait_count}\b", timeout=30)
        qmp = Qmp(guest.socket)
        if stop:
            qmp.ok("stop")
        if via_ctl:
            ctl = subprocess.run([ctx.mote, "ctl", guest.socket, "snapshot", snap],
                                 capture_output=True, text=True, timeout=60)
            expect_eq("mote ctl snapshot", (ctl.returncode, ctl.stdout.strip()), (0, "{}"))
        else:
            qmp.ok("migrate", {"uri": "file:" + snap})
        for status in ("setup", "active", "completed"):
            expect_eq("MIGRATION event", qmp.wait_event("MIGRATION")["data"]["status"], status)
        info = qmp.ok("query-migrate")
        expect_eq("query-migrate status", info["status"], "completed")
        expect_eq("RAM total", info["ram"]["total"], 128 << 20)
        if not stop:
            qmp.wait_event("STOP")
            qmp.wait_event("RESUME")
        qmp.ok("quit")
        qmp.close()
        guest.wait()
    finally:
        guest.kill()
    return snap, "\n".join(line for _, line in guest.console())


def restore(ctx, snap, *extra, timeout=60):
    return ctx.run("--restore", snap, "--timeout", "30", *extra, timeout=timeout)


def disk_file(ctx, workdir):
    path = os.path.join(workdir, "disk.img")
    with open(path, "wb") as f:
        f.truncate(1 << 20)
    return path


@case
def snapshot_restore_counts_on(ctx):
    """A stopped guest with a virtio-blk disk (PCI) is saved and restored: it
    counts on from where it stood, its memory pattern and its disk read
    back, and the memory file holds only what the guest touched."""
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as work:
        disk = disk_file(ctx, work)
        snap, before = snapshot_guest(ctx, work, "--disk", f"path={disk}", cmdline="disk=0")
        memory = os.path.join(snap, "memory.raw")
        expect_eq("memory file size", os.path.getsize(memory), 128 << 20)
        used = os.stat(memory).st_blocks * 512
        print(f"memory.raw: {used >> 20} MiB on disk of 128 MiB")
        if used > 40 << 20:
            raise Failure(f"memory.raw takes {used} bytes: zero pages were written")
        code, out, err, _ = restore(ctx, snap)
        print(err)
        expect_eq("restored guest's exit (all checks passed)", code, 1)
        check_counts_run_on(before, out, 40)
        after = out
        if "FAIL" in before + after:
            raise Failure("a check failed")
        first = counts(after)[0]
        for what in ("pattern ok", "disk ok"):
            if not [c for c in re.findall(rf"snapshot: {what} count=(\d+)", after) if int(c) > first]:
                raise Failure(f"no '{what}' after the restore")


class EchoPeer:
    """This test process moves into a network namespace of its own (so
    does every mote it starts) with a TAP `tap`, up; a thread answers each
    "mote-snap count=C" frame the guest sends on it (EtherType 0x88b5)
    with "mote-echo count=C" to the sender's MAC."""

    def __init__(self, tap="mtap0"):
        import ctypes
        import socket
        import threading
        clone_newnet = 0x40000000
        if ctypes.CDLL(None, use_errno=True).unshare(clone_newnet) != 0:
            raise Failure(f"unshare(CLONE_NEWNET): errno {ctypes.get_errno()} (needs root)")
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "tuntap", "add", tap, "mode", "tap"],
                    ["ip", "link", "set", tap, "up"]):
            subprocess.run(cmd, check=True)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
        self.sock.bind((tap, 0x88b5))
        self.echoed = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            frame = self.sock.recv(2048)
            m = re.match(rb"mote-snap count=(\d+)", frame[14:])
            if m:
                self.sock.send(frame[6:12] + bytes.fromhex("020000000002") + b"\x88\xb5" +
                               b"mote-echo count=" + m.group(1) + bytes(40))
                self.echoed += 1


@case
def snapshot_restore_keeps_network(ctx):
    """A guest with a virtio-net NIC (PCI) on a TAP exchanges a frame with
    the host at every check, before the snapshot and, restored in a new
    process on the same TAP, after it."""
    peer = EchoPeer()
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as work:
        snap, before = snapshot_guest(ctx, work, "--net", "tap=mtap0", cmdline="net=0 check=2")
        code, out, err, _ = restore(ctx, snap)
        print(err)
    print(f"the host echoed {peer.echoed} frames")
    expect_eq("restored guest's exit (all checks passed)", code, 1)
    check_counts_run_on(before, out, 40)
    if "FAIL" in before + out:
        raise Failure("a check failed")
    first = counts(out)[0]
    if not [c for c in re.findall(r"snapshot: net ok count=(\d+)", before)]:
        raise Failure("no frame crossed before the snapshot")
    if not [c for c in re.findall(r"snapshot: net ok count=(\d+)", out) if int(c) > first]:
        raise Failure("no frame crossed after the restore")


@case
def snapshot_running_guest_that_dirties_memory(ctx):
    """A running guest that rewrites its memory all the time (virtio-mmio,
    2 vCPUs) is snapshotted without a stop: mote stops it for the snapshot
    (STOP, RESUME), the source runs on to its end, and the restore from the
    snapshot runs on from the snapshot's count with the pattern intact."""
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as work:
        disk = disk_file(ctx, work)
        snap, before = snapshot_guest(ctx, work, "--disk", f"path={disk}", "--transport", "mmio",
                                      "--cpus", "2", rounds=150, cmdline="dirty=1 disk=0",
                                      stop=False, via_ctl=True)
        code, out, err, _ = restore(ctx, snap)
        print(err)
        expect_eq("restored guest's exit (all checks passed)", code, 1)
        seen = counts(before)
        # The source ran on after the snapshot: the restored guest starts
        # from somewhere inside the source's counts, and goes to the end.
        after = counts(out)
        if not after or after != list(range(after[0], 151)) or after[0] > seen[-1] + 1:
            raise Failure(f"restored counts {after[:3]}...{after[-3:]} do not run on from the "
                          f"snapshot (source reached {seen[-1]})")
        if "FAIL" in out or "pattern ok" not in out:
            raise Failure("the restored guest's checks did not pass")


@case
def restore_paused_then_cont(ctx):
    """--restore with --paused: query-status says paused, no count comes
    until `cont`, then the counts run on."""
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as work:
        snap, before = snapshot_guest(ctx, work)
        sock = os.path.join(tempfile.mkdtemp(), "restored.sock")  # not on the scratch disk: 9p has no sockets
        proc = subprocess.Popen([ctx.mote, "run", "--restore", snap, "--paused", "--api-socket",
                                 sock, "--timeout", "30"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(sock):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise Failure(f"no socket: {proc.stderr.read().decode()}")
                time.sleep(0.01)
            qmp = Qmp(sock)
            status = qmp.ok("query-status")
            expect_eq("restored paused", (status["status"], status["running"]), ("paused", False))
            time.sleep(0.3)
            qmp.ok("cont")
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        print(err.decode())
        expect_eq("restored guest's exit", proc.returncode, 1)
        check_counts_run_on(before, out.decode(), 40)


def incremental_snapshot(ctx, dirty, ring_fills, between=10):
    """A second snapshot of a running guest that rewrites parts of its memory
    (x-mote-incremental, `mote ctl ... snapshot DIR --incremental`) holds only
    the pages written since the first and names it as its parent; restored,
    the guest finds its whole pattern (the first snapshot's pages under the
    second's) and counts on from the second. With `ring_fills`, the guest
    writes more pages between the two than its dirty ring holds (where the
    host has one): those harvested when a vCPU found its ring full must be
    in the second snapshot too."""
    rounds = 50 + between
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as work:
        disk = disk_file(ctx, work)
        full, delta = os.path.join(work, "full"), os.path.join(work, "delta")
        guest = Guest(ctx, "snapshot", "--disk", f"path={disk}", "--dirty-ring", "1024",
                      cmdline_extra=f"rounds={rounds} dirty={dirty} disk=0")
        try:
            guest.wait_line(r"snapshot: count=5\b", timeout=30)
            qmp = Qmp(guest.socket)
            qmp.ok("migrate", {"uri": "file:" + full})
            expect_error(qmp.execute("migrate", {"uri": "file:" + os.path.join(work, "x"),
                                                 "x-mote-incremental": "yes"}),
                         "GenericError", "Invalid parameter type")
            # `between` counts of writes after the first snapshot; with
            # `ring_fills`, only until a vCPU found its ring full (a guest
            # starved on a loaded host writes little per count).
            n = max(counts("\n".join(l for _, l in guest.console())))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                full_exits = sum(v["exits"]["dirty_ring_full"]
                                 for v in qmp.ok("x-mote-query-counters")["vcpus"])
                if ring_fills and full_exits > 0:
                    break
                if max(counts("\n".join(l for _, l in guest.console()))) >= n + between:
                    break
                time.sleep(0.1)
            qmp.ok("stop")
            full_exits = sum(v["exits"]["dirty_ring_full"]
                             for v in qmp.ok("x-mote-query-counters")["vcpus"])
            print("vCPU exits for a full dirty ring:", full_exits)
            if ring_fills and host_has_dirty_ring() and full_exits == 0:
                raise Failure("no vCPU found its dirty ring full")
            ctl = subprocess.run([ctx.mote, "ctl", guest.socket, "snapshot", delta,
                                  "--incremental"], capture_output=True, text=True, timeout=60)
            expect_eq("mote ctl snapshot --incremental", (ctl.returncode, ctl.stdout.strip()),
                      (0, "{}"))
            qmp.ok("quit")
            qmp.close()
            guest.wait()
        finally:
            guest.kill()
        before = "\n".join(line for _, line in guest.console())
        on_disk = {d: os.stat(os.path.join(d, "memory.raw")).st_blocks * 512 for d in (full, delta)}
        print(f"memory.raw on disk: full {on_disk[full] >> 10} KiB, incremental "
              f"{on_disk[delta] >> 10} KiB")
        if on_disk[full] < 16 << 20 or on_disk[delta] >= on_disk[full]:
            raise Failure(f"the incremental snapshot is not smaller than the full one: {on_disk}")
        if not ring_fills and on_disk[delta] * 4 > on_disk[full]:
            raise Failure(f"the incremental snapshot is not small beside the full one: {on_disk}")
        _, sections = read_state(os.path.join(delta, "state.bin"))
        memory = next(body for name, _, body in sections if name == "memory")
        (n,) = struct.unpack_from("<I", memory, 0)
        expect_eq("the incremental snapshot's parent", memory[4:4 + n].decode(),
                  os.path.realpath(full))
        code, out, err, _ = restore(ctx, delta)
        print(err)
        expect_eq("restored guest's exit (all checks passed)", code, 1)
        check_counts_run_on(before, out, rounds)
        if "pattern ok" not in out:
            raise Failure("no pattern check after the restore")


@case
def incremental_snapshot_holds_only_written_pages(ctx):
    incremental_snapshot(ctx, dirty=1, ring_fills=False)


@case
def incremental_snapshot_after_full_dirty_rings(ctx):
    # 64 stretches of 16 pages, over and over, 7 of them new at each count:
    # over 1000 pages within a few counts, more than a 1024-entry ring takes
    # before KVM says it is full (it keeps 64 entries in reserve). Up to 150
    # counts for a guest starved on a loaded host.
    incremental_snapshot(ctx, dirty=64, ring_fills=True, between=150)


def start_target(ctx, uri, *extra):
    """`mote run --incoming URI` in the background, its console collected."""
    cmd = [ctx.mote, "run", "--incoming", uri, "--timeout", "60", *extra]
    print("$", " ".join(cmd))
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def wait_migration(qmp, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = qmp.ok("query-migrate")
        if info["status"] in ("completed", "failed", "cancelled"):
            return info
        time.sleep(0.05)
    raise Failure("the migration never ended")


def source_runs_on(guest, qmp):
    """The source of a migration that did not happen is running and counts
    on; then it is told to quit."""
    expect_eq("the source runs on", qmp.ok("query-status")["status"], "running")
    n = max(counts("\n".join(l for _, l in guest.console())))
    guest.wait_line(rf"snapshot: count={n + 3}\b", timeout=10)
    qmp.ok("quit")
    guest.wait()


def host_has_dirty_ring():
    """KVM_CHECK_EXTENSION(KVM_CAP_DIRTY_LOG_RING) on /dev/kvm."""
    import fcntl
    fd = os.open("/dev/kvm", os.O_RDWR)
    try:
        return fcntl.ioctl(fd, 0xAE03, 192) > 0
    finally:
        os.close(fd)


def live_migration(ctx, uri_for, cmdline, rounds=300, postcopy=False, kill_source=False,
                   source_extra=()):
    """Migrates a counting guest with a disk to a target listening on
    uri_for(workdir); the target's counts run on from the source's, its
    pattern and disk check out, and the source is left stopped. With
    `postcopy`, the first pass is slowed down and cut short by
    migrate-start-postcopy: most pages reach the target after it runs. With
    `kill_source`, the source is killed (SIGKILL) once the migration has
    completed: the target must not care. The source tracks dirty pages
    with KVM's dirty ring where the host has it, unless `source_extra` says
    `--dirty-ring 0`."""
    bitmap_asked = ("--dirty-ring" in source_extra
                    and source_extra[source_extra.index("--dirty-ring") + 1] == "0")
    tracking = ("KVM dirty ring" if host_has_dirty_ring() and not bitmap_asked
                else "KVM dirty bitmap")
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as work:
        disk = disk_file(ctx, work)
        uri = uri_for(tempfile.mkdtemp())
        target = start_target(ctx, uri)
        guest = Guest(ctx, "snapshot", "--disk", f"path={disk}", *source_extra,
                      cmdline_extra=f"rounds={rounds} disk=0 {cmdline}")
        try:
            guest.wait_line(r"snapshot: count=5\b", timeout=30)
            qmp = Qmp(guest.socket)
            qmp.ok("migrate-set-parameters", {"downtime-limit": 50})
            if postcopy:
                expect_error(qmp.execute("migrate-start-postcopy"), "GenericError",
                             "no migration")
                qmp.ok("migrate-set-capabilities",
                       {"capabilities": [{"capability": "postcopy-ram", "state": True}]})
                # The pattern alone takes ~4 s at this rate: cut short at 1 s.
                qmp.ok("migrate-set-parameters", {"max-bandwidth": 4 << 20})
            qmp.ok("migrate", {"uri": uri})
            if postcopy:
                time.sleep(1)
                expect_eq("before post-copy", qmp.ok("query-migrate")["status"], "active")
                qmp.ok("migrate-start-postcopy")
            info = wait_migration(qmp)
            print("query-migrate:", info)
            expect_eq("migration status", info["status"], "completed")
            statuses = [e["data"]["status"] for e in qmp.events if e["event"] == "MIGRATION"]
            expect_eq("MIGRATION events", statuses[0], "setup")
            if postcopy and "postcopy-active" not in statuses:
                raise Failure(f"no postcopy-active in the MIGRATION events: {statuses}")
            expect_eq("the source after the switch-over", qmp.ok("query-status")["status"],
                      "postmigrate")
            if info["ram"]["transferred"] < 16 << 20:
                raise Failure("fewer bytes sent than the guest's pattern")
            if kill_source:
                guest.proc.kill()
                guest.wait()
            else:
                qmp.ok("quit")
                guest.wait()
            out, err = target.communicate(timeout=90)
        finally:
            guest.kill()
            if target.poll() is None:
                target.kill()
                target.wait()
        print(err.decode(errors="replace"))
        if f"dirty pages: {tracking}" not in guest.stderr.decode(errors="replace"):
            raise Failure(f"the source did not say it tracks dirty pages with the {tracking}")
        expect_eq("the migrated guest's exit (all checks passed)", target.returncode, 1)
        before = "\n".join(line for _, line in guest.console())
        check_counts_run_on(before, out.decode(errors="replace"), rounds)
        after = out.decode(errors="replace")
        if "disk ok" not in after or "pattern ok" not in after or "FAIL" in after:
            raise Failure("the migrated guest's checks did not all pass")


@case
def live_migration_unix_while_dirtying(ctx):
    live_migration(ctx, lambda d: "unix:" + os.path.join(d, "in.sock"), "dirty=1",
                   source_extra=("--dirty-ring", "1024"))


@case
def live_migration_postcopy_while_dirtying(ctx):
    live_migration(ctx, lambda d: "unix:" + os.path.join(d, "in.sock"), "dirty=1",
                   postcopy=True)


@case
def postcopy_source_dying_ends_the_target(ctx):
    """Once a post-copy migration has switched over, the pages still on the
    source are the guest's only copy: a source killed then ends the
    target's VM with a host error (exit code 2) naming the pages lost, not a
    hang; migrate_cancel is refused meanwhile."""
    uri = "unix:" + os.path.join(tempfile.mkdtemp(), "in.sock")
    target = start_target(ctx, uri)
    guest = Guest(ctx, "snapshot", cmdline_extra="rounds=100000 dirty=1")
    try:
        guest.wait_line(r"snapshot: count=3\b", timeout=30)
        qmp = Qmp(guest.socket)
        qmp.ok("migrate-set-capabilities",
               {"capabilities": [{"capability": "postcopy-ram", "state": True}]})
        qmp.ok("migrate-set-parameters", {"max-bandwidth": 1 << 20})  # the rest: ~15 s
        qmp.ok("migrate", {"uri": uri})
        time.sleep(0.5)
        qmp.ok("migrate-start-postcopy")
        deadline = time.monotonic() + 30
        while qmp.ok("query-migrate")["status"] != "postcopy-active":
            if time.monotonic() > deadline:
                raise Failure("never postcopy-active")
            time.sleep(0.05)
        print(f"{time.monotonic():.1f}: post-copy active")
        expect_error(qmp.execute("migrate_cancel"), "GenericError", "Postcopy is active")
        time.sleep(2)  # the target runs the guest
        guest.proc.kill()
        guest.wait()
        print(f"{time.monotonic():.1f}: the source is killed")
        out, err = target.communicate(timeout=60)
        print(f"{time.monotonic():.1f}: the target ended")
    finally:
        guest.kill()
        if target.poll() is None:
            target.kill()
            # A target that even SIGKILL does not end is stuck in the kernel.
            target.wait(timeout=30)
    err = err.decode(errors="replace")
    print(err)
    expect_eq("the target's exit code", target.returncode, 2)
    if not re.search(r"post-copy: the source went away with \d+ pages", err):
        raise Failure("the target did not say the source went away with pages")


@case
def live_migration_tcp(ctx):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    # The dirty bitmap, which hosts without the ring use.
    live_migration(ctx, lambda d: f"tcp:127.0.0.1:{port}", "", kill_source=True,
                   source_extra=("--dirty-ring", "0"))


@case
def live_migration_failures(ctx):
    """A target that dies mid-stream leaves the source running (status
    failed, the guest counting on); so does one that stops reading, once
    the migration is cancelled (status cancelled), and one whose machine
    does not fit the VM (it refuses it with exit code 28); a stream of
    garbage is refused by the target with one error line and exit code 22."""
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as work:
        uri_dir = tempfile.mkdtemp()
        uri = "unix:" + os.path.join(uri_dir, "in.sock")
        target = start_target(ctx, uri)
        guest = Guest(ctx, "snapshot", cmdline_extra="rounds=100000")
        try:
            guest.wait_line(r"snapshot: count=3\b", timeout=30)
            qmp = Qmp(guest.socket)
            qmp.ok("migrate-set-parameters", {"max-bandwidth": 4 << 20})  # ~4 s for the pattern
            qmp.ok("migrate", {"uri": uri})
            time.sleep(1)
            expect_eq("while sending", qmp.ok("query-migrate")["status"], "active")
            target.kill()
            target.wait()
            info = wait_migration(qmp)
            expect_eq("after the target died", info["status"], "failed")
            source_runs_on(guest, qmp)
        finally:
            guest.kill()
            if target.poll() is None:
                target.kill()
        # A target that stops reading (SIGSTOP) does not hold the source:
        # migrate_cancel ends the migration, the guest runs on.
        target = start_target(ctx, uri)
        guest = Guest(ctx, "snapshot", cmdline_extra="rounds=100000")
        try:
            guest.wait_line(r"snapshot: count=3\b", timeout=30)
            qmp = Qmp(guest.socket)
            qmp.ok("migrate-set-parameters", {"max-bandwidth": 4 << 20})
            qmp.ok("migrate", {"uri": uri})
            time.sleep(0.5)
            target.send_signal(signal.SIGSTOP)
            time.sleep(2)  # long enough for the socket's buffers to fill
            qmp.ok("migrate_cancel")
            info = wait_migration(qmp, timeout=10)
            expect_eq("cancelled against a stopped target", info["status"], "cancelled")
            source_runs_on(guest, qmp)
        finally:
            guest.kill()
            target.kill()
            target.wait()
        # A target whose flags do not fit the VM (2 vCPUs for 1) refuses it
        # with one error line and exit code 28; the source runs on.
        target = start_target(ctx, uri, "--cpus", "2")
        guest = Guest(ctx, "snapshot", cmdline_extra="rounds=100000")
        try:
            guest.wait_line(r"snapshot: count=3\b", timeout=30)
            qmp = Qmp(guest.socket)
            qmp.ok("migrate", {"uri": uri})
            info = wait_migration(qmp)
            expect_eq("to a target that does not fit", info["status"], "failed")
            expect_eq("the source runs on", qmp.ok("query-status")["status"], "running")
            out, err = target.communicate(timeout=30)
            lines = err.decode(errors="replace").strip().splitlines()
            print(lines)
            expect_eq("misfit target: exit code", target.returncode, LAYOUT)
            if len(lines) != 1 or "vCPUs" not in lines[0]:
                raise Failure(f"misfit target: want one error line, got {lines}")
            n = max(counts("\n".join(l for _, l in guest.console())))
            guest.wait_line(rf"snapshot: count={n + 3}\b", timeout=10)
            qmp.ok("quit")
            guest.wait()
        finally:
            guest.kill()
            if target.poll() is None:
                target.kill()
        # Garbage on the target's socket (a path of its own: the killed
        # target above may have left its socket file behind).
        uri = "unix:" + os.path.join(tempfile.mkdtemp(), "in.sock")
        target = start_target(ctx, uri)
        path = uri[5:]
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)
        import socket
        c = socket.socket(socket.AF_UNIX)
        c.connect(path)
        c.sendall(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)) * 64)
        c.close()
        out, err = target.communicate(timeout=30)
        lines = err.decode(errors="replace").strip().splitlines()
        print(lines)
        expect_eq("garbage: exit code", target.returncode, CORRUPT)
        if len(lines) != 1 or "not a mote migration stream" not in lines[0]:
            raise Failure(f"garbage: want one error line, got {lines}")


def read_state(path):
    data = open(path, "rb").read()
    assert data[:8] == b"MOTESNAP"
    version, count = struct.unpack_from("<II", data, 8)
    pos, sections = 16, []
    for _ in range(count):
        (nlen,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2:pos + 2 + nlen].decode()
        pos += 2 + nlen
        sver, slen = struct.unpack_from("<IQ", data, pos)
        pos += 12
        sections.append([name, sver, bytearray(data[pos:pos + slen])])
        pos += slen
    return version, sections


def write_state(path, version, sections):
    out = bytearray(b"MOTESNAP" + struct.pack("<II", version, len(sections)))
    for name, sver, body in sections:
        out += struct.pack("<H", len(name)) + name.encode() + struct.pack("<IQ", sver, len(body))
        out += body
    out += struct.pack("<I", zlib.crc32(out))
    open(path, "wb").write(out)


def raise_cpuid_bits(machine):
    """Sets every bit of CPUID.7.0:EBX in the machine section's CPUID."""
    pos = 0
    for _ in range(2):  # mote version, CPU model: u32 length + bytes
        (n,) = struct.unpack_from("<I", machine, pos)
        pos += 4 + n
    pos += 4 + 8 + 8 + 1 + 1  # cpus, memory, FACS, pit, suspended
    (n,) = struct.unpack_from("<I", machine, pos)
    pos += 4
    for i in range(n):
        (ln,) = struct.unpack_from("<I", machine, pos)
        entry = pos + 4
        function, index = struct.unpack_from("<II", machine, entry)
        if function == 7 and index == 0:
            struct.pack_into("<I", machine, entry + 16, 0xffffffff)  # ebx
            return
        pos = entry + ln
    raise Failure("no CPUID leaf 7 in the snapshot")


@case
def restore_refusals(ctx):
    """Each way a snapshot cannot be used: one clear error line, its own exit
    code, and no guest started."""
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as work:
        disk = disk_file(ctx, work)
        snap, _ = snapshot_guest(ctx, work, "--disk", f"path={disk}", cmdline="disk=0")
        state = os.path.join(snap, "state.bin")
        pristine = open(state, "rb").read()

        def refused(label, want_code, want_text, *extra, snapshot=snap):
            code, out, err, _ = restore(ctx, snapshot, *extra)
            lines = err.strip().splitlines()
            print(f"{label}: exit {code}: {lines}")
            expect_eq(f"{label}: exit code", code, want_code)
            if len(lines) != 1 or not re.search(want_text, lines[0]):
                raise Failure(f"{label}: want one error line matching {want_text!r}, got {lines}")
            if counts(out):
                raise Failure(f"{label}: the guest ran")

        refused("no snapshot there", UNREADABLE, r"cannot read .*config\.json",
                snapshot=os.path.join(work, "nothing"))
        refused("more vCPUs", LAYOUT, r"1 vCPUs, this VM would have 2", "--cpus", "2")
        refused("more memory", LAYOUT, r"128 MiB of RAM, this VM would have 256", "--memory", "256M")
        disk2 = os.path.join(work, "disk2.img")
        shutil.copy(disk, disk2)
        refused("another disk", LAYOUT, r"no state for .*virtio-blk", "--disk", f"path={disk}",
                "--disk", f"path={disk2}")
        small = os.path.join(work, "small.img")
        open(small, "wb").truncate(512 << 10)
        refused("a smaller disk", LAYOUT, r"virtio/virtio-blk/0: .*differs", "--disk",
                f"path={small}")

        corrupt = bytearray(pristine)
        corrupt[len(corrupt) // 2] ^= 0x40
        open(state, "wb").write(corrupt)
        refused("a flipped bit", CORRUPT, r"checksum")
        open(state, "wb").write(pristine[:len(pristine) // 3])
        refused("a truncated state file", CORRUPT, r"checksum|truncated")

        open(state, "wb").write(pristine)
        version, sections = read_state(state)
        write_state(state, version + 1, sections)
        refused("a newer format", NEWER, r"format version 2, this mote reads up to 1")
        machine = next(s for s in sections if s[0] == "machine")
        raise_cpuid_bits(machine[2])
        write_state(state, version, sections)
        refused("CPUID the host cannot give", CPUID, r"CPUID\.7\.0:EBX")
        open(state, "wb").write(pristine)

        memory = os.path.join(snap, "memory.raw")
        os.truncate(memory, 64 << 20)
        refused("a short memory file", MEMORY_FILE, r"memory file .*67108864 bytes")


if __name__ == "__main__":
    sys.exit(run_case(CASES))
