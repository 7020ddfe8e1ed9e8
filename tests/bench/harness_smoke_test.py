#!/usr/bin/env python3
"""The benchmark harness still measures: tests/bench/compare.py --smoke runs
every section for a few launches, and every monitor gets a figure in every
column. mote's first KVM_RUN comes from its own report and, separately, from
the kernel's tracepoint: the two must agree.

Usage: harness_smoke_test.py --mote PATH --images DIR
Exits 0 on pass, 1 on failure, 77 (meson's "skip") without /dev/kvm.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def rows(md, heading):
    """The body rows (lists of cells) of the table under `heading`."""
    section = md.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]


def median(cell):
    m = re.match(NUMBER, cell)
    if not m:
        raise AssertionError(f"no figure in {cell!r}")
    return float(m.group(0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mote", required=True)
    ap.add_argument("--images", required=True)
    args = ap.parse_args()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIPPED: no usable /dev/kvm")
        return 77
    with tempfile.TemporaryDirectory() as out:
        p = subprocess.run([sys.executable, os.path.join(HERE, "compare.py"), "--smoke", "--runs", "2",
                            "--mote", os.path.abspath(args.mote), "--images", args.images, "--out", out],
                           capture_output=True, text=True, timeout=900)
        print(p.stdout)
        print(p.stderr, file=sys.stderr)
        if p.returncode != 0:
            print(f"FAIL: compare.py exit {p.returncode}")
            return 1
        with open(os.path.join(out, "compare.md")) as f:
            md = f.read()
    monitors = {"mote", "floor+irqchip", "qemu-microvm"}
    startup = {r[1]: r for r in rows(md, "Start-up")}
    memory = rows(md, "VMM memory overhead")
    exits = rows(md, "One exit round trip")
    rate = rows(md, "Launch rate")
    try:
        assert set(startup) == monitors, f"start-up rows {sorted(startup)}"
        for name, r in startup.items():
            first, traced, boot, exit_ = (median(c) for c in r[2:6])
            assert 0 < first <= boot <= exit_, f"{name}: first KVM_RUN {first}, boot {boot}, exit {exit_}"
        mote_first, mote_traced = median(startup["mote"][2]), median(startup["mote"][3])
        # The report and the kernel's tracepoint time the same ioctl.
        assert abs(mote_first - mote_traced) < 1.0, \
            f"mote's report says {mote_first} ms, the tracepoint {mote_traced} ms"
        assert {(r[0], r[1]) for r in memory} == {(m, n) for m in ("128 MiB", "2048 MiB") for n in monitors}
        for r in memory:
            resident, pss, dirty = (median(c) for c in r[2:5])
            assert 0 < dirty <= resident and 0 < pss <= resident, f"memory row {r}"
        assert [r[0] for r in rate] == ["1", "8"], f"rate rows {rate}"
        for r in rate:
            assert all(median(c) > 0 for c in r[1:]), f"rate row {r}"
        assert {(r[0], r[1]) for r in exits} == {(k, n) for k in ("pio", "mmio") for n in ("mote", "qemu-microvm")}
    except AssertionError as e:
        print(f"FAIL: {e}")
        return 1
    print("PASS: every section has a figure for every monitor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
