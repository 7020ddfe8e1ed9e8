"""When a process first entered a guest, seen by the kernel: the syscall
tracepoint syscalls:sys_enter_ioctl, filtered in the kernel to
cmd == KVM_RUN, stamped with CLOCK_MONOTONIC (trace_clock "mono", the clock
of Python's time.monotonic_ns) and the tracing process's thread-group id.
Unlike an LD_PRELOAD shim it sees static and dynamic binaries alike, and it
does not slow the traced process the way ptrace (strace, perf trace) does.
Needs root and tracefs (mounted here if it is not).
"""
import os
import re
import subprocess

TRACEFS = "/sys/kernel/tracing"
KVM_RUN = 0xAE80  # _IO(KVMIO, 0x80)
EVENT = "events/syscalls/sys_enter_ioctl"
# "  qemu-system-x86-4242    (   4240) [001] .....   812.345678: sys_ioctl(fd: ..."
LINE = re.compile(r"\(\s*(\d+)\)\s+\[\d+\]\s+\S+\s+(\d+)\.(\d+): sys_ioctl\(")


class FirstKvmRun:
    """with FirstKvmRun() as t: t.clear(); run a process; t.first_run_ns(pid)."""

    def __enter__(self):
        if not os.path.exists(os.path.join(TRACEFS, "trace")):
            subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not os.path.exists(os.path.join(TRACEFS, EVENT)):
            raise SystemExit(f"{TRACEFS}/{EVENT} is missing: this kernel has no syscall tracepoints")
        self.saved_clock = re.search(r"\[(\w+)\]", self.read("trace_clock")).group(1)
        self.write("tracing_on", "0")
        self.write("trace_clock", "mono")
        self.write("options/record-tgid", "1")
        self.write(f"{EVENT}/filter", f"cmd == {KVM_RUN}")
        self.write(f"{EVENT}/enable", "1")
        self.write("tracing_on", "1")
        return self

    def __exit__(self, *exc):
        self.write(f"{EVENT}/enable", "0")
        self.write(f"{EVENT}/filter", "0")
        self.write("options/record-tgid", "0")
        self.write("trace_clock", self.saved_clock)
        self.clear()

    def clear(self):
        self.write("trace", "")

    def first_run_ns(self, pid):
        """The CLOCK_MONOTONIC ns of process `pid`'s first KVM_RUN since
        clear(), or None. Microsecond resolution (the trace's)."""
        for m in LINE.finditer(self.read("trace")):
            if int(m.group(1)) == pid:
                return int(m.group(2)) * 1_000_000_000 + int(m.group(3).ljust(9, "0")[:9])
        return None

    @staticmethod
    def read(name):
        with open(os.path.join(TRACEFS, name)) as f:
            return f.read()

    @staticmethod
    def write(name, value):
        with open(os.path.join(TRACEFS, name), "w") as f:
            f.write(value)
