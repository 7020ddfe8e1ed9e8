#!/usr/bin/env python3
"""seccomp filters per thread kind (vCPU, event loop, I/O workers).

  seccomp_on_by_default_every_thread   a running mote's threads (named by
                                       kind) all run under a filter
  seccomp_filters_bite                 each thread kind, made to call what
                                       its filter forbids (a test-only
                                       trigger), ends mote: exit code 14,
                                       one line naming the kind and the call
  seccomp_off_and_log_let_it_run       the same calls with --seccomp log or
                                       off: the guest reads its disk and ends
                                       as it should

Usage: seccomp_test.py CASE --mote PATH --images DIR --trigger PATH"""
import os
import re
import subprocess
import sys
import tempfile
import time

from boot_test import Failure, case_table, expect_eq, expect_line, random_image, run_case
from control_test import Guest, Qmp

CASES, case = case_table()

# kind, the call its trigger makes, that call's number (x86-64)
TRIGGERS = [("vcpu", "socket", 41), ("event-loop", "execve", 59), ("io-worker", "socket", 41),
            ("main", "execve", 59)]


def thread_status(pid):
    """{thread id: (name, Seccomp mode, number of filters)} of a process."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        threads[int(tid)] = (fields["Name"].strip(), int(fields["Seccomp"]),
                             int(fields.get("Seccomp_filters", "0")))
    return threads


@case
def seccomp_on_by_default_every_thread(ctx):
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as work:
        disk = os.path.join(work, "disk.img")
        random_image(disk, 1)
        # Two vCPUs, and a disk on worker threads that the guest uses.
        guest = Guest(ctx, "snapshot", "--cpus", "2", "--disk", f"path={disk},aio=threads",
                      cmdline_extra="rounds=1000 disk=0 mib=1")
        try:
            guest.wait_line(r"snapshot: disk ok count=8\b", timeout=30)
            threads = thread_status(guest.proc.pid)
            print("threads:", threads)
            names = sorted(name for name, _, _ in threads.values())
            for want in ("mote-vcpu0", "mote-vcpu1", "mote-io"):
                if want not in names:
                    raise Failure(f"no thread named {want}: {names}")
            for tid, (name, mode, filters) in threads.items():
                # The sanitizer runtimes' own threads start before mote's code.
                if not name.startswith("mote"):
                    continue
                if mode != 2 or filters < 1:
                    raise Failure(f"thread {tid} ({name}) runs without a seccomp filter: "
                                  f"Seccomp {mode}, {filters} filters")
            qmp = Qmp(guest.socket)
            qmp.ok("quit")  # the loop's filter lets it answer and end cleanly
            qmp.close()
            expect_eq("exit code after quit", guest.wait(), 0)
        finally:
            guest.kill()


def run_trigger(ctx, kind, *extra):
    """The trigger build of mote, told to make `kind`'s forbidden call, on
    a guest that checksums a disk through worker threads."""
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as work:
        disk = os.path.join(work, "disk.img")
        crc = random_image(disk, 4)
        cmd = [ctx.args.trigger, "run", "--kernel", ctx.image(), "--cmdline",
               "test=blk op=checksum", "--disk", f"path={disk},aio=threads", *extra]
        print(f"$ MOTE_TEST_SECCOMP_TRIGGER={kind}", " ".join(cmd))
        start = time.monotonic()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                           env={**os.environ, "MOTE_TEST_SECCOMP_TRIGGER": kind})
        out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        print(out, end="")
        print(err, end="", file=sys.stderr)
        print(f"exit {p.returncode} after {time.monotonic() - start:.3f} s")
        return p.returncode, out, err, crc


@case
def seccomp_filters_bite(ctx):
    for kind, call, number in TRIGGERS:
        code, _, err, _ = run_trigger(ctx, kind)
        expect_eq(f"{kind}: exit code", code, 14)
        want = (f"mote: error: seccomp: the {kind} thread made a system call its filter "
                f"forbids: {call} ({number}); ending")
        if want not in err.splitlines():
            raise Failure(f"{kind}: no line {want!r} on stderr")


@case
def seccomp_off_and_log_let_it_run(ctx):
    for mode in ("log", "off"):
        for kind, _, _ in TRIGGERS:
            code, out, err, crc = run_trigger(ctx, kind, "--seccomp", mode)
            expect_eq(f"--seccomp {mode}, {kind}: exit code (the guest's own end)", code, 1)
            m = expect_line(out, r"^blk: read 8192 sectors crc32=0x([0-9a-f]{8})")
            expect_eq(f"--seccomp {mode}, {kind}: guest CRC-32", int(m.group(1), 16), crc)
            if "seccomp" in err:
                raise Failure(f"--seccomp {mode}, {kind}: stderr names seccomp: {err}")


if __name__ == "__main__":
    sys.exit(run_case(CASES, options=lambda p: p.add_argument("--trigger", required=True)))
