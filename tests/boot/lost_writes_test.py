#!/usr/bin/env python3
"""No lost writes: the tiny guest writes numbered 4 KiB records to virtio-blk
and flushes after each (test=blk op=records); only after the flush completed
does it print "blk: record R flushed". The host kills the VMM with SIGKILL
at a random moment, then every record the guest reported must be in the
file, intact. 50 rounds per case (20 in the nested runner), alternating
virtio-pci and virtio-mmio.

Usage: lost_writes_test.py CASE --mote PATH --images DIR [--rounds N] [--vmm mote|qemu]
  --vmm qemu runs the same rounds against QEMU's microvm (virtio-mmio; KVM
  when there is /dev/kvm, else TCG) for comparison.
Exits 0 on pass, 1 on failure, 77 (meson's "skip") when mote has no /dev/kvm.
"""
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from boot_test import Failure, case_table, pattern_sector, run_case

CASES, case = case_table()

RECORD_SECTORS = 8
DISK_MIB = 16
RECORDS = DISK_MIB * 2048 // RECORD_SECTORS  # the whole disk, so the guest is still writing when killed


def record_bytes(r):
    """What record r looks like on disk (guest-images/tiny/tests/blk.c, op=records)."""
    return b"".join(pattern_sector(f"recr{r}", r * RECORD_SECTORS + k) for k in range(RECORD_SECTORS))


def mote_command(ctx, disk, cache, transport):
    options = ",cache=none" if cache == "none" else ""
    return [ctx.mote, "run", "--kernel", ctx.image(), "--memory", "128M", "--transport", transport,
            "--disk", f"path={disk}{options}",
            "--cmdline", f"test=blk op=records count={RECORDS} sectors={RECORD_SECTORS}"]


def qemu_command(ctx, disk, cache, transport):
    accel = ["-accel", "kvm", "-cpu", "host,-arch-capabilities"] if os.path.exists("/dev/kvm") else []
    return ["qemu-system-x86_64", *accel,
            "-M", "microvm,x-option-roms=off,pit=off,pic=off,rtc=on,isa-serial=on,acpi=off",
            "-global", "virtio-mmio.force-legacy=false", "-nodefaults", "-no-user-config",
            "-display", "none", "-serial", "stdio", "-no-reboot", "-m", "128",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-drive", f"if=none,id=d0,file={disk},format=raw,cache={'none' if cache == 'none' else 'writeback'}",
            "-device", "virtio-blk-device,drive=d0", "-kernel", ctx.image(),
            "-append", f"test=blk op=records count={RECORDS} sectors={RECORD_SECTORS}"]


class Console:
    """Collects a process's stdout on a thread; notes when record 0 was flushed."""

    def __init__(self, proc):
        self.proc = proc
        self.data = b""
        self.first_ack = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            self.data += chunk
            if b"blk: record 0 flushed" in self.data:
                self.first_ack.set()


def one_round(ctx, n, rng, cache, transport, command):
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as d:
        disk = os.path.join(d, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(DISK_MIB << 20)
        cmd = command(ctx, disk, cache, transport)
        if n == 0:
            print("$", " ".join(cmd))
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        console = Console(proc)
        # One round in ten is killed early, within 0.3 s of its start (while
        # it boots, or in its first records); the others at a random moment
        # of the first second after the first record was flushed.
        if rng.random() < 0.1:
            delay = rng.uniform(0, 0.3)
            time.sleep(delay)
            when = f"{delay:.3f} s after start"
        else:
            if not console.first_ack.wait(60):
                proc.kill()
                proc.wait()
                raise Failure(f"round {n}: no record flushed within 60 s: {console.data[-500:]!r}")
            delay = rng.uniform(0, 1.0)
            time.sleep(delay)
            when = f"{delay:.3f} s after record 0"
        exited = proc.poll()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        console.thread.join(10)
        if exited is not None:
            raise Failure(f"round {n}: the VMM had already exited ({exited}) before SIGKILL: "
                          f"{console.data[-500:]!r}")
        text = console.data.decode(errors="replace")
        if re.search(r"^FAIL", text, re.M):
            raise Failure(f"round {n}: the guest failed: {text[-500:]}")
        acked = [int(m) for m in re.findall(r"^blk: record (\d+) flushed", text, re.M)]
        if acked != list(range(len(acked))):
            raise Failure(f"round {n}: records reported out of order: {acked[:10]}...")
        with open(disk, "rb") as f:
            data = f.read()
        size = RECORD_SECTORS * 512
        lost = [r for r in acked if data[r * size:(r + 1) * size] != record_bytes(r)]
        if lost:
            r = lost[0]
            raise Failure(f"round {n}: {len(lost)} of {len(acked)} flushed records are not in the file "
                          f"intact after SIGKILL (first: record {r}, which starts "
                          f"{data[r * size:r * size + 40]!r})")
        following = len(acked)
        state = "none"
        if following < RECORDS:
            got = data[following * size:(following + 1) * size]
            state = "intact" if got == record_bytes(following) else "absent" if not any(got) else "torn"
        print(f"round {n:2}: {transport:4} killed {when} ({time.monotonic() - start:.2f} s in): "
              f"{len(acked)} records flushed, all intact; the next one {state}")
        return len(acked)


def rounds(ctx, cache):
    a = ctx.args
    print(f"seed {a.seed} (--seed {a.seed} replays the kill moments)")
    rng = random.Random(a.seed)
    command = qemu_command if a.vmm == "qemu" else mote_command
    total = 0
    for n in range(a.rounds):
        transport = "mmio" if a.vmm == "qemu" or n % 2 else "pci"
        total += one_round(ctx, n, rng, cache, transport, command)
    print(f"{a.rounds} rounds (cache={cache}, seed {a.seed}): {total} flushed records, none lost")


@case
def no_lost_writes_writeback(ctx):
    rounds(ctx, "writeback")


@case
def no_lost_writes_cache_none(ctx):
    rounds(ctx, "none")


# Inside the nested runner (MOTE_NESTED) each round costs seconds of TCG.
DEFAULT_ROUNDS = 20 if os.environ.get("MOTE_NESTED") else 50


def options(parser):
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--vmm", choices=["mote", "qemu"], default="mote")


if __name__ == "__main__":
    sys.exit(run_case(CASES, options, needs_kvm=lambda args: args.vmm == "mote"))
