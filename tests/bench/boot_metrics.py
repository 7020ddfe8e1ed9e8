#!/usr/bin/env python3
"""Boot figures for a tiny guest: time from process start to the guest's
boot-timer write and to process exit (median/min/max of N runs), and mote's
resident memory beyond the guest pages it touched.

Usage: tests/bench/boot_metrics.py [--mote build/vmm/mote]
       [--kernel build/guest-images/motetest.pvh] [--runs 20] [--memory 128M] [--cpus 1]
Not part of the default test run. The boot time is what mote logs
("guest boot done N ms after launch", measured from main()); the exit time is
measured here around the whole process, exec and dynamic loading included.
"""
import argparse
import re
import statistics
import subprocess
import time


def one_boot(args):
    cmd = [args.mote, "run", "--kernel", args.kernel, "--cmdline", "test=hello",
           "--memory", args.memory, "--cpus", str(args.cpus)]
    start = time.monotonic()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    took_ms = (time.monotonic() - start) * 1000
    m = re.search(rb"guest boot done ([0-9.]+) ms", p.stderr)
    if p.returncode != 1 or not m:
        raise SystemExit(f"unexpected run: exit {p.returncode}\n{p.stderr.decode()}")
    return float(m.group(1)), took_ms


def memory_overhead(args):
    """RSS of the whole process minus RSS of the guest-RAM mapping, sampled
    while the guest spins (all of mote's threads and devices are live)."""
    cmd = [args.mote, "run", "--kernel", args.kernel, "--cmdline", "test=spin",
           "--memory", args.memory, "--cpus", str(args.cpus)]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    out = b""
    while b"spin: forever" not in out:
        out += p.stdout.read1(4096)
    time.sleep(0.2)
    total_kb = guest_kb = 0
    in_guest = False
    with open(f"/proc/{p.pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                in_guest = "memfd:mote-guest-ram" in line
            elif line.startswith("Rss:"):
                kb = int(line.split()[1])
                total_kb += kb
                if in_guest:
                    guest_kb += kb
    p.terminate()
    p.wait()
    return total_kb, guest_kb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mote", default="build/vmm/mote")
    ap.add_argument("--kernel", default="build/guest-images/motetest.pvh")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--memory", default="128M")
    ap.add_argument("--cpus", type=int, default=1)
    args = ap.parse_args()
    one_boot(args)  # warm-up: page cache, dynamic loader
    boots, exits = [], []
    for _ in range(args.runs):
        b, e = one_boot(args)
        boots.append(b)
        exits.append(e)
    print(f"{args.runs} runs, {args.cpus} vCPU(s), {args.memory}, {args.kernel}")
    for name, xs in (("start -> boot-timer write", boots), ("start -> process exit", exits)):
        print(f"{name:28s} median {statistics.median(xs):7.2f} ms  "
              f"min {min(xs):7.2f}  max {max(xs):7.2f}")
    total_kb, guest_kb = memory_overhead(args)
    print(f"resident: {total_kb} KiB in all, {guest_kb} KiB guest pages, "
          f"{total_kb - guest_kb} KiB ({(total_kb - guest_kb) / 1024:.2f} MiB) mote itself")


if __name__ == "__main__":
    main()
