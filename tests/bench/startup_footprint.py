#!/usr/bin/env python3
"""What a monitor costs before it touches KVM, measurable on any host, with
or without /dev/kvm: the resident memory of the process at the moment it
opens the KVM device (held there by strace, which delays that open), less
what is resident in guest RAM (mote loads the kernel before it opens KVM), and
the instructions it runs from exec until it gives up on a KVM device that
is not there (valgrind's callgrind). Both are repeatable to a few pages and
a few hundred instructions, unlike wall time here.

Usage: tests/bench/startup_footprint.py [--mote build/vmm/mote] [--other NAME=PATH ...]
       [--qemu] [--markdown FILE]
  --other adds another mote binary (e.g. one built from an older commit);
  --qemu adds Debian's qemu-system-x86_64 with the microvm options of
  tests/bench/compare.py. Needs strace and valgrind (Debian packages).
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time

IMAGES = "build/guest-images"


def mote_args(binary, kvm):
    return [binary, "run", "--kernel", os.path.join(IMAGES, "mini.pvh"), "--memory", "128M",
            "--kvm-device", kvm]


def qemu_args(binary, kvm):
    # QEMU has no option naming the KVM device: it always opens /dev/kvm.
    return [binary, "-accel", "kvm", "-cpu", "host,-arch-capabilities",
            "-M", "microvm,acpi=off,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
            "-m", "128", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-kernel", os.path.join(IMAGES, "mini.pvh")]


def resident_at_kvm_open(args, kvm):
    """VmRSS, RssAnon, RssFile and Pss (KiB) while the open of `kvm` is held."""
    with tempfile.TemporaryDirectory() as d:
        pidfile = os.path.join(d, "pid")
        # -P: only syscalls that name the path are traced, so only that open is delayed.
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-o", "/dev/null", "-P", kvm,
                                   "-e", "inject=openat:delay_exit=2000000", "sh", "-c",
                                   f'echo $$ > {pidfile}; exec "$@"', "sh", *args],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.05)
                try:
                    pid = int(open(pidfile).read())
                    syscall = open(f"/proc/{pid}/syscall").read().split()
                except (OSError, ValueError):
                    continue
                # Held once the process sits in the delayed open (the same
                # openat still in progress 0.2 s later): read then.
                if syscall and syscall[0] == "257":  # openat
                    time.sleep(0.2)
                    if open(f"/proc/{pid}/syscall").read().split() != syscall:
                        continue
                    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
                    rollup = dict(line.split(":", 1)
                                  for line in open(f"/proc/{pid}/smaps_rollup").read().splitlines()[1:])
                    kib = lambda v: int(v.split()[0])
                    guest = guest_ram_resident(pid)
                    return {"rss": kib(status["VmRSS"]) - guest, "anon": kib(status["RssAnon"]) - guest,
                            "file": kib(status["RssFile"]), "pss": kib(rollup["Pss"]) - guest,
                            "guest": guest}
            raise RuntimeError(f"{args[0]} never opened {kvm}")
        finally:
            tracer.kill()
            tracer.wait()


def guest_ram_resident(pid):
    """KiB resident in guest RAM: the anonymous mappings of 64 MiB or more
    (mote writes the boot tables and kernel into it before it opens KVM)."""
    total, size = 0, 0
    for line in open(f"/proc/{pid}/smaps"):
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            size = hi - lo if len(fields) == 5 else 0  # no path: anonymous
        elif fields[0] == "Rss:" and size >= 64 << 20:
            total += int(fields[1])
    return total


def instructions_until_no_kvm(args):
    """Instructions from exec to exit when the KVM device is missing."""
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *args],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    for line in p.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[1])
    raise RuntimeError(f"no instruction count from valgrind: {p.stderr[-500:]}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mote", default="build/vmm/mote")
    parser.add_argument("--other", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--qemu", action="store_true")
    parser.add_argument("--markdown")
    args = parser.parse_args()
    missing = "/nonexistent/kvm"
    subjects = [("mote", args.mote, mote_args)]
    subjects += [(o.split("=", 1)[0], o.split("=", 1)[1], mote_args) for o in args.other]
    if args.qemu:
        subjects.append(("QEMU microvm", "qemu-system-x86_64", qemu_args))
    rows = []
    for name, binary, make in subjects:
        held = "/dev/kvm" if make is qemu_args else missing
        mem = resident_at_kvm_open(make(binary, held), held)
        # QEMU without /dev/kvm fails at the same point; mote is pointed at a missing device.
        instr = instructions_until_no_kvm(make(binary, missing)) if make is mote_args or \
            not os.path.exists("/dev/kvm") else None
        rows.append((name, mem, instr))
        print(f"{name}: resident {mem['rss']} KiB beyond {mem['guest']} KiB of guest RAM (anon {mem['anon']}, "
              f"file {mem['file']}, PSS {mem['pss']}) at the KVM open; "
              f"{instr if instr is not None else 'n/a'} instructions to the KVM error", flush=True)
    command = shlex.join(["tests/bench/startup_footprint.py", *sys.argv[1:]])
    lines = [f"`{command}`", "",
             "| monitor | resident at the KVM open, guest RAM excluded | of which anonymous / file | PSS | instructions, exec to the KVM error |",
             "|---|---|---|---|---|"]
    for name, mem, instr in rows:
        lines.append(f"| {name} | {mem['rss'] / 1024:.2f} MiB | {mem['anon']} / {mem['file']} KiB | "
                     f"{mem['pss'] / 1024:.2f} MiB | {f'{instr / 1e6:.2f} M' if instr else 'n/a'} |")
    print("\n".join(lines))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
