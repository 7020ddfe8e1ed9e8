#!/usr/bin/env python3
"""The chaos guest against mote (test=chaos, guest-images/tiny/tests/chaos.c):
from one seed, a million random accesses to I/O ports, the MMIO hole, PCI
configuration space and every virtio register, and malicious descriptor
chains, on a VM with a disk, a NIC (a TAP in a network namespace of the
test's own) and an rng. Meanwhile a QMP client asks query-status ten times a
second. mote must not crash, must answer every query within a second, must
keep its log bounded (rate-limited: it grows with time, not with the number
of bad accesses), and every device must still work for the guest afterwards.

Usage: chaos_test.py CASE --mote PATH --images DIR [--count N] [--seed S]
  CASE is chaos_seed_1, chaos_seed_2 (virtio-mmio) or chaos_seed_3, or
  `custom` with --seed and --count (e.g. the 10^7 run of the closing note).
  The default count is 10^6, or 100000 inside the nested runner.
Exits 0 on pass, 1 on failure, 77 (meson's "skip") when /dev/kvm is missing.
"""
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

from boot_test import Failure, case_table, expect_eq, expect_line, run_case, tap_namespace
from control_test import Qmp

CASES, case = case_table()

STATUS_EVERY = 0.1     # seconds between query-status
REPLY_WITHIN = 1.0     # seconds a reply may take
LOG_LINES_PER_SECOND = 200  # the bound on mote's log: rate-limited, so time, not events, makes it grow
LOG_LINES_BASE = 100


class StatusPoller:
    """Asks query-status every STATUS_EVERY seconds until mote exits; keeps
    each reply and how long it took."""

    def __init__(self, path, proc):
        self.path, self.proc = path, proc
        self.replies = []  # (seconds taken, reply)
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            q = Qmp(self.path)
            while self.proc.poll() is None:
                start = time.monotonic()
                reply = q.execute("query-status")
                self.replies.append((time.monotonic() - start, reply))
                time.sleep(STATUS_EVERY)
        except (OSError, EOFError, ValueError) as e:
            if self.proc.poll() is None:
                time.sleep(0.5)  # mote may be on its way out
            if self.proc.poll() is None:
                self.error = f"{type(e).__name__}: {e}"


def chaos(ctx, seed, count, transport):
    tap = "ctap0"
    # The disk beside the build (a tmpfs /tmp may lack O_DIRECT), the socket
    # in /tmp (the nested runner's build directory is 9p: no Unix sockets).
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as workdir, \
            tempfile.TemporaryDirectory() as sockdir, tap_namespace([tap]) as ns:
        disk = os.path.join(workdir, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(4 << 20)
        sock = os.path.join(sockdir, "qmp.sock")
        cmd = ["ip", "netns", "exec", ns, ctx.mote, "run", "--kernel", ctx.image(), "--memory", "128M",
               "--transport", transport, "--disk", f"path={disk}", "--net", f"tap={tap}", "--rng",
               "--api-socket", sock, "--timeout", str(60 + count // 2000),
               "--cmdline", f"test=chaos seed={seed} count={count}"]
        print("$", " ".join(cmd))
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        out, err = [], []
        readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
                   for s, b in ((proc.stdout, out), (proc.stderr, err))]
        for r in readers:
            r.start()
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        poller = StatusPoller(sock, proc)
        code = proc.wait(timeout=120 + count // 1000)
        took = time.monotonic() - start
        for r in readers:
            r.join(10)
        poller.thread.join(10)
        out = out[0].decode(errors="replace") if out else ""
        err = err[0].decode(errors="replace") if err else ""
        tx = open_stat(ns, tap, "rx_packets")
        size = os.path.getsize(disk)
    summary = [line for line in out.splitlines() if line.startswith(("chaos:", "PASS", "FAIL"))]
    print("\n".join(summary[-12:]))
    log = err.splitlines()
    print(f"mote exit {code} after {took:.1f} s; log {len(log)} lines, {len(err)} bytes; "
          f"{len(poller.replies)} query-status replies, slowest "
          f"{max((t for t, _ in poller.replies), default=0) * 1000:.1f} ms; the TAP got {tx} frames")
    print("\n".join(log[:20]))

    if re.search(r"^FAIL", out, re.M):
        raise Failure("the guest reported a FAIL line")
    expect_line(out, rf"^chaos: done seed={seed} actions={count}$")
    for device in ("blk", "net", "rng"):
        expect_line(out, rf"^PASS chaos_after_{device}$")
    expect_eq("mote's exit code (the guest's debug-exit 0)", code, 1)
    if poller.error:
        raise Failure(f"the control socket stopped answering: {poller.error}")
    if len(poller.replies) < max(3, int(took / STATUS_EVERY / 4)):
        raise Failure(f"only {len(poller.replies)} query-status replies in {took:.1f} s")
    # "running" until the guest's exit; "shutdown" after it, for as long as
    # mote takes to close the socket (more than one poll on a slow host).
    shut_down = False
    for i, (t, reply) in enumerate(poller.replies):
        status = reply.get("return", {}).get("status")
        shut_down = shut_down or status == "shutdown"
        if status != ("shutdown" if shut_down else "running"):
            raise Failure(f"query-status reply {i}: {reply}")
        if t > REPLY_WITHIN:
            raise Failure(f"query-status reply {i} took {t:.3f} s")
    bound = LOG_LINES_BASE + LOG_LINES_PER_SECOND * took
    if len(log) > bound:
        raise Failure(f"mote logged {len(log)} lines in {took:.1f} s (bound {bound:.0f}): not rate-limited")
    expect_eq("the disk file's size", size, 4 << 20)


def open_stat(ns, dev, name):
    p = subprocess.run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/statistics/{name}"],
                       capture_output=True, text=True)
    return int(p.stdout) if p.returncode == 0 else -1


@case
def chaos_seed_1(ctx):
    chaos(ctx, 1, ctx.args.count, "pci")


@case
def chaos_seed_2(ctx):
    chaos(ctx, 2, ctx.args.count, "mmio")


@case
def chaos_seed_3(ctx):
    chaos(ctx, 3, ctx.args.count, "pci")


@case
def custom(ctx):
    chaos(ctx, ctx.args.seed, ctx.args.count, ctx.args.transport)


# Inside the nested runner (tests/nested/run.sh sets MOTE_NESTED) every
# access is an exit emulated by QEMU's TCG (under ASan, 250000 took 3 min):
# a tenth of the actions there keeps the three seeds within minutes.
DEFAULT_COUNT = 100000 if os.environ.get("MOTE_NESTED") else 1000000


def options(parser):
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--transport", choices=["pci", "mmio"], default="pci")


if __name__ == "__main__":
    sys.exit(run_case(CASES, options))
