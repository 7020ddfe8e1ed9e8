#!/usr/bin/env python3
"""Control-plane boot tests: a running tiny guest driven through mote's QMP
control socket (--api-socket) and `mote ctl`, checking the replies, the
events and what the guest itself sees.

Usage: control_test.py CASE --mote PATH --images DIR
Exits 0 on pass, 1 on failure, 77 (meson's "skip") when /dev/kvm is missing.
"""
import grp
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from boot_test import Failure, case_table, expect_eq, run_case

CASES, case = case_table()


class Guest:
    """A `mote run` in the background whose console lines are collected
    (with the host time each arrived) by a reader thread."""

    def __init__(self, ctx, test, *extra, cmdline_extra="", preexec=None, socket_dir=None,
                 pass_fds=()):
        self.dir = socket_dir or tempfile.mkdtemp()
        self.socket = os.path.join(self.dir, "qmp.sock")
        cmd = [ctx.mote, "run", "--kernel", ctx.image(), "--cmdline",
               f"test={test} {cmdline_extra}".strip(), "--api-socket", self.socket, *extra]
        print("$", " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, preexec_fn=preexec,
                                     pass_fds=pass_fds)
        self.lines = []  # (host time, text)
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.stderr = b""
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Failure(f"mote never created {self.socket} (exit {self.proc.poll()}): "
                              f"{self.proc.stderr.read().decode(errors='replace')}")
            time.sleep(0.005)

    def _read(self):
        for raw in self.proc.stdout:
            with self.lock:
                self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))

    def console(self):
        with self.lock:
            return list(self.lines)

    def wait_line(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, line in self.console():
                if re.search(pattern, line):
                    return t, line
            time.sleep(0.01)
        raise Failure(f"no console line matches {pattern!r}")

    def wait(self, timeout=20):
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        self.stderr = self.proc.stderr.read()
        print("".join(l + "\n" for _, l in self.console()[-20:]), end="")
        print(self.stderr.decode(errors="replace"), file=sys.stderr)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Qmp:
    """A raw QMP client over the Unix socket."""

    def __init__(self, path, negotiate=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        self.greeting = self.recv()
        if negotiate:
            expect_eq("qmp_capabilities", self.execute("qmp_capabilities"), {"return": {}})

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def reply(self):
        """The next reply; events on the way are kept in self.events."""
        while True:
            m = self.recv()
            if "event" in m:
                self.events.append(m)
                continue
            return m

    def execute(self, command, arguments=None, **extra):
        msg = {"execute": command, **extra}
        if arguments is not None:
            msg["arguments"] = arguments
        self.send_raw(json.dumps(msg).encode() + b"\n")
        return self.reply()

    def ok(self, command, arguments=None):
        r = self.execute(command, arguments)
        if "return" not in r:
            raise Failure(f"{command}: {r}")
        return r["return"]

    def wait_event(self, name, timeout=10):
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        while time.monotonic() < deadline:
            for e in self.events:
                if e["event"] == name:
                    self.events.remove(e)
                    return e
            m = self.recv()
            if "event" in m:
                self.events.append(m)
        raise Failure(f"no {name} event")

    def close(self):
        self.sock.close()


def expect_error(reply, error_class, desc_pattern=""):
    if "error" not in reply:
        raise Failure(f"want a {error_class} error, got {reply}")
    expect_eq("error class", reply["error"]["class"], error_class)
    if not re.search(desc_pattern, reply["error"]["desc"]):
        raise Failure(f"error desc {reply['error']['desc']!r} does not match {desc_pattern!r}")


def clock_lines(lines):
    """(host time, guest kvmclock ns) of each `clock: ns=N` line."""
    out = []
    for t, line in lines:
        m = re.match(r"clock: ns=(\d+)$", line)
        if m:
            out.append((t, int(m.group(1))))
    return out


@case
def qmp_commands_and_pause(ctx):
    g = Guest(ctx, "clock", "--cpus", "2", "--memory", "256M", "--name", "guest-one")
    try:
        q = Qmp(g.socket, negotiate=False)
        greeting = q.greeting["QMP"]
        expect_eq("greeting capabilities", greeting["capabilities"], [])
        if "qemu" not in greeting["version"] or "package" not in greeting["version"]:
            raise Failure(f"greeting version {greeting['version']}")
        expect_error(q.execute("query-status"), "CommandNotFound", "qmp_capabilities")
        expect_eq("negotiation", q.execute("qmp_capabilities", id="n1"), {"return": {}, "id": "n1"})
        expect_error(q.execute("qmp_capabilities"), "CommandNotFound", "already complete")
        status = q.ok("query-status")
        expect_eq("status", (status["status"], status["running"]), ("running", True))
        expect_eq("query-name", q.ok("query-name"), {"name": "guest-one"})
        if not q.ok("query-version")["package"].startswith("mote "):
            raise Failure("query-version package")
        names = {c["name"] for c in q.ok("query-commands")}
        for need in ("stop", "cont", "quit", "system_reset", "query-status", "query-cpus-fast",
                     "query-block", "query-blockstats", "query-memory-size-summary",
                     "x-mote-query-counters"):
            if need not in names:
                raise Failure(f"query-commands lacks {need}")
        cpus = q.ok("query-cpus-fast")
        expect_eq("vCPUs", [c["cpu-index"] for c in cpus], [0, 1])
        if not all(c["thread-id"] > 0 for c in cpus):
            raise Failure(f"thread ids {cpus}")
        expect_eq("memory", q.ok("query-memory-size-summary")["base-memory"], 256 << 20)
        expect_error(q.execute("no-such-command"), "CommandNotFound")
        expect_error(q.execute("query-status", {"bogus": 1}), "GenericError", "bogus")
        expect_eq("id echoed", q.execute("query-name", id=[1, "x"])["id"], [1, "x"])

        # Pause: the guest's own clock (kvmclock) must not move while it is stopped.
        g.wait_line(r"^clock: source kvmclock")
        g.wait_line(r"^clock: ns=", timeout=10)
        counters = q.ok("x-mote-query-counters")
        if counters["vcpus"][0]["exits"]["io"] < 1:
            raise Failure(f"vCPU 0 made no port exits: {counters}")
        time.sleep(0.5)
        q.ok("stop")
        q.wait_event("STOP")
        expect_eq("status paused", q.ok("query-status")["status"], "paused")
        stopped_at = time.monotonic()
        before = clock_lines(g.console())
        time.sleep(1.5)
        if len(clock_lines(g.console())) != len(before):
            raise Failure("the guest printed while paused")
        q.ok("cont")
        q.wait_event("RESUME")
        resumed_at = time.monotonic()
        expect_eq("status running", q.ok("query-status")["status"], "running")
        deadline = time.monotonic() + 10
        while len(clock_lines(g.console())) < len(before) + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        after = clock_lines(g.console())[len(before):]
        if len(after) < 3 or len(before) < 4:
            raise Failure(f"too few clock lines ({len(before)} before, {len(after)} after)")
        gap = (after[0][1] - before[-1][1]) / 1e9
        host_gap = resumed_at - stopped_at
        print(f"paused {host_gap:.2f} s on the host; the guest's clock moved {gap:.3f} s across it")
        if gap > 0.5 * host_gap:
            raise Failure(f"the guest's clock moved {gap:.2f} s during a {host_gap:.2f} s pause")

        q.ok("quit")
        e = q.wait_event("SHUTDOWN")
        expect_eq("SHUTDOWN data", e["data"], {"guest": False, "reason": "host-qmp-quit"})
        for field in ("seconds", "microseconds"):
            if field not in e["timestamp"]:
                raise Failure(f"event timestamp {e['timestamp']}")
        expect_eq("exit code after quit", g.wait(), 0)
    finally:
        g.kill()


@case
def qmp_start_paused_then_cont(ctx):
    g = Guest(ctx, "hello", "--paused")
    try:
        q = Qmp(g.socket)
        expect_eq("status", q.ok("query-status")["status"], "prelaunch")
        time.sleep(0.3)
        if g.console():
            raise Failure(f"the guest ran before cont: {g.console()}")
        q.ok("cont")
        q.wait_event("RESUME")
        g.wait_line(r"^Hello from the mote test kernel")
        e = q.wait_event("SHUTDOWN")
        expect_eq("SHUTDOWN reason", e["data"]["reason"], "x-mote-debug-exit")
        expect_eq("exit code", g.wait(), 1)
    finally:
        g.kill()


@case
def qmp_guest_events(ctx):
    g = Guest(ctx, "poweroff", "--paused")  # paused, so no event comes before we listen
    try:
        q = Qmp(g.socket)
        q.ok("cont")
        e = q.wait_event("SHUTDOWN")
        expect_eq("SHUTDOWN data", e["data"], {"guest": True, "reason": "guest-shutdown"})
        expect_eq("exit code", g.wait(), 0)
    except (EOFError, ConnectionError):
        raise Failure("the connection closed before the SHUTDOWN event")
    finally:
        g.kill()
    g = Guest(ctx, "panic", "--paused")
    try:
        q = Qmp(g.socket)
        q.ok("cont")
        expect_eq("GUEST_PANICKED", q.wait_event("GUEST_PANICKED")["data"], {"action": "poweroff"})
        expect_eq("SHUTDOWN reason", q.wait_event("SHUTDOWN")["data"]["reason"], "guest-panic")
        expect_eq("exit code", g.wait(), 6)
    finally:
        g.kill()
    g = Guest(ctx, "spin", "--paused")
    try:
        q = Qmp(g.socket)
        q.ok("system_reset")
        e = q.wait_event("RESET")
        expect_eq("RESET data", e["data"], {"guest": False, "reason": "host-qmp-system-reset"})
        g.wait_line(r"^spin: forever")  # booted again, and no longer paused
        expect_eq("status after reset", q.ok("query-status")["status"], "running")
        q.ok("quit")
        expect_eq("exit code", g.wait(), 0)
    finally:
        g.kill()


@case
def qmp_system_powerdown(ctx):
    # The ACPI power button: a guest that listens (test=powerbutton takes the
    # GED's interrupt) shuts down; a guest that does not keeps running.
    g = Guest(ctx, "powerbutton")
    try:
        q = Qmp(g.socket)
        g.wait_line(r"^powerbutton: waiting on gsi 23")
        q.ok("system_powerdown")
        q.wait_event("POWERDOWN")
        g.wait_line(r"^powerbutton: pressed, powering off")
        expect_eq("SHUTDOWN reason", q.wait_event("SHUTDOWN")["data"]["reason"], "guest-shutdown")
        expect_eq("exit code", g.wait(), 0)
    finally:
        g.kill()
    g = Guest(ctx, "spin")
    try:
        q = Qmp(g.socket)
        g.wait_line(r"^spin: forever")
        q.ok("system_powerdown")
        q.wait_event("POWERDOWN")
        time.sleep(0.3)
        expect_eq("a deaf guest runs on", q.ok("query-status")["status"], "running")
        q.ok("quit")
        g.wait()
    finally:
        g.kill()


@case
def qmp_s3_suspend_and_wakeup(ctx):
    """ACPI S3 (--acpi full): the guest sleeps, QMP says `suspended` with a
    SUSPEND event, and `cont` does not wake it; system_wakeup does (WAKEUP),
    then the power button does, each time at the FACS waking vector with
    the guest's memory intact and WAK_STS (and PWRBTN_STS) set."""
    # --paused: the guest sleeps at once, and its SUSPEND must not come
    # before this client is listening.
    g = Guest(ctx, "s3", "--acpi", "full", "--paused", cmdline_extra="rounds=2")
    try:
        q = Qmp(g.socket)
        q.ok("cont")
        g.wait_line(r"^s3: suspending \(round 1\)")
        q.wait_event("SUSPEND")
        expect_eq("status while asleep", q.ok("query-status"),
                  {"status": "suspended", "running": False, "singlestep": False})
        q.ok("cont")  # not a wake-up, as with QEMU
        time.sleep(0.2)
        expect_eq("status after cont", q.ok("query-status")["status"], "suspended")
        q.ok("system_wakeup")
        q.wait_event("WAKEUP")
        g.wait_line(r"^s3: resumed \(round 1\) pm1_status=0x8000 ")
        g.wait_line(r"^s3: suspending \(round 2\)")
        q.wait_event("SUSPEND")
        q.ok("system_powerdown")  # the power button wakes a sleeping PC
        q.wait_event("WAKEUP")
        g.wait_line(r"^s3: resumed \(round 2\) pm1_status=0x8100 ")
        expect_eq("exit code", g.wait(), 1)
        console = "\n".join(line for _, line in g.console())
        if re.search(r"^FAIL", console, re.M):
            raise Failure("the guest reported a FAIL line")
        expect_eq("PASS lines", len(re.findall(r"^PASS s3_memory_survived$", console, re.M)), 2)
    finally:
        g.kill()
    # The RTC alarm wakes it by itself (RTC_EN): no QMP command.
    g = Guest(ctx, "s3", "--acpi", "full", "--paused", cmdline_extra="wake=rtc")
    try:
        q = Qmp(g.socket)
        q.ok("cont")
        q.wait_event("SUSPEND")
        q.wait_event("WAKEUP", timeout=15)
        g.wait_line(r"^s3: resumed \(round 1\) pm1_status=0x8400 ")
        g.wait_line(r"^s3: rtc register C=0x[a-f0-9]{2}$")
        expect_eq("exit code (rtc wake)", g.wait(), 1)
        console = "\n".join(line for _, line in g.console())
        for check in ("s3_memory_survived", "s3_rtc_alarm_fired", "s3_rtc_status"):
            if not re.search(rf"^PASS {check}$", console, re.M):
                raise Failure(f"no PASS {check}")
    finally:
        g.kill()
    # A running guest is not woken.
    g = Guest(ctx, "spin")
    try:
        q = Qmp(g.socket)
        g.wait_line(r"^spin: forever")
        expect_error(q.execute("system_wakeup"), "GenericError", "not in suspended state")
        q.ok("quit")
        g.wait()
    finally:
        g.kill()


@case
def qmp_block_queries(ctx):
    # Two disks, one read-only with cache=none; the guest writes 16 sectors
    # to the first, flushes, and holds: the block queries must show both
    # disks as configured and count exactly that I/O.
    d = tempfile.mkdtemp(dir=ctx.scratch)
    a, b = os.path.join(d, "a.img"), os.path.join(d, "b.img")
    for path in (a, b):
        with open(path, "wb") as f:
            f.truncate(1 << 20)
    g = Guest(ctx, "blk", "--disk", f"path={a},id=root,serial=ROOT1",
              "--disk", f"path={b},readonly=on,cache=none",
              cmdline_extra="op=write sector=0 count=16 tag=q hold=1")
    try:
        q = Qmp(g.socket)
        g.wait_line(r"^blk: holding$")
        block = q.ok("query-block")
        expect_eq("devices", [x["device"] for x in block], ["root", "disk1"])
        expect_eq("files", [x["inserted"]["file"] for x in block], [a, b])
        expect_eq("read-only", [x["inserted"]["ro"] for x in block], [False, True])
        expect_eq("cache=none", [x["inserted"]["cache"]["direct"] for x in block], [False, True])
        stats = {x["device"]: x["stats"] for x in q.ok("query-blockstats")}
        expect_eq("root writes", (stats["root"]["wr_bytes"], stats["root"]["flush_operations"]),
                  (16 * 512, 1))
        if stats["root"]["wr_operations"] < 1:
            raise Failure(f"no write operation counted: {stats['root']}")
        expect_eq("disk1 untouched", (stats["disk1"]["wr_operations"], stats["disk1"]["wr_bytes"]),
                  (0, 0))
        counters = q.ok("x-mote-query-counters")
        expect_eq("counter ids", [x["id"] for x in counters["disks"]], ["root", "disk1"])
        expect_eq("counted writes", counters["disks"][0]["bytes-written"], 16 * 512)
        expect_eq("memory", q.ok("query-memory-size-summary"),
                  {"base-memory": 128 << 20, "plugged-memory": 0})
        q.ok("quit")
        expect_eq("exit code", g.wait(), 0)
    finally:
        g.kill()
    with open(a, "rb") as f:
        first = f.read(512)
    if not first.startswith(b"mote q sector 0\n"):
        raise Failure(f"the write did not reach the file: {first[:32]!r}")


@case
def qmp_shutdown_reasons(ctx):
    # Each way a VM ends, as its SHUTDOWN (or RESET) event says it.
    def ending(test, *extra, act=None, event="SHUTDOWN", cmdline_extra=""):
        g = Guest(ctx, test, "--paused", *extra, cmdline_extra=cmdline_extra)
        try:
            q = Qmp(g.socket)
            q.ok("cont")
            if act:
                act(g, q)
            e = q.wait_event(event, timeout=20)
            return g, q, e
        except BaseException:
            g.kill()
            raise

    g, q, e = ending("reset")
    expect_eq("guest reset", e["data"], {"guest": True, "reason": "guest-reset"})
    expect_eq("exit code (reset)", g.wait(), 4)
    g, q, e = ending("hello", cmdline_extra="exit=3")
    expect_eq("debug exit", e["data"], {"guest": True, "reason": "x-mote-debug-exit"})
    expect_eq("exit code (debug-exit 3)", g.wait(), 7)
    g, q, e = ending("spin", "--timeout", "1")
    expect_eq("timeout", e["data"], {"guest": False, "reason": "x-mote-timeout"})
    expect_eq("exit code (timeout)", g.wait(), 8)
    g, q, e = ending("spin", act=lambda g, q: (g.wait_line(r"^spin: forever"), g.proc.terminate()))
    expect_eq("signal", e["data"], {"guest": False, "reason": "host-signal"})
    expect_eq("exit code (SIGTERM)", g.wait(), 128 + 15)
    # With --on-reboot restart a guest reset is a RESET, and the guest boots again.
    g, q, e = ending("reset", "--on-reboot", "restart", event="RESET")
    try:
        expect_eq("guest reset, restarted", e["data"], {"guest": True, "reason": "guest-reset"})
        q.wait_event("RESET")  # and again: test=reset resets every time it boots
        q.ok("quit")
        expect_eq("quit after restarts", q.wait_event("SHUTDOWN")["data"]["reason"], "host-qmp-quit")
        expect_eq("exit code (quit)", g.wait(), 0)
    finally:
        g.kill()


@case
def ctl_client(ctx):
    g = Guest(ctx, "spin")
    try:
        events = subprocess.Popen([ctx.mote, "ctl", g.socket, "--events"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        time.sleep(0.3)

        def ctl(*args):
            p = subprocess.run([ctx.mote, "ctl", g.socket, *args], capture_output=True, timeout=20)
            print("$ mote ctl", *args, "->", p.returncode, p.stdout.decode(), p.stderr.decode())
            return p.returncode, p.stdout.decode(), p.stderr.decode()

        code, out, _ = ctl("query-status")
        expect_eq("ctl exit", code, 0)
        expect_eq("ctl output", json.loads(out)["status"], "running")
        expect_eq("stop", ctl("stop")[0], 0)
        expect_eq("status", json.loads(ctl("query-status")[1])["status"], "paused")
        expect_eq("cont", ctl("cont")[0], 0)
        code, _, err = ctl("no-such-command")
        expect_eq("ctl exit on a QMP error", code, 1)
        if "CommandNotFound" not in err:
            raise Failure(f"ctl error line: {err!r}")
        code, _, err = ctl("query-status", "{not json")
        expect_eq("ctl exit on bad arguments", code, 2)
        expect_eq("quit", ctl("quit")[0], 0)
        expect_eq("mote exit code", g.wait(), 0)
        out, _ = events.communicate(timeout=10)
        names = [json.loads(l)["event"] for l in out.decode().splitlines()]
        expect_eq("streamed events", names, ["STOP", "RESUME", "SHUTDOWN"])
    finally:
        g.kill()
    p = subprocess.run([ctx.mote, "ctl", "/nonexistent/qmp.sock", "query-status"],
                       capture_output=True)
    expect_eq("ctl exit without a mote", p.returncode, 2)
    if b"mote ctl: error:" not in p.stderr:
        raise Failure(f"ctl error: {p.stderr!r}")


@case
def api_socket_ownership(ctx):
    g = Guest(ctx, "spin")
    try:
        mode = os.stat(g.socket).st_mode & 0o777
        expect_eq("socket mode", oct(mode), oct(0o600))
        # A second mote on the same live socket is refused, with one clear line.
        p = subprocess.run([ctx.mote, "run", "--kernel", ctx.image(), "--cmdline", "test=hello",
                            "--api-socket", g.socket], capture_output=True, timeout=20)
        expect_eq("exit code (socket in use)", p.returncode, 2)
        if not re.search(rb"mote: error: --api-socket .*in use", p.stderr):
            raise Failure(f"stderr {p.stderr!r}")
        Qmp(g.socket).ok("quit")
        g.wait()
    finally:
        g.kill()
    # A stale socket file from a dead mote is replaced.
    d = tempfile.mkdtemp()
    path = os.path.join(d, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    p = subprocess.run([ctx.mote, "run", "--kernel", ctx.image(), "--cmdline", "test=hello",
                        "--api-socket", path], capture_output=True, timeout=20)
    expect_eq("exit code (stale socket replaced)", p.returncode, 1)
    if os.path.exists(path):
        raise Failure("mote left its socket behind")
    # A symlink (or any file not a socket) where the socket would go is refused.
    os.symlink("/etc/passwd", path)
    p = subprocess.run([ctx.mote, "run", "--kernel", ctx.image(), "--cmdline", "test=hello",
                        "--api-socket", path], capture_output=True, timeout=20)
    expect_eq("exit code (a symlink there)", p.returncode, 2)
    if not re.search(rb"mote: error: --api-socket .*exists and is not a socket", p.stderr):
        raise Failure(f"stderr {p.stderr!r}")
    socket_for_a_group(ctx)


def connects_as(path, uid, gid, groups):
    """Whether a process of that user and groups may connect to `path` (a
    forked child that drops to them)."""
    pid = os.fork()
    if pid == 0:
        code = 4
        try:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                code = 0
            except PermissionError:
                code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        raise Failure(f"the connect probe as uid {uid} failed: exit {code}")
    return code == 0


def socket_for_a_group(ctx):
    """--api-socket-mode 0660 --api-socket-group GROUP: that group's members
    may drive the VM, other users may not."""
    group = grp.getgrnam("users")  # Debian's gid 100
    g = Guest(ctx, "spin", "--api-socket-mode", "0660", "--api-socket-group", "users")
    try:
        st = os.stat(g.socket)
        expect_eq("socket mode", oct(st.st_mode & 0o777), oct(0o660))
        expect_eq("socket group", st.st_gid, group.gr_gid)
        if os.geteuid() == 0:
            os.chmod(g.dir, 0o711)  # others may reach the socket, its mode decides
            nobody = 65534
            expect_eq("a member of 'users' connects", connects_as(g.socket, nobody, nobody,
                                                                  [group.gr_gid]), True)
            expect_eq("a non-member connects", connects_as(g.socket, nobody, nobody, []), False)
        Qmp(g.socket).ok("quit")
        g.wait()
    finally:
        g.kill()
    p = subprocess.run([ctx.mote, "run", "--kernel", ctx.image(), "--api-socket",
                        os.path.join(g.dir, "x.sock"), "--api-socket-group", "no-such-group-x"],
                       capture_output=True, timeout=20)
    expect_eq("exit code (unknown group)", p.returncode, 2)
    if p.stderr.decode().strip() != ("mote: error: --api-socket-group no-such-group-x: no such "
                                     "group in /etc/group"):
        raise Failure(f"stderr {p.stderr!r}")


@case
def audit_log_records_who_changed_what(ctx):
    """--audit-log FILE: a JSON line per command that changes the VM's state,
    with the peer's pid, uid and gid as the kernel gave them (SO_PEERCRED)
    and the result; queries are not written. Without it, the lines go to
    mote's debug log."""
    d = tempfile.mkdtemp()
    audit = os.path.join(d, "audit.log")
    g = Guest(ctx, "spin", "--audit-log", audit)
    try:
        qmp = Qmp(g.socket)
        qmp.ok("query-status")
        qmp.ok("stop")
        qmp.ok("cont")
        expect_error(qmp.execute("migrate", {"uri": "exec:cat"}), "GenericError")
        for command in ("stop", "cont"):
            p = subprocess.run([ctx.mote, "ctl", g.socket, command], capture_output=True,
                               timeout=20)
            expect_eq(f"mote ctl {command}", p.returncode, 0)
        qmp.ok("quit")
        g.wait()
    finally:
        g.kill()
    lines = [json.loads(l) for l in open(audit)]
    for line in lines:
        print(line)
    expect_eq("audited commands", [l["command"] for l in lines],
              ["stop", "cont", "migrate", "stop", "cont", "quit"])
    expect_eq("mode of the audit log", oct(os.stat(audit).st_mode & 0o777), oct(0o600))
    for i, line in enumerate(lines):
        expect_eq(f"line {i}: uid, gid", (line["uid"], line["gid"]), (os.getuid(), os.getgid()))
        mine = i not in (3, 4)  # those came from `mote ctl`, another process
        if (line["pid"] == os.getpid()) != mine:
            raise Failure(f"line {i}: pid {line['pid']}, this test is {os.getpid()}")
    expect_eq("a refused command's result", lines[2]["result"].get("error"), "GenericError")
    expect_eq("a command's result", lines[1]["result"], "ok")
    # No file given: the same lines in mote's log, at debug level.
    g = Guest(ctx, "spin", "--log-level", "debug")
    try:
        Qmp(g.socket).ok("quit")
        g.wait()
    finally:
        g.kill()
    logged = [l for l in g.stderr.decode(errors="replace").splitlines() if "audit: " in l]
    if len(logged) != 1 or json.loads(logged[0].split("audit: ", 1)[1])["command"] != "quit":
        raise Failure(f"want one audit line for quit in mote's log, got {logged}")


# ---- stop/cont under load --------------------------------------------------------

TRAFFIC_SLOTS = 256    # test=traffic's default: blocks 0..255 of 4 KiB
TRAFFIC_BLOCK = 4096
TRAFFIC_FRAME = 200
TRAFFIC_CYCLES = 1000


def traffic_block(r):
    head = b"traffic round=%d " % r
    return head + bytes((r * 7 + k) & 0xff for k in range(len(head), TRAFFIC_BLOCK))


class TrafficPeer(threading.Thread):
    """The host end of test=traffic on the TAP: checks each guest frame and
    answers it, or answers "stop" once told to."""

    def __init__(self, iface, mac):
        super().__init__(daemon=True)
        from net_peer import guest_frame, host_frame
        self.guest_frame, self.host_frame = guest_frame, host_frame
        self.mac = mac
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind((iface, 0))
        self.sock.settimeout(0.2)
        self.lock = threading.Lock()
        self.seqs = []      # guest frames, in arrival order
        self.damaged = 0
        self.stop_sent = False
        self.want_stop = threading.Event()
        self.done = threading.Event()

    def frames(self):
        with self.lock:
            return len(self.seqs)

    def run(self):
        stop = self.mac + bytes.fromhex("020000000002") + b"\x88\xb5" + b"mote-host stop"
        stop += bytes(60 - len(stop))
        while not self.done.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            if addr[2] == socket.PACKET_OUTGOING or not data[14:].startswith(b"mote-guest seq="):
                continue
            seq = int(data[29:].split(b" ")[0])
            with self.lock:
                self.seqs.append(seq)
                if data != self.guest_frame(self.mac, seq, TRAFFIC_FRAME):
                    self.damaged += 1
            if self.want_stop.is_set():
                self.sock.send(stop)
                self.stop_sent = True
            else:
                self.sock.send(self.host_frame(self.mac, seq, TRAFFIC_FRAME))


@case
def qmp_stop_cont_under_io(ctx):
    """1000 stop/cont cycles while the guest writes, flushes and reads back
    disk blocks and trades frames with a TAP peer: nothing hangs, every round
    completes in order, no console line is lost, and the disk holds every
    block the guest wrote. Runs in a network namespace of its own."""
    ns = f"mote-ctl-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        # No IPv6 on the TAP: the kernel's own solicitations would reach the
        # guest and blur the frame counts.
        for cmd in (["sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"],
                    ["ip", "link", "set", "lo", "up"], ["ip", "tuntap", "add", "mtap0", "mode", "tap"],
                    ["ip", "link", "set", "mtap0", "up"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                            "stop_cont_in_netns", "--mote", ctx.mote, "--images", ctx.images],
                           timeout=300)
        if p.returncode != 0:
            raise Failure(f"inside the namespace: exit {p.returncode}")
    finally:
        subprocess.run(["ip", "netns", "del", ns])


@case
def stop_cont_in_netns(ctx):
    import random
    rng = random.Random(1234)
    disk = os.path.join(ctx.scratch, f"traffic-{os.getpid()}.img")
    with open(disk, "wb") as f:
        f.truncate(TRAFFIC_SLOTS * TRAFFIC_BLOCK)
    peer = TrafficPeer("mtap0", bytes.fromhex("525400123456"))
    peer.start()
    g = Guest(ctx, "traffic", "--disk", f"path={disk}", "--net", "tap=mtap0", "--cpus", "2",
              cmdline_extra="hold=1")
    try:
        q = Qmp(g.socket)
        g.wait_line(r"^traffic: round 0 ok$")
        stop_ms, cont_ms, quiet_checks = [], [], 0
        for i in range(TRAFFIC_CYCLES):
            t0 = time.monotonic()
            q.ok("stop")
            t1 = time.monotonic()
            q.wait_event("STOP")
            if i % 100 == 50:
                # A longer pause: once the vCPUs are parked, nothing moves.
                time.sleep(0.05)
                lines, frames = len(g.console()), peer.frames()
                time.sleep(0.25)
                if (len(g.console()), peer.frames()) != (lines, frames):
                    raise Failure(f"cycle {i}: the guest printed or sent while stopped")
                expect_eq("status while stopped", q.ok("query-status")["status"], "paused")
                quiet_checks += 1
            else:
                time.sleep(rng.uniform(0, 0.002))
            t2 = time.monotonic()
            q.ok("cont")
            t3 = time.monotonic()
            q.wait_event("RESUME")
            stop_ms.append((t1 - t0) * 1000)
            cont_ms.append((t3 - t2) * 1000)
            time.sleep(rng.uniform(0, 0.003))
        rounds_during = len([l for _, l in g.console() if l.startswith("traffic: round ")])
        peer.want_stop.set()
        _, last = g.wait_line(r"^traffic: \d+ rounds, ", timeout=60)
        g.wait_line(r"^traffic: holding$")
        n = int(re.match(r"traffic: (\d+) rounds", last).group(1))
        counters = q.ok("x-mote-query-counters")
        blockstats = q.ok("query-blockstats")[0]["stats"]
        q.ok("quit")
        expect_eq("exit code", g.wait(), 0)
    finally:
        g.kill()
        peer.done.set()
    print(f"{TRAFFIC_CYCLES} stop/cont cycles, {n} rounds ({rounds_during} by the last cycle); "
          f"stop median {statistics.median(stop_ms):.2f} ms, cont median {statistics.median(cont_ms):.2f} ms")
    lines = [l for _, l in g.console()]
    fails = [l for l in lines if l.startswith("FAIL")]
    if fails:
        raise Failure(f"the guest failed: {fails}")
    if rounds_during < 50:
        raise Failure(f"only {rounds_during} rounds ran during the cycles: the test proved little")
    # No console output lost or doubled: every round's line, once, in order.
    got = [int(m.group(1)) for l in lines if (m := re.match(r"traffic: round (\d+) ok$", l))]
    expect_eq("round lines", got, list(range(n)))
    # Every frame the guest sent arrived intact, once: rounds 0..n (n got "stop").
    expect_eq("guest frames at the peer", peer.seqs, list(range(n + 1)))
    expect_eq("damaged frames", peer.damaged, 0)
    expect_eq("stop sent", peer.stop_sent, True)
    # mote's counters agree with what the guest did: n + 1 flushed writes and
    # reads of 4 KiB, n + 1 frames out and n + 1 in (n answers and the stop).
    expect_eq("blockstats", (blockstats["wr_operations"], blockstats["rd_operations"],
                             blockstats["flush_operations"], blockstats["wr_bytes"]),
              (n + 1, n + 1, n + 1, (n + 1) * TRAFFIC_BLOCK))
    nic = counters["nics"][0]
    expect_eq("nic frames", (nic["tx-frames"], nic["rx-frames"]), (n + 1, n + 1))
    disk_counters = counters["disks"][0]
    expect_eq("disk counters", (disk_counters["writes"], disk_counters["errors"]), (n + 1, 0))
    # The disk holds the last block written to each slot.
    with open(disk, "rb") as f:
        data = f.read()
    os.unlink(disk)
    for slot in range(TRAFFIC_SLOTS):
        rounds = [r for r in range(n + 1) if r % TRAFFIC_SLOTS == slot]
        want = traffic_block(rounds[-1]) if rounds else bytes(TRAFFIC_BLOCK)
        if data[slot * TRAFFIC_BLOCK:(slot + 1) * TRAFFIC_BLOCK] != want:
            raise Failure(f"disk slot {slot} does not hold round {rounds[-1] if rounds else None}'s block")
    expect_eq("quiet checks while stopped", quiet_checks, TRAFFIC_CYCLES // 100)


if __name__ == "__main__":
    sys.exit(run_case(CASES))
