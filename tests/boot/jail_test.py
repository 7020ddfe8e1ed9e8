#!/usr/bin/env python3
"""The jail (`mote run --jail DIR --jail-uid U --jail-gid G`), seen from the
jailed mote itself: /proc/PID/root is its own view of the file system, its
/proc the processes it can see, its status the user it runs as. Needs root
and a cgroup v2 hierarchy at /sys/fs/cgroup (the nested runner has both).

  jail_hides_the_host_and_drops_root  a paused jailed VM: its root holds only
                                     its files, /dev and /proc; it sees no
                                     process but itself; it runs as U:G with
                                     no capabilities and no_new_privs, in the
                                     cgroup root made for it, without the
                                     descriptor it inherited; then,
                                     over QMP, the guest reads its disk
                                     through virtio-blk and gets the host's
                                     CRC-32
  jail_guest_does_network_io         frames both ways through a TAP that the
                                     jail opened before dropping root
  jail_refuses_what_it_cannot_hold   one clear error for a missing jail
                                     directory, root as the jail's user, a
                                     --jail-* flag without --jail, vCPU
                                     threads in their own group, a socket
                                     inside the jail's root, and a disk
                                     the jail's user cannot write

Usage: jail_test.py CASE --mote PATH --images DIR"""
import os
import re
import subprocess
import sys
import tempfile
import time

from boot_test import (Failure, Skip, case_table, expect_eq, expect_line, net_exchange,
                       no_fail_lines, random_image, run_case)
from cgroup_test import ROOT as CGROUP_ROOT, remove_group
from control_test import Guest, Qmp

CASES, case = case_table()
UID, GID = 4321, 4322


def need_root():
    if os.geteuid() != 0:
        raise Skip("the jail needs root")
    if not os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        raise Skip(f"no cgroup v2 hierarchy at {CGROUP_ROOT}")


def jail_flags(jail):
    return ["--jail", jail, "--jail-uid", str(UID), "--jail-gid", str(GID)]


def jailed_child(pid):
    """The jailed mote: the one child of the mote we started."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise Failure(f"mote {pid} has no jailed child")


def status_fields(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return fields


def top_dir(path):
    return os.path.abspath(path).split("/")[1]


@case
def jail_hides_the_host_and_drops_root(ctx):
    need_root()
    # The socket's directory is a local one (a Unix socket cannot live on
    # the nested runner's 9p), writable by the jail's user.
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as d, tempfile.TemporaryDirectory() as run:
        jail = os.path.join(d, "jail")
        os.mkdir(jail)
        os.chown(run, UID, GID)
        disk = os.path.abspath(os.path.join(d, "disk.img"))
        host_crc = random_image(disk, 16)
        os.chown(disk, UID, GID)
        # The cgroup is joined, and limited, by root before the jail.
        group = f"mote-jail-test-{os.getpid()}"
        # A descriptor mote inherits, which the jail must close.
        secret = os.path.abspath(os.path.join(d, "inherited-secret"))
        with open(secret, "w") as f:
            f.write("the host's\n")
        inherited = os.open(secret, os.O_RDONLY)
        guest = Guest(ctx, "blk", "--disk", f"path={disk}", "--paused", *jail_flags(jail),
                      "--cgroup", group, "--cgroup-memory-max", "512M",
                      "--jail-fsize", str(1 << 30),
                      cmdline_extra="op=checksum", socket_dir=run, pass_fds=(inherited,))
        os.close(inherited)
        try:
            child = jailed_child(guest.proc.pid)
            root = f"/proc/{child}/root"
            seen = sorted(os.listdir(root))
            print(f"the jailed mote's /: {seen}")
            want = sorted({"dev", "proc", top_dir(ctx.image()), top_dir(disk), top_dir(run)})
            expect_eq("the jailed mote's / (its files, /dev, /proc)", seen, want)
            for host_file in ("/etc/passwd", "/usr/bin", os.path.dirname(disk) + "/jail"):
                if os.path.lexists(root + host_file):
                    raise Failure(f"the jailed mote sees the host's {host_file}")
            if (not os.path.exists(root + disk)
                    or not os.path.exists(root + os.path.abspath(ctx.image()))):
                raise Failure("the jailed mote does not see its disk and kernel")
            def open_files(pid):
                links = []
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    try:
                        links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
                    except FileNotFoundError:
                        pass
                return links
            if secret not in open_files(guest.proc.pid):
                raise Failure("mote did not inherit the test's descriptor")
            if any("inherited-secret" in link for link in open_files(child)):
                raise Failure("the jailed mote still holds an inherited descriptor")
            devices = sorted(os.listdir(root + "/dev"))
            print(f"its /dev: {devices}")
            expect_eq("its /dev", devices, ["kvm", "null"])
            pids = sorted(p for p in os.listdir(root + "/proc") if p.isdigit())
            print(f"the processes it sees: {pids}")
            expect_eq("the processes the jailed mote sees (itself, PID 1)", pids, ["1"])
            for ns in ("pid", "mnt", "ipc", "uts"):
                if os.readlink(f"/proc/{child}/ns/{ns}") == os.readlink(f"/proc/self/ns/{ns}"):
                    raise Failure(f"the jailed mote shares the host's {ns} namespace")
            status = status_fields(child)
            print({k: status[k] for k in ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapBnd",
                                          "NoNewPrivs")})
            expect_eq("Uid (real, effective, saved, fs)", status["Uid"], [str(UID)] * 4)
            expect_eq("Gid (real, effective, saved, fs)", status["Gid"], [str(GID)] * 4)
            expect_eq("supplementary groups", status["Groups"], [])
            for caps in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"):
                expect_eq(caps, int(status[caps][0], 16), 0)
            expect_eq("NoNewPrivs", status["NoNewPrivs"], ["1"])
            with open(f"/proc/{child}/limits") as f:
                limits = f.read()
            expect_line(limits, r"^Max open files\s+2048\s+2048 ")
            expect_line(limits, rf"^Max file size\s+{1 << 30}\s+{1 << 30} ")
            with open(f"/proc/{child}/cgroup") as f:
                expect_eq("the jailed mote's cgroup", f.read().strip(), f"0::/{group}")
            with open(os.path.join(CGROUP_ROOT, group, "memory.max")) as f:
                expect_eq("its memory.max", f.read().strip(), str(512 << 20))
            # The guest runs and reads its disk through virtio-blk.
            qmp = Qmp(guest.socket)
            expect_eq("cont", qmp.execute("cont"), {"return": {}})
            _, line = guest.wait_line(r"^blk: read \d+ sectors crc32=", timeout=60)
            crc = int(line.split("crc32=0x")[1][:8], 16)
            expect_eq("the guest's CRC-32 of its disk", crc, host_crc)
            expect_eq("exit code (the guest's PASS)", guest.wait(timeout=60), 1)
            if re.search(rb"error|Sanitizer", guest.stderr, re.I):
                raise Failure("mote (inside or outside the jail) reported an error")
            if os.listdir(jail):
                raise Failure(f"the jail left {os.listdir(jail)} in {jail} on the host")
        finally:
            guest.kill()
            remove_group(os.path.join(CGROUP_ROOT, group))


@case
def jail_guest_does_network_io(ctx):
    need_root()
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as d:
        code, out = net_exchange(ctx, ["--count", "8"], "count=8", jail_flags(d))
        no_fail_lines(out)
        expect_line(out, r"^peer: received 8 of 8 guest frames intact \(0 damaged\)")
        expect_line(out, r"^net: received 8 frames")
        expect_eq("peer verdict", code, 0)


def refused(ctx, args, pattern):
    cmd = [ctx.mote, "run", "--kernel", ctx.image(), *args]
    print("$", " ".join(cmd))
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace")
    print(err)
    lines = [l for l in err.splitlines() if l.strip()]
    if len(lines) != 1:
        raise Failure(f"expected one error line, got {lines}")
    expect_line(err, pattern)
    expect_eq("exit code (a host error)", p.returncode, 2)


@case
def jail_refuses_what_it_cannot_hold(ctx):
    need_root()
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as d:
        refused(ctx, ["--jail", os.path.join(d, "missing")], r"--jail .*missing: not a directory")
        refused(ctx, ["--jail", d, "--jail-uid", "0"], r"must not be root's")
        refused(ctx, ["--jail-uid", "5"], r"--jail-uid requires --jail")
        refused(ctx, ["--jail", d, "--cgroup", "x", "--cgroup-vcpu-cpu-max", "10000 100000"],
                r"cannot move its vCPU threads")
        inside = os.path.join(d, "jail-root")
        os.mkdir(inside)
        refused(ctx, ["--jail", inside, "--api-socket", os.path.join(inside, "qmp.sock")],
                r"would be bound in or over it")
        disk = os.path.join(d, "root-only.img")
        random_image(disk, 1)
        os.chmod(disk, 0o600)
        jail = os.path.join(d, "jail")
        os.mkdir(jail)
        refused(ctx, ["--disk", f"path={disk}", *jail_flags(jail)], r"root-only\.img.*denied")


if __name__ == "__main__":
    sys.exit(run_case(CASES))
