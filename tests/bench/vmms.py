"""The monitors the benchmarks compare, and how each one is asked to run the
same tiny guest: mote, QEMU (microvm with the options that make it fastest
here, q35 where PCI is the point) and the bare-KVM floor program. Each
launcher returns the command line and what marks the guest's boot-timer
write on that monitor's stderr.
"""
import os
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "tests", "bench")

# On this host plain -cpu host aborts QEMU ("failed to set MSR 0x10a").
QEMU_CPU = ["-enable-kvm", "-cpu", "host,-arch-capabilities"]
QEMU_COMMON = ["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
               "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
               # The boot-timer port: each byte the guest writes to 0x440 goes to stderr.
               "-chardev", "file,id=boottimer,path=/proc/self/fd/2",
               "-device", "isa-debugcon,iobase=0x440,chardev=boottimer"]


class Vmm:
    def __init__(self, name, boot_marker):
        self.name = name
        self.boot_marker = boot_marker  # bytes on stderr that say the boot timer was written

    def command(self, kernel, cmdline, cpus=1, memory_mib=128, disks=(), taps=(), extra=()):
        """The command line; `disks` items come from disk(), `taps` are TAP
        names (NIC i gets MAC 52:54:00:12:34:56 + i on every monitor)."""
        raise NotImplementedError

    def disk(self, path, direct):
        """The `disks` item for a raw image, O_DIRECT or through the page cache."""
        raise NotImplementedError


class Mote(Vmm):
    def __init__(self, binary, transport="pci", label="mote"):
        super().__init__(label, b"guest boot done")
        self.binary = binary
        self.transport = transport

    def command(self, kernel, cmdline, cpus=1, memory_mib=128, disks=(), taps=(), extra=()):
        cmd = [self.binary, "run", "--kernel", kernel, "--cmdline", cmdline, "--cpus", str(cpus),
               "--memory", f"{memory_mib}M", "--transport", self.transport]
        for d in disks:
            cmd += ["--disk", d]
        for t in taps:
            cmd += ["--net", f"tap={t}"]
        return cmd + list(extra)

    def disk(self, path, direct):
        return f"path={path}" + (",cache=none" if direct else "")


def mac(i):
    return f"52:54:00:12:34:{0x56 + i:02x}"


class Qemu(Vmm):
    def nics(self, taps, device):
        # No /dev/vhost-net on this host: QEMU's own userspace virtio-net, like mote's.
        out = []
        for i, t in enumerate(taps):
            out += ["-netdev", f"tap,id=n{i},ifname={t},script=no,downscript=no,vhost=off",
                    "-device", f"{device},netdev=n{i},mac={mac(i)}"]
        return out

    def disk(self, path, direct):
        # QEMU's fastest: O_DIRECT through io_uring; buffered through its threads.
        return f"file={path}," + ("cache=none,aio=io_uring" if direct else "cache=writeback,aio=threads")


class QemuMicrovm(Qemu):
    """microvm with no firmware, PIC, PIT or RTC; ACPI only where the guest
    needs it (SMP: the tiny kernel finds its CPUs in the MADT)."""

    def __init__(self, binary="qemu-system-x86_64", rtc=False):
        super().__init__("qemu-microvm", b"\x00")
        self.binary = binary
        self.rtc = rtc  # the net benchmark's guest times itself against the RTC

    def command(self, kernel, cmdline, cpus=1, memory_mib=128, disks=(), taps=(), extra=()):
        acpi = "on" if cpus > 1 else "off"
        rtc = "on" if self.rtc else "off"
        machine = f"microvm,acpi={acpi},x-option-roms=off,pit=off,pic=off,rtc={rtc},isa-serial=on"
        cmd = [self.binary, *QEMU_CPU, "-M", machine, "-smp", str(cpus), "-m", str(memory_mib),
               *QEMU_COMMON, "-kernel", kernel, "-append", cmdline,
               # The tiny driver speaks modern virtio-mmio only.
               "-global", "virtio-mmio.force-legacy=false"]
        for i, d in enumerate(disks):
            cmd += ["-drive", f"if=none,id=d{i},format=raw,{d}", "-device", f"virtio-blk-device,drive=d{i}"]
        return cmd + self.nics(taps, "virtio-net-device") + list(extra)


class QemuQ35(Qemu):
    """q35 with SeaBIOS (about 4 s of firmware here): for PCI devices."""

    def __init__(self, binary="qemu-system-x86_64"):
        super().__init__("qemu-q35", b"\x00")
        self.binary = binary

    def command(self, kernel, cmdline, cpus=1, memory_mib=128, disks=(), taps=(), extra=()):
        cmd = [self.binary, *QEMU_CPU, "-M", "q35", "-smp", str(cpus), "-m", str(memory_mib),
               *QEMU_COMMON, "-kernel", kernel, "-append", cmdline]
        for i, d in enumerate(disks):
            cmd += ["-drive", f"if=none,id=d{i},format=raw,{d}",
                    "-device", f"virtio-blk-pci,drive=d{i},disable-legacy=on"]
        return cmd + self.nics(taps, "virtio-net-pci,disable-legacy=on") + list(extra)


class Floor(Vmm):
    """tests/bench/kvm_floor.c: the KVM objects mote creates, and nothing else."""

    def __init__(self, binary, irqchip=True, pit=False):
        label = "floor" + ("+irqchip" if irqchip else "") + ("+pit" if pit else "")
        super().__init__(label, b"boot-timer")
        self.binary = binary
        self.flags = (["--irqchip"] if irqchip else []) + (["--pit"] if pit else [])

    def command(self, kernel, cmdline, cpus=1, memory_mib=128, disks=(), taps=(), extra=()):
        if cpus != 1 or disks or taps:
            raise ValueError("the floor runs one vCPU and no devices")
        return [self.binary, *self.flags, "--memory", str(memory_mib), kernel, cmdline]


def build_floor(out_dir):
    """Compiles the floor program into out_dir (once per source change);
    returns its path."""
    os.makedirs(out_dir, exist_ok=True)
    src = os.path.join(BENCH, "kvm_floor.c")
    dst = os.path.join(out_dir, "kvm_floor")
    if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(src):
        subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-o", dst, src], check=True)
    return dst


def qemu_binary():
    return shutil.which("qemu-system-x86_64")


def run_timed(cmd, start_marker, done_marker):
    """Runs `cmd` (a guest's console on its stdout, read as it comes) to its
    end. Returns (seconds from the console chunk holding `start_marker` to
    the one holding `done_marker` after it, or None if either never came;
    exit code; stdout; stderr), the texts decoded."""
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                             bufsize=0)
        fd = p.stdout.fileno()
        out, t_start, t_done = b"", None, None
        while True:
            chunk = os.read(fd, 65536)
            t = time.monotonic()
            if not chunk:
                break
            out += chunk
            if t_start is None and start_marker in out:
                t_start = t
            if t_done is None and t_start is not None and done_marker in out:
                t_done = t
        rc = p.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    secs = t_done - t_start if t_done is not None else None
    return secs, rc, out.decode(errors="replace"), stderr
