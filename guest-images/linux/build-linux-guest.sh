#!/bin/bash
# Builds the Linux test guest from Debian packages only:
#   DIR/vmlinuz            the Debian cloud kernel (linux-image-*-cloud-amd64)
#   DIR/initramfs.cpio.gz  busybox-static, the kernel package's virtio modules
#                          (those the kernel does not have built in) and an
#                          /init that prints MOTE-LINUX-BOOT-OK, the CPU count
#                          and the date, writes the boot-timer port, loads the
#                          virtio modules, prints the virtio disks and NICs it
#                          found and the sha256 of the first MiB of /dev/vda,
#                          then powers off
#   DIR/modules/           the modules picked from the kernel package (cache)
#
# Usage: build-linux-guest.sh [DIR]   (default: build/guest-images/linux)
#
# The kernel download is cached: it is skipped when DIR/vmlinuz exists and
# DIR/modules/ holds the module set of this script's WANTED_MODULES (delete
# DIR/vmlinuz to pick up a newer kernel). The initramfs is rebuilt every time;
# that takes well under a second. Needs apt-get, apt-cache, dpkg-deb, cpio and
# gzip (and xz or zstd if the package's modules are compressed); run as root
# so /dev/console can be created in the initramfs and so `apt-get update` can
# run if the package lists are missing.
set -euo pipefail

readonly DIR="${1:-build/guest-images/linux}"
readonly BOOT_TIMER_PORT=$((0x440)) # kBootTimerPort in arch/x86/layout.h
readonly META_PACKAGE=linux-image-cloud-amd64
# What the stock kernel needs for virtio disks, NICs and rng over virtio-pci
# and virtio-mmio, by module name. Those built into the kernel are skipped,
# the dependencies of the rest (the modules' depends=) are added, and /init
# loads them in dependency order.
readonly WANTED_MODULES=(virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev
  virtio_pci virtio_mmio virtio_blk failover net_failover virtio_net rng_core virtio_rng)
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
  # A partial run must not leave an old kernel next to new modules.
  rm -f "$DIR_ABS/vmlinuz" "$DIR_ABS/vmlinuz.version"
  log "downloading $package"
  local deb
  deb="$(download_deb "$package")"
  dpkg-deb -x "$deb" "$WORK/kernel"
  local vmlinuz
  vmlinuz="$(find "$WORK/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n 1)"
  [[ -n "$vmlinuz" ]] || die "$package has no /boot/vmlinuz-*"
  select_modules "$WORK/kernel" "${vmlinuz##*/vmlinuz-}" "$WORK/modules"
  rm -rf "$DIR_ABS/modules"
  mv "$WORK/modules" "$DIR_ABS/modules"
  cp "$vmlinuz" "$DIR_ABS/vmlinuz.tmp"
  echo "$package $(basename "$vmlinuz")" >"$DIR_ABS/vmlinuz.version"
  mv "$DIR_ABS/vmlinuz.tmp" "$DIR_ABS/vmlinuz" # last, so a partial run is not cached
}

# The module name of a module file: no directory, no .ko[.xz|.zst|.gz], and
# '_' for '-' (as the kernel names it).
module_name() {
  local name="${1##*/}"
  name="${name%.xz}"
  name="${name%.zst}"
  name="${name%.gz}"
  name="${name%.ko}"
  echo "${name//-/_}"
}

# Copies module SRC to DEST (a .ko), decompressing it: busybox insmod loads
# plain .ko files only.
install_module() {
  local src="$1" dest="$2"
  mkdir -p "${dest%/*}"
  case "$src" in
    *.ko) cp "$src" "$dest" ;;
    *.ko.xz)
      command -v xz >/dev/null || die "$src is xz-compressed and xz is not installed"
      xz -dc "$src" >"$dest" ;;
    *.ko.zst)
      command -v zstd >/dev/null || die "$src is zstd-compressed and zstd is not installed"
      zstd -qdc "$src" >"$dest" ;;
    *.ko.gz) gzip -dc "$src" >"$dest" ;;
    *) die "unknown module file type: $src" ;;
  esac
}

# The depends= field of a (plain) module's .modinfo: the modules it needs,
# comma-separated, as depmod reads it. The package ships no modules.dep
# (depmod writes it when the package is installed).
module_depends() {
  tr '\0' '\n' <"$1" | sed -n 's/^depends=//p'
}

# Picks WANTED_MODULES and their dependencies from the extracted kernel
# package KROOT (kernel VERSION) into OUT:
#   OUT/root/lib/modules/VERSION/...  the modules, decompressed
#   OUT/order                         "NAME /lib/modules/VERSION/....ko" lines,
#                                     dependencies first
#   OUT/builtin                       the wanted modules the kernel has built in
#   OUT/wanted                        WANTED_MODULES, to validate the cache
select_modules() {
  local kroot="$1" version="$2" out="$3"
  local moddir="$kroot/lib/modules/$version"
  [[ -d "$moddir/kernel" ]] || die "the kernel package has no lib/modules/$version/kernel"
  declare -gA MOD_FILE=() MOD_BUILTIN=() MOD_STATE=()
  MOD_ORDER=()
  MOD_BUILTIN_USED=()
  local path
  if [[ -f "$moddir/modules.builtin" ]]; then
    while IFS= read -r path; do
      if [[ -n "$path" ]]; then MOD_BUILTIN["$(module_name "$path")"]=1; fi
    done <"$moddir/modules.builtin"
  fi
  while IFS= read -r -d '' path; do
    MOD_FILE["$(module_name "$path")"]="${path#"$moddir"/}"
  done < <(find "$moddir/kernel" -type f \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' \
    -o -name '*.ko.gz' \) -print0)
  mkdir -p "$out/root"
  MOD_ROOT="$out/root"
  MOD_VERSION="$version"
  MOD_SRC="$moddir"
  local name skipped=()
  for name in "${WANTED_MODULES[@]}"; do
    if [[ -z "${MOD_BUILTIN[$name]:-}" && -z "${MOD_FILE[$name]:-}" ]]; then
      [[ "$OPTIONAL_MODULES" == *" $name "* ]] || die "kernel $version has no $name, neither built in nor as a module"
      skipped+=("$name")
      continue
    fi
    visit_module "$name"
  done
  # printf with no arguments would still print one empty line.
  [[ ${#MOD_ORDER[@]} -eq 0 ]] || printf '%s\n' "${MOD_ORDER[@]}" >"$out/order"
  [[ ${#MOD_BUILTIN_USED[@]} -eq 0 ]] || printf '%s\n' "${MOD_BUILTIN_USED[@]}" >"$out/builtin"
  touch "$out/order" "$out/builtin"
  echo "${WANTED_MODULES[*]}" >"$out/wanted"
  log "kernel $version: built in: ${MOD_BUILTIN_USED[*]:-none}"
  log "kernel $version: modules carried: $(cut -d' ' -f1 "$out/order" | paste -sd' ')"
  if [[ ${#skipped[@]} -gt 0 ]]; then
    log "kernel $version: not in this kernel (part of virtio_pci): ${skipped[*]}"
  fi
}

# Depth-first: a module's dependencies are appended to MOD_ORDER before it.
visit_module() {
  local name="$1"
  case "${MOD_STATE[$name]:-}" in
    visited) return ;;
    visiting) die "module dependency cycle through $name" ;;
  esac
  if [[ -n "${MOD_BUILTIN[$name]:-}" ]]; then
    MOD_BUILTIN_USED+=("$name")
    MOD_STATE["$name"]=visited
    return
  fi
  MOD_STATE["$name"]=visiting
  local rel="${MOD_FILE[$name]}"
  local dest="/lib/modules/$MOD_VERSION/${rel%.ko*}.ko"
  install_module "$MOD_SRC/$rel" "$MOD_ROOT$dest"
  local depends dep
  depends="$(module_depends "$MOD_ROOT$dest")"
  for dep in ${depends//,/ }; do
    [[ -n "${MOD_BUILTIN[$dep]:-}" || -n "${MOD_FILE[$dep]:-}" ]] ||
      die "$name needs $dep, which kernel $MOD_VERSION has neither built in nor as a module"
    visit_module "$dep"
  done
  MOD_STATE["$name"]=visited
  MOD_ORDER+=("$name $dest")
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
  for applet in sh mount echo cat grep nproc date dd printf poweroff sleep insmod sha256sum; do
    ln -s busybox "$root/bin/$applet"
  done
  # The virtio modules, and their insmod list for /init: NAME:PATH words,
  # dependencies first.
  cp -a "$DIR_ABS/modules/root/." "$root/"
  local name path modules=""
  while read -r name path; do
    if [[ -n "$name" ]]; then modules+="${modules:+ \\$'\n'  }$name:$path"; fi
  done <"$DIR_ABS/modules/order"
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
# The kernel package's virtio modules that this kernel does not have built in,
# dependencies first. insmod fails for a module that is already loaded;
# /sys/module/NAME tells that apart from a real failure.
loaded=
for m in $modules; do
  name="\${m%%:*}"
  if insmod "\${m#*:}" 2>/tmp/insmod.err; then
    loaded="\$loaded \$name"
  elif [ ! -d "/sys/module/\$name" ]; then
    echo "mote-linux: insmod \$name failed: \$(cat /tmp/insmod.err)"
  fi
done
echo "mote-linux: virtio modules:\$loaded"
# What the drivers found: virtio disks, network interfaces, and a checksum of
# the first MiB of the first disk so the host can check it arrived intact.
disks=
for d in /sys/block/vd*; do
  [ -e "\$d" ] && disks="\$disks \${d##*/}"
done
echo "mote-linux: disks:\$disks"
nics=
for n in /sys/class/net/*; do
  [ -e "\$n" ] && [ "\${n##*/}" != lo ] && nics="\$nics \${n##*/}"
done
echo "mote-linux: nics:\$nics"
if [ -e /dev/vda ]; then
  sum="\$(dd if=/dev/vda bs=1M count=1 2>/dev/null | sha256sum)"
  echo "mote-linux: vda sha256=\${sum%% *}"
fi
poweroff -f
EOF
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
