#!/usr/bin/env python3
"""Control-socket latency of a running tiny guest: the round trip of
`query-status` (send the request, read the reply) and of a `stop` + `cont`
pair (both replies; `stop` returns once every vCPU is parked), over N rounds
after a warm-up, on one QMP connection.

Usage: tests/bench/qmp_latency.py [--mote build/vmm/mote]
       [--kernel build/guest-images/motetest.pvh] [--rounds 1000] [--cpus 1]
Not part of the default test run.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.file.readline()  # greeting
        self.call("qmp_capabilities")

    def call(self, command):
        self.sock.sendall(json.dumps({"execute": command}).encode() + b"\n")
        while True:
            reply = json.loads(self.file.readline())
            if "event" not in reply:
                if "return" not in reply:
                    raise SystemExit(f"{command}: {reply}")
                return reply["return"]


def summary(name, samples_ms):
    s = sorted(samples_ms)
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    print(f"{name:<22} median {statistics.median(s) * 1000:8.1f} us   min {s[0] * 1000:8.1f}"
          f"   p99 {p99 * 1000:8.1f}   max {s[-1] * 1000:8.1f}   ({len(s)} rounds)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mote", default="build/vmm/mote")
    ap.add_argument("--kernel", default="build/guest-images/motetest.pvh")
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--cpus", type=int, default=1)
    args = ap.parse_args()
    path = os.path.join(tempfile.mkdtemp(), "qmp.sock")
    mote = subprocess.Popen([args.mote, "run", "--kernel", args.kernel, "--cmdline", "test=spin",
                             "--cpus", str(args.cpus), "--console", "none", "--api-socket", path],
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            if time.monotonic() > deadline or mote.poll() is not None:
                raise SystemExit("mote did not open its control socket")
            time.sleep(0.005)
        q = Qmp(path)
        for _ in range(50):  # warm-up
            q.call("query-status")
        status = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            q.call("query-status")
            status.append((time.perf_counter() - t) * 1000)
        pairs, stops = [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            q.call("stop")
            t1 = time.perf_counter()
            q.call("cont")
            pairs.append((time.perf_counter() - t) * 1000)
            stops.append((t1 - t) * 1000)
        print(f"mote {args.mote}, {args.cpus} vCPU(s), test=spin")
        summary("query-status", status)
        summary("stop (vCPUs parked)", stops)
        summary("stop + cont", pairs)
        q.call("quit")
        mote.wait(timeout=10)
    finally:
        if mote.poll() is None:
            mote.kill()


if __name__ == "__main__":
    main()
