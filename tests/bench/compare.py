#!/usr/bin/env python3
"""mote side by side with QEMU and with the bare-KVM floor, on the same tiny
guests: start-up times, VMM memory overhead, launch rate and the cost of one
exit. Runs alternate (A B A B ...) after a warm-up of each; every figure is
the median (and min, max) of --runs. Writes a Markdown table and a PNG plot
(gnuplot) to --out.

Usage: tests/bench/compare.py [--runs 20] [--only startup,memory,rate,exits]
       [--out build/bench] [--mote build/vmm/mote] [--images build/guest-images]
       [--smoke] [--no-aslr]
Needs root (/dev/kvm, tracefs), qemu-system-x86 and gnuplot-nox
(scripts/bench-setup.sh installs them). Disk and network throughput are
tests/bench/blk_bench.py and net_bench.py. --smoke runs every section with a
few launches only: the kvm suite's bench_harness_smoke runs it so the
harness cannot break unseen.

What is measured, from the moment just before the harness starts the process
(time.monotonic_ns: CLOCK_MONOTONIC, the clock of every figure below):
- first KVM_RUN: mote's own report (mote run --timings=FILE, phase
  first_kvm_run); for QEMU and the floor, the kernel's syscall tracepoint
  (kvm_trace.py: sys_enter_ioctl with cmd == KVM_RUN, trace_clock mono),
  which sees static and dynamic binaries alike without slowing them. The
  tracepoint's figure for mote is kept too, as a check on its report;
- boot timer: the guest writes port 0x440 once it has booted; mote logs it
  ("guest boot done"), the floor prints "boot-timer", and QEMU gets an
  isa-debugcon on 0x440 writing to stderr; the harness notes when that
  arrives on the process's stderr;
- exit: when the process has exited (waitpid).

--no-aslr, a diagnostic: every monitor runs with address-space randomization
off (personality ADDR_NO_RANDOMIZE). In the nested runner, QEMU's TCG finds
code it has translated by its virtual address, so a randomized executable's
code is translated again in every process; with this flag it is not, which
separates that emulator cost from the monitor's own work. Not for hardware
figures: randomization is a defence mote keeps.
"""
import json
import argparse
import ctypes
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from bar_plot import paired_bars
from kvm_trace import FirstKvmRun
from vmms import Floor, Mote, QemuMicrovm, ROOT, build_floor, qemu_binary

MIB = 1 << 20
ADDR_NO_RANDOMIZE = 0x0040000  # <linux/personality.h>
# Runs in each monitor's child before exec: None, or no_randomization (--no-aslr).
PREEXEC = None


def no_randomization():
    ctypes.CDLL(None, use_errno=True).personality(ADDR_NO_RANDOMIZE)

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
        self.first_run_ms = None  # mote: its report; the others: the tracepoint
        self.traced_run_ms = None  # the tracepoint, for every monitor
        self.boot_ms = None
        self.exit_ms = None
        self.code = None


def run_once(vmm, command, tracer, report_file, want_code):
    """One launch, timed; stdout (the guest console) is discarded."""
    own_report = isinstance(vmm, Mote)
    if own_report:
        command = command + [f"--timings={report_file}"]
    tracer.clear()
    s = Sample()
    start = time.monotonic_ns()
    p = subprocess.Popen(command, preexec_fn=PREEXEC, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
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
    traced = tracer.first_run_ns(p.pid)
    if traced is not None:
        s.traced_run_ms = (traced - start) / 1e6
    if own_report:
        try:
            with open(report_file) as f:
                phases = {x["phase"]: x["monotonic_ns"] for x in json.load(f)["phases"]}
            s.first_run_ms = (phases["first_kvm_run"] - start) / 1e6
        except (OSError, ValueError, KeyError):
            pass
    else:
        s.first_run_ms = s.traced_run_ms
    if s.code != want_code or s.boot_ms is None or s.first_run_ms is None or s.traced_run_ms is None:
        raise SystemExit(f"{vmm.name}: exit {s.code} (want {want_code}), boot marker "
                         f"{'seen' if s.boot_ms else 'missing'}, first KVM_RUN "
                         f"{'reported' if s.first_run_ms else 'missing'}, "
                         f"{'traced' if s.traced_run_ms else 'not traced'}: {' '.join(command)}\n"
                         f"{err.decode(errors='replace')}")
    return s


def stats(values):
    return statistics.median(values), min(values), max(values)


def startup(args, vmms_for):
    """(guest label, vmm name) -> {"first_run": [...], "traced_run": [...],
    "boot": [...], "exit": [...]}"""
    results = {}
    report = os.path.join(args.local, "mote-timings.json")
    guests = STARTUP_GUESTS[:1] if args.smoke else STARTUP_GUESTS
    with FirstKvmRun() as tracer:
        for label, image, cmdline, cpus in guests:
            kernel = os.path.join(args.images, image)
            vmms = [v for v in vmms_for(cpus)]
            commands = {v.name: v.command(kernel, cmdline, cpus=cpus) for v in vmms}
            for v in vmms:  # warm-up: page cache, dynamic loader
                run_once(v, commands[v.name], tracer, report, 1)
            for i in range(args.runs):
                for v in vmms:
                    s = run_once(v, commands[v.name], tracer, report, 1)
                    r = results.setdefault((label, v.name),
                                           {"first_run": [], "traced_run": [], "boot": [], "exit": []})
                    r["first_run"].append(s.first_run_ms)
                    r["traced_run"].append(s.traced_run_ms)
                    r["boot"].append(s.boot_ms)
                    r["exit"].append(s.exit_ms)
            log(f"startup: {label} done")
    return results


def overhead_kib(pid, guest_bytes):
    """{"resident", "pss", "private_dirty"}: KiB of /proc/PID/smaps beyond the
    guest RAM mapping (the one mapping at least as large as the guest).
    Resident counts shared library pages whole, PSS splits them among their
    users; private dirty pages (heap, stacks, written data) are what one
    more VM costs the host."""
    out = {"resident": 0, "pss": 0, "private_dirty": 0}
    fields = {"Rss:": "resident", "Pss:": "pss", "Private_Dirty:": "private_dirty"}
    is_guest = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                is_guest = hi - lo >= guest_bytes
                continue
            key = line.split(":", 1)[0] + ":"
            if key in fields and not is_guest:
                out[fields[key]] += int(line.split()[1])
    return out


def memory(args, vmms_for):
    """(memory MiB, vmm) -> [overhead_kib() dicts]: memory beyond the guest's
    touched pages, sampled while test=spin spins (every thread is up), a
    second after it said so."""
    results = {}
    kernel = os.path.join(args.images, "motetest.pvh")
    for mib in (128, 2048):
        for i in range(1 if args.smoke else max(3, args.runs // 4)):
            for v in vmms_for(1):
                p = subprocess.Popen(v.command(kernel, "test=spin", memory_mib=mib), preexec_fn=PREEXEC,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                out = b""
                while b"spin: forever" not in out:
                    ready, _, _ = select.select([p.stdout], [], [], 20)
                    chunk = os.read(p.stdout.fileno(), 4096) if ready else b""
                    if not chunk:
                        p.kill()
                        raise SystemExit(f"{v.name}: no 'spin: forever' line")
                    out += chunk
                # Start-up settled: mote drops its start-up code's mappings
                # 0.5 s after the guest starts (vmm/startup_pages.h).
                time.sleep(1.0)
                sample = overhead_kib(p.pid, mib * MIB)
                p.kill()
                p.wait()
                results.setdefault((mib, v.name), []).append(sample)
        log(f"memory: {mib} MiB done")
    return results


def launch_rate(args, vmms_for):
    """(in flight, vmm) -> (guests per second, CPU ms per launch): mini
    guests started, run to their exit and reaped, with N in flight at a
    time; the CPU time is user + system of the reaped processes (wait4)."""
    results = {}
    kernel = os.path.join(args.images, "mini.pvh")
    guests = 8 if args.smoke else args.rate_guests
    for v in vmms_for(1):
        if v.name.startswith("floor"):
            continue
        command = v.command(kernel, "")
        for in_flight in ((1, 8) if args.smoke else (1, 2, 8, 32)):
            start = time.monotonic()
            running, started, done, cpu = {}, 0, 0, 0.0
            while done < guests:
                while started < guests and len(running) < in_flight:
                    p = subprocess.Popen(command, preexec_fn=PREEXEC, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    running[p.pid] = p
                    started += 1
                pid, status, usage = os.wait4(-1, 0)
                p = running.pop(pid, None)
                if p is None:
                    continue
                p.returncode = os.waitstatus_to_exitcode(status)
                if p.returncode != 1:
                    raise SystemExit(f"{v.name}: a guest exited {p.returncode}")
                cpu += usage.ru_utime + usage.ru_stime
                done += 1
            results[(in_flight, v.name)] = (guests / (time.monotonic() - start), cpu * 1000 / guests)
        log(f"rate: {v.name} done")
    return results


def exit_cost(args, vmms_for):
    """(kind, vmm) -> [ns]: one PIO and one MMIO exit round trip, timed by the
    guest itself (test=exits, kvmclock)."""
    results = {}
    kernel = os.path.join(args.images, "motetest.pvh")
    for i in range(1 if args.smoke else max(3, args.runs // 4)):
        for v in vmms_for(1):
            if v.name.startswith("floor"):
                continue
            p = subprocess.run(v.command(kernel, f"test=exits count={200 if args.smoke else 2000}"),
                               preexec_fn=PREEXEC, stdin=subprocess.DEVNULL,
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
             f"{args.runs} alternating runs after a warm-up; median (min–max). mote and the floor "
             "run from copies in a local temporary directory, QEMU from /usr/bin."
             + (" **Address-space randomization off for every monitor (--no-aslr): a diagnostic "
                "of the emulator's per-process code translation, not a hardware figure.**"
                if args.no_aslr else ""), ""]
    if "startup" in sections:
        res = sections["startup"]
        lines += ["## Start-up (ms from process start)", "",
                  "From just before the harness starts the process, all on CLOCK_MONOTONIC. First "
                  "KVM_RUN: mote's own report (`--timings=FILE`); QEMU's and the floor's from the "
                  "kernel's syscall tracepoint (`sys_enter_ioctl`, cmd == KVM_RUN, trace clock "
                  "`mono`; tests/bench/kvm_trace.py), which sees static and dynamic binaries alike; "
                  "the tracepoint's figure for mote is the next column, a check on its report. "
                  "Boot-timer write: when the monitor's note of the guest's port 0x440 write arrives "
                  "on its stderr. Exit: waitpid.", "",
                  "| guest | monitor | first KVM_RUN | (traced) | boot-timer write | process exit "
                  "| exit vs mote |",
                  "|---|---|---|---|---|---|---|"]
        for (label, name), r in res.items():
            mote_exit = statistics.median(res[(label, "mote")]["exit"])
            ratio = statistics.median(r["exit"]) / mote_exit
            lines.append(f"| {label} | {name} | {fmt(r['first_run'])} | {fmt(r['traced_run'])} | "
                         f"{fmt(r['boot'])} | {fmt(r['exit'])} | {ratio:.2f}× |")
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
                  "From /proc/PID/smaps, every mapping but the guest RAM's. Resident: RSS, shared "
                  "library pages counted whole. PSS: shared pages split among their users. Private "
                  "dirty: the part no other process shares (heap, stacks, written data), what one "
                  "more VM costs.", "",
                  "| guest RAM | monitor | resident | PSS | private dirty |", "|---|---|---|---|---|"]
        for (mib, name), samples in res.items():
            lines.append(f"| {mib} MiB | {name} | " +
                         " | ".join(fmt([s[k] for s in samples], " KiB")
                                    for k in ("resident", "pss", "private_dirty")) + " |")
        lines.append("")
    if "rate" in sections:
        res = sections["rate"]
        names = list(dict.fromkeys(k[1] for k in res))
        lines += ["## Launch rate (tiny guests started, run and reaped per second)", "",
                  "Guests per second, and the CPU time (user + system, from wait4) per launch.", "",
                  "| in flight | " + " | ".join(f"{v} /s | {v} CPU ms" for v in names) + " |",
                  "|---|" + "---|---|" * len(names)]
        for n in dict.fromkeys(k[0] for k in res):
            lines.append(f"| {n} | " + " | ".join(f"{res[(n, v)][0]:.0f} | {res[(n, v)][1]:.2f}"
                                                  for v in names) + " |")
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
    ap.add_argument("--rate-guests", type=int, default=200, help="guests per launch-rate figure")
    ap.add_argument("--smoke", action="store_true", help="a few launches per section, to test the harness")
    ap.add_argument("--no-aslr", action="store_true",
                    help="diagnostic: every monitor without address-space randomization")
    args = ap.parse_args()
    if args.no_aslr:
        global PREEXEC
        PREEXEC = no_randomization
    qemu = qemu_binary()
    if qemu is None:
        raise SystemExit("qemu-system-x86_64 is missing: scripts/bench-setup.sh installs it")
    os.makedirs(args.out, exist_ok=True)
    # mote and the floor run from a local temporary directory, as QEMU runs
    # from /usr/bin: the nested runner serves the build tree over 9p in
    # cache=mmap mode, which reads a binary again at every exec (80 ms of
    # mote's start there), while the host's root (QEMU) is cached. mote's
    # --timings reports go there too; --out gets the results only.
    local = args.local = tempfile.mkdtemp(prefix="mote-bench-")
    shutil.copy2(args.mote, local)
    mote = Mote(os.path.join(local, os.path.basename(args.mote)))
    floor = Floor(build_floor(local), irqchip=True)
    microvm = QemuMicrovm(qemu)

    def vmms_for(cpus):
        return [mote, floor, microvm] if cpus == 1 else [mote, microvm]

    sections = {}
    wanted = args.only.split(",")
    try:
        if "startup" in wanted:
            sections["startup"] = startup(args, vmms_for)
        if "memory" in wanted:
            sections["memory"] = memory(args, vmms_for)
        if "rate" in wanted:
            sections["rate"] = launch_rate(args, vmms_for)
        if "exits" in wanted:
            sections["exits"] = exit_cost(args, vmms_for)
    finally:
        shutil.rmtree(local)
    report(args, sections)
    if "startup" in sections:
        plot(args, sections["startup"])


if __name__ == "__main__":
    main()
