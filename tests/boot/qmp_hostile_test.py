#!/usr/bin/env python3
"""Hostile control-socket clients, one case each, against a running tiny
guest: each gets a QMP error or a closed connection, never a crash or a
hang, and the VM runs on (a well-behaved client checks after every case).

Usage: qmp_hostile_test.py CASE --mote PATH --images DIR
Exits 0 on pass, 1 on failure, 77 (meson's "skip") when /dev/kvm is missing.
"""
import json
import os
import socket
import sys
import threading
import time

from boot_test import Failure, case_table, expect_eq, run_case
from control_test import Guest, Qmp, expect_error

CASES, case = case_table()


def still_running(g, q):
    """The VM answers a fresh client and a known one, and is still running."""
    fresh = Qmp(g.socket)
    expect_eq("a new client's status", fresh.ok("query-status")["status"], "running")
    fresh.close()
    expect_eq("status", q.ok("query-status")["status"], "running")
    if g.proc.poll() is not None:
        raise Failure(f"mote exited ({g.proc.returncode})")


def with_guest(ctx, body):
    g = Guest(ctx, "spin")
    try:
        g.wait_line(r"^spin: forever")
        q = Qmp(g.socket)
        body(g, q)
        still_running(g, q)
        q.ok("quit")
        expect_eq("exit code", g.wait(), 0)
    finally:
        g.kill()


def read_until_closed(sock, limit=1 << 20):
    """What the server sends until it closes the connection."""
    data = b""
    sock.settimeout(10)
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # closed with our data unread: a reset is a close too
            return data, True
        except socket.timeout:
            break
        if not chunk:
            return data, True
        data += chunk
    return data, False


@case
def qmp_hostile_not_json(ctx):
    def body(g, q):
        for junk in (b"this is not json\n", b"{\"execute\": \xff\n", b"\x00\x01\x02\n",
                     b"{\"execute\": \"query-status\", \"arguments\": {\"a\": \"open\n",
                     b"{\"execute\": \"query-status\" ]\n", b"}}}\n"):
            # An error for each bad token, then the connection heals: the
            # next request is answered.
            q.send_raw(junk + b"{\"execute\": \"query-status\", \"id\": 1}\n")
            errors = 0
            while "id" not in (reply := q.reply()):
                expect_error(reply, "GenericError", r"^JSON parse error")
                errors += 1
            expect_eq("reply after junk", reply["return"]["status"], "running")
            if errors == 0:
                raise Failure(f"no error for {junk!r}")
    with_guest(ctx, body)


@case
def qmp_hostile_wrong_types(ctx):
    def body(g, q):
        for raw, pattern in ((b"[1, 2, 3]", r"must be a JSON object"),
                             (b"42", r"must be a JSON object"),
                             (b"\"stop\"", r"must be a JSON object"),
                             (b"{\"execute\": 42}", r"'execute' must be a string"),
                             (b"{\"execute\": null}", r"'execute' must be a string"),
                             (b"{\"execute\": \"stop\", \"arguments\": [1]}", r"'arguments' must be an object"),
                             (b"{\"execute\": \"stop\", \"arguments\": \"now\"}", r"'arguments' must be an object"),
                             (b"{\"arguments\": {}}", r"lacks member 'execute'")):
            q.send_raw(raw + b"\n")
            expect_error(q.reply(), "GenericError", pattern)
        # None of those stopped the guest.
        expect_eq("status", q.ok("query-status")["status"], "running")
        # Any JSON value is a valid id, echoed as it came.
        expect_eq("object id", q.execute("query-name", id={"a": [1, None]})["id"], {"a": [1, None]})
    with_guest(ctx, body)


@case
def qmp_hostile_unknown_commands_and_arguments(ctx):
    def body(g, q):
        expect_error(q.execute("no-such-command"), "CommandNotFound",
                     r"^The command no-such-command has not been found$")
        expect_error(q.execute("x-mote-" + "z" * 5000), "CommandNotFound")
        q.send_raw(b"{\"execute\": \"query-status\", \"colour\": \"red\"}\n")
        expect_error(q.reply(), "GenericError", r"member 'colour' is unexpected")
        # A known command with an argument it does not take does nothing.
        expect_error(q.execute("stop", {"force": True}), "GenericError", r"Parameter 'force' is unexpected")
        expect_eq("not stopped", q.ok("query-status")["status"], "running")
        expect_error(q.execute("quit", {"now": 1}), "GenericError", r"'now'")
    with_guest(ctx, body)


@case
def qmp_hostile_command_before_negotiation(ctx):
    def body(g, q):
        raw = Qmp(g.socket, negotiate=False)
        for command in ("stop", "quit", "system_reset", "query-status"):
            expect_error(raw.execute(command), "CommandNotFound", r"Expecting capabilities negotiation")
        expect_eq("not stopped", q.ok("query-status")["status"], "running")
        expect_error(raw.execute("qmp_capabilities", {"enable": ["oob"]}), "GenericError",
                     r"Capability 'oob' not available")
        expect_error(raw.execute("stop"), "CommandNotFound", r"Expecting capabilities")
        expect_eq("negotiated", raw.execute("qmp_capabilities"), {"return": {}})
        expect_error(raw.execute("qmp_capabilities"), "CommandNotFound", r"already complete")
        raw.ok("stop")
        expect_eq("stopped by the negotiated client", q.ok("query-status")["status"], "paused")
        raw.ok("cont")
        raw.close()
    with_guest(ctx, body)


@case
def qmp_hostile_10mib_line(ctx):
    def body(g, q):
        big = Qmp(g.socket)
        line = b"{\"execute\": \"" + b"x" * (10 << 20) + b"\"}\n"
        sent = threading.Event()

        def send():
            try:
                big.sock.sendall(line)
            except OSError:
                pass  # the server closed the connection before taking it all
            sent.set()
        threading.Thread(target=send, daemon=True).start()
        data, closed = read_until_closed(big.sock)
        if not closed:
            raise Failure("the connection stayed open after a 10 MiB request")
        if b"request too large" not in data:
            raise Failure(f"no 'request too large' error before the close: {data[:200]!r}")
        if not sent.wait(10):
            raise Failure("the sender is stuck: mote neither read nor closed")
        # The other client never noticed.
        expect_eq("other client", q.ok("query-name"), {})
    with_guest(ctx, body)


@case
def qmp_hostile_disconnect_mid_command(ctx):
    def body(g, q):
        # Half a request, then gone.
        half = Qmp(g.socket)
        half.send_raw(b"{\"execute\": \"query-sta")
        half.close()
        # A whole command, gone before its reply: it still runs.
        gone = Qmp(g.socket)
        gone.send_raw(b"{\"execute\": \"stop\"}\n")
        gone.sock.shutdown(socket.SHUT_RDWR)
        gone.close()
        deadline = time.monotonic() + 5
        while q.ok("query-status")["status"] != "paused":
            if time.monotonic() > deadline:
                raise Failure("a command whose client left did not run")
            time.sleep(0.01)
        q.ok("cont")
        # Many who ask and leave at once, some mid-greeting.
        for i in range(50):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(g.socket)
            if i % 2:
                s.sendall(b"{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"query-status\"}\n")
            s.close()
    with_guest(ctx, body)


@case
def qmp_hostile_100_clients_at_once(ctx):
    def body(g, q):
        clients = []
        for _ in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(g.socket)
            clients.append(s)
        served, refused = [], 0
        for s in clients:
            f = s.makefile("rb")
            first = f.readline()
            if b"\"QMP\"" in first:
                served.append((s, f))
            elif b"too many QMP clients" in first and f.readline() == b"":
                refused += 1  # told why, then closed
            else:
                raise Failure(f"a client got {first!r}")
        # mote serves 64 clients at most; q is one of them.
        expect_eq("served, refused", (len(served), refused), (63, 37))
        for i, (s, f) in enumerate(served):
            s.sendall(b"{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"query-status\", \"id\": %d}\n" % i)
        for i, (s, f) in enumerate(served):
            expect_eq("negotiation", json.loads(f.readline()), {"return": {}})
            reply = json.loads(f.readline())
            expect_eq(f"client {i}", (reply["return"]["status"], reply["id"]), ("running", i))
        for s, f in served:
            f.close()  # the socket's descriptor stays open while its file does
        for s in clients:
            s.close()
        # Room again once they are gone.
        deadline = time.monotonic() + 5
        while True:
            try:
                again = [Qmp(g.socket) for _ in range(10)]
                break
            except (EOFError, ConnectionError, KeyError):
                if time.monotonic() > deadline:
                    raise Failure("no room for new clients after the 100 left")
                time.sleep(0.05)
        for c in again:
            expect_eq("new client", c.ok("query-status")["status"], "running")
            c.close()
    with_guest(ctx, body)


if __name__ == "__main__":
    sys.exit(run_case(CASES))
