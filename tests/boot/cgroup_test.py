#!/usr/bin/env python3
"""cgroup v2 limits (--cgroup PATH and --cgroup-*): each test makes its own
group under /sys/fs/cgroup (root, and a cgroup v2 mount there: the nested
runner has both) and removes it after.

  cgroup_memory_limit_ends_the_vm    a guest that touches more than
                                     memory.max is killed by the kernel (the
                                     group's oom_kill count says so), with a
                                     warning at start; the same guest under a
                                     higher limit runs to its end
  cgroup_cpu_limit_caps_a_spinning_guest  cpu.max "20000 100000": a spinning
                                     guest gets about a fifth of a CPU
  cgroup_vcpu_threads_in_their_own_group  --cgroup-vcpu-cpu-max: the vCPU
                                     threads sit in PATH/vcpus with their own
                                     cpu.max, the other threads in PATH
  cgroup_made_by_an_agent            a group made and limited by someone else,
                                     mote started inside it: mote keeps its
                                     limits and adds only the vCPUs' group

Usage: cgroup_test.py CASE --mote PATH --images DIR"""
import os
import re
import subprocess
import sys
import time

from boot_test import Failure, Skip, case_table, expect_eq, expect_line, run_case
from control_test import Guest, Qmp

CASES, case = case_table()
ROOT = "/sys/fs/cgroup"


def cgroup_root():
    if os.geteuid() != 0:
        raise Skip("needs root to make cgroups")
    if not os.path.exists(os.path.join(ROOT, "cgroup.controllers")):
        raise Skip(f"no cgroup v2 hierarchy at {ROOT}")
    return ROOT


def remove_group(path):
    for sub in ("vcpus", ""):
        p = os.path.join(path, sub) if sub else path
        for _ in range(50):  # a killed process leaves its group a moment later
            try:
                os.rmdir(p)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


def read_keyed(path):
    with open(path) as f:
        return {k: int(v) for k, v in (line.split() for line in f)}


@case
def cgroup_memory_limit_ends_the_vm(ctx):
    group = os.path.join(cgroup_root(), f"mote-test-mem-{os.getpid()}")
    try:
        # 256 MiB of RAM; the guest fills 128 MiB of it with its pattern.
        code, out, err, _ = ctx.boot("snapshot", "--memory", "256M", "--cgroup", group,
                                     "--cgroup-memory-max", "48M",
                                     cmdline_extra="mib=128 rounds=5")
        expect_eq("exit status (killed by SIGKILL)", code, -9)
        if not re.search(r"memory\.max \(48 MiB\) is below the guest's RAM \(256 MiB\)", err):
            raise Failure("no warning that memory.max is below the guest's RAM")
        events = read_keyed(os.path.join(group, "memory.events"))
        print("memory.events:", events)
        if events.get("oom_kill", 0) < 1:
            raise Failure(f"the group's memory.events shows no OOM kill: {events}")
    finally:
        remove_group(group)
    group = os.path.join(cgroup_root(), f"mote-test-mem-ok-{os.getpid()}")
    try:
        code, out, _, _ = ctx.boot("snapshot", "--memory", "256M", "--cgroup", group,
                                   "--cgroup-memory-max", "400M", cmdline_extra="mib=128 rounds=5")
        expect_eq("exit code under a limit above what it touches", code, 1)
        expect_line(out, r"^snapshot: count=5\b")
    finally:
        remove_group(group)


def cpu_share(ctx, group, *limits, seconds=4.0):
    """A spinning guest for `seconds` in `group`: its CPU time over the wall
    time, and the group's cpu.stat."""
    try:
        start = time.monotonic()
        code, out, _, _ = ctx.boot("spin", "--timeout", str(seconds), "--cgroup", group, *limits)
        wall = time.monotonic() - start
        expect_eq("exit code (--timeout)", code, 8)
        stat = read_keyed(os.path.join(group, "cpu.stat"))
        share = stat["usage_usec"] / 1e6 / wall
        print(f"{group}: {share:.2f} of a CPU over {wall:.2f} s, cpu.stat {stat}")
        return share, stat
    finally:
        remove_group(group)


@case
def cgroup_cpu_limit_caps_a_spinning_guest(ctx):
    root = cgroup_root()
    capped, stat = cpu_share(ctx, os.path.join(root, f"mote-test-cpu-{os.getpid()}"),
                             "--cgroup-cpu-max", "20000 100000")
    free, _ = cpu_share(ctx, os.path.join(root, f"mote-test-cpu-free-{os.getpid()}"))
    if stat.get("nr_throttled", 0) < 1:
        raise Failure(f"the group was never throttled: {stat}")
    # A fifth of a CPU, with room for start-up and the accounting period.
    if capped > 0.3:
        raise Failure(f"capped at 20%, the guest took {capped:.2f} of a CPU")
    if free < 2 * capped:
        raise Failure(f"unlimited, the guest took {free:.2f} of a CPU, capped {capped:.2f}: "
                      "the cap made no difference")


def vcpu_threads_placed(ctx, group, agent_made=False):
    guest = None
    try:
        if agent_made:
            # The agent: a group with its own memory limit, and mote started in it.
            with open(os.path.join(ROOT, "cgroup.subtree_control"), "w") as f:
                f.write("+memory")
            os.mkdir(group)
            with open(os.path.join(group, "memory.max"), "w") as f:
                f.write(str(300 << 20))
            procs = os.path.join(group, "cgroup.procs")

            def join():
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))
            guest = Guest(ctx, "spin", "--cpus", "2", "--cgroup", group,
                          "--cgroup-vcpu-cpu-max", "10000 100000", preexec=join)
        else:
            guest = Guest(ctx, "spin", "--cpus", "2", "--cgroup", group,
                          "--cgroup-vcpu-cpu-max", "10000 100000")
        guest.wait_line(r"^spin: forever", timeout=30)
        time.sleep(1)
        pid = guest.proc.pid
        relative = "/" + os.path.relpath(group, ROOT)
        seen = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/cgroup") as f:
                where = f.read().strip().split("::", 1)[1]
            seen[name] = where
            want = relative + "/vcpus" if name.startswith("mote-vcpu") else relative
            expect_eq(f"thread {tid} ({name})'s cgroup", where, want)
        print("threads:", seen)
        if not {"mote-vcpu0", "mote-vcpu1"} <= seen.keys():
            raise Failure(f"no vCPU threads among {seen}")
        with open(os.path.join(group, "vcpus", "cpu.max")) as f:
            expect_eq("vcpus/cpu.max", f.read().strip(), "10000 100000")
        stat = read_keyed(os.path.join(group, "vcpus", "cpu.stat"))
        if stat.get("nr_throttled", 0) < 1:
            raise Failure(f"the vCPU group was never throttled: {stat}")
        if agent_made:
            with open(os.path.join(group, "memory.max")) as f:
                expect_eq("the agent's memory.max", int(f.read()), 300 << 20)
        Qmp(guest.socket).ok("quit")
        expect_eq("exit code after quit", guest.wait(), 0)
    finally:
        if guest is not None:
            guest.kill()
        remove_group(group)


@case
def cgroup_vcpu_threads_in_their_own_group(ctx):
    vcpu_threads_placed(ctx, os.path.join(cgroup_root(), f"mote-test-vcpus-{os.getpid()}"))


@case
def cgroup_made_by_an_agent(ctx):
    vcpu_threads_placed(ctx, os.path.join(cgroup_root(), f"mote-test-agent-{os.getpid()}"),
                        agent_made=True)


if __name__ == "__main__":
    sys.exit(run_case(CASES))
