#!/usr/bin/env python3
"""Linux boot time, side by side: the same Debian cloud kernel and busybox
initramfs (guest-images/linux/, build-linux-guest.sh) under mote, QEMU
microvm (its fastest options; and without its RTC, as it was first measured
here) and QEMU q35 (SeaBIOS, -kernel),
alternating run by run after a warm-up of each. Two figures per run, from
just before the harness starts the process: the guest's /init printing
its first line (MOTE-LINUX-BOOT-OK on the serial console) and the process's
exit after the guest powers off (ACPI on all three). Beside them, the guest
kernel's own clock when /init starts (its "uptime at init" line): that much
is the guest's work, which no monitor can take away, so it bounds the ratio
any monitor could reach.

It needs a KVM that runs Linux. On a host without one (no /dev/kvm, or
kvm_pvm), run it in the nested runner, where all of it runs under QEMU's
TCG: the absolute times are TCG's, not hardware's; only the ratios taken in
one run mean something.

Usage: tests/nested/run.sh -- tests/bench/linux_boot.py [--runs 5] [--cpus 1]
       [--out build/bench] [--mote build/vmm/mote] [--images build/guest-images]
Writes OUT/linux_boot.md, OUT/linux_boot.png (gnuplot, when installed) and
the last run's console of each monitor, OUT/linux_boot-NAME.console.
"""
import argparse
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bar_plot import paired_bars  # noqa: E402
from vmms import QEMU_CPU  # noqa: E402

MARKER = b"MOTE-LINUX-BOOT-OK"
UPTIME = re.compile(rb"^mote-linux: uptime at init=([0-9.]+)", re.M)
CMDLINE = "console=ttyS0 panic=-1 quiet mote.do=poweroff"
MEMORY_MIB = 512
DEADLINE = 240  # seconds per boot


def log(msg):
    print(f"linux_boot: {msg}", file=sys.stderr, flush=True)


def monitors(args, kernel, initrd):
    """(name, command) for each monitor: the same kernel, initramfs,
    command line, memory and vCPUs."""
    qemu = ["qemu-system-x86_64", *QEMU_CPU, "-smp", str(args.cpus), "-m", str(MEMORY_MIB),
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-append", CMDLINE]
    return [
        ("mote", [args.mote, "run", "--kernel", kernel, "--initrd", initrd, "--cmdline", CMDLINE,
                  "--cpus", str(args.cpus), "--memory", f"{MEMORY_MIB}M"]),
        # ACPI for the power-off (and the CPUs); no option ROMs, PIC or PIT.
        # This is microvm's fastest: without its RTC (rtc=off) Linux reads
        # the absent CMOS clock 10000 times waiting for its update-in-progress
        # bit to clear (20000 port exits) and boots about 2x slower.
        ("qemu-microvm", [*qemu, "-M", "microvm,acpi=on,x-option-roms=off,pit=off,pic=off,"
                                      "rtc=on,isa-serial=on"]),
        ("qemu-microvm-no-rtc", [*qemu, "-M", "microvm,acpi=on,x-option-roms=off,pit=off,pic=off,"
                                             "rtc=off,isa-serial=on"]),
        ("qemu-q35", [*qemu, "-M", "q35"]),
    ]


def boot_once(cmd, console_path):
    """Seconds from start to the marker and to the exit, the guest kernel's
    clock at /init (seconds), and the exit code; the console goes to
    `console_path`."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    seen, marker_at, console = b"", None, []
    fd = proc.stdout.fileno()
    while time.monotonic() - start < DEADLINE:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        console.append(chunk)
        if marker_at is None:
            seen = (seen + chunk)[-4096:]
            if MARKER in seen:
                marker_at = time.monotonic() - start
    try:
        code = proc.wait(timeout=max(1, DEADLINE - (time.monotonic() - start)))
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
        raise RuntimeError(f"{cmd[0]}: no exit within {DEADLINE} s")
    exit_at = time.monotonic() - start
    text = b"".join(console).replace(b"\r", b"")
    with open(console_path, "wb") as f:
        f.write(text)
    if marker_at is None:
        raise RuntimeError(f"{cmd[0]}: exit {code} without the init marker")
    uptime = UPTIME.search(text)
    if not uptime:
        raise RuntimeError(f"{cmd[0]}: the guest did not report its uptime at init")
    return marker_at, exit_at, float(uptime.group(1)), code


def stats(values):
    return statistics.median(values), min(values), max(values)


def ms(t):
    return f"{t * 1000:.0f}"


def report(args, results, command_line):
    mote_init = stats(results["mote"]["init"])[0]
    lines = ["# Linux boot, side by side", "",
             f"Made by `{command_line}` on {time.strftime('%Y-%m-%d')}, "
             f"{'inside the nested runner (QEMU TCG, emulated SVM): TCG times, not hardware times' if os.environ.get('MOTE_NESTED') else 'on the host KVM'}.",
             "", f"Debian's cloud kernel ({kernel_version(args)}) and the busybox initramfs of "
             f"guest-images/linux/, `{CMDLINE}`, {args.cpus} vCPU(s), {MEMORY_MIB} MiB; "
             f"{args.runs} runs per monitor, alternating, after one warm-up each. Median (min-max), ms "
             "from just before the process starts.", "",
             "| monitor | to /init's first line | to exit after power-off | guest kernel's clock at /init "
             "| mote ÷ this, to init |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        i, e, k = stats(r["init"]), stats(r["exit"]), stats(r["kernel"])
        lines.append(f"| {name} | {ms(i[0])} ({ms(i[1])}-{ms(i[2])}) | {ms(e[0])} ({ms(e[1])}-{ms(e[2])}) "
                     f"| {ms(k[0])} ({ms(k[1])}-{ms(k[2])}) | {mote_init / i[0]:.2f}× |")
    mote_kernel = stats(results["mote"]["kernel"])[0]
    microvm_init = stats(results["qemu-microvm"]["init"])[0]
    lines += ["", "The guest kernel's clock at /init is the guest's own work from its first "
              "clock reading; it leaves out the bzImage's decompressor, which also runs in the "
              f"guest. Even a monitor that cost nothing would need that long: under mote "
              f"{ms(mote_kernel)} ms, {mote_kernel / microvm_init:.2f}× QEMU microvm's time to init.", ""]
    return "\n".join(lines)


def kernel_version(args):
    path = os.path.join(args.images, "linux", "vmlinuz.version")
    try:
        with open(path) as f:
            return f.read().split()[0]
    except OSError:
        return "version unknown"


def plot(args, results):
    ms_stats = lambda values: tuple(v * 1000 for v in stats(values))  # noqa: E731
    rows = [(name, ms_stats(r["init"]), ms_stats(r["exit"])) for name, r in results.items()]
    where = "nested runner, TCG" if os.environ.get("MOTE_NESTED") else "host KVM"
    png = os.path.join(args.out, "linux_boot.png")
    error = paired_bars(png, rows, f"Debian cloud kernel boot ({where}), ms: median, min-max "
                        f"whiskers ({args.runs} runs each)",
                        ("/init's first line", "exit after power-off"), size="900,500")
    log(error if error else f"wrote {png}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--out", default="build/bench")
    parser.add_argument("--mote", default="build/vmm/mote")
    parser.add_argument("--images", default="build/guest-images")
    args = parser.parse_args()
    kernel = os.path.join(args.images, "linux", "vmlinuz")
    initrd = os.path.join(args.images, "linux", "initramfs.cpio.gz")
    for f in (kernel, initrd, args.mote):
        if not os.path.exists(f):
            sys.exit(f"linux_boot: {f} is missing (guest-images/linux/build-linux-guest.sh, meson compile)")
    if not shutil.which("qemu-system-x86_64"):
        sys.exit("linux_boot: qemu-system-x86_64 is missing (Debian's qemu-system-x86)")
    with open("/proc/cpuinfo") as f:
        words = f.read().split()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or not ("vmx" in words or "svm" in words):
        sys.exit("linux_boot: this host's KVM cannot run Linux (none, or kvm_pvm): "
                 "run it in tests/nested/run.sh")
    os.makedirs(args.out, exist_ok=True)
    vmms = monitors(args, kernel, initrd)
    results = {name: {"init": [], "exit": [], "kernel": []} for name, _ in vmms}
    for round_ in range(args.runs + 1):
        for name, cmd in vmms:
            # The last run's console stays, for the kernel's own timestamps.
            console = os.path.join(args.out, f"linux_boot-{name}.console")
            init_at, exit_at, kernel_at, code = boot_once(cmd, console)
            if round_ == 0:
                log(f"warm-up {name}: init {ms(init_at)} ms, exit {ms(exit_at)} ms (exit code {code})")
                continue
            results[name]["init"].append(init_at)
            results[name]["exit"].append(exit_at)
            results[name]["kernel"].append(kernel_at)
            log(f"run {round_} {name}: init {ms(init_at)} ms, exit {ms(exit_at)} ms")
    command_line = ("tests/nested/run.sh -- " if os.environ.get("MOTE_NESTED") else "") + \
        "tests/bench/linux_boot.py " + " ".join(sys.argv[1:])
    text = report(args, results, command_line.strip())
    md = os.path.join(args.out, "linux_boot.md")
    with open(md, "w") as f:
        f.write(text)
    print(text)
    plot(args, results)
    log(f"wrote {md}")


if __name__ == "__main__":
    main()
