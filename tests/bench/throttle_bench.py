#!/usr/bin/env python3
"""Rate limits held over about 10 s each, and what a limit costs when it
never has to wait.

- Each limit: the tiny guest's own benches (test=blk op=bench for disks,
  times taken here from its "bench: start" and "bench: done" lines;
  test=netbench dir=tx and dir=rx for NICs, timed by the guest's TSC; for
  rx this script offers the guest twice the limit through the TAP) move
  what a limit should take about 10 s for; the achieved rate is set
  against the limit (the burst included: it goes at once).
- The cost: 4 KiB random reads at depth 32 on a disk without limits, and on
  one whose limits are far above what it can do (so every request passes
  the buckets and none waits), alternating, --runs each: the requests per
  second of both; the same for a NIC sending 1000-byte frames. An unlimited
  device takes one branch more than before rate limits existed; one that
  never waits takes the whole check.

Usage: tests/nested/run.sh -- tests/bench/throttle_bench.py [--runs 5]
       [--mote build/vmm/mote] [--kernel build/guest-images/motetest.pvh]
       [--out docs/bench/throttle.md]
Needs root and a KVM (the nested runner has both) and `ip` (iproute2).
"""
import argparse
import ctypes
import errno
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "boot"))
from boot_test import tap_namespace  # noqa: E402
from vmms import run_timed  # noqa: E402

SECONDS = 10
NIC_COST_FRAMES = 20000
CLONE_NEWNET = 0x40000000


def log(msg):
    print(f"throttle_bench: {msg}", file=sys.stderr, flush=True)


def disk_run(args, image, options, bench):
    cmd = [args.mote, "run", "--kernel", args.kernel, "--memory", "256M",
           "--disk", f"path={image},cache=none{options}", "--cmdline", f"test=blk op=bench {bench}"]
    secs, rc, text, stderr = run_timed(cmd, b"bench: start\n", b"bench: done")
    if rc != 1 or secs is None:
        raise SystemExit(f"failed (exit {rc}): {' '.join(cmd)}\n{text}\n{stderr}")
    m = re.search(r"bench: done (\d+) requests (\d+) bytes", text)
    return secs, int(m.group(1)), int(m.group(2))


def net_run(args, ns, options, count, size):
    cmd = ["ip", "netns", "exec", ns, args.mote, "run", "--kernel", args.kernel, "--net",
           f"tap=mtap0{options}", "--cmdline", f"test=netbench dir=tx count={count} size={size}"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    text = p.stdout.decode(errors="replace")
    m = re.search(r"^netbench: tx frames=(\d+) bytes=(\d+) ms=([\d.]+)$", text, re.M)
    if p.returncode != 1 or not m:
        raise SystemExit(f"failed (exit {p.returncode}): {' '.join(cmd)}\n{text}")
    return float(m.group(3)) / 1000, int(m.group(1)), int(m.group(2))


def send_to_guest(ns, size, fps, stop):
    """Frames the guest's netbench counts, to its MAC through the TAP in
    namespace `ns`, at `fps` (above the limit: the TAP's queue stays full and
    drops the rest) until `stop`. This thread alone enters the namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/var/run/netns/{ns}") as f:
        if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind(("mtap0", 0))
    head = bytes.fromhex("525400123456" "020000000002" "88b5") + b"mote-host bench "
    frame = head + bytes(size - len(head))
    period = 0.01
    per_period = max(1, int(fps * period))
    due = time.monotonic()
    while not stop.is_set():
        for _ in range(per_period):
            try:
                sock.send(frame)
            except OSError as e:
                if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    raise
        due += period
        time.sleep(max(0.0, due - time.monotonic()))
    sock.close()


def net_rx_run(args, ns, options, count, size, fps):
    cmd = ["ip", "netns", "exec", ns, args.mote, "run", "--kernel", args.kernel, "--net",
           f"tap=mtap0{options}", "--cmdline", f"test=netbench dir=rx count={count}"]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, bufsize=0)
    out = b""
    while b"netbench: rx ready\n" not in out:
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        out += chunk
    stop = threading.Event()
    sender = threading.Thread(target=send_to_guest, args=(ns, size, fps, stop))
    sender.start()
    try:
        rest, err = p.communicate(timeout=120)
    finally:
        stop.set()
        sender.join()
    text = (out + rest).decode(errors="replace")
    m = re.search(r"^netbench: rx frames=(\d+) bytes=(\d+) ms=([\d.]+)$", text, re.M)
    if p.returncode != 1 or not m or int(m.group(1)) != count:
        raise SystemExit(f"failed (exit {p.returncode}): {' '.join(cmd)}\n{text}\n"
                         f"{err.decode(errors='replace')}")
    return float(m.group(3)) / 1000, int(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mote", default="build/vmm/mote")
    ap.add_argument("--kernel", default="build/guest-images/motetest.pvh")
    ap.add_argument("--out", default="build/bench/throttle.md")
    args = ap.parse_args()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="mote-throttle-bench-")
    image = os.path.join(scratch, "disk.img")
    with open(image, "wb") as f:
        f.write(os.urandom(256 << 20))

    # (what, limit, its rate, burst, guest run, unit)
    rows = []
    for what, option, rate, bench, unit in (
            ("disk reads/s", "iops_rd", 200, f"mode=randread bs=4096 depth=8 count={200 * SECONDS}",
             "requests"),
            ("disk writes/s", "iops_wr", 200, f"mode=randwrite bs=4096 depth=8 count={200 * SECONDS}",
             "requests"),
            ("disk read bytes/s", "bps_rd", 4 << 20,
             f"mode=seqread bs=65536 depth=4 count={(4 << 20) * SECONDS // 65536}", "bytes"),
            ("disk write bytes/s", "bps_wr", 4 << 20,
             f"mode=seqwrite bs=65536 depth=4 count={(4 << 20) * SECONDS // 65536}", "bytes"),
            ("disk requests/s, total", "iops", 200,
             f"mode=randread bs=4096 depth=8 count={200 * SECONDS}", "requests"),
            ("disk bytes/s, total", "bps", 4 << 20,
             f"mode=seqread bs=65536 depth=4 count={(4 << 20) * SECONDS // 65536}", "bytes")):
        secs, reqs, nbytes = disk_run(args, image, f",{option}={rate}", bench)
        moved = reqs if unit == "requests" else nbytes
        burst = max(rate // 10, 1)
        achieved = (moved - burst) / secs
        rows.append((what, f"`{option}={rate}`", rate, achieved, secs))
        log(f"{what}: {achieved:.1f} against {rate} ({secs:.2f} s)")
    with tap_namespace(["mtap0"]) as ns:
        for what, option, rate, count, size, unit in (
                ("NIC sent frames/s", "tx_pps", 1000, 1000 * SECONDS, 1000, "frames"),
                ("NIC sent bytes/s", "tx_bps", 2_000_000, 2000 * SECONDS, 1000, "bytes")):
            secs, frames, nbytes = net_run(args, ns, f",{option}={rate}", count, size)
            moved = frames if unit == "frames" else nbytes
            achieved = (moved - max(rate // 10, 1)) / secs
            rows.append((what, f"`{option}={rate}`", rate, achieved, secs))
            log(f"{what}: {achieved:.1f} against {rate} ({secs:.2f} s)")
        # Received: the host offers twice the limit; the frames wait in the TAP.
        for what, option, rate, count, size, fps, unit in (
                ("NIC received frames/s", "rx_pps", 500, 500 * SECONDS, 1000, 1000, "frames"),
                ("NIC received bytes/s", "rx_bps", 1_000_000, 1000 * SECONDS, 1000, 2000,
                 "bytes")):
            secs, frames, nbytes = net_rx_run(args, ns, f",{option}={rate}", count, size, fps)
            moved = frames if unit == "frames" else nbytes
            achieved = (moved - max(rate // 10, 1)) / secs
            rows.append((what, f"`{option}={rate}`", rate, achieved, secs))
            log(f"{what}: {achieved:.1f} against {rate} ({secs:.2f} s)")

    # What a limit costs when it never waits.
    cost = {"unlimited": [], "limits that never wait": []}
    bench = "mode=randread bs=4096 depth=32 count=20000"
    for run in range(args.runs + 1):
        for name, options in (("unlimited", ""),
                              ("limits that never wait", ",iops=1000000000,bps=1000000000000")):
            secs, reqs, _ = disk_run(args, image, options, bench)
            if run > 0:
                cost[name].append(reqs / secs)
            log(f"run {run} {name}: {reqs / secs:.0f} requests/s")
    nic_cost = {"unlimited": [], "limits that never wait": []}
    never = ",".join(f"{d}_{k}={v}" for d in ("rx", "tx")
                     for k, v in (("pps", 10**9), ("bps", 10**12)))
    with tap_namespace(["mtap0"]) as ns:
        for run in range(args.runs + 1):
            for name, options in (("unlimited", ""), ("limits that never wait", "," + never)):
                secs, frames, _ = net_run(args, ns, options, NIC_COST_FRAMES, 1000)
                if run > 0:
                    nic_cost[name].append(frames / secs)
                log(f"run {run} NIC {name}: {frames / secs:.0f} frames/s")
    os.unlink(image)
    os.rmdir(scratch)

    where = ("inside the nested runner (QEMU TCG, emulated SVM)" if os.environ.get("MOTE_NESTED")
             else "on the host KVM")
    lines = ["# Rate limits, held and what they cost", "",
             f"Made by `{'tests/nested/run.sh -- ' if os.environ.get('MOTE_NESTED') else ''}"
             f"tests/bench/throttle_bench.py {' '.join(sys.argv[1:])}` on {time.strftime('%Y-%m-%d')}, "
             f"{where}.", "",
             f"Each limit: the tiny guest moves what the limit gives about {SECONDS} s for; the "
             "achieved rate leaves out the burst (a tenth of a second's worth, which goes at once).",
             "", "| limit | set | achieved | achieved ÷ set | time |", "|---|---|---|---|---|"]
    for what, option, rate, achieved, secs in rows:
        lines.append(f"| {what} | {option} | {achieved:.1f} | {achieved / rate:.3f} | {secs:.2f} s |")
    med = {k: statistics.median(v) for k, v in cost.items()}
    lines += ["", f"The cost: `test=blk op=bench {bench}` on a 256 MiB image (cache=none), "
              f"{args.runs} runs each, alternating; requests per second, median (min-max):", "",
              "| disk | requests/s |", "|---|---|"]
    for name, values in cost.items():
        lines.append(f"| {name} | {med[name]:.0f} ({min(values):.0f}-{max(values):.0f}) |")
    lines += ["", f"Limits that never wait ÷ unlimited: "
              f"{med['limits that never wait'] / med['unlimited']:.3f}.", ""]
    nic_med = {k: statistics.median(v) for k, v in nic_cost.items()}
    lines += [f"The same for a NIC: `test=netbench dir=tx count={NIC_COST_FRAMES} size=1000`, "
              f"{args.runs} runs each, alternating (the never-waiting limits: `{never}`); "
              "frames per second by the guest's clock, median (min-max):", "",
              "| NIC | frames/s |", "|---|---|"]
    for name, values in nic_cost.items():
        lines.append(f"| {name} | {nic_med[name]:.0f} ({min(values):.0f}-{max(values):.0f}) |")
    lines += ["", f"Limits that never wait ÷ unlimited: "
              f"{nic_med['limits that never wait'] / nic_med['unlimited']:.3f}.", ""]
    text = "\n".join(lines)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
