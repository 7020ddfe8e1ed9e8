#!/usr/bin/env python3
"""Boot tests: run `mote run` on the tiny test kernels and check what the
guest and the user can see (console lines, exit codes, timing).

Usage: boot_test.py CASE --mote PATH --images DIR
Exits 0 on pass, 1 on failure, 77 (meson's "skip") when /dev/kvm is missing.
"""
import argparse
import contextlib
import os
import pty
import select
import termios
import re
import subprocess
import sys
import tempfile
import time
import zlib

def case_table():
    """A table of test cases and the @case decorator that fills it."""
    cases = {}

    def case(fn):
        cases[fn.__name__] = fn
        return fn
    return cases, case


CASES, case = case_table()


class Failure(Exception):
    pass


class Ctx:
    def __init__(self, mote, images):
        self.mote = mote
        self.images = images
        # Disk images live beside the build, not in /tmp, which may be a
        # tmpfs without O_DIRECT (cache=none).
        self.scratch = os.path.join(os.path.dirname(images), "test-scratch")
        os.makedirs(self.scratch, exist_ok=True)

    def image(self, variant="pvh"):
        return os.path.join(self.images, "motetest." + variant)

    def run(self, *args, timeout=60, preexec=None, stdin_data=None):
        """Runs mote with stdin closed (or fed `stdin_data` through a pipe);
        returns (exit code, stdout, stderr, seconds)."""
        cmd = [self.mote, "run", *args]
        print("$", " ".join(cmd))
        start = time.monotonic()
        stdin = subprocess.DEVNULL if stdin_data is None else None
        p = subprocess.run(cmd, stdin=stdin, input=stdin_data, capture_output=True,
                           timeout=timeout, preexec_fn=preexec)
        took = time.monotonic() - start
        out = p.stdout.decode(errors="replace")
        err = p.stderr.decode(errors="replace")
        print(out, end="")
        print(err, end="", file=sys.stderr)
        print(f"exit {p.returncode} after {took:.3f} s")
        return p.returncode, out, err, took

    def boot(self, test, *extra, variant="pvh", cmdline_extra=""):
        cmdline = f"test={test} {cmdline_extra}".strip()
        return self.run("--kernel", self.image(variant), "--cmdline", cmdline, *extra)


def expect_eq(what, got, want):
    if got != want:
        raise Failure(f"{what}: got {got!r}, want {want!r}")


def expect_line(out, pattern):
    m = re.search(pattern, out, re.M)
    if not m:
        raise Failure(f"no console line matches {pattern!r}")
    return m


def no_fail_lines(out):
    if re.search(r"^FAIL", out, re.M):
        raise Failure("the guest reported a FAIL line")


# ---- Hello and exit codes, through each entry protocol -----------------------

def hello(ctx, variant):
    code, out, err, _ = ctx.boot("hello", variant=variant)
    expect_line(out, r"^Hello from the mote test kernel")
    expect_line(out, r"test=hello")  # the command line reached the guest
    expect_line(err, r"guest boot done [0-9.]+ ms after launch")
    expect_eq("exit code (debug-exit 0)", code, 1)


@case
def hello_pvh(ctx):
    hello(ctx, "pvh")


@case
def hello_multiboot(ctx):
    hello(ctx, "mb")


def real_mode(ctx, image):
    """Boots a mini/realmode.S kernel; it checks where its Multiboot
    information is and that its command line arrived, then drops to real mode."""
    code, out, _, _ = ctx.run("--kernel", os.path.join(ctx.images, image),
                              "--cmdline", "real mode")
    no_fail_lines(out)
    expect_line(out, r"^real mode: cr0\.pe=0, the kernel's segment reads its first bytes$")
    expect_eq("exit code (debug-exit 0)", code, 1)


@case
def multiboot_below_1mib_runs_real_mode(ctx):
    # Linked at 0x8000, as real-mode test kernels for QEMU are: mote loads it
    # between its own boot structures.
    real_mode(ctx, "realmode.mb")


@case
def multiboot_info_moves_out_of_a_low_kernel(ctx):
    # At 0x5000 with 8 KiB of bss, the kernel covers 0x6000, where the
    # Multiboot information usually goes: mote must put it elsewhere.
    real_mode(ctx, "realmode-low.mb")


@case
def hello_elf64(ctx):
    hello(ctx, "elf")


@case
def initrd_reaches_guest(ctx):
    # The initrd is PVH module 0, Multiboot module 0, and module 0 of the
    # start_info an ELF64 kernel gets; its first line must arrive intact.
    with tempfile.TemporaryDirectory() as d:
        initrd = os.path.join(d, "initrd.img")
        with open(initrd, "wb") as f:
            f.write(b"MOTE-MODULE-OK 0123456789\n" + os.urandom(100000))
        for variant in ("pvh", "mb", "elf"):
            code, out, _, _ = ctx.boot("hello", "--initrd", initrd, variant=variant)
            m = expect_line(out, r"^module: (\d+) bytes at 0x([0-9a-f]+): MOTE-MODULE-OK 0123456789$")
            expect_eq(f"{variant}: module size", int(m.group(1)), 100026)
            if int(m.group(2), 16) % 4096:
                raise Failure(f"{variant}: initrd at 0x{m.group(2)} is not page-aligned")
            expect_eq(f"{variant}: exit code", code, 1)


@case
def debug_exit_codes(ctx):
    for value, want in ((5, 11), (0x2a, 0x55), (0x7f, 0xff)):
        code, _, _, _ = ctx.boot("hello", cmdline_extra=f"exit={value}")
        expect_eq(f"exit code for debug-exit {value}", code, want)


@case
def demo_powers_off(ctx):
    code, out, _, _ = ctx.run("--kernel", ctx.image(), "--cpus", "2")
    expect_line(out, r"mote tiny kernel: hello")
    expect_line(out, r"\b2\b.*(cpu|CPU)|(cpu|CPU).*\b2\b")
    expect_eq("exit code (ACPI power-off)", code, 0)


# ---- Start-up report (--timings) ---------------------------------------------

STARTUP_PHASES = ["process_start", "main", "config_parsed", "kernel_loaded", "vm_created",
                  "memory_registered", "vcpus_created", "first_kvm_run", "boot_timer",
                  "first_console_byte", "exit"]


@case
def startup_timings(ctx):
    """--timings=FILE: every phase of a guest that writes the boot timer and
    prints, in causal order, on the same clock as this script's; --timings
    alone: the same phases as a table on stderr; without it: no report."""
    import json
    report = os.path.join(ctx.scratch, f"timings-{os.getpid()}.json")
    before = time.monotonic_ns()
    code, out, err, _ = ctx.boot("hello", f"--timings={report}")
    after = time.monotonic_ns()
    expect_eq("exit code", code, 1)
    with open(report) as f:
        got = json.load(f)
    os.unlink(report)
    expect_eq("clock", got["clock"], "CLOCK_MONOTONIC")
    at = {p["phase"]: p for p in got["phases"]}
    expect_eq("phases", sorted(at), sorted(STARTUP_PHASES))
    ns = {name: p["monotonic_ns"] for name, p in at.items()}
    # What happened before what, whatever the host's speed. Memory is
    # registered on a thread of its own, beside the devices and vCPUs.
    for a, b in (("process_start", "main"), ("main", "config_parsed"),
                 ("config_parsed", "kernel_loaded"), ("kernel_loaded", "vm_created"),
                 ("vm_created", "memory_registered"), ("vm_created", "vcpus_created"),
                 ("memory_registered", "first_kvm_run"), ("vcpus_created", "first_kvm_run"),
                 ("first_kvm_run", "boot_timer"), ("first_kvm_run", "first_console_byte"),
                 ("boot_timer", "exit"), ("first_console_byte", "exit")):
        if not ns[a] <= ns[b]:
            raise Failure(f"{a} at {at[a]['ms']:.3f} ms comes after {b} at {at[b]['ms']:.3f} ms")
    # The same clock as ours: mote ran inside [before, after] (its start is
    # the kernel's record, a clock tick early at most).
    tick = got["tick_ms"] * 1_000_000
    if not (before - tick <= ns["process_start"] and ns["main"] >= before and ns["exit"] <= after):
        raise Failure(f"the report's times fall outside the run ({before}..{after} ns): {ns}")
    for name, p in at.items():
        expect_eq(f"{name}: ms", round(p["ms"], 3), round((ns[name] - ns["process_start"]) / 1e6, 3))
    print("; ".join(f"{n} {at[n]['ms']:.2f}" for n in STARTUP_PHASES))

    code, _, err, _ = ctx.boot("hello", "--timings")
    expect_eq("exit code with the table", code, 1)
    labels = re.findall(r"^ +[0-9.]+ +\+[0-9.]+  (.+)$", err, re.M)
    for label in ("process start", "main() entered", "configuration parsed",
                  "kernel and initrd loaded", "KVM VM and irqchip created",
                  "guest memory registered", "devices and vCPUs created", "first KVM_RUN",
                  "guest wrote the boot timer", "first console byte", "exit"):
        if not any(l.startswith(label) for l in labels):
            raise Failure(f"the table has no row {label!r}: {labels}")
    expect_eq("the table's last row", labels[-1], "exit")

    _, _, err, _ = ctx.boot("hello")
    if "start-up" in err:
        raise Failure("a report without --timings")


# ---- SMP ---------------------------------------------------------------------

def smp(ctx, n):
    code, out, _, _ = ctx.boot("smp", "--cpus", str(n))
    no_fail_lines(out)
    for i in range(n):
        expect_line(out, rf"^cpu {i} apic_id={i}\b")
    expect_line(out, rf"^smp: {n} cpus online")
    expect_eq("exit code", code, 1)


@case
def smp_1(ctx):
    smp(ctx, 1)


@case
def smp_2(ctx):
    smp(ctx, 2)


@case
def smp_4(ctx):
    smp(ctx, 4)


# ---- Platform devices ----------------------------------------------------------

@case
def rtc_matches_host(ctx):
    code, out, _, _ = ctx.boot("rtc")
    host_now = time.time()
    m = expect_line(out, r"^rtc: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d epoch=(\d+)")
    guest = int(m.group(1))
    if abs(guest - host_now) > 2:
        raise Failure(f"guest RTC epoch {guest} is {guest - host_now:.1f} s from the host's")
    expect_eq("exit code", code, 1)


@case
def pit_ticks(ctx):
    code, out, _, _ = ctx.boot("pit", "--pit", "on", cmdline_extra="ticks=20")
    no_fail_lines(out)
    # At least 20: a vCPU that was not running when ticks fell due gets
    # KVM's reinjected backlog in a burst, past the guest's last check.
    ticks = int(expect_line(out, r"^pit: (\d+) ticks").group(1))
    if ticks < 20:
        raise Failure(f"only {ticks} of 20 timer interrupts")
    expect_line(out, r"^PASS pit$")
    expect_eq("exit code", code, 1)


@case
def pit_off_means_no_ticks(ctx):
    # The guest must notice the PIT is absent: the test can fail.
    code, out, _, _ = ctx.boot("pit", "--pit", "off", cmdline_extra="ticks=5")
    expect_line(out, r"^FAIL")
    if code in (0, 1):
        raise Failure(f"exit code {code}: the PIT test passed without a PIT")


@case
def acpi_tables(ctx):
    code, out, _, _ = ctx.boot("acpi", "--cpus", "3")
    no_fail_lines(out)
    expect_line(out, r"^acpi: RSDP ok")
    for sig in ("FACP", "APIC", "DSDT"):
        expect_line(out, rf"^acpi: table {sig} .*ok")
    expect_line(out, r"^acpi: cpus=3\b")
    expect_line(out, r"sleep_control=0x600 reset=0x602 value=1")
    expect_line(out, r"^acpi: table MCFG .*ok")  # ECAM of the PCI host bridge (virtio-pci default)
    expect_eq("exit code", code, 1)
    code, out, _, _ = ctx.boot("acpi", "--transport", "mmio")
    no_fail_lines(out)
    if re.search(r"^acpi: table MCFG", out, re.M):
        raise Failure("an MCFG without a PCI host bridge (--transport mmio)")
    expect_eq("exit code (mmio)", code, 1)


@case
def acpi_poweroff(ctx):
    code, out, _, _ = ctx.boot("poweroff")
    expect_line(out, r"^poweroff: via ACPI")
    no_fail_lines(out)
    expect_eq("exit code (power-off)", code, 0)


@case
def acpi_reset(ctx):
    code, _, _, _ = ctx.boot("reset", cmdline_extra="via=acpi")
    expect_eq("exit code (reset)", code, 4)


@case
def i8042_reset(ctx):
    code, _, _, _ = ctx.boot("reset", cmdline_extra="via=kbd")
    expect_eq("exit code (reset)", code, 4)


@case
def reset_restarts_guest(ctx):
    code, out, err, _ = ctx.boot("reset", "--on-reboot", "restart", "--timeout", "2",
                                 cmdline_extra="via=acpi")
    boots = len(re.findall(r"^reset: via ACPI", out, re.M))
    if boots < 2:
        raise Failure(f"the guest booted {boots} time(s); --on-reboot restart should reboot it")
    expect_eq("exit code (timeout ends the restarts)", code, 8)


@case
def pvpanic(ctx):
    code, out, err, _ = ctx.boot("panic")
    expect_line(out, r"^panic: pvpanic")
    expect_line(err, r"panicked")
    expect_eq("exit code (panic)", code, 6)


@case
def guest_exception_is_reported(ctx):
    code, out, _, _ = ctx.boot("exception")
    expect_line(out, r"^FAIL exception vector=13")
    if code % 2 != 1 or code == 1:
        raise Failure(f"exit code {code}: want a debug-exit failure code")


class Skip(Exception):
    pass


@case
def kvm_emulation_failure_is_reported(ctx):
    code, out, err, _ = ctx.boot("emulation")
    if code == 1 and re.search(r"^emulation: the host ran it", out, re.M):
        raise Skip("this host's KVM runs lock cmpxchg16b: no emulation failure to report")
    expect_eq("exit code (KVM error)", code, 12)
    expect_line(err, r"could not emulate a guest instruction")
    expect_line(err, r"rip=0x[0-9a-f]+ .*cpl 0, 64-bit")
    expect_line(err, r"code at rip: f0 48 0f c7")  # lock cmpxchg16b


@case
def triple_fault_is_a_reset(ctx):
    code, out, err, _ = ctx.boot("triplefault")
    expect_line(out, r"^triplefault: empty IDT")
    expect_line(err, r"triple fault on vCPU 0")
    expect_eq("exit code (reset)", code, 4)
    # Every host gives a register dump; only some still hold the faulting
    # instruction then: KVM on AMD has reset the vCPU (rip 0xfff0, cs 0xf000)
    # before it reports the triple fault.
    dump = expect_line(err, r"vCPU 0: rip=(0x[0-9a-f]+) rsp=0x[0-9a-f]+ rflags=0x[0-9a-f]+ cs=(0x[0-9a-f]+)")
    code_line = expect_line(err, r"code at rip:(.*)")
    reset_already = dump.group(1) == "0xfff0" and dump.group(2) == "0xf000"
    if not reset_already and not code_line.group(1).startswith(" 0f 0b"):  # the ud2 that faulted
        raise Failure(f"the vCPU was not reset yet, but the code at rip is{code_line.group(1)}, want 0f 0b")


# ---- virtio, over virtio-pci (the default) and virtio-mmio ----------------------------

def msix_interrupts(out):
    """The guest's count of MSI-X messages it received (virtio-pci only)."""
    m = expect_line(out, r"^virtio: msix interrupts=(\d+)")
    return int(m.group(1))


@case
def virtio_rng_pci(ctx):
    code, out, _, _ = ctx.boot("rng", "--rng", cmdline_extra="requests=32")
    no_fail_lines(out)
    # The guest enumerates bus 0 through 0xcf8/0xcfc and finds the function
    # with the capabilities and the BAR mote assigned.
    expect_line(out, r"^rng: virtio-pci 00:01\.0 vendor 0x1af4 device 0x1044 revision 1 subsystem 0x1100: type 4")
    expect_line(out, r"^virtio-pci 00:01\.0: 1af4:1044 rev 1 .*common bar0\+0x0 notify bar0\+0x3000 \(x4\) "
                     r"isr bar0\+0x1000 device bar0\+0x2000 msix table bar0\+0x4000 pba bar0\+0x6000 \(2 entries\)")
    expect_line(out, r"^virtio: rng via pci 00:01\.0 bar0 0xc0000000 msix 2 vectors")
    m = expect_line(out, r"^rng: 64 bytes: ([0-9a-f]{32})$")
    if m.group(1) == "0" * 32:
        raise Failure("the guest got zeros from virtio-rng")
    expect_line(out, r"^rng: 32 requests ok")
    expect_line(out, r"^rng: interrupt bits seen 0x1 \(MSI-X messages\)")
    if msix_interrupts(out) < 1:
        raise Failure("no MSI-X message reached the guest")
    expect_eq("exit code", code, 1)


@case
def virtio_rng_mmio(ctx):
    code, out, _, _ = ctx.boot("rng", "--rng", "--transport", "mmio", cmdline_extra="requests=32")
    no_fail_lines(out)
    expect_line(out, r"^rng: virtio-mmio 0xd0000000 size 0x1000 irq 5: magic 0x74726976 version 2 device 4")
    expect_line(out, r"^virtio: rng via mmio 0xd0000000 irq 5")
    if re.search(r"^rng: virtio-pci", out, re.M):
        raise Failure("a PCI function showed up with --transport mmio")
    m = expect_line(out, r"^rng: 64 bytes: ([0-9a-f]{32})$")
    if m.group(1) == "0" * 32:
        raise Failure("the guest got zeros from virtio-rng")
    expect_line(out, r"^rng: 32 requests ok")
    expect_line(out, r"^PASS rng_distinct")
    expect_line(out, r"^PASS rng_interrupt_status")  # the device raised InterruptStatus
    expect_eq("exit code", code, 1)


@case
def virtio_rng_survives_bad_descriptors(ctx):
    for bad in (1, 4):
        code, out, err, _ = ctx.boot("rng", "--rng", cmdline_extra=f"bad={bad}")
        no_fail_lines(out)
        expect_line(out, r"^rng: bad buffer returned with len 0")
        expect_line(out, r"^PASS rng_after_bad")
        expect_line(err, r"virtio-rng: bad request: .*not inside one guest RAM region")
        expect_eq(f"exit code (bad={bad})", code, 1)


@case
def virtio_rng_absent_without_flag(ctx):
    code, out, _, _ = ctx.boot("rng")
    expect_line(out, r"^FAIL rng_device")
    expect_eq("exit code (the guest found no rng)", code, 3)


def pattern_sector(tag, s):
    """What the tiny kernel's op=write puts in sector s (guest-images/tiny/README.md)."""
    line = b"mote %s sector %d\n" % (tag.encode(), s)
    n = 512 // len(line)
    return line * n + b"." * (512 - n * len(line))


def random_image(path, mib):
    with open(path, "wb") as f:
        f.write(os.urandom(mib << 20))
    with open(path, "rb") as f:
        return zlib.crc32(f.read())


def file_crc(path):
    with open(path, "rb") as f:
        return zlib.crc32(f.read())


def blk_checksum_64mib(ctx, transport, option_sets):
    # The guest reads every sector of a 64 MiB image and must see what the host sees.
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as d:
        disk = os.path.join(d, "disk.img")
        host_crc = random_image(disk, 64)
        for options in option_sets:
            code, out, _, _ = ctx.boot("blk", "--disk", f"path={disk},{options}", "--memory", "256M",
                                       "--transport", transport, cmdline_extra="op=checksum")
            no_fail_lines(out)
            expect_line(out, rf"^virtio: blk via {transport} ")
            m = expect_line(out, r"^blk: read 131072 sectors crc32=0x([0-9a-f]{8})")
            expect_eq(f"guest CRC-32 ({transport}, {options})", int(m.group(1), 16), host_crc)
            if transport == "pci" and msix_interrupts(out) < 1:
                raise Failure("no MSI-X message reached the guest")
            expect_eq("exit code", code, 1)


@case
def virtio_blk_checksum_64mib(ctx):
    blk_checksum_64mib(ctx, "pci", ("cache=writeback", "cache=none", "aio=threads",
                                    "cache=none,aio=threads,queues=4"))


@case
def virtio_blk_checksum_64mib_mmio(ctx):
    blk_checksum_64mib(ctx, "mmio", ("cache=writeback", "cache=none,aio=threads,queues=4"))


@case
def virtio_blk_pci_polled_without_msix(ctx):
    # A driver that leaves MSI-X off gets no interrupts (mote wires no INTx)
    # but still completes every request by polling the used ring and ISR.
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as d:
        disk = os.path.join(d, "disk.img")
        host_crc = random_image(disk, 4)
        code, out, _, _ = ctx.boot("blk", "--disk", f"path={disk}", cmdline_extra="op=checksum msix=off")
        no_fail_lines(out)
        expect_line(out, r"^virtio: blk via pci 00:01\.0 bar0 0xc0000000 msix off")
        m = expect_line(out, r"^blk: read 8192 sectors crc32=0x([0-9a-f]{8})")
        expect_eq("guest CRC-32", int(m.group(1), 16), host_crc)
        expect_eq("exit code", code, 1)


@case
def virtio_blk_flush_survives_sigkill(ctx):
    for options, transport in (("", "pci"), (",aio=threads", "pci"), (",cache=none", "pci"),
                               ("", "mmio")):
        flush_then_sigkill(ctx, options, transport)


def flush_then_sigkill(ctx, options, transport):
    # The guest writes, flushes, reports, then waits; mote dies by SIGKILL.
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as d:
        disk = os.path.join(d, "disk.img")
        random_image(disk, 4)
        cmd = [ctx.mote, "run", "--kernel", ctx.image(), "--disk", f"path={disk}{options}",
               "--transport", transport, "--cmdline",
               "test=blk op=write sector=100 count=300 tag=flushed hold=1"]
        print("$", " ".join(cmd))
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        out = b""
        deadline = time.monotonic() + 30
        while b"blk: holding" not in out and time.monotonic() < deadline:
            chunk = p.stdout.read1(4096)
            if not chunk:
                break
            out += chunk
        p.kill()
        p.wait()
        text = out.decode(errors="replace")
        print(text)
        expect_line(text, r"^blk: wrote 300 sectors at 100 status=0")
        expect_line(text, r"^blk: flushed status=0")
        with open(disk, "rb") as f:
            data = f.read()
        bad = [s for s in range(100, 400) if data[s * 512:(s + 1) * 512] != pattern_sector("flushed", s)]
        if bad:
            raise Failure(f"{len(bad)} flushed sectors are not in the file after SIGKILL (first {bad[0]})")


@case
def virtio_blk_readonly_refuses_writes(ctx):
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as d:
        disk = os.path.join(d, "disk.img")
        before = random_image(disk, 4)
        code, out, _, _ = ctx.boot("blk", "--disk", f"path={disk},readonly=on",
                                   cmdline_extra="op=write sector=0 count=8 tag=ro expect=ioerr")
        no_fail_lines(out)
        expect_line(out, r"^blk: disk 0 capacity=8192 sectors ro=1")
        expect_line(out, r"^blk: wrote 8 sectors at 0 status=1")
        expect_eq("exit code", code, 1)
        expect_eq("the image's CRC-32 (unchanged)", file_crc(disk), before)


@case
def virtio_blk_hostile_requests(ctx):
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as d:
        disk = os.path.join(d, "disk.img")
        before = random_image(disk, 4)
        code, out, err, _ = ctx.boot("blk", "--disk", f"path={disk}", cmdline_extra="op=hostile")
        no_fail_lines(out)
        expect_eq("exit code", code, 1)
        expect_eq("the image's CRC-32 (unchanged)", file_crc(disk), before)
        expect_line(err, r"virtio-blk: ")  # logged, rate-limited
        code, out, _, _ = ctx.boot("blk", "--disk", f"path={disk}", cmdline_extra="op=framing seg=100")
        no_fail_lines(out)
        expect_eq("exit code (odd but legal descriptor layouts)", code, 1)


@case
def virtio_blk_several_disks_with_serials(ctx):
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as d:
        a, b = os.path.join(d, "a.img"), os.path.join(d, "b.img")
        random_image(a, 2)
        crc_b = random_image(b, 1)
        disks = ["--disk", f"path={a},serial=FIRST-DISK", "--disk", f"path={b},serial=SECOND,id=data",
                 "--rng"]
        code, out, _, _ = ctx.boot("blk", *disks, cmdline_extra="disk=1 op=checksum")
        no_fail_lines(out)
        # Three functions in slot order, each with its own BAR0 and vectors.
        expect_line(out, r"^virtio: blk via pci 00:02\.0 bar0 0xc0008000 msix 2 vectors")
        expect_line(out, r"^blk: disk 1 capacity=2048 sectors")
        m = expect_line(out, r"^blk: read 2048 sectors crc32=0x([0-9a-f]{8})")
        expect_eq("disk 1 CRC-32", int(m.group(1), 16), crc_b)
        expect_eq("exit code", code, 1)
        for disk, serial in ((0, "FIRST-DISK"), (1, "SECOND")):
            code, out, _, _ = ctx.boot("blk", *disks, cmdline_extra=f"disk={disk} op=info")
            expect_line(out, rf"^blk: id={serial}$")
            expect_eq("exit code", code, 1)
        code, out, _, _ = ctx.boot("rng", *disks)  # the rng sits in the third slot
        no_fail_lines(out)
        for slot, device in ((1, "0x1042"), (2, "0x1042"), (3, "0x1044")):
            expect_line(out, rf"^rng: virtio-pci 00:0{slot}\.0 vendor 0x1af4 device {device} revision 1")
        expect_line(out, r"^virtio: rng via pci 00:03\.0 bar0 0xc0010000 msix 2 vectors")
        code, out, _, _ = ctx.boot("blk", *disks, "--transport", "mmio", cmdline_extra="disk=1 op=checksum")
        no_fail_lines(out)
        expect_line(out, r"^virtio: blk via mmio 0xd0001000 irq 6")
        m = expect_line(out, r"^blk: read 2048 sectors crc32=0x([0-9a-f]{8})")
        expect_eq("disk 1 CRC-32 over virtio-mmio", int(m.group(1), 16), crc_b)
        expect_eq("exit code (rng beside two disks)", code, 1)


@contextlib.contextmanager
def tap_namespace(taps):
    """A network namespace of this test's own (all traffic stays there) with
    the TAPs named `taps`, up; yields its name, deletes it afterwards."""
    ns = f"mote-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        setup = [["ip", "link", "set", "lo", "up"]]
        for tap in taps:
            setup += [["ip", "tuntap", "add", tap, "mode", "tap"], ["ip", "link", "set", tap, "up"]]
        for cmd in setup:
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def net_exchange(ctx, peer_args, guest_args, mote_args=(), nics=1, nic=0):
    """Boots test=net with `nics` TAPs in a namespace of its own
    (tap_namespace); net_peer.py is the other end of NIC `nic`."""
    taps = [f"mtap{i}" for i in range(nics)]
    with tap_namespace(taps) as ns:
        peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "net_peer.py")
        net_flags = [arg for tap in taps for arg in ("--net", f"tap={tap}")]
        cmd = ["ip", "netns", "exec", ns, sys.executable, peer, "--iface", taps[nic],
               "--mac", f"52:54:00:12:34:{0x56 + nic:02x}", *peer_args, "--",
               ctx.mote, "run", "--kernel", ctx.image(), *net_flags, *mote_args,
               "--cmdline", f"test=net nic={nic} " + guest_args]
        print("$", " ".join(cmd))
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        out = p.stdout.decode(errors="replace")
        print(out, p.stderr.decode(errors="replace"))
        return p.returncode, out


@case
def virtio_net_tap_frames_both_ways(ctx):
    for transport in ("pci", "mmio"):
        code, out = net_exchange(ctx, ["--count", "8"], "count=8", ["--transport", transport])
        no_fail_lines(out)
        expect_line(out, rf"^virtio: net via {transport} ")
        expect_line(out, r"^net: mac=52:54:00:12:34:56 link=up")
        expect_line(out, r"^net: features mrg_rxbuf=1")
        expect_line(out, r"^peer: received 8 of 8 guest frames intact \(0 damaged\)")
        for j in range(8):
            expect_line(out, rf"^net: rx seq={j} len=\d+ ok")
        expect_line(out, r"^net: received 8 frames")
        if transport == "pci" and msix_interrupts(out) < 1:
            raise Failure("no MSI-X message reached the guest")
        expect_eq(f"peer verdict ({transport})", code, 0)


@case
def virtio_net_mergeable_small_buffers_and_noise(ctx):
    # 1514-byte frames into 128-byte guest buffers: each spans 12 of them;
    # frames of other kinds in between must be ignored by the guest, not lost.
    code, out = net_exchange(ctx, ["--count", "20", "--size", "1514", "--junk"],
                             "count=20 size=1514 rxbuf=128", ["--rng"])
    no_fail_lines(out)
    expect_line(out, r"^peer: received 20 of 20 guest frames intact")
    expect_line(out, r"^net: received 20 frames")
    expect_eq("peer verdict", code, 0)


@case
def virtio_net_second_nic_beside_a_disk(ctx):
    # Two NICs and a disk at once: the guest talks on the second NIC, whose
    # frames must come out of the second TAP with the second default MAC.
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as d:
        disk = os.path.join(d, "disk.img")
        random_image(disk, 1)
        code, out = net_exchange(ctx, ["--count", "4"], "count=4", ["--disk", f"path={disk}"],
                                 nics=2, nic=1)
    no_fail_lines(out)
    expect_line(out, r"^net: mac=52:54:00:12:34:57 link=up")
    expect_line(out, r"^peer: received 4 of 4 guest frames intact")
    expect_line(out, r"^net: received 4 frames")
    expect_eq("peer verdict", code, 0)


# ---- Run control: timeout and expect --------------------------------------------

@case
def timeout_stops_spinning_guest(ctx):
    code, out, err, took = ctx.boot("spin", "--timeout", "1")
    expect_line(out, r"^spin: forever")
    expect_line(err, r"timeout")
    expect_eq("exit code (timeout)", code, 8)
    # Loose above: a sanitizer build's exit, on a loaded runner, took 4 s
    # after the timeout fired on time (mote's own line says when it did).
    if not 0.9 <= took < 10:
        raise Failure(f"took {took:.2f} s for a 1 s timeout")
    m = expect_line(err, r"timeout after ([\d.]+)(ms|s)")
    fired = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    if not 0.9 <= fired < 2:
        raise Failure(f"the timeout fired after {fired:.2f} s, not 1 s")


@case
def expect_matches_early(ctx):
    code, _, _, took = ctx.boot("spin", "--expect", r"^spin: for.ver$", "--timeout", "20")
    expect_eq("exit code (expect matched)", code, 0)
    if took > 10:
        raise Failure(f"took {took:.1f} s: mote did not stop at the match")


@case
def expect_not_met(ctx):
    code, _, err, _ = ctx.boot("hello", "--expect", "no such line")
    expect_line(err, r"before the console matched")
    expect_eq("exit code (expect not met)", code, 10)


@case
def console_to_file(ctx):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "console.log")
        code, out, _, _ = ctx.boot("hello", "--console", f"file:{path}")
        expect_eq("stdout (console went to a file)", out, "")
        with open(path) as f:
            expect_line(f.read(), r"^Hello from the mote test kernel")
        expect_eq("exit code", code, 1)


@case
def cpu_template_minimal(ctx):
    code, out, _, _ = ctx.boot("smp", "--cpus", "2", "--cpu", "minimal")
    expect_line(out, r"^smp: 2 cpus online")
    expect_eq("exit code", code, 1)


@case
def cpu_features_switched_off_and_on(ctx):
    """--cpu: the guest kernel's CPUID loses what -FEATURE removes, and gets
    the vendor and brand asked for; the plain host model has x2APIC and the
    hypervisor bit, so the run with them removed shows the flag's effect."""
    code, out, _, _ = ctx.boot("cpuid")
    expect_line(out, r"^cpuid: x2apic=1 .* hypervisor=1$")
    expect_eq("exit code (host model)", code, 1)
    code, out, _, _ = ctx.boot(
        "cpuid", "--cpu", "host,-x2apic,-xsave,-hypervisor,vendor=AuthenticAMD,model-id=mote test")
    expect_line(out, r"^cpuid: vendor=AuthenticAMD brand=mote test$")
    # -xsave took AVX and AVX2 with it.
    expect_line(out, r"^cpuid: x2apic=0 pcid=\d invpcid=\d xsave=0 avx=0 avx2=0 hypervisor=0$")
    expect_eq("exit code (features removed)", code, 1)
    code, _, err, _ = ctx.run("--kernel", ctx.image(), "--cpu", "host,+avx2,-avx")
    expect_line(err, r"^mote: error: --cpu host,\+avx2,-avx: \+avx2 needs avx, which -avx takes away$")
    expect_eq("exit code (inconsistent features)", code != 0, True)


@case
def fw_cfg_cpu_count_and_named_files(ctx):
    """--fw-cfg: the guest finds each named item in fw_cfg's directory and
    reads a file's bytes through the data port and by DMA (CRC-32 against the
    host's), with the CPU count and RAM size beside them."""
    with tempfile.TemporaryDirectory() as d:
        blob = os.path.join(d, "blob")
        data = os.urandom(10000)
        with open(blob, "wb") as f:
            f.write(data)
        code, out, _, _ = ctx.boot(
            "fwcfg", "--cpus", "2", "--memory", "256M",
            "--fw-cfg", "name=opt/org.mote/greeting,string=hello",
            "--fw-cfg", f"name=opt/org.mote/blob,file={blob}",
            cmdline_extra="file=opt/org.mote/blob")
    expect_line(out, r"^fwcfg: signature=QEMU id=0x3 cpus=2 ram=256 MiB$")
    expect_line(out, r"^fwcfg: 2 files$")
    expect_line(out, r"^fwcfg: file opt/org.mote/greeting size=5 key=0x2\d$")
    want = f"crc32=0x{zlib.crc32(data):08x}"
    expect_line(out, rf"^fwcfg: read opt/org.mote/blob size=10000 {want}$")
    expect_line(out, rf"^fwcfg: dma opt/org.mote/blob control=0x0 {want}$")
    expect_line(out, r"^PASS fwcfg_dma_bad_address$")
    no_fail_lines(out)
    expect_eq("exit code", code, 1)
    # An unreadable file is one error line before any guest runs.
    code, _, err, _ = ctx.run("--kernel", ctx.image(), "--fw-cfg",
                              "name=opt/a,file=/nonexistent/mote-fw-cfg")
    expect_line(err, r"^mote: error: cannot read fw_cfg file /nonexistent/mote-fw-cfg \(for opt/a\): "
                     r"No such file or directory$")
    expect_eq("exit code (unreadable file)", code != 0, True)


@case
def hpet_counter_and_timers(ctx):
    """--hpet: the guest finds the HPET in ACPI, its counter runs at the stated
    100 MHz against kvmclock, a periodic timer interrupts through the IOAPIC
    in legacy replacement mode and a one-shot timer fires once; without
    --hpet there is no table."""
    code, out, _, _ = ctx.boot("hpet", "--hpet")
    expect_line(out, r"^hpet: table block_id=0x8086a201 base=0xfed00000 min_tick=10000$")
    expect_line(out, r"^hpet: vendor=0x8086 timers=3 64-bit=1 legacy=1 period=10000000 fs")
    for check in ("hpet_counter_rate", "hpet_periodic", "hpet_periodic_rate", "hpet_one_shot"):
        expect_line(out, rf"^PASS {check}$")
    no_fail_lines(out)
    expect_eq("exit code", code, 1)
    code, out, _, _ = ctx.boot("hpet")
    expect_line(out, r"^FAIL hpet_table: no ACPI HPET table$")
    expect_eq("exit code (no --hpet)", code, 3)


@case
def acpi_full_pm_timer_and_s5(ctx):
    """--acpi full: a full FADT with a FACS, the PM timer at 0x608 at its
    rate against kvmclock, SCI_EN set, and power-off through PM1a control;
    the default FADT stays hardware-reduced."""
    code, out, _, _ = ctx.boot("acpipm", "--acpi", "full")
    expect_line(out, r"^acpipm: hw_reduced=0 facs=FACS pm1a_cnt=0x604 pm_tmr=0x608 tmr_32bit=1$")
    for check in ("acpipm_facs", "acpipm_sci_en", "acpipm_timer_rate"):
        expect_line(out, rf"^PASS {check}$")
    expect_line(out, r"^acpipm: powering off through PM1a control$")
    no_fail_lines(out)
    expect_eq("exit code (power-off)", code, 0)
    code, out, _, _ = ctx.boot("acpipm")
    expect_line(out, r"^acpipm: hw_reduced=1 ")
    expect_eq("exit code (hardware-reduced)", code, 3)


# ---- Console input: a pipe, and a terminal in raw mode ------------------------------

@case
def console_input_from_pipe(ctx):
    code, out, _, _ = ctx.run("--kernel", ctx.image(), "--cmdline", "test=echo",
                              stdin_data=b"ping from the host\n")
    expect_line(out, r"^echo: ping from the host$")
    expect_eq("exit code", code, 1)


def run_on_terminal(ctx, args, keys, wait_for):
    """Runs mote on a new pty; types `keys` once `wait_for` appears. Returns
    (exit code, output, terminal mode before, terminal mode after)."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    cmd = [ctx.mote, "run", *args]
    print("$", " ".join(cmd), "(on a pty)")
    p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    out = b""
    typed = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
        if not typed and wait_for.encode() in out:
            os.write(master, keys)
            typed = True
        if p.poll() is not None and not ready:
            break
    p.wait(timeout=10)
    after = termios.tcgetattr(slave)
    os.close(master)
    os.close(slave)
    text = out.decode(errors="replace")
    print(text)
    print(p.stderr.read().decode(errors="replace"), file=sys.stderr)
    return p.returncode, text, before, after


@case
def terminal_raw_input_and_restore(ctx):
    code, out, before, after = run_on_terminal(
        ctx, ["--kernel", ctx.image(), "--cmdline", "test=echo"], b"typed keys\r", "echo: ready")
    expect_line(out, r"echo: typed keys")
    expect_eq("exit code", code, 1)
    expect_eq("terminal mode after mote exits", after, before)


@case
def terminal_ctrl_a_x_quits(ctx):
    code, out, before, after = run_on_terminal(
        ctx, ["--kernel", ctx.image(), "--cmdline", "test=spin"], b"\x01x", "spin: forever")
    expect_eq("exit code (stopped from the console, as SIGINT)", code, 130)
    expect_eq("terminal mode after mote exits", after, before)


@case
def sigterm_stops_cleanly(ctx):
    p = subprocess.Popen([ctx.mote, "run", "--kernel", ctx.image(), "--cmdline", "test=spin",
                          "--cpus", "2"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out = b""
    while b"spin: forever" not in out:
        chunk = p.stdout.read1(4096)
        if not chunk:
            break
        out += chunk
    p.terminate()
    code = p.wait(timeout=10)
    expect_eq("exit code (128 + SIGTERM)", code, 143)


# ---- One JSON config ---------------------------------------------------------------

@case
def config_file_and_overrides(ctx):
    import json
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "vm.json")
        with open(path, "w") as f:
            json.dump({"kernel": ctx.image(), "cmdline": "test=smp", "cpus": 3, "memory": "64M"}, f)
        code, out, _, _ = ctx.run("--config", path)
        expect_line(out, r"^smp: 3 cpus online")
        expect_eq("exit code", code, 1)
        # A flag beside the file wins, whatever its place on the command line.
        code, out, _, _ = ctx.run("--cpus", "2", "--config", path)
        expect_line(out, r"^smp: 2 cpus online")
        expect_eq("exit code (override)", code, 1)
        # Malformed descriptions: tests/boot/bad_input_test.py.


@case
def mini_guests(ctx):
    # The start-up benchmark's guests (guest-images/mini/): one line, the boot
    # timer, debug-exit 0; the SMP one first starts the second vCPU.
    code, out, err, _ = ctx.run("--kernel", os.path.join(ctx.images, "mini.pvh"))
    expect_eq("mini output", out, "mote mini guest: hello\n")
    expect_line(err, r"guest boot done")
    expect_eq("exit code (mini)", code, 1)
    code, out, err, _ = ctx.run("--kernel", os.path.join(ctx.images, "mini-smp2.pvh"), "--cpus", "2",
                                "--timeout", "10")
    expect_eq("mini-smp2 output", out, "mote mini guest: 2 cpus up\n")
    expect_eq("exit code (mini-smp2)", code, 1)


def set_huge_pages(n):
    with open("/proc/sys/vm/nr_hugepages", "w") as f:
        f.write(f"{n}\n")
    with open("/proc/sys/vm/nr_hugepages") as f:
        return int(f.read())


@case
def hugepages_memory(ctx):
    # --memory SIZE,hugepages=on: reserved 2 MiB pages back guest RAM, and a
    # host without enough of them gets one clear error.
    with open("/proc/sys/vm/nr_hugepages") as f:
        before = int(f.read())
    try:
        set_huge_pages(0)
        bad_input(ctx, ["--kernel", ctx.image(), "--memory", "64M,hugepages=on"],
                  r"hugepages=on: cannot reserve 64 MiB of 2 MiB huge pages .*0 2 MiB pages free")
        if set_huge_pages(40) < 32:
            raise Skip("the host would not give 32 huge pages")
        p = subprocess.Popen([ctx.mote, "run", "--kernel", ctx.image(), "--cmdline", "test=spin",
                              "--memory", "64M,hugepages=on"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            line = p.stdout.readline()
            expect_eq("guest output", line, b"spin: forever\n")
            with open(f"/proc/{p.pid}/smaps") as f:
                smaps = f.read()
            # The guest RAM mapping (64 MiB) is made of 2 MiB pages.
            sizes = {}
            for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", smaps):
                lo, hi = (int(x, 16) for x in block.split()[0].split("-"))
                k = re.search(r"KernelPageSize:\s+(\d+) kB", block)
                sizes[hi - lo] = int(k.group(1)) if k else None
            expect_eq("page size of the 64 MiB guest mapping (KiB)", sizes.get(64 << 20), 2048)
        finally:
            p.kill()
            p.wait()
    finally:
        set_huge_pages(before)


# ---- Bad input: one clear line, a non-zero exit, never a crash --------------------

def bad_input(ctx, args, message, preexec=None):
    code, out, err, _ = ctx.run(*args, preexec=preexec)
    lines = [l for l in err.splitlines() if l.strip()]
    if code != 2:
        raise Failure(f"exit code {code}, want 2 (host error / bad input)")
    if len(lines) != 1 or not lines[0].startswith("mote: error: "):
        raise Failure(f"want exactly one 'mote: error:' line on stderr, got {lines!r}")
    if not re.search(message, lines[0]):
        raise Failure(f"error line {lines[0]!r} does not match {message!r}")


# The table of malformed inputs is tests/boot/bad_input_test.py (most of it
# runs without KVM); what needs a guest or root privileges stays here.

@case
def kvm_missing_or_denied(ctx):
    kernel = ctx.image()
    bad_input(ctx, ["--kernel", kernel, "--kvm-device", "/nonexistent/kvm"], r"/nonexistent/kvm")

    def drop_root():
        os.setgid(65534)
        os.setuid(65534)
    bad_input(ctx, ["--kernel", kernel], r"(Permission denied|permission)", preexec=drop_root)
    # Without the right to open a TAP, --net fails before KVM is even tried.
    # Which errno depends on the host (EACCES opening /dev/net/tun, or EPERM
    # from TUNSETIFF); either way the line names the TAP and the fix.
    bad_input(ctx, ["--kernel", kernel, "--net", "tap=mote-denied0"],
              r"tap mote-denied0\b.*(Permission denied|CAP_NET_ADMIN.*Operation not permitted)",
              preexec=drop_root)


def run_case(cases, options=None, needs_kvm=lambda args: True):
    """The command line of every boot-test script: CASE --mote PATH --images
    DIR, plus what `options(parser)` adds (the parsed arguments are
    ctx.args); 0 passed, 1 failed, 77 skipped (meson's code), also when
    needs_kvm(args) and /dev/kvm is missing."""
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(cases))
    parser.add_argument("--mote", required=True)
    parser.add_argument("--images", required=True)
    if options:
        options(parser)
    args = parser.parse_args()
    if needs_kvm(args) and not os.path.exists("/dev/kvm"):
        print("/dev/kvm is missing: skipping")
        return 77
    ctx = Ctx(args.mote, args.images)
    ctx.args = args
    try:
        cases[args.case](ctx)
    except Failure as e:
        print(f"FAILED {args.case}: {e}")
        return 1
    except Skip as e:
        print(f"SKIPPED {args.case}: {e}")
        return 77
    print(f"PASSED {args.case}")
    return 0


if __name__ == "__main__":
    sys.exit(run_case(CASES))
