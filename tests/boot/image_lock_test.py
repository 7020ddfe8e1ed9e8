#!/usr/bin/env python3
"""Disk image locks between VMs: mote locks each image as QEMU does (shared
for readonly, exclusive otherwise), so no two VMs, mote or QEMU, write one
image, nor does one write it while another reads it; `lock=off` opts out.

  image_lock_qemu_holds_it   QEMU (TCG, stopped with -S: no KVM needed) holds
                             the image; mote refuses it with one line and
                             exit code 2, before KVM is ever opened
  image_lock_two_motes       a running mote holds it; a second mote and QEMU
                             are refused; once the first ends, it boots

Usage: image_lock_test.py CASE --mote PATH --images DIR"""
import fcntl
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time

from boot_test import Failure, Skip, case_table, expect_eq, run_case
from control_test import Guest, Qmp

CASES, case = case_table()
IN_USE = r"^mote: error: disk {} is in use: another process {} \"write\" \(lock=off opens it anyway\)$"


def held(path, byte):
    """Whether some open file description holds a lock on `byte` of `path`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, byte, 1, 0)
        return struct.unpack("hhqqi4x", fcntl.fcntl(fd, 36, query))[0] != fcntl.F_UNLCK  # F_OFD_GETLK
    finally:
        os.close(fd)


def image(work):
    path = os.path.join(work, "disk.img")
    with open(path, "wb") as f:
        f.truncate(1 << 20)
    return path


def qemu(path, readonly=False):
    """QEMU with a virtio-blk disk on `path`, stopped before its first
    instruction; returns once it holds the image's locks."""
    binary = shutil.which("qemu-system-x86_64")
    if binary is None:
        raise Skip("qemu-system-x86_64 is not installed")
    ro = ",readonly=on" if readonly else ""
    cmd = [binary, "-machine", "q35,accel=tcg", "-nodefaults", "-display", "none", "-S",
           "-drive", f"file={path},format=raw,if=none,id=d0{ro}", "-device",
           "virtio-blk-pci,drive=d0"]
    print("$", " ".join(cmd))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    # QEMU opens the image in steps: wait for what its device ends up with
    # (consistent read, write unless readonly, and write not shared).
    want = (100, 201) if readonly else (100, 101, 201)
    deadline = time.monotonic() + 30
    while not all(held(path, byte) for byte in want):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise Failure(f"QEMU never locked {path}: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    return proc


def refused(ctx, disk, what):
    code, _, err, _ = ctx.boot("hello", "--disk", disk)
    lines = err.strip().splitlines()
    expect_eq(f"--disk {disk}: exit code", code, 2)
    path = disk.split(",")[0][len("path="):]
    if len(lines) != 1 or not re.match(IN_USE.format(re.escape(path), what), lines[0]):
        raise Failure(f"--disk {disk}: want one 'in use' line, got {lines}")


def accepted(ctx, disk, what):
    """mote gets past opening `disk` (what follows depends on this host's KVM)."""
    _, _, err, _ = ctx.boot("hello", "--disk", disk)
    if "in use" in err:
        raise Failure(f"{what}: refused")


@case
def image_lock_qemu_holds_it(ctx):
    with tempfile.TemporaryDirectory() as work:
        path = image(work)
        for readonly in (False, True):
            holder = qemu(path, readonly)
            try:
                refused(ctx, f"path={path}", "forbids")
                if readonly:
                    accepted(ctx, f"path={path},readonly=on", "a reader beside QEMU's reader")
                else:
                    refused(ctx, f"path={path},readonly=on", "holds")
                    accepted(ctx, f"path={path},lock=off", "lock=off")
            finally:
                holder.kill()
                holder.wait()


@case
def image_lock_two_motes(ctx):
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as work:
        path = image(work)
        first = Guest(ctx, "spin", "--disk", f"path={path}")
        try:
            first.wait_line(r"spin: forever", timeout=30)
            refused(ctx, f"path={path}", "forbids")
            refused(ctx, f"path={path},readonly=on", "holds")
            if shutil.which("qemu-system-x86_64"):
                q = subprocess.run(
                    ["qemu-system-x86_64", "-machine", "q35,accel=tcg", "-nodefaults", "-display",
                     "none", "-S", "-drive", f"file={path},format=raw,if=none,id=d0", "-device",
                     "virtio-blk-pci,drive=d0"], stdin=subprocess.DEVNULL, capture_output=True,
                    timeout=60)
                err = q.stderr.decode(errors="replace")
                print("QEMU:", err)
                if q.returncode == 0 or 'Failed to get "write" lock' not in err:
                    raise Failure("QEMU was not refused the image a mote writes")
            qmp = Qmp(first.socket)
            qmp.ok("quit")
            first.wait()
        finally:
            first.kill()
        # The first mote is gone, and its locks with it.
        code, out, err, _ = ctx.boot("hello", "--disk", f"path={path}")
        expect_eq("a mote after the first ended: exit code (debug-exit 0)", code, 1)


if __name__ == "__main__":
    import sys
    sys.exit(run_case(CASES, needs_kvm=lambda args: args.case != "image_lock_qemu_holds_it"))
