#!/usr/bin/env python3
"""Live migration, mote side by side with QEMU (microvm, the same tiny guest)
in one run: a 128 MiB guest with 64 MiB of it touched (test=snapshot mib=64),
idle (it counts, and writes nothing else) and busy (dirty=1: it rewrites its
pattern without pause), moved over a unix socket to a second process of the
same monitor (`mote run --incoming unix:PATH`, `qemu -incoming unix:PATH`),
pre-copy, both with downtime-limit 300 ms (QEMU's default) and no bandwidth
limit. From the source's query-migrate once it says completed:
- total time: migrate to completed (QEMU's total-time; mote's likewise);
- downtime: the guest stopped on the source until it runs on the target
  (mote: until the target has the VM built; QEMU: its own downtime figure);
- bytes sent (ram transferred).
Runs alternate; each figure is the median (min, max) of --runs. Writes a
Markdown table and a PNG to --out.
Usage: tests/bench/migration_bench.py [--runs 5] [--out docs/bench/migration]
Needs /dev/kvm and qemu-system-x86 (gnuplot-nox for the plot).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bar_plot import paired_bars
from snapshot_bench import Qmp, fmt, qemu_command, stats, wait_ready
from vmms import ROOT, qemu_binary

GUEST = "test=snapshot mib=64 check=0 rounds=1000000"
MEMORY_MIB = 128


def wait_path(path, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the target never listened on {path}: "
                             + proc.stderr.read().decode(errors="replace"))
        time.sleep(0.005)


def migrate(source_cmd, target_cmd, sock):
    """Starts target and source, migrates; query-migrate's final reply."""
    target = subprocess.Popen(target_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    source = subprocess.Popen(source_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        wait_ready(source)
        q = Qmp(sock)
        q.call("migrate-set-parameters", {"downtime-limit": 300})
        in_path = target_cmd[target_cmd.index("--incoming" if "--incoming" in target_cmd
                                              else "-incoming") + 1][5:]
        wait_path(in_path, target)
        q.call("migrate", {"uri": "unix:" + in_path})
        deadline = time.monotonic() + 120
        while True:
            info = q.call("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            if time.monotonic() > deadline:
                raise SystemExit("the migration never ended")
            time.sleep(0.005)
        if info["status"] != "completed":
            raise SystemExit(f"migration {info['status']}: {info}")
        q.call("quit")
        source.wait(timeout=30)
        return info
    finally:
        for p in (source, target):
            if p.poll() is None:
                p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mote", default=os.path.join(ROOT, "build", "vmm", "mote"))
    ap.add_argument("--images", default=os.path.join(ROOT, "build", "guest-images"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "migration"))
    args = ap.parse_args()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIPPED: no usable /dev/kvm")
        return 77
    qemu = qemu_binary()
    if qemu is None:
        raise SystemExit("qemu-system-x86_64 is missing")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="mote-migbench-")
    shutil.copy2(args.mote, work)  # a local copy: 9p in the nested runner is slow to exec
    mote = os.path.join(work, os.path.basename(args.mote))
    kernel = os.path.join(args.images, "motetest.pvh")
    res = {}
    try:
        for load, extra in (("idle", ""), ("busy", " dirty=1")):
            cmdline = GUEST + extra
            r = res.setdefault(load, {f"{k}_{v}": [] for k in ("total", "down", "mib")
                                      for v in ("mote", "qemu")})
            for i in range(args.runs):
                sock, in_sock = os.path.join(work, "src.sock"), os.path.join(work, "in.sock")
                info = migrate(
                    [mote, "run", "--kernel", kernel, "--cmdline", cmdline, "--memory",
                     f"{MEMORY_MIB}M", "--api-socket", sock, "--timeout", "120"],
                    [mote, "run", "--incoming", "unix:" + in_sock, "--timeout", "120"],
                    sock)
                r["total_mote"].append(info["total-time"])
                r["down_mote"].append(info["downtime"])
                r["mib_mote"].append(info["ram"]["transferred"] / (1 << 20))
                qemu_src = qemu_command(qemu, kernel, MEMORY_MIB, sock)
                qemu_src[qemu_src.index("-append") + 1] = cmdline
                qemu_dst = qemu_command(qemu, kernel, MEMORY_MIB, os.path.join(work, "dst.sock"),
                                        ["-incoming", "unix:" + in_sock])
                qemu_dst[qemu_dst.index("-append") + 1] = cmdline
                info = migrate(qemu_src, qemu_dst, sock)
                r["total_qemu"].append(info["total-time"])
                r["down_qemu"].append(info["downtime"])
                r["mib_qemu"].append(info["ram"]["transferred"] / (1 << 20))
                print(f"{load} run {i + 1}: " + ", ".join(
                    f"{k} {v[-1]:.1f}" for k, v in r.items()), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = ["# Live migration, mote against QEMU microvm",
             "",
             f"`tests/bench/migration_bench.py --runs {args.runs}`: median (min–max) of "
             f"{args.runs} alternating runs; a {MEMORY_MIB} MiB tiny guest "
             "`test=snapshot mib=64 check=0` (64 MiB touched; busy: `dirty=1`, which rewrites "
             "them without pause), pre-copy over a unix socket, downtime-limit 300 ms.",
             "",
             "| guest | total: mote | QEMU | ratio | downtime: mote | QEMU | ratio | "
             "sent: mote | QEMU |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for load, r in res.items():
        med = {k: stats(v)[0] for k, v in r.items()}
        ratio = lambda a, b: f"{a / b:.2f}×" if b else "–"
        lines.append(
            f"| {load} | {fmt(r['total_mote'], ' ms')} | {fmt(r['total_qemu'], ' ms')} | "
            f"{ratio(med['total_mote'], med['total_qemu'])} | {fmt(r['down_mote'], ' ms')} | "
            f"{fmt(r['down_qemu'], ' ms')} | {ratio(med['down_mote'], med['down_qemu'])} | "
            f"{fmt(r['mib_mote'], ' MiB')} | {fmt(r['mib_qemu'], ' MiB')} |")
        rows.append((f"total {load}", stats(r["total_mote"]), stats(r["total_qemu"])))
        rows.append((f"downtime {load}", stats(r["down_mote"]), stats(r["down_qemu"])))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "migration.md"), "w") as f:
        f.write(text)
    print(text)
    err = paired_bars(os.path.join(args.out, "migration.png"), rows,
                      "Live migration (ms, lower is better)", ("mote", "QEMU microvm"))
    if err:
        print("no plot:", err, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
