#!/usr/bin/env python3
"""The host end of the virtio-net boot test. Runs inside the test's own network
namespace (which holds the TAP), starts mote, checks every frame the guest
sends (byte for byte, guest-images/tiny/README.md "virtio-net"), then sends
the guest `count` frames of its own, optionally mixed with frames the guest
must ignore. Exits 0 when all guest frames arrived intact and mote exited 1
(the guest's PASS); prints mote's output.

Usage: net_peer.py --iface TAP --mac MAC [--count N] [--size BYTES] [--junk] -- MOTE ARGS...
"""
import argparse
import select
import socket
import subprocess
import sys
import time

ETH_P_ALL = 0x0003
ETHERTYPE = (0x88b5).to_bytes(2, "big")
HOST_SIZES = [200, 1514, 777, 200, 1000, 1513, 201, 1514]


def guest_frame(mac, i, size):
    head = b"\xff" * 6 + mac + ETHERTYPE + b"mote-guest seq=%d " % i
    return head + bytes((i + k) & 0xff for k in range(size - len(head)))


def host_frame(dst, j, size):
    head = dst + bytes.fromhex("020000000002") + ETHERTYPE + b"mote-host seq=%d " % j
    return head + bytes((j * 3 + k) & 0xff for k in range(size - len(head)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--mac", required=True)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--junk", action="store_true")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    mac = bytes.fromhex(args.mac.replace(":", ""))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((args.iface, 0))
    mote = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    seen, bad = set(), 0
    deadline = time.monotonic() + 30
    while len(seen) < args.count and time.monotonic() < deadline and mote.poll() is None:
        ready, _, _ = select.select([sock], [], [], 0.2)
        if not ready:
            continue
        data, addr = sock.recvfrom(65536)
        if addr[2] == socket.PACKET_OUTGOING or data[12:14] != ETHERTYPE:
            continue  # our own frames, or the kernel's (IPv6 solicitations...)
        if not data[14:].startswith(b"mote-guest seq="):
            continue
        i = int(data[29:].split(b" ")[0])
        if data != guest_frame(mac, i, args.size):
            bad += 1
            print(f"peer: guest frame seq={i} ({len(data)} bytes) is not what the guest sent")
        seen.add(i)
    print(f"peer: received {len(seen)} of {args.count} guest frames intact ({bad} damaged)")
    for j in range(args.count):
        if args.junk:
            sock.send(b"\xff" * 6 + bytes(6) + b"\x08\x06" + bytes(46))          # ARP-typed
            sock.send(mac + bytes(6) + ETHERTYPE + b"mote-hosts" + bytes(100))  # wrong prefix
        sock.send(host_frame(mac, j, HOST_SIZES[j % len(HOST_SIZES)]))
    print(f"peer: sent {args.count} frames to the guest")
    try:
        out, _ = mote.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        mote.kill()
        out, _ = mote.communicate()
    print(out.decode(errors="replace"))
    print(f"peer: mote exit {mote.returncode}")
    ok = mote.returncode == 1 and bad == 0 and len(seen) == args.count
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
