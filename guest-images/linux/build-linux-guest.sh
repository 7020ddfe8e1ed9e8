#!/bin/bash
# Builds the Linux test guest from Debian packages only:
#   DIR/vmlinuz            the Debian cloud kernel (linux-image-*-cloud-amd64)
#   DIR/initramfs.cpio.gz  busybox-static and an /init that prints
#                          MOTE-LINUX-BOOT-OK, the CPU count and the date,
#                          writes the boot-timer port, then powers off
#
# Usage: build-linux-guest.sh [DIR]   (default: build/guest-images/linux)
#
# The kernel download is cached: it is skipped when DIR/vmlinuz exists
# (delete it to pick up a newer kernel). The initramfs is rebuilt every time;
# that takes well under a second. Needs apt-get, apt-cache, dpkg-deb, cpio and
# gzip; run as root so /dev/console can be created in the initramfs and so
# `apt-get update` can run if the package lists are missing.
set -euo pipefail

readonly DIR="${1:-build/guest-images/linux}"
readonly BOOT_TIMER_PORT=$((0x440)) # kBootTimerPort in arch/x86/layout.h
readonly META_PACKAGE=linux-image-cloud-amd64

log() { echo "build-linux-guest: $*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in apt-get apt-cache dpkg-deb cpio gzip; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

mkdir -p "$DIR"
DIR_ABS="$(cd "$DIR" && pwd)"
WORK="$(mktemp -d "$DIR_ABS/.work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# The concrete kernel package the metapackage points at, e.g.
# linux-image-6.1.0-56-cloud-amd64.
kernel_package() {
  apt-cache depends "$META_PACKAGE" 2>/dev/null |
    sed -n 's/^ *|\{0,1\}Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1
}

# Downloads a .deb into $WORK (apt-get download writes to the current
# directory) and prints its path.
download_deb() {
  local package="$1"
  local sandbox=()
  # As root, apt hands the download to its _apt user, which cannot write into
  # our private work directory; it would fall back to root with a warning.
  [[ "$(id -u)" == 0 ]] && sandbox=(-o APT::Sandbox::User=root)
  (cd "$WORK" && apt-get download -q "${sandbox[@]}" "$package" >&2) ||
    die "apt-get download $package failed"
  local deb
  deb="$(find "$WORK" -maxdepth 1 -name "${package}_*.deb" | head -n 1)"
  [[ -n "$deb" ]] || die "no .deb for $package after download"
  echo "$deb"
}

fetch_kernel() {
  local package
  package="$(kernel_package)"
  if [[ -z "$package" ]]; then
    # A fresh machine may have no package lists yet.
    [[ "$(id -u)" == 0 ]] || die "apt-cache does not know $META_PACKAGE; run 'apt-get update' as root"
    log "no package lists for $META_PACKAGE; running apt-get update"
    apt-get update -q >&2
    package="$(kernel_package)"
    [[ -n "$package" ]] || die "cannot resolve $META_PACKAGE to a kernel package"
  fi
  log "downloading $package"
  local deb
  deb="$(download_deb "$package")"
  dpkg-deb -x "$deb" "$WORK/kernel"
  local vmlinuz
  vmlinuz="$(find "$WORK/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n 1)"
  [[ -n "$vmlinuz" ]] || die "$package has no /boot/vmlinuz-*"
  cp "$vmlinuz" "$DIR_ABS/vmlinuz.tmp"
  echo "$package $(basename "$vmlinuz")" >"$DIR_ABS/vmlinuz.version"
  mv "$DIR_ABS/vmlinuz.tmp" "$DIR_ABS/vmlinuz" # last, so a partial run is not cached
}

# The static busybox binary: the installed busybox-static if there is one,
# else from its .deb.
busybox_binary() {
  if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' &&
    [[ -x /bin/busybox ]]; then
    echo /bin/busybox
    return
  fi
  log "busybox-static not installed; downloading it"
  local deb
  deb="$(download_deb busybox-static)"
  dpkg-deb -x "$deb" "$WORK/busybox"
  echo "$WORK/busybox/bin/busybox"
}

build_initramfs() {
  local root="$WORK/initramfs"
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,etc,tmp}
  cp "$(busybox_binary)" "$root/bin/busybox"
  local applet
  for applet in sh mount echo cat grep nproc date dd printf poweroff sleep; do
    ln -s busybox "$root/bin/$applet"
  done
  # The kernel opens /dev/console for init before any devtmpfs is mounted.
  if [[ "$(id -u)" == 0 ]]; then
    mknod -m 600 "$root/dev/console" c 5 1
  else
    log "not root: no /dev/console node (init re-opens it after mounting devtmpfs)"
  fi

  cat >"$root/init" <<EOF
#!/bin/sh
# mote's Linux boot test: report what the guest sees, mark boot done, power off.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo MOTE-LINUX-BOOT-OK
cpus="\$(nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
echo "mote-linux: cpus=\$cpus"
echo "mote-linux: date=\$(date -u '+%Y-%m-%d %H:%M:%S')"
# One byte to the boot-timer port ($BOOT_TIMER_PORT) through /dev/port.
printf '\\001' | dd of=/dev/port bs=1 seek=$BOOT_TIMER_PORT count=1 conv=notrunc 2>/dev/null ||
  echo "mote-linux: writing the boot-timer port failed"
poweroff -f
EOF
  chmod 755 "$root/init"

  (cd "$root" && find . -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc -R 0:0 --quiet) | gzip -9 >"$DIR_ABS/initramfs.cpio.gz.tmp"
  mv "$DIR_ABS/initramfs.cpio.gz.tmp" "$DIR_ABS/initramfs.cpio.gz"
}

if [[ -s "$DIR_ABS/vmlinuz" ]]; then
  log "using cached kernel $DIR_ABS/vmlinuz ($(cat "$DIR_ABS/vmlinuz.version" 2>/dev/null || echo unknown))"
else
  fetch_kernel
fi
build_initramfs

echo "$DIR_ABS/vmlinuz"
echo "$DIR_ABS/initramfs.cpio.gz"
