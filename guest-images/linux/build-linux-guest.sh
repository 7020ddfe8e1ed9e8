#!/bin/bash
# Builds the Linux test guest from Debian packages only:
#   DIR/vmlinuz            the Debian cloud kernel (linux-image-*-cloud-amd64)
#   DIR/initramfs.cpio.gz  busybox-static, the kernel package's virtio and
#                          pvpanic modules (those the kernel does not have
#                          built in), port-write (port_write.c, for the boot
#                          timer) and /init (init.sh: reports what the guest
#                          sees, then does what mote.do= on the kernel command
#                          line says: power off, reboot, panic, disk, network
#                          or rng checks)
#   DIR/modules/           the modules picked from the kernel package (cache)
#
# Usage: build-linux-guest.sh [DIR]   (default: build/guest-images/linux)
#
# The kernel download is cached: it is skipped when DIR/vmlinuz exists and
# DIR/modules/ holds the module set of this script's WANTED_MODULES (delete
# DIR/vmlinuz to pick up a newer kernel). The initramfs is rebuilt every time;
# that takes well under a second. Needs apt-get, apt-cache, dpkg-deb, cpio and
# gzip (and xz or zstd if the package's modules are compressed), and gcc with
# a static C library for port-write; run as root
# so /dev/console can be created in the initramfs and so `apt-get update` can
# run if the package lists are missing.
set -euo pipefail

readonly DIR="${1:-build/guest-images/linux}"
readonly BOOT_TIMER_PORT=$((0x440)) # kBootTimerPort in arch/x86/layout.h
readonly META_PACKAGE=linux-image-cloud-amd64
# What the stock kernel needs for virtio disks, NICs and rng over virtio-pci
# and virtio-mmio, by module name. Those built into the kernel are skipped,
# the dependencies of the rest (the modules' depends=) are added, and /init
# loads them in dependency order. pvpanic_mmio drives QEMU's (and mote's) ISA
# pvpanic port too, found through the DSDT's QEMU0001 device; qemu_fw_cfg
# finds fw_cfg through QEMU0002 and shows its items in /sys/firmware.
readonly WANTED_MODULES=(virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev
  virtio_pci virtio_mmio virtio_blk failover net_failover virtio_net rng_core virtio_rng
  pvpanic_mmio qemu_fw_cfg)
# Split out of virtio_pci only in newer kernels (5.14 and 5.16).
readonly OPTIONAL_MODULES=" virtio_pci_modern_dev virtio_pci_legacy_dev "

log() { echo "build-linux-guest: $*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in apt-get apt-cache dpkg-deb cpio gzip; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

mkdir -p "$DIR"
DIR_ABS="$(cd "$DIR" && pwd)"
WORK="$(mktemp -d "$DIR_ABS/.work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=debian_kernel.sh
source "$HERE/debian_kernel.sh"

fetch_kernel() {
  local package
  package="$(kernel_package "$META_PACKAGE" 'linux-image-[0-9][^ ]*-cloud-amd64')"
  # A partial run must not leave an old kernel next to new modules.
  rm -f "$DIR_ABS/vmlinuz" "$DIR_ABS/vmlinuz.version"
  log "downloading $package"
  local deb
  deb="$(download_deb "$package")"
  dpkg-deb -x "$deb" "$WORK/kernel"
  local vmlinuz
  vmlinuz="$(find "$WORK/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n 1)"
  [[ -n "$vmlinuz" ]] || die "$package has no /boot/vmlinuz-*"
  select_modules "$WORK/kernel" "${vmlinuz##*/vmlinuz-}" "$WORK/modules" "$OPTIONAL_MODULES" \
    "${WANTED_MODULES[@]}"
  rm -rf "$DIR_ABS/modules"
  mv "$WORK/modules" "$DIR_ABS/modules"
  cp "$vmlinuz" "$DIR_ABS/vmlinuz.tmp"
  echo "$package $(basename "$vmlinuz")" >"$DIR_ABS/vmlinuz.version"
  mv "$DIR_ABS/vmlinuz.tmp" "$DIR_ABS/vmlinuz" # last, so a partial run is not cached
}

build_initramfs() {
  local root="$WORK/initramfs"
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,etc,tmp}
  cp "$(busybox_binary)" "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  # The boot timer is an I/O port, and the cloud kernel has no /dev/port.
  gcc -static -Os -s -Wall -Wextra -o "$root/bin/port-write" "$HERE/port_write.c" ||
    die "cannot build port-write (gcc with a static C library: libc6-dev)"
  cp -a "$DIR_ABS/modules/root/." "$root/"
  module_insmod_list "$DIR_ABS/modules/order" >"$root/etc/mote-modules"
  # The kernel opens /dev/console for init before any devtmpfs is mounted.
  if [[ "$(id -u)" == 0 ]]; then
    mknod -m 600 "$root/dev/console" c 5 1
  else
    log "not root: no /dev/console node (init re-opens it after mounting devtmpfs)"
  fi
  sed "s/@BOOT_TIMER_PORT@/$BOOT_TIMER_PORT/" "$HERE/init.sh" >"$root/init"
  chmod 755 "$root/init"

  (cd "$root" && find . -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc -R 0:0 --quiet) | gzip -9 >"$DIR_ABS/initramfs.cpio.gz.tmp"
  mv "$DIR_ABS/initramfs.cpio.gz.tmp" "$DIR_ABS/initramfs.cpio.gz"
}

if [[ -s "$DIR_ABS/vmlinuz" && -f "$DIR_ABS/modules/order" &&
  "$(cat "$DIR_ABS/modules/wanted" 2>/dev/null)" == "${WANTED_MODULES[*]}" ]]; then
  log "using cached kernel $DIR_ABS/vmlinuz ($(cat "$DIR_ABS/vmlinuz.version" 2>/dev/null || echo unknown))"
else
  if [[ -s "$DIR_ABS/vmlinuz" ]]; then
    log "the cached kernel has no modules picked for this module list; fetching it again"
  fi
  fetch_kernel
fi
build_initramfs

echo "$DIR_ABS/vmlinuz"
echo "$DIR_ABS/initramfs.cpio.gz"
