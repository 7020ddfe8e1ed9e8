#!/usr/bin/env python3
"""Bad input from users, one table: every malformed command line, VM
description, kernel image, disk file and control-socket request below must
end mote (or `mote ctl`) with exactly one clear error line on stderr, the
documented exit code 2, and no crash. mote checks every input, the kernel
image included, before it opens the KVM device, so all of them run anywhere,
with or without /dev/kvm.
  bad_input_test.py --mote build/vmm/mote --images build/guest-images
Exit: 0 all run cases passed, 1 a case failed (meson's codes)."""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from kernel_images import bzimage, elf64  # noqa: E402


class Files:
    """The malformed files the cases point at, in one scratch directory."""

    def __init__(self, d, images):
        self.d = d
        self.kernel = os.path.join(images, "motetest.pvh")

        def make(name, data=b"", size=None):
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(data)
                if size is not None:
                    f.truncate(size)
            return path

        self.garbage = make("garbage.bin", os.urandom(64 * 1024))
        with open(self.kernel, "rb") as f:
            self.truncated = make("truncated.elf", f.read(300))
        self.empty = make("empty.bin")
        code = b"\xf4" * 64
        self.overlap = make("overlap.elf", elf64([(0x100000, code, 0x2000), (0x101000, code, 0x1000)], 0x100000))
        self.entry_outside = make("entry.elf", elf64([(0x100000, code, 64)], 0x7000000))
        self.beyond_ram = make("beyond.elf", elf64([(0x40000000, code, 64)], 0x40000000))
        self.old_bzimage = make("old.bzimage", bzimage(version=0x0200))  # protocol 2.00: too old
        self.big_initrd = make("initrd.img", size=64 << 20)
        self.odd_disk = make("odd.img", b"x" * 1000)
        self.disk = make("disk.img", size=1 << 20)
        self.regular = make("regular-file")

    def config(self, value):
        """A --config file holding `value` (text as it is, anything else as JSON)."""
        self.configs = getattr(self, "configs", 0) + 1
        path = os.path.join(self.d, f"config-{self.configs}.json")
        with open(path, "w") as f:
            f.write(value if isinstance(value, str) else json.dumps(value))
        return path


def listening_socket(d):
    """A Unix socket something already listens on (as a running mote would)."""
    path = os.path.join(d, "busy.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return path, s


def cases(f, busy_socket):
    k = f.kernel
    run = lambda *a: ["run", *a]
    # (name, argv after `mote`, error pattern)
    return [
        # The command line.
        ("no kernel", run(), r"kernel: missing"),
        ("unknown flag", run("--kernel", k, "--no-such-flag"), r"no-such-flag"),
        ("unknown command", ["frobnicate"], r"unknown command 'frobnicate': try `mote run` or `mote ctl`"),
        ("no command", [], r"subcommand"),
        ("zero cpus", run("--kernel", k, "--cpus", "0"), r"cpus: expected an integer"),
        ("too many cpus", run("--kernel", k, "--cpus", "1000"), r"cpus: expected an integer"),
        ("memory not a size", run("--kernel", k, "--memory", "lots"), r"memory size 'lots'"),
        ("memory unit unknown", run("--kernel", k, "--memory", "12Q"), r"unknown suffix 'Q'"),
        ("memory too small", run("--kernel", k, "--memory", "1M"), r"too small"),
        ("negative timeout", run("--kernel", k, "--timeout", "-5"), r"timeout: expected a number"),
        ("on-reboot word", run("--kernel", k, "--on-reboot", "maybe"), r"expected exit or restart"),
        ("pit word", run("--kernel", k, "--pit", "sometimes"), r"expected on, off or auto"),
        ("log level", run("--kernel", k, "--log-level", "loud"), r"log_level: expected one of"),
        ("transport", run("--kernel", k, "--transport", "isa"), r"transport 'isa': expected pci or mmio"),
        ("console", run("--kernel", k, "--console", "tty9"), r"console"),
        ("bad regex", run("--kernel", k, "--expect", "(["), r"regex"),
        ("cpu template", run("--kernel", k, "--cpu", "pentium"), r"CPU template"),
        ("seccomp word", run("--kernel", k, "--seccomp", "strict"), r"seccomp: expected on, off or log"),
        ("socket mode without owner rw", run("--kernel", k, "--api-socket-mode", "0466"),
         r"api_socket_mode: expected an octal mode from 0600 to 0777"),
        ("socket mode not octal", run("--kernel", k, "--api-socket-mode", "0689"),
         r"api_socket_mode: expected an octal mode"),
        # The VM description (--config).
        ("config missing", run("--config", os.path.join(f.d, "none.json")), r"cannot read config"),
        ("timings unwritable", run("--kernel", k, f"--timings={f.d}/no/such/dir/t.json"),
         r"--timings .*/no/such/dir/t.json: No such file or directory"),
        ("config not JSON", run("--config", f.config('{"kernel": "k", "cpus": }')), r"config: line 1"),
        ("config not an object", run("--config", f.config("[1, 2]")), r"config: .*object"),
        ("config wrong type", run("--config", f.config({"kernel": k, "cpus": "two"})), r"config: cpus"),
        ("config bad cache", run("--config", f.config({"kernel": k, "disks": [{"path": f.disk, "cache": "fast"}]})),
         r"config: disks\[0\]\.cache"),
        ("config unknown member", run("--config", f.config({"kernel": k, "turbo": True})), r"config: .*turbo"),
        # Disk files and NICs.
        ("disk missing", run("--kernel", k, "--disk", f"path={f.d}/nodisk.img"), r"nodisk.img: No such file"),
        ("disk odd size", run("--kernel", k, "--disk", f"path={f.odd_disk}"), r"not a multiple of 512"),
        ("disk is a directory", run("--kernel", k, "--disk", f"path={f.d}"), r"(Is a directory|not a regular file)"),
        ("disk option", run("--kernel", k, "--disk", f"path={f.disk},speed=max"), r"unknown option 'speed'"),
        ("disk without path", run("--kernel", k, "--disk", "readonly=on"), r"no path=FILE"),
        ("net tap and fd", run("--kernel", k, "--net", "tap=a,fd=3"), r"exactly one of tap=NAME and fd=N"),
        ("net mac", run("--kernel", k, "--net", "tap=t0,mac=nope"), r"xx:xx:xx:xx:xx:xx"),
        ("net fd not a TAP", run("--kernel", k, "--net", "fd=0"), r"tap fd 0: not an open TAP device"),
        # The control socket.
        ("socket directory missing", run("--kernel", k, "--api-socket", f"{f.d}/no/such/dir/s.sock"),
         r"--api-socket .*no/such/dir/s.sock: No such file"),
        ("socket path is a file", run("--kernel", k, "--api-socket", f.regular), r"exists and is not a socket"),
        ("socket path too long", run("--kernel", k, "--api-socket", "/tmp/" + "x" * 120), r"at most 107 bytes"),
        ("socket in use", run("--kernel", k, "--api-socket", busy_socket), r"in use by a running mote"),
        ("ctl without mote", ["ctl", f"{f.d}/none.sock", "query-status"], r"is mote running"),
        ("ctl arguments not JSON", ["ctl", f"{f.d}/none.sock", "stop", "{bad"], r"arguments '\{bad': not JSON"),
        ("kvm device missing", run("--kernel", k, "--kvm-device", "/nonexistent/kvm"), r"/nonexistent/kvm"),
        # Kernel images (loaded before KVM is opened).
        ("kernel missing", run("--kernel", os.path.join(f.d, "missing")), r"missing.*(No such file|not found)"),
        ("kernel is a directory", run("--kernel", f.d), r"not a regular file"),
        ("kernel empty", run("--kernel", f.empty), r"(empty|not a known kernel format|short|truncated)"),
        ("kernel wrong magic", run("--kernel", f.garbage), r"not a known kernel format"),
        ("kernel truncated", run("--kernel", f.truncated), r"(truncated|beyond|short|too small)"),
        ("kernel overlapping segments", run("--kernel", f.overlap), r"overlap"),
        ("kernel entry outside", run("--kernel", f.entry_outside), r"entry"),
        ("kernel beyond RAM", run("--kernel", f.beyond_ram, "--memory", "64M"), r"(RAM|memory)"),
        ("bzImage too old", run("--kernel", f.old_bzimage), r"(protocol|version|old)"),
        ("initrd too big", run("--kernel", k, "--initrd", f.big_initrd, "--memory", "32M"), r"initrd.*(fit|large)"),
        ("initrd missing", run("--kernel", k, "--initrd", os.path.join(f.d, "nope")), r"nope"),
        ("cmdline too long", run("--kernel", k, "--cmdline", "x" * 70000), r"command line"),
    ]


def check(mote, argv, pattern):
    """None if mote failed as it should, else what went wrong."""
    p = subprocess.run([mote, *argv], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    err = p.stderr.decode(errors="replace")
    lines = [l for l in err.splitlines() if l.strip()]
    if p.returncode != 2:
        return f"exit code {p.returncode}, want 2; stderr {err[-300:]!r}"
    if len(lines) != 1 or not re.match(r"mote( ctl)?: error: ", lines[0]):
        return f"want exactly one 'mote: error:' line on stderr, got {lines!r}"
    if not re.search(pattern, lines[0]):
        return f"error line {lines[0]!r} does not match {pattern!r}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mote", required=True)
    ap.add_argument("--images", required=True)
    args = ap.parse_args()
    failed = ran = 0
    with tempfile.TemporaryDirectory() as d:
        busy_path, busy = listening_socket(d)
        table = cases(Files(d, args.images), busy_path)
        for name, argv, pattern in table:
            ran += 1
            problem = check(args.mote, argv, pattern)
            print(f"{'FAIL' if problem else 'ok  '} {name}" + (f": {problem}" if problem else ""))
            failed += bool(problem)
        busy.close()
    print(f"{len(table)} cases: {ran - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
