#!/usr/bin/env python3
"""mote side by side with QEMU and with the bare-KVM floor, on the same tiny
guests: start-up times, VMM memory overhead, launch rate and the cost of one
exit. Runs alternate (A B A B ...) after a warm-up of each; every figure is
the median (and min, max) of --runs. Writes a Markdown table and a PNG plot
(gnuplot) to --out.

Usage: tests/bench/compare.py [--runs 20] [--only startup,memory,rate,exits]
       [--out build/bench] [--mote build/vmm/mote] [--images build/guest-images]
Not part of the default test run. Needs root (/dev/kvm), qemu-system-x86 and
gnuplot-nox (scripts/bench-setup.sh installs them). Disk and network
throughput are tests/bench/blk_bench.py and net_bench.py.

What is measured, from the moment just before the harness starts the process
(time.monotonic_ns, the same clock the shim and the pipes are read with):
- first KVM_RUN: an LD_PRELOAD shim (first_kvm_run.c) records the first
  ioctl(KVM_RUN) of the process;
- boot timer: the guest writes port 0x440 once it has booted; mote logs it
  ("guest boot done"), the floor prints "boot-timer", and QEMU gets an
  isa-debugcon on 0x440 writing to stderr; the harness notes when that
  arrives on the process's stderr;
- exit: when the process has exited (waitpid).
"""
import argparse
import os
import re
import select
import statistics
import subprocess
import sys
import time

from bar_plot import paired_bars
from vmms import Floor, Mote, QemuMicrovm, ROOT, build_helpers, qemu_binary

MIB = 1 << 20

# label, image, command line, vCPUs. The mini guests (guest-images/mini/) are
# a few dozen instructions: their start-up is the monitor's. The tiny test
# kernel spends ~30 ms of its own in this host's instruction emulator.
STARTUP_GUESTS = [
    ("mini, 1 vCPU", "mini.pvh", "", 1),
    ("mini-smp2, 2 vCPUs", "mini-smp2.pvh", "", 2),
    ("motetest hello, 1 vCPU", "motetest.pvh", "test=hello", 1),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Sample:
    def __init__(self):
        self.first_run_ms = None
        self.boot_ms = None
        self.exit_ms = None
        self.code = None


def run_once(vmm, command, shim, marker_file, want_code):
    """One launch, timed; stdout (the guest console) is discarded."""
    if os.path.exists(marker_file):
        os.unlink(marker_file)
    env = dict(os.environ, LD_PRELOAD=shim, FIRST_KVM_RUN_FILE=marker_file)
    s = Sample()
    start = time.monotonic_ns()
    p = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    err = b""
    fd = p.stderr.fileno()
    while True:
        chunk = os.read(fd, 65536)
        now = time.monotonic_ns()
        if not chunk:
            break
        err += chunk
        if s.boot_ms is None and vmm.boot_marker in err:
            s.boot_ms = (now - start) / 1e6
    s.code = p.wait()
    s.exit_ms = (time.monotonic_ns() - start) / 1e6
    try:
        with open(marker_file) as f:
            s.first_run_ms = (int(f.read()) - start) / 1e6
    except (OSError, ValueError):
        pass
    if s.code != want_code or s.boot_ms is None or s.first_run_ms is None:
        raise SystemExit(f"{vmm.name}: exit {s.code} (want {want_code}), boot marker "
                         f"{'seen' if s.boot_ms else 'missing'}: {' '.join(command)}\n"
                         f"{err.decode(errors='replace')}")
    return s


def stats(values):
    return statistics.median(values), min(values), max(values)


def startup(args, helpers, vmms_for):
    """(guest label, vmm name) -> {"first_run": [...], "boot": [...], "exit": [...]}"""
    results = {}
    marker = os.path.join(args.out, "first-kvm-run.ns")
    for label, image, cmdline, cpus in STARTUP_GUESTS:
        kernel = os.path.join(args.images, image)
        vmms = [v for v in vmms_for(cpus)]
        commands = {v.name: v.command(kernel, cmdline, cpus=cpus) for v in vmms}
        for v in vmms:  # warm-up: page cache, dynamic loader
            run_once(v, commands[v.name], helpers["first_kvm_run.so"], marker, 1)
        for i in range(args.runs):
            for v in vmms:
                s = run_once(v, commands[v.name], helpers["first_kvm_run.so"], marker, 1)
                r = results.setdefault((label, v.name), {"first_run": [], "boot": [], "exit": []})
                r["first_run"].append(s.first_run_ms)
                r["boot"].append(s.boot_ms)
                r["exit"].append(s.exit_ms)
        log(f"startup: {label} done")
    return results


def resident_kib(pid, guest_bytes):
    """(whole process, guest RAM, private dirty beyond guest RAM) resident
    KiB from /proc/PID/smaps. The guest RAM is the one mapping at least as
    large as the guest. Private dirty pages are what one more VM costs the
    host; clean library pages are shared with every other process."""
    total = guest = private = 0
    size = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line)
            if m:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                size = hi - lo
                continue
            is_guest = size is not None and size >= guest_bytes
            if line.startswith("Rss:"):
                kib = int(line.split()[1])
                total += kib
                if is_guest:
                    guest += kib
            elif line.startswith("Private_Dirty:") and not is_guest:
                private += int(line.split()[1])
    return total, guest, private


def memory(args, vmms_for):
    """(memory MiB, vmm) -> [overhead KiB]: resident memory beyond the guest's
    touched pages, sampled while test=spin spins (every thread is up)."""
    results = {}
    kernel = os.path.join(args.images, "motetest.pvh")
    for mib in (128, 2048):
        for i in range(max(3, args.runs // 4)):
            for v in vmms_for(1):
                p = subprocess.Popen(v.command(kernel, "test=spin", memory_mib=mib), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                out = b""
                while b"spin: forever" not in out:
                    ready, _, _ = select.select([p.stdout], [], [], 20)
                    chunk = os.read(p.stdout.fileno(), 4096) if ready else b""
                    if not chunk:
                        p.kill()
                        raise SystemExit(f"{v.name}: no 'spin: forever' line")
                    out += chunk
                time.sleep(0.2)  # let start-up settle
                total, guest, private = resident_kib(p.pid, mib * MIB)
                p.kill()
                p.wait()
                results.setdefault((mib, v.name), []).append((total - guest, private))
        log(f"memory: {mib} MiB done")
    return results


def launch_rate(args, vmms_for, guests=200):
    """(in flight, vmm) -> guests per second: `guests` mini guests started,
    run to their exit and reaped, with N in flight at a time."""
    results = {}
    kernel = os.path.join(args.images, "mini.pvh")
    for v in vmms_for(1):
        if v.name.startswith("floor"):
            continue
        command = v.command(kernel, "")
        for in_flight in (1, 2, 8, 32):
            start = time.monotonic()
            running, started, done = [], 0, 0
            while done < guests:
                while started < guests and len(running) < in_flight:
                    running.append(subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                    started += 1
                pid, status = os.wait()
                for p in running:
                    if p.pid == pid:
                        p.returncode = os.waitstatus_to_exitcode(status)
                        if p.returncode != 1:
                            raise SystemExit(f"{v.name}: a guest exited {p.returncode}")
                        running.remove(p)
                        done += 1
                        break
            results[(in_flight, v.name)] = guests / (time.monotonic() - start)
        log(f"rate: {v.name} done")
    return results


def exit_cost(args, vmms_for):
    """(kind, vmm) -> [ns]: one PIO and one MMIO exit round trip, timed by the
    guest itself (test=exits, kvmclock)."""
    results = {}
    kernel = os.path.join(args.images, "motetest.pvh")
    for i in range(max(3, args.runs // 4)):
        for v in vmms_for(1):
            if v.name.startswith("floor"):
                continue
            p = subprocess.run(v.command(kernel, "test=exits count=2000"), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=120)
            out = p.stdout.decode(errors="replace")
            for kind in ("pio", "mmio"):
                m = re.search(rf"^exits: {kind} (\d+) exits ([0-9.]+) ns each", out, re.M)
                if not m or p.returncode != 1:
                    raise SystemExit(f"{v.name}: test=exits exit {p.returncode}\n{out}")
                results.setdefault((kind, v.name), []).append(float(m.group(2)))
    log("exits: done")
    return results


def fmt(values, unit=""):
    med, lo, hi = stats(values)
    return f"{med:.1f}{unit} ({lo:.1f}–{hi:.1f})"


def report(args, sections):
    lines = [f"# mote, QEMU and the KVM floor, side by side", "",
             f"`{' '.join(sys.argv)}` on {os.uname().nodename}, {time.strftime('%Y-%m-%d %H:%M')}; "
             f"{args.runs} alternating runs after a warm-up; median (min–max).", ""]
    if "startup" in sections:
        res = sections["startup"]
        lines += ["## Start-up (ms from process start)", "",
                  "| guest | monitor | first KVM_RUN | boot-timer write | process exit | exit vs mote |",
                  "|---|---|---|---|---|---|"]
        for (label, name), r in res.items():
            mote_exit = statistics.median(res[(label, "mote")]["exit"])
            ratio = statistics.median(r["exit"]) / mote_exit
            lines.append(f"| {label} | {name} | {fmt(r['first_run'])} | {fmt(r['boot'])} | "
                         f"{fmt(r['exit'])} | {ratio:.2f}× |")
        lines.append("")
        for label in dict.fromkeys(k[0] for k in res):
            m = statistics.median(res[(label, "mote")]["exit"])
            b = statistics.median(res[(label, "mote")]["boot"])
            for other in dict.fromkeys(k[1] for k in res if k[0] == label and k[1] != "mote"):
                o = res[(label, other)]
                lines.append(f"- {label}: mote/{other}: start→exit {m / statistics.median(o['exit']):.2f}, "
                             f"start→boot-timer {b / statistics.median(o['boot']):.2f}")
        lines.append("")
    if "memory" in sections:
        res = sections["memory"]
        lines += ["## VMM memory overhead (KiB beyond the guest's touched pages, test=spin)", "",
                  "Resident: RSS minus the guest RAM mapping's RSS. Private dirty: the part no other "
                  "process shares (heap, stacks, written data), what one more VM costs.", "",
                  "| guest RAM | monitor | resident | private dirty |", "|---|---|---|---|"]
        for (mib, name), pairs in res.items():
            lines.append(f"| {mib} MiB | {name} | {fmt([a for a, _ in pairs], ' KiB')} | "
                         f"{fmt([b for _, b in pairs], ' KiB')} |")
        lines.append("")
    if "rate" in sections:
        res = sections["rate"]
        lines += ["## Launch rate (tiny guests started, run and reaped per second)", "",
                  "| in flight | " + " | ".join(dict.fromkeys(k[1] for k in res)) + " |",
                  "|---|" + "---|" * len(dict.fromkeys(k[1] for k in res))]
        for n in dict.fromkeys(k[0] for k in res):
            lines.append(f"| {n} | " + " | ".join(f"{res[(n, v)]:.0f}" for v in dict.fromkeys(k[1] for k in res))
                         + " |")
        lines.append("")
    if "exits" in sections:
        res = sections["exits"]
        lines += ["## One exit round trip (ns, timed by the guest)", "", "| exit | monitor | cost |",
                  "|---|---|---|"]
        for (kind, name), ns in res.items():
            lines.append(f"| {kind} | {name} | {fmt(ns, ' ns')} |")
        lines.append("")
    path = os.path.join(args.out, "compare.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    log(f"wrote {path}")
    return path


def plot(args, res):
    """Bars of start→boot-timer and start→exit medians, with min–max whiskers."""
    rows = [(f"{name}\\n{label.split(',')[0]}", stats(r["boot"]), stats(r["exit"]))
            for (label, name), r in res.items()]
    png = os.path.join(args.out, "compare-startup.png")
    error = paired_bars(png, rows, f"Start-up, ms from process start: median, min-max whiskers "
                        f"({args.runs} runs each)", ("boot-timer write", "process exit"))
    if error:
        log(error)
        return None
    log(f"wrote {png}")
    return png


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mote", default=os.path.join(ROOT, "build", "vmm", "mote"))
    ap.add_argument("--images", default=os.path.join(ROOT, "build", "guest-images"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--only", default="startup,memory,rate,exits")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    args = ap.parse_args()
    qemu = qemu_binary()
    if qemu is None:
        raise SystemExit("qemu-system-x86_64 is missing: scripts/bench-setup.sh installs it")
    os.makedirs(args.out, exist_ok=True)
    helpers = build_helpers(args.out)
    mote = Mote(args.mote)
    floor = Floor(helpers["kvm_floor"], irqchip=True)
    microvm = QemuMicrovm(qemu)

    def vmms_for(cpus):
        return [mote, floor, microvm] if cpus == 1 else [mote, microvm]

    sections = {}
    wanted = args.only.split(",")
    if "startup" in wanted:
        sections["startup"] = startup(args, helpers, vmms_for)
    if "memory" in wanted:
        sections["memory"] = memory(args, vmms_for)
    if "rate" in wanted:
        sections["rate"] = launch_rate(args, vmms_for)
    if "exits" in wanted:
        sections["exits"] = exit_cost(args, vmms_for)
    report(args, sections)
    if "startup" in sections:
        plot(args, sections["startup"])


if __name__ == "__main__":
    main()
