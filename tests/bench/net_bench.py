#!/usr/bin/env python3
"""virtio-net throughput of the tiny guest's driver under mote and under QEMU
(the same guest, the same TAP), both ways.

Usage: tests/bench/net_bench.py [--mote build/vmm/mote] [--images build/guest-images]
       [--count 100000] [--size 1514,60] [--runs 3]
       [--monitors mote-pci,qemu-q35,mote-mmio,qemu-microvm]
       [--dir tx,rx] [--out build/bench/net.md]
Not part of the default test run. Needs root (network namespaces, TAPs,
AF_PACKET sockets), /dev/kvm and qemu-system-x86 (scripts/bench-setup.sh).
QEMU runs its userspace virtio-net (this host has no /dev/vhost-net), as
virtio-net-pci on q35 and virtio-net-device on microvm.

Everything happens in a private network namespace, mote-bench-<pid>, holding
one TAP (ip tuntap add mbtap0 mode tap; link up); this script enters it
(setns), so each monitor runs there with its NIC on mbtap0, and leaves and deletes it
at the end. For every direction and frame size it boots `test=netbench`
(guest-images/tiny/tests/netbench.c) --runs times on each monitor, the
monitors alternating:

- tx: the guest sends --count frames of --size bytes (EtherType 0x88b5,
  payload "mote-bench seq=<i> ...") as fast as its queue allows. An AF_PACKET
  socket bound to the TAP for EtherType 0x88b5 (1 GiB receive buffer) counts
  them and their bytes; the time is first to last arrival by the kernel's
  receive timestamps (SIOCGSTAMPNS; the reader's own clock if there are none).
  Reported: those host-observed frames/s and MB/s, and the guest's own figure
  ("netbench: tx frames=N bytes=B ms=T", its TSC measured against the RTC).
- rx: once the guest prints "netbench: rx ready" (every receive buffer
  posted), this script sends --count frames of --size bytes to the guest MAC
  52:54:00:12:34:56 (payload "mote-host bench seq=<i> ...") through an
  AF_PACKET socket on the TAP, back to back, as fast as Python can. They queue
  in the TAP (its txqueuelen, 1000 frames) until mote reads them; what does
  not fit is dropped there (the TAP's tx_dropped). Reported: the guest's count and its frames/s
  and MB/s ("netbench: rx frames=N bytes=B ms=T", first to last frame), the
  host's sending rate, and the frames lost.

MB/s is 10^6 bytes of Ethernet frame (no virtio header, no FCS) per second.
Each figure is the median of --runs. The vCPU thread polls all the time, so on
a 2-core machine mote's event-loop thread (which does the TAP I/O) and this
script share the other core: the host end is part of what is measured.
"""
import argparse
import ctypes
import errno
import fcntl
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

from vmms import Mote, QemuMicrovm, QemuQ35, qemu_binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ETH_P_BENCH = 0x88b5
ETHERTYPE = ETH_P_BENCH.to_bytes(2, "big")
GUEST_MAC = bytes.fromhex("525400123456")
HOST_MAC = bytes.fromhex("020000000002")
TX_PREFIX = b"mote-bench seq="
SIOCGSTAMPNS = 0x8907
SO_RCVBUFFORCE = 33
SOL_PACKET = 263
PACKET_STATISTICS = 6
CLONE_NEWNET = 0x40000000
TAP = "mbtap0"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def setns(fd):
    """Moves this (single-threaded) process into the network namespace `fd`."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def tap_stats():
    out = subprocess.run(["ip", "-s", "-j", "link", "show", "dev", TAP], check=True,
                         capture_output=True, text=True).stdout
    s = json.loads(out)[0]["stats64"]
    return {"rx_packets": s["rx"]["packets"], "tx_packets": s["tx"]["packets"],
            "tx_dropped": s["tx"]["dropped"]}


def packet_drops(sock):
    """(packets, drops) since the last call (PACKET_STATISTICS resets them)."""
    packets, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    return packets, drops


def kernel_stamp(sock):
    """Receive time of the last packet read, by the kernel (ns), or None."""
    try:
        sec, nsec = struct.unpack("qq", fcntl.ioctl(sock.fileno(), SIOCGSTAMPNS, bytes(16)))
        return sec * 1_000_000_000 + nsec
    except OSError:
        return None


class Guest:
    """A monitor running the guest in the namespace, its console (stdout)
    read as it comes (unbuffered)."""

    def __init__(self, args, vmm, cmdline):
        self.cmd = vmm.command(args.kernel, cmdline, taps=[TAP])
        self.err = tempfile.TemporaryFile()
        self.p = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=self.err, bufsize=0)
        self.out = b""

    def wait_for(self, marker):
        fd = self.p.stdout.fileno()
        while marker not in self.out:
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            self.out += chunk
        return True

    def finish(self):
        fd = self.p.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.out += chunk
        rc = self.p.wait()
        self.err.seek(0)
        err = self.err.read().decode(errors="replace")
        self.err.close()
        return rc, self.out.decode(errors="replace"), err

    def fail(self, why):
        try:
            self.p.kill()
        except OSError:
            pass
        rc, out, err = self.finish()
        raise SystemExit(f"{why} (exit {rc}): {' '.join(self.cmd)}\n{out}\n{err}")

    def finish_within(self, seconds):
        """finish(), killing the monitor if it is still running after `seconds`."""
        timer = threading.Timer(seconds, self.p.kill)
        timer.start()
        try:
            return self.finish()
        finally:
            timer.cancel()


def guest_result(text, direction):
    m = re.search(rf"^netbench: {direction} frames=(\d+) bytes=(\d+) ms=([\d.]+)$", text, re.M)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), float(m.group(3))


def run_tx(args, vmm, size):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_BENCH))
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 512 << 20)  # doubled: 1 GiB
    sock.bind((TAP, ETH_P_BENCH))
    kernel_stamp(sock)  # turns receive timestamps on (none yet: ENOENT)
    packet_drops(sock)
    state = {"frames": 0, "bytes": 0, "first_ns": None, "first_mono": None, "last_mono": None}
    stop = threading.Event()

    def reader():
        buf = bytearray(65536)
        sock.settimeout(0.2)
        frames = nbytes = 0
        last = None
        while True:
            try:
                n = sock.recv_into(buf)
            except socket.timeout:
                if stop.is_set():
                    break
                continue
            if buf[14:29] != TX_PREFIX:
                continue
            last = time.monotonic()
            if frames == 0:
                state["first_ns"] = kernel_stamp(sock)
                state["first_mono"] = last
            frames += 1
            nbytes += n
        state.update(frames=frames, bytes=nbytes, last_mono=last,
                     last_ns=kernel_stamp(sock) if frames else None)

    before = tap_stats()
    t = threading.Thread(target=reader)
    t.start()
    guest = Guest(args, vmm, f"test=netbench dir=tx count={args.count} size={size}")
    rc, out, err = guest.finish_within(120)
    time.sleep(0.3)  # the reader drains what is still queued
    stop.set()
    t.join()
    _, sock_drops = packet_drops(sock)
    sock.close()
    after = tap_stats()
    g = guest_result(out, "tx")
    if rc != 1 or g is None or "PASS netbench_tx" not in out:
        raise SystemExit(f"{vmm.name} failed (exit {rc}): {' '.join(guest.cmd)}\n{out}\n{err}")
    frames, nbytes = state["frames"], state["bytes"]
    if frames >= 2 and state["first_ns"] is not None and state["last_ns"] is not None:
        secs, clock = (state["last_ns"] - state["first_ns"]) / 1e9, "kernel"
    elif frames >= 2:
        secs, clock = state["last_mono"] - state["first_mono"], "reader"
    else:
        raise SystemExit(f"tx {vmm.name} size {size}: the host saw {frames} frames\n{out}")
    gf, gb, gms = g
    return {"fps": frames / secs, "mbps": nbytes / secs / 1e6, "frames": frames, "sent": args.count,
            "lost": args.count - frames, "sock_drops": sock_drops, "clock": clock, "secs": secs,
            "guest_fps": gf / (gms / 1e3), "guest_mbps": gb / (gms / 1e3) / 1e6,
            "tap_rx": after["rx_packets"] - before["rx_packets"]}


def make_frames(count, size):
    pad = bytes(k & 0xff for k in range(size))
    out = []
    for j in range(count):
        head = GUEST_MAC + HOST_MAC + ETHERTYPE + b"mote-host bench seq=%d " % j
        out.append(head + pad[len(head):size])
    return out


def run_rx(args, vmm, size, frames):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((TAP, 0))
    before = tap_stats()
    guest = Guest(args, vmm, f"test=netbench dir=rx count={args.count}")
    if not guest.wait_for(b"netbench: rx ready\n"):
        guest.fail("the guest never got ready")
    send = sock.send
    errors = 0
    t0 = time.monotonic()
    for f in frames:
        try:
            send(f)
        except OSError as e:
            if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                raise
            errors += 1
    t1 = time.monotonic()
    rc, out, err = guest.finish_within(120)
    sock.close()
    after = tap_stats()
    g = guest_result(out, "rx")
    if rc != 1 or g is None or "PASS netbench_rx" not in out:
        raise SystemExit(f"{vmm.name} failed (exit {rc}): {' '.join(guest.cmd)}\n{out}\n{err}")
    gf, gb, gms = g
    secs = gms / 1e3
    sent = len(frames) - errors
    return {"fps": gf / secs if secs > 0 else 0.0, "mbps": gb / secs / 1e6 if secs > 0 else 0.0,
            "frames": gf, "sent": sent, "lost": sent - gf, "send_errors": errors,
            "send_fps": sent / (t1 - t0), "secs": secs,
            "tap_dropped": after["tx_dropped"] - before["tx_dropped"],
            "tap_tx": after["tx_packets"] - before["tx_packets"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mote", default=os.path.join(ROOT, "build/vmm/mote"))
    ap.add_argument("--images", default=os.path.join(ROOT, "build/guest-images"),
                    help="where motetest.pvh is")
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--size", default="1514,60", help="frame sizes, comma-separated (60..1514)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--monitors", default="mote-pci,qemu-q35,mote-mmio,qemu-microvm")
    ap.add_argument("--dir", default="tx,rx", help="tx, rx or both (comma-separated)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build/bench/net.md"))
    args = ap.parse_args()
    args.kernel = os.path.join(args.images, "motetest.pvh")
    sizes = [int(s) for s in args.size.split(",")]
    dirs = args.dir.split(",")
    if any(not 60 <= s <= 1514 for s in sizes):
        raise SystemExit("--size: 60..1514")
    if any(d not in ("tx", "rx") for d in dirs):
        raise SystemExit("--dir: tx,rx")
    qemu = qemu_binary()
    known = {"mote-pci": lambda: Mote(args.mote, "pci", "mote-pci"),
             "mote-mmio": lambda: Mote(args.mote, "mmio", "mote-mmio"),
             "qemu-q35": lambda: QemuQ35(qemu), "qemu-microvm": lambda: QemuMicrovm(qemu, rtc=True)}
    monitors = []
    for name in args.monitors.split(","):
        if name not in known:
            raise SystemExit(f"--monitors: unknown {name} (known: {', '.join(known)})")
        if name.startswith("qemu") and qemu is None:
            raise SystemExit("qemu-system-x86_64 is missing: scripts/bench-setup.sh installs it")
        monitors.append(known[name]())
    for path in (args.mote, args.kernel):
        if not os.path.exists(path):
            raise SystemExit(f"{path} not found (build first: ninja -C build)")
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespace, TAP, AF_PACKET)")

    ns = f"mote-bench-{os.getpid()}"
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    began = time.monotonic()
    rows = []
    try:
        # No IPv6 on the TAP: no router solicitations or MLD reports in the counts.
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "tuntap", "add", TAP, "mode", "tap"],
                    ["sysctl", "-qw", f"net.ipv6.conf.{TAP}.disable_ipv6=1"],
                    ["ip", "link", "set", TAP, "up"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            setns(target)
        finally:
            os.close(target)
        for direction in dirs:
            for size in sizes:
                frames = make_frames(args.count, size) if direction == "rx" else None
                samples_of = {vmm.name: [] for vmm in monitors}
                for run in range(args.runs):
                    for vmm in monitors:
                        r = (run_tx(args, vmm, size) if direction == "tx"
                             else run_rx(args, vmm, size, frames))
                        samples_of[vmm.name].append(r)
                        extra = (f"guest {r['guest_fps']:.0f} frames/s, host saw {r['frames']}"
                                 f" (socket drops {r['sock_drops']}, clock {r['clock']})"
                                 if direction == "tx" else
                                 f"guest got {r['frames']} of {r['sent']} (TAP dropped "
                                 f"{r['tap_dropped']}), host sent at {r['send_fps']:.0f} frames/s")
                        log(f"{direction} {vmm.name} {size} run {run + 1}: {r['fps']:.0f} frames/s "
                            f"{r['mbps']:.1f} MB/s; {extra}")
                for name, samples in samples_of.items():
                    rows.append((direction, name, size, samples))
    finally:
        setns(home)
        os.close(home)
        subprocess.run(["ip", "netns", "del", ns])

    med = lambda samples, key: statistics.median(s[key] for s in samples)
    lines = ["| direction | monitor | size | frames/s | MB/s | other end | frames lost |",
             "|---|---|---|---|---|---|---|"]
    for direction, monitor, size, samples in rows:
        if direction == "tx":
            other = f"guest: {med(samples, 'guest_fps'):.0f} frames/s, {med(samples, 'guest_mbps'):.0f} MB/s"
            what = "guest → TAP (host-observed)"
        else:
            other = f"host sent at {med(samples, 'send_fps'):.0f} frames/s"
            what = "TAP → guest (guest-observed)"
        lost = ", ".join(str(s["lost"]) for s in samples)
        lines.append(f"| {direction}: {what} | {monitor} | {size} | {med(samples, 'fps'):.0f} "
                     f"| {med(samples, 'mbps'):.1f} | {other} | {lost} of {samples[0]['sent']} |")
    load = os.getloadavg()
    cmd = " ".join(["tests/bench/net_bench.py"] + sys.argv[1:])
    fps = {(d, m, z): med(smp, "fps") for d, m, z, smp in rows}
    ratio_lines = []
    for d, m, z, _ in rows:
        peer = {"mote-pci": "qemu-q35", "mote-mmio": "qemu-microvm"}.get(m)
        if peer and (d, peer, z) in fps:
            ratio_lines.append(f"- {d} {z} B: {m} / {peer} = {fps[(d, m, z)] / fps[(d, peer, z)]:.2f}")
    notes = [
        f"Median of {args.runs} runs, {args.count} frames each; MB/s = 10^6 bytes of Ethernet frame per "
        "second; frames lost per run. tx: frames/s and MB/s from the host's AF_PACKET socket (kernel "
        "receive timestamps, first to last frame), the guest's own figure beside it. rx: from the "
        "guest's count and its TSC (first to last frame); the host sends back to back.",
        f"Command: `{cmd}`, {time.strftime('%Y-%m-%d %H:%M')}; guest "
        f"{os.path.relpath(args.kernel, ROOT)}, 1 vCPU, 128 MiB.",
        f"Load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores); "
        f"total {time.monotonic() - began:.0f} s.",
    ]
    raw = ["", "Raw samples:"]
    for direction, monitor, size, samples in rows:
        if direction == "tx":
            raw.append(f"- tx {monitor} {size}: " + "; ".join(
                f"{s['fps']:.0f} f/s (guest {s['guest_fps']:.0f}), {s['frames']} seen, socket drops "
                f"{s['sock_drops']}, {s['clock']} clock" for s in samples))
        else:
            raw.append(f"- rx {monitor} {size}: " + "; ".join(
                f"{s['fps']:.0f} f/s, {s['frames']} of {s['sent']}, TAP dropped {s['tap_dropped']}, "
                f"sent at {s['send_fps']:.0f} f/s" for s in samples))
    report = ("\n".join(lines) + "\n\nframes/s ratios:\n" + "\n".join(ratio_lines) + "\n\n"
              + "\n".join(notes) + "\n" + "\n".join(raw) + "\n")
    print(report)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("# virtio-net throughput: the tiny guest's driver under mote and QEMU, through a TAP\n\n"
                + report)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
