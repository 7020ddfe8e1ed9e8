#!/usr/bin/env bash
# On-demand boot test of the stock Debian cloud kernel (not in the default
# suite yet): it needs a KVM that runs Linux: hardware KVM, or the nested
# runner (tests/nested/run.sh -- tests/boot/linux_boot_test.sh 2 pci). On a
# kvm_pvm host Linux cannot boot: mote stops with exit code 12 and prints the
# instruction the host could not emulate.
# The guest also gets a 4 MiB raw disk of random bytes: its initramfs loads
# the kernel package's virtio modules, and the test checks that the guest
# found the disk as vda and read the same first MiB as the host.
# Usage: tests/boot/linux_boot_test.sh [CPUS] [pci|mmio]   (from the repository root, after
# the build; the second argument is mote's --transport, default pci)
set -euo pipefail
cpus="${1:-2}"
transport="${2:-pci}"
dir=build/guest-images/linux
guest-images/linux/build-linux-guest.sh "$dir" >/dev/null
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
raw="$tmp/console.raw"
log="$tmp/console.log"
disk="$tmp/disk.img"
dd if=/dev/urandom of="$disk" bs=1M count=4 status=none
want_sha="$(dd if="$disk" bs=1M count=1 status=none | sha256sum | cut -d' ' -f1)"
status=0
build/vmm/mote run --kernel "$dir/vmlinuz" --initrd "$dir/initramfs.cpio.gz" \
  --cmdline "console=ttyS0 panic=-1 quiet mote.do=blk-read" --cpus "$cpus" --memory 512M \
  --disk "path=$disk" --transport "$transport" --timeout 120 --console "file:$raw" </dev/null || status=$?
# The guest's tty turns "\n" into "\r\n".
tr -d '\r' <"$raw" >"$log"
grep -q "MOTE-LINUX-BOOT-OK" "$log" || { echo "FAIL: no boot marker (mote exit $status)"; exit 1; }
grep -q "mote-linux: cpus=$cpus\$" "$log" || { echo "FAIL: the guest did not see $cpus CPUs"; exit 1; }
grep -q "mote-linux: disks: vda\$" "$log" || {
  echo "FAIL: the guest did not find the virtio disk as vda; it said:"
  grep "mote-linux: \(insmod\|virtio modules\|disks\)" "$log" || echo "  (no module or disk lines)"
  exit 1
}
grep -q "mote-linux: vda sha256=$want_sha\$" "$log" || {
  echo "FAIL: the guest read a different first MiB of vda (want sha256=$want_sha); it said:"
  grep "mote-linux: vda" "$log" || echo "  (no vda line)"
  exit 1
}
[ "$status" -eq 0 ] || { echo "FAIL: mote exit $status, want 0 (guest power-off)"; exit 1; }
echo "PASS: Debian cloud kernel booted with $cpus CPUs, read its virtio-$transport disk intact and powered off"
