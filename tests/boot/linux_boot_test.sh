#!/usr/bin/env bash
# On-demand boot test of the stock Debian cloud kernel (not in the default
# suite): it needs a host with hardware KVM. On this project's own machines
# (software nested KVM) Linux cannot boot: mote stops with exit code 12 and
# prints the instruction the host could not emulate.
# Usage: tests/boot/linux_boot_test.sh [CPUS]   (from the repository root, after the build)
set -euo pipefail
cpus="${1:-2}"
dir=build/guest-images/linux
guest-images/linux/build-linux-guest.sh "$dir" >/dev/null
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
build/vmm/mote run --kernel "$dir/vmlinuz" --initrd "$dir/initramfs.cpio.gz" \
  --cmdline "console=ttyS0 panic=-1 quiet" --cpus "$cpus" --memory 512M \
  --timeout 120 --console "file:$log" </dev/null || status=$?
grep -q "MOTE-LINUX-BOOT-OK" "$log" || { echo "FAIL: no boot marker (mote exit $status)"; exit 1; }
grep -q "mote-linux: cpus=$cpus\$" "$log" || { echo "FAIL: the guest did not see $cpus CPUs"; exit 1; }
[ "$status" -eq 0 ] || { echo "FAIL: mote exit $status, want 0 (guest power-off)"; exit 1; }
echo "PASS: Debian cloud kernel booted with $cpus CPUs and powered off"
