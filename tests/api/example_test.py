#!/usr/bin/env python3
"""examples/three_guests.c (C) and examples/one_guest.cc (C++) built the way a user of libmote builds it: mote is
installed (`meson install --destdir` into a scratch directory), the example
is compiled with `cc` and the flags pkg-config gives for libmote, and run
against the installed shared library. They must report their guests' exit
codes and events.

Usage: example_test.py --build BUILD_DIR --example three_guests.c --cxx-example one_guest.cc
                       --kernel motetest.pvh
Exits 0 on pass, 1 on failure, 77 (meson's skip) where /dev/kvm is missing.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile


def run(cmd, **kw):
    print("$", " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    print(p.stdout, p.stderr, sep="")
    return p


def sanitizer_flags(build):
    """A sanitized libmote needs its runtime loaded first: build the example
    with the same -fsanitize= as the build directory (none normally)."""
    p = subprocess.run(["meson", "introspect", build, "--buildoptions"], capture_output=True, text=True)
    options = {o["name"]: o["value"] for o in json.loads(p.stdout)} if p.returncode == 0 else {}
    sanitize = options.get("b_sanitize", "none")
    return [] if sanitize in ("none", "") else [f"-fsanitize={sanitize}"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--example", required=True)
    ap.add_argument("--cxx-example", required=True)
    ap.add_argument("--kernel", required=True)
    args = ap.parse_args()
    if not os.path.exists("/dev/kvm"):
        print("/dev/kvm is missing: skipping")
        return 77
    stage = tempfile.mkdtemp(prefix="mote-install-")
    try:
        p = run(["meson", "install", "-C", args.build, "--no-rebuild", "--quiet", "--destdir", stage])
        if p.returncode != 0:
            print("FAILED: meson install")
            return 1
        pcs = glob.glob(os.path.join(stage, "**", "pkgconfig", "libmote.pc"), recursive=True)
        headers = glob.glob(os.path.join(stage, "**", "include", "mote", "mote.h"), recursive=True)
        if len(pcs) != 1 or len(headers) != 1:
            print(f"FAILED: installed libmote.pc {pcs}, mote/mote.h {headers}")
            return 1
        # The .pc names the real prefix; the sysroot points pkg-config at the stage.
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]), PKG_CONFIG_SYSROOT_DIR=stage)
        p = run(["pkg-config", "--cflags", "--libs", "libmote"], env=env)
        if p.returncode != 0:
            print("FAILED: pkg-config libmote")
            return 1
        flags = p.stdout.split()
        binary = os.path.join(stage, "three_guests")
        p = run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", *sanitizer_flags(args.build), "-o",
                 binary, args.example, *flags])
        if p.returncode != 0:
            print("FAILED: the example does not build against the installed libmote")
            return 1
        libdirs = [f[2:] for f in flags if f.startswith("-L")]
        env = dict(os.environ, LD_LIBRARY_PATH=":".join(libdirs))
        p = run([binary, args.kernel], env=env)
        failures = []
        for cmdline, code, reason in (("test=hello exit=7", 15, "x-mote-debug-exit"),
                                      ("test=smp", 1, "x-mote-debug-exit"),
                                      ("test=poweroff", 0, "guest-shutdown")):
            if not re.search(rf"^{re.escape(cmdline)}: exit code {code} \({reason}:", p.stdout, re.M):
                failures.append(f"no '{cmdline}: exit code {code} ({reason}' line")
            if not re.search(rf"\] {re.escape(cmdline)}: SHUTDOWN .*\"reason\":\"{reason}\"", p.stdout):
                failures.append(f"no SHUTDOWN event for '{cmdline}'")
        if "3 of 3 guests ended as expected" not in p.stdout or p.returncode != 0:
            failures.append(f"the example exited {p.returncode}")
        # The C++ API from the same installation, with only C++17 and libmote.
        cxx_binary = os.path.join(stage, "one_guest")
        p3 = run(["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", *sanitizer_flags(args.build), "-o",
                  cxx_binary, args.cxx_example, *flags])
        if p3.returncode != 0:
            failures.append("the C++ example does not build against the installed headers")
        else:
            p3 = run([cxx_binary, args.kernel], env=env)
            for pattern in (r"^status prelaunch$", r"^event RESUME \{\}$",
                            r"^event SHUTDOWN \{\"guest\":true,\"reason\":\"x-mote-debug-exit\"\}$",
                            r"^exit code 1 \(x-mote-debug-exit: .*\); counters after the end: the VM has ended$"):
                if not re.search(pattern, p3.stdout, re.M):
                    failures.append(f"one_guest printed no line matching {pattern}")
            if p3.returncode != 0:
                failures.append(f"one_guest exited {p3.returncode}")
        # It must use the installed library, not the build tree's.
        p2 = run(["ldd", binary], env=env)
        if stage not in p2.stdout:
            failures.append("the example did not load the installed libmote.so")
        for f in failures:
            print("FAILED:", f)
        if not failures:
            print("PASSED")
        return 1 if failures else 0
    finally:
        shutil.rmtree(stage, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
