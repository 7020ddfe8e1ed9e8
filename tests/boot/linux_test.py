#!/usr/bin/env python3
"""A stock Linux under mote: Debian's cloud kernel and the busybox initramfs
of guest-images/linux/ (build-linux-guest.sh), whose /init reports what the
guest sees ("mote-linux: ..." lines) and does what `mote.do=` asks
(guest-images/linux/init.sh).

It needs a KVM that runs Linux: hardware KVM, or the nested runner
(tests/nested/run.sh) on a host whose KVM cannot (no KVM, or kvm_pvm, where
the host's instruction emulator stops the guest: mote exit 12). The test
command (scripts/quickstart.sh test) picks the right one for suite `linux`.

Usage: linux_test.py CASE --mote PATH --images DIR
Exits 0 on pass, 1 on failure, 77 (meson's "skip") when /dev/kvm is missing.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from boot_test import Failure, case_table, expect_eq, expect_line, run_case, tap_namespace

CASES, case = case_table()

EXIT_POWER_OFF, EXIT_RESET, EXIT_PANIC, EXIT_TIMEOUT, EXIT_KVM_ERROR = 0, 4, 6, 8, 12
GUEST_TIMEOUT = 180  # seconds; a nested boot takes 5-15
CMDLINE = "console=ttyS0 panic=-1 quiet"
MIB = 1 << 20


def guest_files(ctx):
    d = os.path.join(ctx.images, "linux")
    files = (os.path.join(d, "vmlinuz"), os.path.join(d, "initramfs.cpio.gz"))
    for f in files:
        if not os.path.exists(f):
            raise Failure(f"{f} is missing: run guest-images/linux/build-linux-guest.sh "
                          f"{d} first (the test command does)")
    return files


def boot(ctx, action, *mote_args, cmdline="", netns=None, want=None):
    """Boots the Linux guest with mote.do=`action`; returns (exit code,
    console text without the tty's \\r, mote's stderr)."""
    kernel, initrd = guest_files(ctx)
    cmd = [ctx.mote, "run", "--kernel", kernel, "--initrd", initrd, "--memory", "512M",
           "--timeout", str(GUEST_TIMEOUT),
           "--cmdline", f"{CMDLINE} mote.do={action} {cmdline}".strip(), *mote_args]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    print("$", " ".join(cmd), flush=True)
    start = time.monotonic()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=GUEST_TIMEOUT + 60)
    out = p.stdout.decode(errors="replace").replace("\r", "")
    err = p.stderr.decode(errors="replace")
    print(f"exit {p.returncode} after {time.monotonic() - start:.1f} s")
    print(out, err, flush=True)
    if p.returncode == EXIT_KVM_ERROR:
        raise Failure("mote exit 12: this host's KVM cannot run this Linux (a kvm_pvm host?); "
                      "run the test in tests/nested/run.sh")
    expect_line(out, r"^MOTE-LINUX-BOOT-OK$")
    if want is not None:
        expect_eq("mote's exit code", p.returncode, want)
    return p.returncode, out, err


def report(out, key):
    """The value of the guest's "mote-linux: KEY=VALUE" (or "KEY: VALUE")
    line."""
    m = re.search(rf"^mote-linux: {re.escape(key)}(?:=|: ?)(.*)$", out, re.M)
    if not m:
        raise Failure(f"the guest did not report {key}")
    return m.group(1)


def host_model_name():
    with open("/proc/cpuinfo") as f:
        m = re.search(r"^model name\s*: (.*)$", f.read(), re.M)
    return m.group(1) if m else ""


def cpus(ctx, n):
    _, out, err = boot(ctx, "poweroff", "--cpus", str(n), want=EXIT_POWER_OFF)
    expect_eq("the guest's CPU count", report(out, "cpus"), str(n))
    # The brand string is the host's with the host template (CPUID
    # 0x80000002..4, which KVM leaves empty).
    expect_eq("the guest's model name", report(out, "model name"), host_model_name())
    # The boot timer: /init writes mote's port 0x440 through port-write.
    expect_line(err, r"guest boot done [0-9.]+ ms after launch")
    expect_line(out, r"^mote-linux: powering off$")


@case
def linux_cpus_1(ctx):
    cpus(ctx, 1)


@case
def linux_cpus_2(ctx):
    cpus(ctx, 2)


@case
def linux_cpus_4(ctx):
    cpus(ctx, 4)


def pattern_sha(seed):
    line = f"mote pattern {seed}\n".encode()
    data = (line * (MIB // len(line) + 1))[:MIB]
    return hashlib.sha256(data).hexdigest()


def blk_round_trip(ctx, transport):
    """Boot 1 writes a pattern over the disk's first MiB and powers off; the
    host checks the file; boot 2 reads it back."""
    seed = int(time.time()) % 100000
    want = pattern_sha(seed)
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as tmp:
        disk = os.path.join(tmp, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(4 * MIB)
        flags = ["--disk", f"path={disk}", "--transport", transport]
        _, out, _ = boot(ctx, "blk-write", *flags, cmdline=f"mote.seed={seed}",
                         want=EXIT_POWER_OFF)
        expect_eq("the guest's disks", report(out, "disks"), "vda")
        expect_line(out, rf"^mote-linux: vda written seed={seed} sha256={want}$")
        with open(disk, "rb") as f:
            expect_eq("sha256 of the disk file's first MiB", hashlib.sha256(f.read(MIB)).hexdigest(),
                      want)
        _, out, _ = boot(ctx, "blk-read", *flags, want=EXIT_POWER_OFF)
        expect_eq("sha256 the guest read back", report(out, "vda sha256"), want)


@case
def linux_virtio_blk_pci(ctx):
    blk_round_trip(ctx, "pci")


@case
def linux_virtio_blk_mmio(ctx):
    blk_round_trip(ctx, "mmio")


@case
def linux_virtio_net_ping(ctx):
    """A TAP in a namespace of the test's own, 10.0.2.1 on the host side: the
    guest (10.0.2.15) pings the host, the host pings the guest."""
    busybox = shutil.which("busybox")
    if not busybox:
        raise Failure("busybox is missing (Debian's busybox-static): the host side pings with it")
    with tap_namespace(["mtap0"]) as ns:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "addr", "add", "10.0.2.1/24", "dev",
                        "mtap0"], check=True)
        # One echo request at a time until 3 are answered: the guest is not
        # up at first.
        replies = []
        done = threading.Event()

        def pinger():
            while len(replies) < 3 and not done.is_set():
                p = subprocess.run(["ip", "netns", "exec", ns, busybox, "ping", "-c", "1", "-W",
                                    "1", "10.0.2.15"], capture_output=True)
                if p.returncode == 0:
                    replies.append(p.stdout)
                else:
                    time.sleep(0.2)
        thread = threading.Thread(target=pinger, daemon=True)
        thread.start()
        try:
            _, out, _ = boot(ctx, "net", "--net", "tap=mtap0", netns=ns,
                             cmdline="mote.ip=10.0.2.15/24 mote.peer=10.0.2.1",
                             want=EXIT_POWER_OFF)
        finally:
            done.set()
            thread.join()
    print(f"the host's pings answered: {len(replies)}")
    expect_eq("the guest's NICs", report(out, "nics"), "eth0")
    expect_line(out, r"^mote-linux: ping 10\.0\.2\.1 ok$")
    expect_eq("echo replies the host got from the guest", len(replies), 3)
    m = re.search(r"^mote-linux: pinged by peer (\d+) times$", out, re.M)
    if not m or int(m.group(1)) < 3:
        raise Failure("the guest counted fewer than 3 echo requests from the host")


@case
def linux_virtio_rng(ctx):
    _, out, _ = boot(ctx, "rng", "--rng", want=EXIT_POWER_OFF)
    expect_line(out, r"^mote-linux: hwrng=virtio_rng\.\d+$")
    m = re.search(r"^mote-linux: rng 64 bytes: ([0-9a-f]*)$", out, re.M)
    if not m or len(m.group(1)) != 128:
        raise Failure("the guest did not read 64 bytes from /dev/hwrng")
    if m.group(1) == "0" * 128:
        raise Failure("/dev/hwrng gave 64 zero bytes")


@case
def linux_cpu_template_minimal(ctx):
    _, out, _ = boot(ctx, "poweroff", "--cpus", "2", "--cpu", "minimal",
                     want=EXIT_POWER_OFF)
    expect_eq("the guest's CPU count", report(out, "cpus"), "2")
    expect_eq("the guest's model name", report(out, "model name"), "mote virtual x86-64 CPU")
    # The minimal template leaves out cmpxchg16b (as Firecracker's T2 does not).
    expect_eq("the cx16 flag", report(out, "flag cx16"), "no")
    expect_eq("the hypervisor flag", report(out, "flag hypervisor"), "yes")


@case
def linux_cpu_features_hpet_and_fw_cfg(ctx):
    """The x86 platform pieces of issue 18 under a stock Linux: a feature
    removed with --cpu is gone from /proc/cpuinfo, qemu_fw_cfg shows the
    --fw-cfg items, and the guest boots with an HPET beside it. (Linux
    skips the legacy timers, the HPET among them, on hardware-reduced ACPI,
    mote's only FADT until the full one of issue 18's point 2.)"""
    _, out, _ = boot(ctx, "poweroff", "--cpus", "2", "--cpu", "host,-x2apic,-avx2", "--hpet",
                     "--fw-cfg", "name=opt/org.mote/greeting,string=hello from the host",
                     want=EXIT_POWER_OFF)
    expect_eq("the guest's CPU count", report(out, "cpus"), "2")
    expect_eq("the x2apic flag", report(out, "flag x2apic"), "no")
    expect_eq("the avx2 flag", report(out, "flag avx2"), "no")
    expect_eq("the fw_cfg item", report(out, "fw_cfg opt/org.mote/greeting"),
              "hello from the host")


@case
def linux_acpi_full_hpet_and_pm_timer(ctx):
    """--acpi full --hpet: with a full FADT Linux starts the legacy timers,
    so the HPET and the ACPI PM timer become clocksources (kvm-clock stays
    the one in use), and it powers off through PM1a control. Linux reads
    the PM timer thousands of times at boot and refuses it if it ever goes
    back; the kernel's reason is printed (a read torn across the timer's
    bytes once made it go back under load)."""
    _, out, _ = boot(ctx, "poweroff", "--cpus", "2", "--acpi", "full", "--hpet",
                     want=EXIT_POWER_OFF)
    expect_eq("the guest's CPU count", report(out, "cpus"), "2")
    sources = report(out, "clocksources").split()
    why = re.search(r"^mote-linux: pm-timer=(.*)$", out, re.M)
    for want in ("hpet", "acpi_pm"):
        if want not in sources:
            raise Failure(f"Linux lists no {want} clocksource: {sources} "
                          f"(the kernel: {why.group(1).strip() if why else ''!r})")
    expect_line(out, r"^mote-linux: powering off$")


@case
def linux_suspend_to_ram_and_wakeup(ctx):
    """--acpi full: `echo mem > /sys/power/state` suspends the stock kernel
    (QMP SUSPEND, status `suspended`), and QMP system_wakeup brings it back
    through the FACS waking vector: /init goes on and powers off."""
    from control_test import Qmp
    kernel, initrd = guest_files(ctx)
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "qmp.sock")
        cmd = [ctx.mote, "run", "--kernel", kernel, "--initrd", initrd, "--memory", "512M",
               "--cpus", "2", "--acpi", "full", "--api-socket", sock,
               "--timeout", str(GUEST_TIMEOUT), "--cmdline", f"{CMDLINE} mote.do=suspend"]
        print("$", " ".join(cmd), flush=True)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        out = []
        reader = threading.Thread(target=lambda: out.extend(
            l.decode(errors="replace").replace("\r", "") for l in p.stdout), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(sock) and time.monotonic() < deadline:
                time.sleep(0.01)
            q = Qmp(sock)
            q.wait_event("SUSPEND", timeout=GUEST_TIMEOUT)
            expect_eq("status", q.ok("query-status")["status"], "suspended")
            q.ok("system_wakeup")
            q.wait_event("WAKEUP")
            code = p.wait(timeout=GUEST_TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        reader.join(timeout=5)
        text = "".join(out)
        print(text[-3000:])
        print(p.stderr.read().decode(errors="replace"), file=sys.stderr)
    expect_eq("the sleep state", report(text, "mem_sleep"), "s2idle [deep]")
    expect_line(text, r"^mote-linux: resumed$")
    expect_line(text, r"^mote-linux: powering off$")
    expect_eq("mote's exit code", code, EXIT_POWER_OFF)


class LoopGuest:
    """The Debian kernel with a virtio-blk disk and a virtio-net NIC (PCI),
    whose /init (mote.do=snapshot-loop) reads its disk back and pings the
    host every tick, `rounds` times; started in namespace `ns` on TAP
    `tap`, its console collected, and waited for until tick 5."""

    def __init__(self, ctx, ns, disk, sock, rounds, tap="mtap0"):
        kernel, initrd = guest_files(ctx)
        cmd = ["ip", "netns", "exec", ns, ctx.mote, "run", "--kernel", kernel, "--initrd",
               initrd, "--memory", "512M", "--cpus", "2", "--disk", f"path={disk}", "--net",
               f"tap={tap},mac=52:54:00:12:34:56", "--api-socket", sock, "--timeout",
               str(GUEST_TIMEOUT), "--cmdline",
               f"{CMDLINE} mote.do=snapshot-loop mote.seed=7 mote.rounds={rounds} "
               "mote.ip=10.0.2.15/24 mote.peer=10.0.2.1"]
        print("$", " ".join(cmd), flush=True)
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(
            l.decode(errors="replace").replace("\r", "") for l in self.p.stdout), daemon=True)
        self.reader.start()
        deadline = time.monotonic() + GUEST_TIMEOUT
        while not any("mote-linux: tick 5 " in l for l in self.lines):
            if time.monotonic() > deadline or self.p.poll() is not None:
                self.end()
                raise Failure("the guest never reached tick 5: " + "".join(self.lines)[-2000:])
            time.sleep(0.1)

    def end(self):
        """Waits for the process (killing it if it runs on); its console."""
        try:
            self.p.wait(timeout=60)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
        self.reader.join(timeout=5)
        print("".join(self.lines)[-1500:])
        print(self.p.stderr.read().decode(errors="replace"), file=sys.stderr)
        return "".join(self.lines)


def check_ticks_go_on(before, after, rounds):
    ticks = [int(t) for t in re.findall(r"^mote-linux: tick (\d+) disk=ok net=ok$",
                                        before + after, re.M)]
    if ticks != list(range(1, rounds + 1)):
        raise Failure(f"ticks with disk and network ok: {ticks}, want 1..{rounds}")
    expect_line(after, r"^mote-linux: loop ok$")
    expect_line(after, r"^mote-linux: powering off$")


def disk_image(work):
    disk = os.path.join(work, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(4 * MIB)
    return disk


@case
def linux_snapshot_restore_keeps_disk_and_network(ctx):
    """The loop guest (LoopGuest) is stopped, saved with QMP migrate to
    file:DIR and ended; `mote run --restore DIR` brings it back in a new
    process: the ticks go on where they stood, every one with the disk and
    the network ok."""
    from control_test import Qmp
    rounds = 30
    with tap_namespace(["mtap0"]) as ns, tempfile.TemporaryDirectory(dir=ctx.scratch) as work, \
            tempfile.TemporaryDirectory() as sockets:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "addr", "add", "10.0.2.1/24", "dev",
                        "mtap0"], check=True)
        snap = os.path.join(work, "snap")
        sock = os.path.join(sockets, "qmp.sock")
        guest = LoopGuest(ctx, ns, disk_image(work), sock, rounds)
        try:
            q = Qmp(sock)
            q.ok("stop")
            q.ok("migrate", {"uri": "file:" + snap})
            expect_eq("snapshot", q.ok("query-migrate")["status"], "completed")
            q.ok("quit")
        finally:
            before = guest.end()
        restored = subprocess.run(["ip", "netns", "exec", ns, ctx.mote, "run", "--restore", snap,
                                   "--timeout", str(GUEST_TIMEOUT)], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=GUEST_TIMEOUT + 60)
        after = restored.stdout.decode(errors="replace").replace("\r", "")
        print(after[-3000:])
        print(restored.stderr.decode(errors="replace"), file=sys.stderr)
    check_ticks_go_on(before, after, rounds)
    expect_eq("the restored guest's exit code", restored.returncode, EXIT_POWER_OFF)


@case
def linux_live_migration_keeps_disk_and_network(ctx):
    """The loop guest (LoopGuest) is migrated live, while it ticks, to a
    second mote waiting with --incoming on a unix socket, whose NIC is a
    second TAP on the same bridge (the source holds the first): the ticks go
    on in the target, every one with the disk and the network ok, and the
    source is left stopped."""
    live_migrate_loop_guest(ctx, postcopy=False)


@case
def linux_postcopy_migration_keeps_disk_and_network(ctx):
    """The same, switched to post-copy a second into a slowed-down first
    pass: the target runs the kernel while most of its memory is still on
    the source, and faults it in."""
    live_migrate_loop_guest(ctx, postcopy=True)


def live_migrate_loop_guest(ctx, postcopy):
    from control_test import Qmp
    rounds = 30
    with tap_namespace(["mtap0", "mtap1"]) as ns, \
            tempfile.TemporaryDirectory(dir=ctx.scratch) as work, \
            tempfile.TemporaryDirectory() as sockets:
        for cmd in (["ip", "link", "add", "mbr0", "type", "bridge"],
                    ["ip", "link", "set", "mtap0", "master", "mbr0"],
                    ["ip", "link", "set", "mtap1", "master", "mbr0"],
                    ["ip", "link", "set", "mbr0", "up"],
                    ["ip", "addr", "add", "10.0.2.1/24", "dev", "mbr0"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        uri = "unix:" + os.path.join(sockets, "in.sock")
        target_cmd = ["ip", "netns", "exec", ns, ctx.mote, "run", "--incoming", uri, "--net",
                      "tap=mtap1,mac=52:54:00:12:34:56", "--timeout", str(GUEST_TIMEOUT)]
        print("$", " ".join(target_cmd), flush=True)
        target = subprocess.Popen(target_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        sock = os.path.join(sockets, "qmp.sock")
        try:
            guest = LoopGuest(ctx, ns, disk_image(work), sock, rounds)
            try:
                q = Qmp(sock)
                if postcopy:
                    q.ok("migrate-set-capabilities",
                         {"capabilities": [{"capability": "postcopy-ram", "state": True}]})
                    q.ok("migrate-set-parameters", {"max-bandwidth": 16 << 20})
                q.ok("migrate", {"uri": uri})
                if postcopy:
                    time.sleep(1)
                    q.ok("migrate-start-postcopy")
                deadline = time.monotonic() + GUEST_TIMEOUT
                while (info := q.ok("query-migrate"))["status"] not in ("completed", "failed"):
                    if time.monotonic() > deadline:
                        raise Failure("the migration never ended")
                    time.sleep(0.1)
                print("query-migrate:", info)
                expect_eq("migration status", info["status"], "completed")
                statuses = [e["data"]["status"] for e in q.events if e["event"] == "MIGRATION"]
                if postcopy and "postcopy-active" not in statuses:
                    raise Failure(f"never in post-copy: {statuses}")
                expect_eq("the source after the switch-over", q.ok("query-status")["status"],
                          "postmigrate")
                q.ok("quit")
            finally:
                before = guest.end()
            out, err = target.communicate(timeout=GUEST_TIMEOUT + 60)
        finally:
            if target.poll() is None:
                target.kill()
                target.wait()
        after = out.decode(errors="replace").replace("\r", "")
        print(after[-3000:])
        print(err.decode(errors="replace"), file=sys.stderr)
    check_ticks_go_on(before, after, rounds)
    expect_eq("the migrated guest's exit code", target.returncode, EXIT_POWER_OFF)


@case
def linux_reboot_is_a_reset(ctx):
    # Linux's default reboot method on a hardware-reduced ACPI machine
    # without EFI is a jump to the real-mode reset vector.
    _, out, err = boot(ctx, "reboot", want=EXIT_RESET)
    expect_line(out, r"^mote-linux: rebooting$")
    expect_line(err, r"guest requested a reset")


@case
def linux_panic_is_reported(ctx):
    _, out, err = boot(ctx, "panic", want=EXIT_PANIC)
    expect_line(out, r"Kernel panic - not syncing")
    expect_line(err, r"guest panicked \(pvpanic\)")


@case
def linux_expect_console_line(ctx):
    # The guest would wait for ever; --expect ends mote with 0 at the line.
    start = time.monotonic()
    boot(ctx, "wait", "--expect", r"^mote-linux: do=wait", want=0)
    if time.monotonic() - start > GUEST_TIMEOUT / 2:
        raise Failure("--expect did not end mote when the line came")


if __name__ == "__main__":
    sys.exit(run_case(CASES))
