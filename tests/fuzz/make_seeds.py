#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into tests/fuzz/corpus/<target>/.

Seeds are meaningful inputs in each target's input format (see the target's
header comment and fuzz_support.h): rings holding valid and broken chains,
register scripts that bring a device up and use it, QMP sessions, VM
descriptions and small kernel images of every format. libFuzzer starts from
them, so a short fuzz-smoke run already reaches deep code.
Run it after changing an input format; the output is committed.
  tests/fuzz/make_seeds.py [--mini-pvh build/guest-images/mini.pvh]
"""
import argparse
import functools
import json
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from kernel_images import bzimage, elf32, elf64, note  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

DESC_TABLE, AVAIL, USED = 0x1000, 0x2000, 0x3000
TX_RINGS = 0x4000
DATA = 0x8000
RAM_HIGH = 0x100000
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


class Ram:
    """Low guest RAM from DESC_TABLE up, as the ring targets read it."""

    def __init__(self):
        self.b = bytearray()
        self.next_data = DATA

    def put(self, gpa, data):
        off = gpa - DESC_TABLE
        if len(self.b) < off + len(data):
            self.b.extend(b"\0" * (off + len(data) - len(self.b)))
        self.b[off:off + len(data)] = data

    def alloc(self, data_or_len):
        data = bytes(data_or_len) if not isinstance(data_or_len, int) else b"\0" * data_or_len
        gpa = self.next_data
        self.put(gpa, data)
        self.next_data = (gpa + max(len(data), 1) + 15) & ~15
        return gpa

    def queue(self, chains, desc=DESC_TABLE, avail=AVAIL, start=0, avail_flags=0):
        """chains: lists of (gpa, len, flags-without-NEXT); writes the
        descriptors and makes each chain available, from `start`."""
        i = 0
        heads = []
        for chain in chains:
            heads.append(i)
            for k, (gpa, length, flags) in enumerate(chain):
                nxt = i + 1 if k + 1 < len(chain) else 0
                fl = flags | (F_NEXT if k + 1 < len(chain) else 0)
                self.put(desc + 16 * i, struct.pack("<QIHH", gpa, length, fl, nxt))
                i += 1
        self.put(avail, struct.pack("<HH", avail_flags, (start + len(chains)) & 0xffff))
        for n, h in enumerate(heads):
            self.put(avail + 4 + 2 * ((start + n) % 256), struct.pack("<H", h))

    def raw_desc(self, index, gpa, length, flags, nxt, desc=DESC_TABLE):
        self.put(desc + 16 * index, struct.pack("<QIHH", gpa, length, flags, nxt))


def ring_header(log2size=8, event_idx=False, indirect=False, start=0, count=4, options=0):
    return struct.pack("<BBHBB", log2size, (1 if event_idx else 0) | (2 if indirect else 0),
                       start, count, options)


# ---- queue -------------------------------------------------------------------

def queue_seeds():
    r = Ram()
    a, b = r.alloc(b"request"), r.alloc(64)
    r.queue([[(a, 7, 0), (b, 64, F_WRITE)], [(r.alloc(b"x" * 100), 100, 0)]])
    write("queue", "two_chains", ring_header() + r.b)

    r = Ram()
    table = r.alloc(48)
    r.put(table, struct.pack("<QIHH", r.alloc(b"hdr"), 3, F_NEXT, 1) +
          struct.pack("<QIHH", r.alloc(32), 32, F_WRITE | F_NEXT, 2) +
          struct.pack("<QIHH", RAM_HIGH + 16, 64, F_WRITE, 0))
    r.queue([[(table, 48, F_INDIRECT)]])
    write("queue", "indirect", ring_header(indirect=True) + r.b)
    write("queue", "event_idx", ring_header(event_idx=True, start=65530) + r.b)

    r = Ram()
    r.raw_desc(0, r.alloc(16), 16, F_NEXT, 1)
    r.raw_desc(1, r.alloc(16), 16, F_NEXT, 0)  # loops back to 0
    r.put(AVAIL, struct.pack("<HHH", 0, 1, 0))
    write("queue", "loop", ring_header(log2size=2) + r.b)

    r = Ram()
    table = r.alloc(16)
    r.put(table, struct.pack("<QIHH", table, 16, F_INDIRECT, 0))  # a table naming itself
    r.queue([[(table, 16, F_INDIRECT)], [(0xfffffffffffff000, 0xffffffff, 0)],
             [(RAM_HIGH + 0xff00, 0x1000, F_WRITE)], [(r.alloc(8), 8, F_WRITE), (r.alloc(8), 8, 0)]])
    write("queue", "malicious", ring_header(indirect=True) + r.b)
    r.put(AVAIL, struct.pack("<HH", 0, 4000))  # idx far ahead of the device
    write("queue", "idx_ahead", ring_header() + r.b)


# ---- virtio-blk ----------------------------------------------------------------

IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES = 0, 1, 4, 8, 11, 13


def blk_request(r, rtype, sector, data_len=0, data_write=True, payload=None, status=True):
    chain = [(r.alloc(struct.pack("<IIQ", rtype, 0, sector)), 16, 0)]
    if payload is not None:
        chain.append((r.alloc(payload), len(payload), 0))
    elif data_len:
        chain.append((r.alloc(data_len), data_len, F_WRITE if data_write else 0))
    if status:
        chain.append((r.alloc(b"\xff"), 1, F_WRITE))
    return chain


def blk_seeds():
    r = Ram()
    chains = [
        blk_request(r, IN, 0, 512),
        blk_request(r, OUT, 1, payload=b"\xab" * 1024),
        blk_request(r, FLUSH, 0),
        blk_request(r, GET_ID, 0, 20),
        blk_request(r, DISCARD, 0, payload=struct.pack("<QII", 2, 4, 0)),
        blk_request(r, WRITE_ZEROES, 0, payload=struct.pack("<QII", 8, 8, 1)),
    ]
    r.queue(chains)
    write("virtio_blk", "all_types", ring_header(options=2) + r.b)
    write("virtio_blk", "all_types_readonly", ring_header(options=3) + r.b)

    r = Ram()
    r.queue([blk_request(r, IN, 63, 1024), blk_request(r, OUT, 2**63, payload=b"\0" * 512),
             blk_request(r, IN, 0, 511), blk_request(r, IN, 0, 512, status=False),
             blk_request(r, 99, 0, 512), blk_request(r, DISCARD, 0, payload=b"\0" * 15)])
    write("virtio_blk", "bad_requests", ring_header(event_idx=True) + r.b)

    r = Ram()
    table = r.alloc(48)
    hdr, data, st = r.alloc(struct.pack("<IIQ", IN, 0, 4)), r.alloc(4096), r.alloc(b"\xff")
    r.put(table, struct.pack("<QIHH", hdr, 16, F_NEXT, 1) + struct.pack("<QIHH", data, 4096, F_WRITE | F_NEXT, 2) +
          struct.pack("<QIHH", st, 1, F_WRITE, 0))
    r.queue([[(table, 48, F_INDIRECT)]])
    write("virtio_blk", "indirect_read", ring_header(indirect=True) + r.b)


# ---- virtio-net ----------------------------------------------------------------

def net_seeds():
    frame = b"\0" * 12 + bytes(range(60))
    for options, name in ((1, "mergeable"), (0, "plain"), (3, "mergeable_offload")):
        r = Ram()
        rx = [[(r.alloc(1526), 1526, F_WRITE)] for _ in range(4)]
        if options & 1:
            rx.append([(r.alloc(100), 100, F_WRITE), (r.alloc(2000), 2000, F_WRITE)])
        r.queue(rx)
        tx = [[(r.alloc(frame), len(frame), 0)], [(r.alloc(frame[:12]), 12, 0), (r.alloc(frame[12:]), 60, 0)],
              [(r.alloc(frame[:5]), 5, 0)]]
        r.queue(tx, desc=TX_RINGS, avail=TX_RINGS + 0x1000)
        frames = [frame, b"\0" * 12 + b"\xff" * 1500, b"", b"\x01" * 5, b"\0" * 12 + b"\x22" * 3000]
        blob = bytes([len(frames)]) + b"".join(struct.pack("<H", len(f)) + f for f in frames)
        write("virtio_net", name, ring_header(options=options) + blob + r.b)


# ---- register scripts ----------------------------------------------------------

WIDTH = {1: 0, 2: 1, 4: 2, 8: 3}


def w(offset, value, width=4, action=True):
    """A register write; `action`: led by RunScript's action byte."""
    return bytes([0] if action else []) + bytes([1 | WIDTH[width] << 1]) + struct.pack("<IQ", offset, value)


def rd(offset, width=4, action=True):
    return bytes([0] if action else []) + bytes([WIDTH[width] << 1]) + struct.pack("<I", offset)


def ram(gpa, data):
    out = b""
    for i in range(0, len(data), 255):
        chunk = data[i:i + 255]
        out += bytes([6]) + struct.pack("<HB", gpa + i, len(chunk)) + chunk
    return out


RUN_LOOP = bytes([7])


def blk_ring_image():
    """A read request on a queue of 8 at 0x10000-ish... placed in low RAM."""
    r = Ram()
    r.queue([blk_request(r, IN, 1, 512), blk_request(r, GET_ID, 0, 20)])
    return bytes(r.b)


def mmio_seeds():
    def init(features_lo, features_hi):
        return (w(0x70, 0) + w(0x70, 1) + w(0x70, 3) + rd(0x10) + w(0x14, 1) + rd(0x10) +
                w(0x24, 0) + w(0x20, features_lo) + w(0x24, 1) + w(0x20, features_hi) + w(0x70, 11) + rd(0x70))

    def queue(index, size):
        return (w(0x30, index) + rd(0x34) + w(0x38, size) + w(0x80, DESC_TABLE) + w(0x84, 0) +
                w(0x90, AVAIL) + w(0x94, 0) + w(0xa0, USED) + w(0xa4, 0) + w(0x44, 1))

    for kind, name in ((0, "blk"), (1, "net"), (2, "rng")):
        script = init(0, 1) + queue(0, 8) + (queue(1, 8) if kind == 1 else b"") + w(0x70, 15)
        if kind == 0:
            script += ram(DESC_TABLE, blk_ring_image()[:0x2000])
        else:
            r = Ram()
            r.queue([[(r.alloc(64), 64, F_WRITE)]])
            script += ram(DESC_TABLE, bytes(r.b[:0x1100])) + ram(DATA, b"\0" * 8)
        script += w(0x50, 0) + RUN_LOOP + rd(0x60) + w(0x64, 1) + rd(0x100, 1) + rd(0x104, 2) + rd(0xfc)
        script += w(0x70, 0) + rd(0x44) + w(0x30, 7) + w(0x50, 9) + RUN_LOOP
        write("virtio_mmio", name, bytes([kind]) + script)


PCI_CFG = 0x8000


def pci_transport_seeds():
    def cw(off, value, width=4):
        return w(PCI_CFG + off, value, width)

    def crd(off, width=4):
        return rd(PCI_CFG + off, width)

    common = 0x0000
    notify = 0x3000
    msix = 0x4000
    for kind, name in ((0, "blk"), (1, "net"), (2, "rng")):
        s = crd(0) + crd(0x34, 1) + cw(0x10, 0xffffffff) + crd(0x10) + cw(0x10, 0xc0008000) + cw(4, 6, 2)
        s += crd(0x40) + crd(0x50) + crd(0x60) + crd(0x70) + crd(0x80) + crd(0x90)
        s += cw(0x42, 0x8000, 2) + cw(0x52, 0x8000, 2) + cw(0x62, 0x8000, 2) + cw(0x72, 0x8000, 2)  # MSI-X enable, wherever it is
        s += w(msix + 0, 0xfee00000) + w(msix + 4, 0) + w(msix + 8, 0x41) + w(msix + 12, 0)
        s += w(common + 0x14, 0, 1) + w(common + 0x14, 3, 1) + w(common + 0, 1) + rd(common + 4)
        s += w(common + 8, 0) + w(common + 0xc, 0) + w(common + 8, 1) + w(common + 0xc, 1) + w(common + 0x14, 11, 1)
        s += w(common + 0x10, 0, 2) + w(common + 0x16, 0, 2) + w(common + 0x18, 8, 2) + w(common + 0x1a, 0, 2)
        s += w(common + 0x20, DESC_TABLE, 8) + w(common + 0x28, AVAIL) + w(common + 0x2c, 0) + w(common + 0x30, USED, 8)
        s += w(common + 0x1c, 1, 2) + w(common + 0x14, 15, 1) + rd(common + 0x1e, 2)
        s += ram(DESC_TABLE, blk_ring_image()[:0x2000]) if kind == 0 else b""
        s += w(notify, 0, 2) + RUN_LOOP + rd(0x1000, 1) + rd(0x2000, 4) + rd(0x6000, 8)
        s += w(common + 0x16, 200, 2) + w(common + 0x1c, 1, 2) + w(common + 0x14, 0, 1) + cw(0x10, 0x10000000) + RUN_LOOP
        s += cw(0x80, 0x12345678) + crd(0x88)  # the PCI-cfg window, if there
        write("virtio_pci", name, bytes([kind]) + s)


def pci_seeds():
    def latch(dev, reg, fn=0, bus=0, enable=True):
        return w(0, (0x80000000 if enable else 0) | bus << 16 | dev << 11 | fn << 8 | reg)

    s = b""
    for dev in range(4):
        s += latch(dev, 0) + rd(4) + latch(dev, 0x10) + w(4, 0xffffffff) + rd(4) + latch(dev, 0x10) + rd(4, 2) + rd(6, 1)
    s += latch(1, 4) + w(4, 6, 2) + latch(1, 0x34) + rd(4, 1) + latch(1, 0, bus=1) + rd(4) + latch(1, 0, enable=False) + rd(4)
    ecam = 0x1000
    s += rd(ecam) + rd(ecam + (1 << 15)) + rd(ecam + (2 << 15) + 0x10) + w(ecam + (1 << 15) + 0x10, 0xc0010000)
    s += w(ecam + (2 << 15) + 0x10, 0xc0010000) + rd(ecam + (31 << 15) + (7 << 12)) + rd(ecam + (1 << 20) - 4)
    window = ecam + 0x100000
    s += rd(window) + rd(window + 0x10000) + w(window + 0x10014, 3, 1) + rd(window + 0x8000 + 0x12, 2) + RUN_LOOP
    s += w(ecam + (1 << 15) + 4, 0, 2) + rd(window + 0x10000)
    write("pci", "enumerate_and_move_bars", s)
    write("pci", "odd_widths", b"".join(bytes([0, 1 | k << 1]) + struct.pack("<IQ", o, 0x80000800 + o)
                                         for k in range(8) for o in (0, 1, 3, 4, 5, 7)))


def device_seeds():
    # serial: base = 0x3f8 - 4
    s = b"".join([w(4 + 3, 0x80, 1), w(4, 0x01, 1), w(5, 0, 1), w(4 + 3, 0x03, 1), w(4 + 1, 0x0f, 1),
                  w(4 + 2, 0xc7, 1), w(4 + 4, 0x0b, 1)])
    s += b"".join(w(4, c, 1) for c in b"hello\n") + rd(4 + 5, 1) + rd(4 + 2, 1)
    s += bytes([7, 5]) + b"input" + rd(4, 1) + rd(4 + 5, 1) + rd(4 + 6, 1) + w(4 + 7, 0x55, 1) + rd(4 + 7, 1)
    s += rd(0, 4) + w(10, 0xffff, 2) + rd(11, 8)
    write("serial", "driver", s)
    # The other devices' targets read accesses with no action byte.
    pw = functools.partial(w, action=False)
    prd = functools.partial(rd, action=False)
    # cmos: base = 0x70 - 4; index at 4, data at 5
    s = struct.pack("<q", 1700000000)
    for reg in (0, 2, 4, 6, 7, 8, 9, 0x32, 0x0a, 0x0b, 0x0c, 0x0d, 0x10, 0x7f, 0x80, 0xff):
        s += pw(4, reg, 1) + prd(5, 1)
    s += pw(4, 0x0b, 1) + pw(5, 0x06, 1) + pw(4, 0, 1) + prd(5, 1) + pw(4, 4, 1) + prd(5, 1) + pw(4, 0x0b, 1) + pw(5, 0x02, 1)
    s += pw(4, 0x40, 1) + pw(5, 0x12, 1) + prd(4, 2) + prd(5, 4)
    write("cmos_rtc", "read_clock", s)
    # i8042: base 0x5c; data 0x60 at 4, command 0x64 at 8
    s = b"".join([prd(8, 1), pw(8, 0x20, 1), prd(4, 1), pw(8, 0x60, 1), pw(4, 0x47, 1), pw(8, 0xd1, 1), pw(4, 0xdf, 1),
                  pw(8, 0xaa, 1), prd(4, 1), pw(8, 0xd0, 1), prd(4, 1), pw(4, 0xff, 1), prd(4, 1), pw(8, 0xfe, 1),
                  pw(8, 0xe0, 1), prd(4, 4), pw(7, 0xffff, 2)])
    write("i8042", "commands", s)
    s = b"".join([pw(0x440, 1, 1), pw(0x505, 1, 1), pw(0x505, 2, 1), prd(0x505, 1), pw(0xf4, 0x10, 4), pw(0xf4, 0, 1),
                  pw(0x600, 5 << 2 | 1 << 5, 1), pw(0x601, 0, 1), pw(0x602, 1, 1), prd(0x600, 1), pw(0xf2, 0x12345678, 8)])
    write("guest_ports", "events", s)


def fw_cfg_seeds():
    """Input: u8 flags, u8 file count, u16 size per file, u16 n + n bytes of RAM
    from 0, then accesses over 0x50c.. (selector at 4, data at 5, the DMA
    address register at 8, its low half at 12)."""
    pw = functools.partial(w, action=False)
    prd = functools.partial(rd, action=False)

    def be32(v):  # the value whose little-endian bytes are v big-endian
        return struct.unpack("<I", struct.pack(">I", v))[0]

    def dma(at):
        return pw(8, be32(0), 4) + pw(12, be32(at), 4)

    def access(control, length, address):
        return struct.pack(">IIQ", control, length, address)

    sizes = [300, 4096, 1, 8192]
    header = bytes([0, len(sizes)]) + b"".join(struct.pack("<H", n) for n in sizes)
    select, read, skip, dma_write = 0x08, 0x02, 0x04, 0x10
    ram = bytearray(0x200)
    structs = [access(0x19 << 16 | select | read, 4 + 64 * len(sizes), 0x1000),  # directory
               access(0x20 << 16 | select | read, 300, 0x2000),                  # first file
               access(0x21 << 16 | select | skip, 100, 0),
               access(read, 0x2000, 0xfff0),                                     # into the hole
               access(0x22 << 16 | select | dma_write, 1, 0x3000),
               access(0x1234 << 16 | select | read, 0x100000, 0x100000),         # zeros, high RAM
               access(read, 0x10, 0xfffffffffffffff8)]                           # wraps
    for i, st in enumerate(structs):
        ram[0x100 + 0x20 * i:0x100 + 0x20 * i + 16] = st
    s = header + struct.pack("<H", len(ram)) + bytes(ram)
    s += pw(4, 0, 2) + b"".join(prd(5, 1) for _ in range(4)) + pw(4, 1, 2) + prd(5, 4)
    s += pw(4, 0x19, 2) + prd(5, 4) + prd(5, 8) + pw(4, 0x4005, 2) + prd(5, 2) + pw(4, 0x8000, 2) + prd(5, 1)
    s += prd(8, 8) + prd(12, 4) + prd(6, 2)
    for i in range(len(structs)):
        s += dma(0x100 + 0x20 * i)
    s += pw(8, struct.unpack("<Q", struct.pack(">Q", 0x100))[0], 8)  # one 8-byte write
    s += dma(0x10000 - 8) + dma(0x200000) + pw(5, 0x41, 1) + pw(4, 0x15, 1) + prd(5, 2)
    write("fw_cfg", "driver", s)
    write("fw_cfg", "no_dma", bytes([1]) + s[1:])


def hpet_seeds():
    """Input: u32 route cap, then steps: u8 action (0-3 access, 4 clock
    advance u32 ns << u8 shift, 5 OnTimerDeadline(i8), 6 run due host
    callbacks, 7 Reset)."""
    cap = struct.pack("<I", 1 << 2 | 1 << 8 | 0xff << 16)

    def tcfg(n):
        return 0x100 + 0x20 * n

    def cmp(n):
        return 0x108 + 0x20 * n

    def advance(ns, shift=0):
        return bytes([4]) + struct.pack("<IB", ns, shift)

    def deadline(t):
        return bytes([5]) + struct.pack("<b", t)

    run, reset = bytes([6]), bytes([7])
    level, int_enb, periodic, val_set, mode32 = 1 << 1, 1 << 2, 1 << 3, 1 << 6, 1 << 8

    def route(pin):
        return pin << 9

    # Linux's legacy periodic clockevent, then one-shot mode, as hpet.c drives it.
    s = rd(0) + rd(4) + w(0x10, 0) + w(0xf0, 0) + w(0xf4, 0)
    s += rd(tcfg(0)) + w(tcfg(0), int_enb | periodic | val_set | mode32) + w(cmp(0), 100000) + w(cmp(0), 100000)
    s += w(0x10, 3) + advance(1000000) + run + rd(0xf0) + advance(10, 20) + run + rd(cmp(0)) + deadline(0)
    s += w(tcfg(0), int_enb | mode32) + w(0x10, 2) + w(0xf0, 0) + w(0x10, 3) + rd(0xf0) + w(cmp(0), 50000) + advance(600000) + run + run
    s += w(0x10, 1) + rd(0xf0, 8) + advance(5000, 10) + run + reset + rd(0x10)
    write("hpet", "linux_legacy", cap + s)
    # Level-triggered timers routed to IOAPIC pins, status clear, a refused route.
    s = w(tcfg(2), level | int_enb | route(20), 8) + w(cmp(2), 1000, 8) + w(tcfg(1), int_enb | route(5))
    s += w(tcfg(1), int_enb | route(22)) + w(cmp(1), 2000) + w(cmp(1) + 4, 0) + w(0x10, 1) + advance(20000) + run
    s += rd(0x20) + w(0x20, 4) + rd(0x20) + w(tcfg(0), level | route(16)) + w(cmp(0), 0x1000000) + advance(1, 28)
    s += rd(0x20) + w(tcfg(0), level | int_enb | route(16)) + w(0x10, 3) + w(0x20, 7, 8) + w(tcfg(2), mode32 | level)
    s += rd(cmp(2), 8) + w(0xf0, 0xfffffff0) + w(0x10, 0) + w(0xf0, 0xfffffff0) + w(0x10, 1) + advance(1000) + run
    write("hpet", "level_routes", cap + s)
    # A hostile guest: tiny and zero periods, comparators behind the counter,
    # stale and out-of-range callbacks, huge clock jumps.
    s = w(tcfg(0), int_enb | periodic | val_set | route(2), 8) + w(cmp(0), 10, 8) + w(cmp(0), 1, 8)
    s += w(tcfg(1), int_enb | periodic | val_set | route(8)) + w(cmp(1), 5) + w(cmp(1), 0)
    s += w(0xf0, 0xffffffffffffff00, 8) + w(tcfg(2), int_enb | route(23)) + w(cmp(2), 0x10, 8) + w(0x10, 1)
    s += advance(0xffffffff, 30) + run + deadline(-1) + deadline(3) + deadline(127) + deadline(1) + run
    s += advance(1000) + run + w(cmp(0), 0xffffffffffffffff, 8) + advance(1, 5) + run + rd(cmp(0), 8) + rd(0xf0, 8)
    write("hpet", "hostile", bytes([0xff, 0xff, 0xff, 0xff]) + s)
    # Every width at every kind of offset.
    s = b"".join(bytes([0, 1 | k << 1]) + struct.pack("<IQ", o, 0x3 | 1 << 8) + bytes([0, k << 1]) + struct.pack("<I", o)
                 for k in range(8) for o in (0x0, 0x4, 0x10, 0x12, 0x20, 0xf0, 0xf4, 0xf6, 0x100, 0x104, 0x108,
                                             0x10c, 0x110, 0x160, 0x3fc))
    write("hpet", "odd_widths", cap + s)


def qmp_seeds():
    cap = '{"execute": "qmp_capabilities"}\n'
    sessions = {
        "status": cap + '{"execute": "query-status", "id": 1}\n',
        "every_command": cap + "".join(f'{{"execute": "{c}", "id": "{c}"}}\n' for c in (
            "query-version", "query-name", "query-commands", "query-status", "stop", "cont",
            "system_powerdown", "system_reset", "query-cpus-fast", "query-memory-size-summary",
            "query-block", "query-blockstats", "x-mote-query-counters", "quit")),
        "before_negotiation": '{"execute": "query-status"}\n' + cap + cap,
        "bad_json": cap + '{"execute": \n}}}[[["\\u00zz\n{"execute": "query-status"}\n',
        "wrong_types": cap + '{"execute": 5}\n{"execute": "stop", "arguments": []}\n[1,2]\n"str"\n'
                       '{"execute": "cont", "arguments": {"x": 1}, "id": {"a": [1]}}\n{"exec": "x"}\n',
        "nested": cap + "[" * 2000 + "]" * 2000 + "\n" + '{"a":' * 100 + "1" + "}" * 100 + "\n",
        "split_values": cap + '{"execute":"query-status"}{"execute":"query-name"} {"execute": "query-version"}',
        "unknown": cap + '{"execute": "no-such-command", "id": 7}\n{"execute": "query-status", "control": {}}\n',
    }
    for name, text in sessions.items():
        write("qmp", name, text)


def config_seeds():
    configs = {
        "minimal": {"kernel": "/boot/vmlinuz"},
        "full": {"kernel": "k", "initrd": "i", "cmdline": "console=ttyS0", "cpus": 2, "memory": "256M",
                 "cpu": "host,-x2apic", "pit": "auto", "console": "stdio", "timeout": "10s",
                 "expect": "^boot (done|ok)$", "on_reboot": "exit", "transport": "pci", "rng": True,
                 "disks": [{"path": "a.img"}, {"path": "b.img", "readonly": True, "id": "data", "serial": "S",
                                                "cache": "none"}],
                 "nets": [{"tap": "tap0", "mac": "52:54:00:12:34:56"}], "api_socket": "/tmp/s", "paused": True,
                 "name": "n", "log_level": "off"},
        "wrong_types": {"kernel": 5, "cpus": "two", "memory": -1, "disks": {"path": 1}},
        "limits": {"kernel": "k", "cpus": 100000, "memory": "99999999T", "timeout": "-1s"},
    }
    for name, value in configs.items():
        write("config_json", name, json.dumps(value, indent=1))
    write("config_json", "not_json", '{"kernel": "k",,, ')
    write("config_json", "unicode", '{"kernel": "\\ud800\\udc00\\u0000", "name": "\xff\xfe"}')


# ---- kernel images -------------------------------------------------------------

def kernel_seeds(mini_pvh):
    code = b"\xf4" * 64
    pvh = elf64([(0x100000, code, 0x2000)], 0xffffffff81000000,
                notes=note("GNU", 3, b"\xab" * 20) + note("Xen", 18, struct.pack("<I", 0x100000)))
    write("loader_pvh", "synthetic", pvh)
    write("loader_pvh", "two_segments", elf64([(0x100000, code, 64), (0x200000, code, 0x100000)], 0,
                                             notes=note("Xen", 18, struct.pack("<Q", 0x200010))))
    if mini_pvh and os.path.exists(mini_pvh):
        shutil.copy(mini_pvh, os.path.join(CORPUS, "loader_pvh", "mini.pvh"))
    write("loader_elf64", "one_segment", elf64([(0x100000, code, 0x1000)], 0x100000))
    write("loader_elf64", "overlap", elf64([(0x100000, code, 0x1000), (0x100800, code, 0x1000)], 0x100000))
    write("loader_elf64", "entry_outside", elf64([(0x100000, code, 64)], 0x900000))
    write("loader_elf64", "wrong_machine", elf64([(0x100000, code, 64)], 0x100000, machine=3))

    def mb_header(flags):
        return struct.pack("<III", 0x1BADB002, flags, (-(0x1BADB002 + flags)) & 0xffffffff)

    write("loader_multiboot", "elf32", elf32([(0x100000, mb_header(0) + code, 0x2000)], 0x10000c))
    write("loader_multiboot", "meminfo", elf32([(0x100000, mb_header(3) + code, 0x100)], 0x10000c))
    write("loader_multiboot", "aout_kludge", elf32([(0x100000, mb_header(1 << 16) + b"\0" * 20 + code, 0x100)], 0x100000))

    write("loader_bzimage", "v2_15", bzimage())
    write("loader_bzimage", "old_protocol", bzimage(version=0x0204, xloadflags=0))
    write("loader_bzimage", "zero_setup_sects", bzimage(setup_sects=0))
    write("loader_bzimage", "huge_init_size", bzimage(init_size=0xffffffff, pref=0xfffffffffff00000))
    write("loader_bzimage", "truncated", bzimage()[:0x230])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mini-pvh", default=os.path.join(HERE, "..", "..", "build", "guest-images", "mini.pvh"))
    args = ap.parse_args()
    shutil.rmtree(CORPUS, ignore_errors=True)
    queue_seeds()
    blk_seeds()
    net_seeds()
    mmio_seeds()
    pci_transport_seeds()
    pci_seeds()
    device_seeds()
    fw_cfg_seeds()
    hpet_seeds()
    qmp_seeds()
    config_seeds()
    kernel_seeds(args.mini_pvh)
    for d in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, d))
        print(f"{d}: {len(files)} seeds")


if __name__ == "__main__":
    main()
