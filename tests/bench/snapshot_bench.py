#!/usr/bin/env python3
"""Snapshot and restore, mote side by side with QEMU (microvm, the same tiny
guest) and the bare-KVM floor, in one run, for a 128 MiB and a 2 GiB guest
with 64 MiB touched (test=snapshot mib=64 check=0):
- snapshot: the running guest saved to disk; mote's QMP `migrate` to
  "file:DIR" (it stops the guest, saves, lets it run on) against QEMU's
  `migrate` to "exec:cat > FILE" (until query-migrate says completed; the
  guest is then stopped, and a restore runs it), timed around the QMP
  exchange;
- restore to running: process start to the guest's first instruction after
  the restore (the first KVM_RUN: mote's own --timings report; QEMU and the
  floor by the kernel's KVM_RUN tracepoint, as tests/bench/compare.py), mote
  `run --restore DIR` against QEMU `-incoming "exec:cat FILE"`; the floor
  (tests/bench/kvm_floor.c) creates the same KVM objects and runs a guest;
- resident guest memory 0.5 s after the restore: Rss of the guest RAM
  mapping (the guest runs on without reading its 64 MiB pattern).
Runs alternate; each figure is the median (min, max) of --runs. Writes a
Markdown table and a PNG to --out.
Usage: tests/bench/snapshot_bench.py [--runs 5] [--out docs/bench/snapshot]
Needs root (/dev/kvm, tracefs), qemu-system-x86 and gnuplot-nox.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from bar_plot import paired_bars
from kvm_trace import FirstKvmRun
from vmms import QEMU_COMMON, QEMU_CPU, ROOT, Floor, build_floor, qemu_binary

GUEST = "test=snapshot mib=64 check=0 rounds=1000000"


class Qmp:
    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        self.file = self.sock.makefile("rwb")
        self.recv()
        self.call("qmp_capabilities")

    def recv(self):
        while True:
            m = json.loads(self.file.readline())
            if "event" not in m:
                return m

    def call(self, command, arguments=None):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        r = self.recv()
        if "error" in r:
            raise SystemExit(f"{command}: {r['error']}")
        return r["return"]


def wait_ready(proc):
    for raw in proc.stdout:
        if b"snapshot: ready" in raw:
            return
    raise SystemExit("the guest never got ready: " + proc.stderr.read().decode(errors="replace"))


def qemu_command(qemu, kernel, memory_mib, sock, extra=()):
    machine = "microvm,acpi=off,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on"
    return [qemu, *QEMU_CPU, "-M", machine, "-m", str(memory_mib), *QEMU_COMMON, "-kernel",
            kernel, "-append", GUEST, "-qmp", f"unix:{sock},server=on,wait=off", *extra]


def snapshot_mote(args, memory_mib, work):
    sock, snap = os.path.join(work, "mote.sock"), os.path.join(work, "mote-snap")
    shutil.rmtree(snap, ignore_errors=True)
    p = subprocess.Popen([args.mote, "run", "--kernel", args.kernel, "--cmdline", GUEST,
                          "--memory", f"{memory_mib}M", "--api-socket", sock],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_ready(p)
    q = Qmp(sock)
    start = time.monotonic_ns()
    q.call("migrate", {"uri": "file:" + snap})
    took = (time.monotonic_ns() - start) / 1e6
    q.call("quit")
    p.wait()
    return took, snap


def snapshot_qemu(args, memory_mib, work):
    sock, image = os.path.join(work, "qemu.sock"), os.path.join(work, "qemu.state")
    p = subprocess.Popen(qemu_command(args.qemu, args.kernel, memory_mib, sock),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_ready(p)
    q = Qmp(sock)
    start = time.monotonic_ns()
    q.call("migrate", {"uri": f"exec:cat > {image}"})
    while q.call("query-migrate").get("status") != "completed":
        time.sleep(0.001)
    took = (time.monotonic_ns() - start) / 1e6
    q.call("quit")
    p.wait()
    return took, image


def guest_rss_kib(pid, guest_bytes):
    """Rss of the mapping as large as guest RAM (the largest at least that)."""
    best, rss, size = 0, 0, 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                size = hi - lo
            elif line.startswith("Rss:") and size >= guest_bytes and size >= best:
                best, rss = size, int(line.split()[1])
    return rss


def restore_run(command, tracer, guest_bytes, report=None):
    """Starts a restore; returns (ms to the first KVM_RUN, guest RSS KiB 0.5 s on)."""
    tracer.clear()
    start = time.monotonic_ns()
    p = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while tracer.first_run_ns(p.pid) is None and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    rss = guest_rss_kib(p.pid, guest_bytes) if p.poll() is None else None
    p.terminate()
    err = p.communicate()[1]
    first = None
    traced = tracer.first_run_ns(p.pid)
    if report is not None:
        try:
            with open(report) as f:
                phases = {x["phase"]: x["monotonic_ns"] for x in json.load(f)["phases"]}
            first = phases["first_kvm_run"]
        except (OSError, ValueError, KeyError):
            pass
    else:
        first = traced
    if first is None or rss is None:
        raise SystemExit(f"restore failed: {' '.join(command)}\n{err.decode(errors='replace')}")
    return (first - start) / 1e6, rss


def floor_run(floor_cmd, tracer):
    tracer.clear()
    start = time.monotonic_ns()
    p = subprocess.Popen(floor_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    err = p.communicate()[1]
    first = tracer.first_run_ns(p.pid)
    if first is None:
        raise SystemExit("the floor program never ran: " + err.decode(errors="replace"))
    return (first - start) / 1e6


def stats(v):
    return statistics.median(v), min(v), max(v)


def fmt(v, unit=" ms"):
    m, lo, hi = stats(v)
    return f"{m:.1f}{unit} ({lo:.1f}–{hi:.1f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mote", default=os.path.join(ROOT, "build", "vmm", "mote"))
    ap.add_argument("--images", default=os.path.join(ROOT, "build", "guest-images"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="128,2048", help="guest RAM in MiB")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "snapshot"))
    args = ap.parse_args()
    args.qemu = qemu_binary()
    if args.qemu is None:
        raise SystemExit("qemu-system-x86_64 is missing")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="mote-snapbench-")
    shutil.copy2(args.mote, work)  # a local copy: 9p in the nested runner is slow to exec
    args.mote = os.path.join(work, os.path.basename(args.mote))
    args.kernel = os.path.join(args.images, "motetest.pvh")
    floor = Floor(build_floor(work), irqchip=True)
    hello = os.path.join(args.images, "motetest.pvh")
    res = {}
    try:
        with FirstKvmRun() as tracer:
            for mib in [int(x) for x in args.sizes.split(",")]:
                r = res.setdefault(mib, {k: [] for k in (
                    "snap_mote", "snap_qemu", "restore_mote", "restore_qemu", "floor",
                    "rss_mote", "rss_qemu")})
                guest_bytes = mib << 20
                for i in range(args.runs):
                    ms, snap = snapshot_mote(args, mib, work)
                    r["snap_mote"].append(ms)
                    ms, image = snapshot_qemu(args, mib, work)
                    r["snap_qemu"].append(ms)
                    report = os.path.join(work, "timings.json")
                    ms, rss = restore_run([args.mote, "run", "--restore", snap, "--timeout", "30",
                                           f"--timings={report}"], tracer, guest_bytes, report)
                    r["restore_mote"].append(ms)
                    r["rss_mote"].append(rss / 1024)
                    sock = os.path.join(work, "qemu-in.sock")
                    ms, rss = restore_run(qemu_command(args.qemu, args.kernel, mib, sock,
                                                       ["-incoming", f"exec:cat {image}"]),
                                          tracer, guest_bytes)
                    r["restore_qemu"].append(ms)
                    r["rss_qemu"].append(rss / 1024)
                    r["floor"].append(floor_run(floor.command(hello, "test=hello", memory_mib=mib),
                                                tracer))
                    print(f"{mib} MiB run {i + 1}: " + ", ".join(
                        f"{k} {v[-1]:.1f}" for k, v in r.items()), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = ["# Snapshot and restore, mote against QEMU microvm",
             "",
             f"`tests/bench/snapshot_bench.py --runs {args.runs}`: median (min–max) of {args.runs} "
             "alternating runs; the tiny guest `test=snapshot mib=64 check=0` (64 MiB touched).",
             "",
             "| guest RAM | snapshot: mote | QEMU | ratio | restore to first KVM_RUN: mote | "
             "QEMU | ratio | floor (KVM objects) | mote / floor | guest RAM resident 0.5 s "
             "after restore: mote | QEMU |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for mib, r in res.items():
        med = {k: stats(v)[0] for k, v in r.items()}
        lines.append(
            f"| {mib} MiB | {fmt(r['snap_mote'])} | {fmt(r['snap_qemu'])} | "
            f"{med['snap_mote'] / med['snap_qemu']:.2f}× | {fmt(r['restore_mote'])} | "
            f"{fmt(r['restore_qemu'])} | {med['restore_mote'] / med['restore_qemu']:.3f}× | "
            f"{fmt(r['floor'])} | {med['restore_mote'] / med['floor']:.2f}× | "
            f"{fmt(r['rss_mote'], ' MiB')} | {fmt(r['rss_qemu'], ' MiB')} |")
        rows.append((f"snapshot {mib}M", stats(r["snap_mote"]), stats(r["snap_qemu"])))
        rows.append((f"restore {mib}M", stats(r["restore_mote"]), stats(r["restore_qemu"])))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "snapshot.md"), "w") as f:
        f.write(text)
    print(text)
    err = paired_bars(os.path.join(args.out, "snapshot.png"), rows,
                      "Snapshot and restore (ms, lower is better)", ("mote", "QEMU microvm"))
    if err:
        print("no plot:", err, file=sys.stderr)


if __name__ == "__main__":
    main()
