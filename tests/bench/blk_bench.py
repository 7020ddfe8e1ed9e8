#!/usr/bin/env python3
"""virtio-blk throughput of the tiny guest's driver under mote and under QEMU
(the same guest, the same disk image, O_DIRECT on both), against the host's
own O_DIRECT figures (fio) for the same file.

Usage: tests/bench/blk_bench.py [--mote build/vmm/mote]
       [--kernel build/guest-images/motetest.pvh] [--runs 3] [--fio-runtime 5]
       [--monitors mote-pci,qemu-q35,mote-mmio,qemu-microvm] [--buffered]
       [--only NAME[,NAME...]] [--out build/bench/blk.md]
Not part of the default test run. Needs root (/dev/kvm, drop_caches), fio and
qemu-system-x86 (scripts/bench-setup.sh installs them).

The disk is a 1 GiB raw image of random data, build/bench/blk-bench.img
(made once, reused; not /tmp, which may be tmpfs); write modes use a copy,
build/bench/blk-bench-write.img. For every configuration (mode, bs, depth):

- each monitor runs `test=blk op=bench mode=... bs=... depth=... [count=...]`
  (guest-images/tiny/tests/blk_bench.c) on the image opened O_DIRECT: mote
  `--disk path=IMG,cache=none` over virtio-pci and virtio-mmio, QEMU
  `cache=none,aio=io_uring` as virtio-blk-pci on q35 and virtio-blk-device on
  microvm (and, with --buffered, mote through the page cache too). The time
  is taken here, with time.monotonic(), from the read of the console that
  completes the `bench: start` line (printed immediately before the first
  submission) to the read that first holds `bench: done` (printed right after
  the last completion); the pipe is read unbuffered. Seq modes move the whole
  disk, rand modes `count` requests at bs-aligned random offsets.
- fio runs the same pattern on the same file on the host: --direct=1
  --ioengine=io_uring --bs --iodepth --rw, --time_based --runtime.

Before every measurement (mote or fio) the page cache is written back (sync)
and dropped (echo 3 > /proc/sys/vm/drop_caches) when this is allowed, so
buffered reads come from the disk; the report says whether that was done.
Each measurement runs --runs times, the monitors and fio alternating; the
median is reported.
MB/s is 10^6 bytes per second. mote's write modes issue no FLUSH (like fio
--direct=1 without fsync): buffered writes then end in the host's page cache.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

from vmms import Mote, QemuMicrovm, QemuQ35, qemu_binary, run_timed

GIB = 1 << 30
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name, mode, bs, depth, count (None: the whole disk)
CONFIGS = [
    ("seqread-64k-d8", "seqread", 65536, 8, None),
    ("seqread-1m-d8", "seqread", 1 << 20, 8, None),
    ("randread-4k-d1", "randread", 4096, 1, 10000),
    ("randread-4k-d32", "randread", 4096, 32, 40000),
    ("seqwrite-64k-d8", "seqwrite", 65536, 8, None),
    ("randwrite-4k-d1", "randwrite", 4096, 1, 10000),
    ("randwrite-4k-d32", "randwrite", 4096, 32, 40000),
]
FIO_RW = {"seqread": "read", "randread": "randread", "seqwrite": "write", "randwrite": "randwrite"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def make_images(path, write_path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not (os.path.exists(path) and os.path.getsize(path) == GIB):
        log(f"creating {path} (1 GiB of random data)")
        chunk = 16 << 20
        with open(path + ".part", "wb") as f:
            for _ in range(GIB // chunk):
                f.write(os.urandom(chunk))
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".part", path)
    if not (os.path.exists(write_path) and os.path.getsize(write_path) == GIB):
        log(f"creating {write_path} (a copy for the write modes)")
        subprocess.run(["cp", "--sparse=never", path, write_path + ".part"], check=True)
        os.replace(write_path + ".part", write_path)


def drop_caches():
    """sync, then drop the page cache; False when not allowed."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def run_guest(args, vmm, image, direct, mode, bs, depth, count):
    cmdline = f"test=blk op=bench mode={mode} bs={bs} depth={depth}"
    if count:
        cmdline += f" count={count}"
    cmd = vmm.command(args.kernel, cmdline, memory_mib=args.memory_mib,
                      disks=[vmm.disk(image, direct)])
    secs, rc, text, stderr = run_timed(cmd, b"bench: start\n", b"bench: done")
    m = re.search(r"bench: done (\d+) requests (\d+) bytes", text)
    eff = re.search(r"bench: mode=\S+ bs=\d+ depth=(\d+)", text)
    if rc != 1 or "PASS blk_bench" not in text or not m or secs is None:
        raise SystemExit(f"{vmm.name} failed (exit {rc}): {' '.join(cmd)}\n{text}\n{stderr}")
    reqs, nbytes = int(m.group(1)), int(m.group(2))
    return {"secs": secs, "mbps": nbytes / secs / 1e6, "iops": reqs / secs,
            "depth": int(eff.group(1)) if eff else depth}


def run_fio(args, image, mode, bs, depth):
    cmd = ["fio", "--name=blk", f"--filename={image}", "--direct=1", "--ioengine=io_uring",
           f"--rw={FIO_RW[mode]}", f"--bs={bs}", f"--iodepth={depth}", "--time_based",
           f"--runtime={args.fio_runtime}", "--output-format=json"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"fio failed: {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    job = json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]
    side = job["write" if "write" in mode else "read"]
    return {"mbps": side["bw_bytes"] / 1e6, "iops": side["iops"]}


def human_bs(bs):
    return f"{bs >> 20}M" if bs % (1 << 20) == 0 else f"{bs >> 10}K" if bs % 1024 == 0 else str(bs)


def monitors(args):
    """(column name, Vmm, O_DIRECT) in the order they run."""
    qemu = qemu_binary()
    known = {
        "mote-pci": (Mote(args.mote, "pci", "mote-pci"), True),
        "mote-mmio": (Mote(args.mote, "mmio", "mote-mmio"), True),
        "qemu-q35": (QemuQ35(qemu), True) if qemu else None,
        "qemu-microvm": (QemuMicrovm(qemu), True) if qemu else None,
    }
    out = []
    for name in args.monitors.split(","):
        if name not in known:
            raise SystemExit(f"--monitors: unknown {name} (known: {', '.join(known)})")
        if known[name] is None:
            raise SystemExit("qemu-system-x86_64 is missing: scripts/bench-setup.sh installs it")
        out.append((name,) + known[name])
    if args.buffered:
        out.append(("mote-pci-buffered", Mote(args.mote, "pci", "mote-pci-buffered"), False))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mote", default=os.path.join(ROOT, "build/vmm/mote"))
    ap.add_argument("--kernel", default=os.path.join(ROOT, "build/guest-images/motetest.pvh"))
    ap.add_argument("--image", default=os.path.join(ROOT, "build/bench/blk-bench.img"))
    ap.add_argument("--memory-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--monitors", default="mote-pci,qemu-q35,mote-mmio,qemu-microvm")
    ap.add_argument("--buffered", action="store_true", help="also mote through the page cache")
    ap.add_argument("--fio-runtime", type=float, default=5)
    ap.add_argument("--only", help="comma-separated configuration names: "
                    + ", ".join(c[0] for c in CONFIGS))
    ap.add_argument("--out", default=os.path.join(ROOT, "build/bench/blk.md"))
    args = ap.parse_args()
    configs = CONFIGS
    if args.only:
        names = args.only.split(",")
        configs = [c for c in CONFIGS if c[0] in names]
        if len(configs) != len(names):
            raise SystemExit(f"--only: unknown name among {names}")
    if subprocess.run(["fio", "--version"], capture_output=True).returncode != 0:
        raise SystemExit("fio not found (scripts/bench-setup.sh installs it)")
    runners = monitors(args)

    write_image = os.path.join(os.path.dirname(args.image), "blk-bench-write.img")
    make_images(args.image, write_image)
    began = time.monotonic()
    dropped = []
    rows = []
    for name, mode, bs, depth, count in configs:
        image = write_image if "write" in mode else args.image
        samples = {column: [] for column, _, _ in runners}
        samples["host-fio"] = []
        for run in range(args.runs):
            for column, vmm, direct in runners:
                dropped.append(drop_caches())
                r = run_guest(args, vmm, image, direct, mode, bs, depth, count)
                samples[column].append(r)
                log(f"{name} run {run + 1} {column}: {r['mbps']:.1f} MB/s "
                    f"{r['iops']:.0f} IOPS ({r['secs']:.3f} s)")
            dropped.append(drop_caches())
            f = run_fio(args, image, mode, bs, depth)
            samples["host-fio"].append(f)
            log(f"{name} run {run + 1} fio: {f['mbps']:.1f} MB/s {f['iops']:.0f} IOPS")
        med = {k: {m: statistics.median(s[m] for s in v) for m in ("mbps", "iops")}
               for k, v in samples.items()}
        eff_depth = samples[runners[0][0]][0]["depth"]
        rows.append((name, mode, bs, depth, eff_depth, med, samples))

    columns = [c for c, _, _ in runners] + ["host-fio"]
    ratios = [(a, b) for a, b in (("mote-pci", "qemu-q35"), ("mote-mmio", "qemu-microvm"),
                                  ("mote-pci", "host-fio"), ("mote-mmio", "host-fio"))
              if a in columns and b in columns]
    lines = ["| mode | bs | depth | " + " | ".join(columns) + " | "
             + " | ".join(f"{a} / {b}" for a, b in ratios) + " |",
             "|" + "---|" * (3 + len(columns) + len(ratios))]
    for name, mode, bs, depth, eff_depth, med, _ in rows:
        d = str(depth) if eff_depth == depth else f"{depth} (guest: {eff_depth})"
        unit = "iops" if mode.startswith("rand") else "mbps"
        shown = [f"{med[c][unit] / 1000:.1f}k IOPS" if unit == "iops" else f"{med[c][unit]:.0f} MB/s"
                 for c in columns]
        lines.append(f"| {mode} | {human_bs(bs)} | {d} | " + " | ".join(shown) + " | "
                     + " | ".join(f"{med[a][unit] / med[b][unit]:.2f}" for a, b in ratios) + " |")
    table = "\n".join(lines)
    load = os.getloadavg()
    all_dropped = all(dropped)
    notes = [
        f"`{' '.join(sys.argv)}`, {time.strftime('%Y-%m-%d %H:%M')}. Median of {args.runs} runs, "
        "the monitors and fio alternating; MB/s = 10^6 B/s. Disk: 1 GiB raw image of random data "
        f"({os.path.relpath(args.image, ROOT)}; write modes on a copy), O_DIRECT in every monitor. "
        f"Guest: {os.path.relpath(args.kernel, ROOT)}, {args.memory_mib} MiB, "
        "`test=blk op=bench`; seq modes move the whole disk, rand modes 10000 requests at depth 1 "
        "and 40000 at depth 32; timed on the host from the `bench: start` line to the "
        f"`bench: done` line. Host: fio --direct=1 --ioengine=io_uring --time_based "
        f"--runtime={args.fio_runtime:g}.",
        "Page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every measurement: "
        + ("yes." if all_dropped else "NO (not allowed here)."),
        "Write modes issue no FLUSH (nor does fio without fsync).",
        f"Load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 shared cores); "
        f"total {time.monotonic() - began:.0f} s.",
    ]
    # Run i of mote against run i of its peer (they ran back to back): a
    # ratio that holds only in the median, not in every pair, is not robust.
    paired = ["", "Per-run ratios, min–max (each run's mote against the same run's peer):"]
    for name, mode, _, _, _, _, samples in rows:
        unit = "iops" if mode.startswith("rand") else "mbps"
        parts = []
        for a, b in ratios:
            if b == "host-fio":
                continue
            per_run = [x[unit] / y[unit] for x, y in zip(samples[a], samples[b])]
            parts.append(f"{a} / {b} {min(per_run):.2f}–{max(per_run):.2f} ("
                         + ", ".join(f"{r:.2f}" for r in per_run) + ")")
        if parts:
            paired.append(f"- {name}: " + "; ".join(parts))
    raw = ["", "Raw samples (MB/s): "]
    for name, mode, bs, depth, _, _, samples in rows:
        raw.append(f"- {name}: " + "; ".join(f"{k} " + ", ".join(f"{s['mbps']:.0f}" for s in v)
                                            for k, v in samples.items()))
    report = (table + "\n\n" + "\n".join(notes) + "\n" + "\n".join(paired) + "\n"
              + "\n".join(raw) + "\n")
    print(report)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("# virtio-blk: the tiny guest's driver under mote and QEMU, and host fio\n\n" + report)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
