#!/bin/bash
# The nested KVM runner: runs COMMAND inside a Linux VM that has a real
# /dev/kvm, on any x86-64 machine, with or without KVM of its own.
#
#   tests/nested/run.sh [OPTIONS] -- COMMAND [ARG...]
#
# QEMU's TCG emulates an AMD CPU with SVM and nested paging; Debian's own
# kernel (linux-image-amd64, fetched with `apt-get download` into a cache)
# boots inside it from a small busybox initramfs, loads kvm and kvm_amd
# (and tun, veth, vhost_net, vhost_vsock), and mounts this machine's root
# read-only over 9p. Writable there: the working directory and each
# --writable DIR (this machine's own directories, over 9p: what COMMAND
# writes there stays), /tmp (a fresh ext4 scratch disk, since 9p cannot hold
# Unix sockets or do O_DIRECT), and /run, /var/tmp, /dev/shm (tmpfs).
# COMMAND runs as root in the same working directory with the same
# environment (plus MOTE_NESTED=1) and stdin from /dev/null; its stdout and
# stderr arrive here as one stream. The runner exits with COMMAND's status,
# carried out of the VM by a file the VM writes before it powers off.
#
# Options:
#   --memory MIB      the VM's RAM (default 6144; allocated as used)
#   --timeout SEC     stop the VM after SEC seconds (exit 124)
#   --writable DIR    also writable inside (repeatable)
#   --console         show the VM kernel's console on stderr as it runs
#                     (otherwise it is shown only when the VM fails)
# Environment:
#   MOTE_NESTED_CACHE the kernel cache (default ~/.cache/mote/nested)
#
# Needs: qemu-system-x86_64 (package qemu-system-x86), busybox-static,
# apt-get/dpkg-deb, cpio, gzip, mkfs.ext4 (e2fsprogs), and Debian's archive
# reachable once to fill the cache. Runs as root (or a user who can read
# what COMMAND reads). Costs ~10-20 s to boot the VM; everything inside runs
# under TCG, several times slower than on the host.
# Exit status: COMMAND's; 124 on --timeout; 75 when the VM stopped running
# (hung: worth one more try); 125 when the runner or the VM failed (QEMU
# missing, no kernel, a kernel panic: one `nested: error:` line).
set -euo pipefail

readonly HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO="$(cd "$HERE/../.." && pwd)"
readonly META_PACKAGE=linux-image-amd64
# The L1 kernel's modules, dependencies found from their modinfo.
readonly WANTED_MODULES=(virtio_pci virtio_blk virtio_console virtio_rng 9pnet_virtio 9p
  crc32c_generic ext4 kvm_amd tun veth bridge vhost_net vhost_vsock)
readonly OPTIONAL_MODULES=" virtio_rng bridge vhost_vsock "

log() { echo "nested: $*" >&2; }
die() { echo "nested: error: $*" >&2; exit 125; }

memory=6144
timeout=""
show_console=0
writable=()
while (($#)); do
  case "$1" in
    --memory) memory="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --writable) writable+=("$(cd "$2" && pwd)") || die "--writable $2: no such directory"; shift 2 ;;
    --console) show_console=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (usage: $0 [--memory MIB] [--timeout SEC] [--writable DIR] [--console] -- COMMAND...)" ;;
  esac
done
(($#)) || die "no COMMAND (usage: $0 [OPTIONS] -- COMMAND...)"
[[ "$memory" =~ ^[0-9]+$ ]] || die "--memory $memory: a number of MiB"
[[ -z "$timeout" || "$timeout" =~ ^[0-9]+$ ]] || die "--timeout $timeout: a number of seconds"
[[ -z "${MOTE_NESTED:-}" ]] || die "already inside the nested VM (MOTE_NESTED is set)"

QEMU="$(command -v qemu-system-x86_64)" ||
  die "qemu-system-x86_64 not found: install Debian's qemu-system-x86 (apt-get install qemu-system-x86)"
for tool in apt-get apt-cache dpkg-deb cpio gzip mkfs.ext4; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

CACHE="${MOTE_NESTED_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/mote/nested}"
mkdir -p "$CACHE"
RUN="$(mktemp -d "${TMPDIR:-/tmp}/mote-nested.XXXXXX")"
cleanup() { rm -rf "$RUN"; }
trap cleanup EXIT
WORK="$RUN/work"
mkdir -p "$WORK"
# shellcheck source=../../guest-images/linux/debian_kernel.sh
source "$REPO/guest-images/linux/debian_kernel.sh"

# ---- The L1 kernel and its modules, cached ----------------------------------
# Taken from the cache when it holds a kernel with this module list; fetched
# again only then (a newer kernel in the archive is picked up by deleting it).
# Runners started side by side take turns here (the test command runs two).
exec {cache_lock}>"$CACHE/.lock"
flock "$cache_lock"
if [[ -s "$CACHE/vmlinuz" && -f "$CACHE/modules/order" &&
  "$(cat "$CACHE/modules/wanted" 2>/dev/null)" == "${WANTED_MODULES[*]}" ]]; then
  :
else
  package="$(kernel_package "$META_PACKAGE" 'linux-image-[0-9][^ ]*-amd64')"
  log "fetching $package into $CACHE"
  rm -f "$CACHE/vmlinuz"
  deb="$(download_deb "$package")"
  dpkg-deb -x "$deb" "$WORK/kernel" || die "cannot unpack $deb"
  vmlinuz="$(find "$WORK/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n 1)"
  [[ -n "$vmlinuz" ]] || die "$package has no /boot/vmlinuz-*"
  select_modules "$WORK/kernel" "${vmlinuz##*/vmlinuz-}" "$WORK/modules" "$OPTIONAL_MODULES" \
    "${WANTED_MODULES[@]}" 2>/dev/null
  rm -rf "$CACHE/modules"
  mv "$WORK/modules" "$CACHE/modules"
  echo "$package" >"$CACHE/version"
  cp "$vmlinuz" "$CACHE/vmlinuz.tmp"
  mv "$CACHE/vmlinuz.tmp" "$CACHE/vmlinuz" # last, so a partial fetch is not cached
  rm -rf "$WORK/kernel" "$deb"
fi

# ---- The initramfs: busybox, the modules, /init -----------------------------
root="$WORK/initramfs"
mkdir -p "$root"/{bin,proc,sys,dev,etc,host}
cp "$(busybox_binary)" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp -a "$CACHE/modules/root/." "$root/"
module_insmod_list "$CACHE/modules/order" >"$root/etc/modules"
cp "$HERE/init.sh" "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) |
  gzip -1 >"$RUN/initramfs.gz"
rm -rf "$root"
flock -u "$cache_lock"

# ---- The job: environment, directory, command --------------------------------
mkdir -p "$RUN/share"
{
  echo '#!/bin/bash'
  # The environment as it is here, less what describes this shell's place.
  export -p | grep -Ev '^declare -x (OLDPWD|PWD|SHLVL|_)(=|$)' || true
  echo 'export MOTE_NESTED=1'
  printf 'cd -- %q || exit 125\n' "$PWD"
  printf '%q ' "$@"
  echo
} >"$RUN/share/job.sh"
# The directories init mounts writable over 9p: tag wN at path.
shares=()
mounts=""
for dir in "$PWD" "${writable[@]}"; do
  n=${#shares[@]}
  shares+=(-virtfs "local,path=$dir,mount_tag=w$n,security_model=none,multidevs=remap")
  mounts+="w$n $dir"$'\n'
done
printf '%s' "$mounts" >"$RUN/share/writable"

truncate -s 64G "$RUN/scratch.img"
mkfs.ext4 -q -F -O ^has_journal -E lazy_itable_init=1 "$RUN/scratch.img" ||
  die "mkfs.ext4 of the scratch disk failed"

# ---- Boot -----------------------------------------------------------------
# One vCPU: with two, the nested VM hung or panicked now and then under load.
# EPYC with SVM and NPT: what kvm_amd needs.
console="$RUN/console.log"
qemu=("$QEMU" -accel tcg,thread=single -cpu EPYC,+svm,+npt -smp 1 -m "$memory"
  -nodefaults -no-user-config -nographic -no-reboot -monitor none
  -kernel "$CACHE/vmlinuz" -initrd "$RUN/initramfs.gz"
  -append "console=ttyS0 panic=-1 loglevel=4 mitigations=off rdinit=/init kvm_amd.nested=0"
  -serial "file:$console"
  -device virtio-rng-pci
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
  -virtfs "local,path=$RUN/share,mount_tag=job,security_model=none"
  "${shares[@]}"
  -drive "file=$RUN/scratch.img,if=virtio,format=raw,cache=unsafe,discard=unmap"
  # Through a FIFO that cat copies to our stdout: not a stdio chardev
  # (stdin's EOF would close it, and the guest's writes to a closed port
  # block for ever), nor a reopened stdout (a second file offset would
  # overwrite what the caller writes to the same file).
  -device virtio-serial-pci -chardev file,id=out,path="$RUN/out.fifo"
  -device virtserialport,chardev=out,name=mote.out)
mkfifo "$RUN/out.fifo"
cat "$RUN/out.fifo" &
cat_pid=$!
if ((show_console)); then
  tail -F -n +1 "$console" 2>/dev/null >&2 &
  tail_pid=$!
  trap 'kill $tail_pid 2>/dev/null; cleanup' EXIT
fi
# Now and then the emulated machine stops for good: QEMU takes no CPU time at
# all, no timer fires inside, the job makes no progress (seen twice in the
# Linux boot tests, not explained). Even an idle VM keeps its emulator at
# ~0.5 s of CPU per 120 s (its kernel's timers), so one that took under
# 0.1 s in 120 s is killed and reported hung (exit 75): a caller can run the
# job again instead of waiting for --timeout. A job that is merely stuck
# (a deadlocked test) keeps the VM alive and ends by its own timeouts.
watch_for_hang() { # QEMU_PID
  local pid="$1" window=12 ticks=() now
  while sleep 10; do
    now="$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null)" || return 0
    ticks+=("$now")
    if ((${#ticks[@]} > window)); then
      ticks=("${ticks[@]:1}")
      if ((now - ticks[0] < $(getconf CLK_TCK) / 10)); then
        : >"$RUN/hung"
        kill "$pid" 2>/dev/null
        sleep 5
        kill -KILL "$pid" 2>/dev/null
        return 0
      fi
    fi
  done
}
qemu_status=0
deadline=()
[[ -n "$timeout" ]] && deadline=(timeout -k 5 "$timeout")
"${deadline[@]}" "${qemu[@]}" </dev/null 2>"$RUN/qemu.err" &
qemu_pid=$!
# With --timeout, QEMU is timeout's child: watch QEMU itself.
emulator="$qemu_pid"
if ((${#deadline[@]})); then
  for _ in $(seq 50); do
    child="$(pgrep -P "$qemu_pid" | head -n1)" && [[ -n "$child" ]] && { emulator="$child"; break; }
    sleep 0.2
  done
fi
watch_for_hang "$emulator" &
watchdog_pid=$!
wait "$qemu_pid" || qemu_status=$?
kill "$watchdog_pid" 2>/dev/null || true

# A QEMU that never opened the FIFO leaves cat waiting for a writer.
if kill -0 "$cat_pid" 2>/dev/null; then
  timeout 5 bash -c ': >"$1"' _ "$RUN/out.fifo" 2>/dev/null || true
fi
wait "$cat_pid" || true

show_failure() {
  log "the VM's console (last 30 lines):"
  tail -n 30 "$console" >&2 || true
  grep -v "TCG doesn't support requested feature" "$RUN/qemu.err" >&2 || true
}
if [[ -f "$RUN/share/status" ]]; then
  status="$(cat "$RUN/share/status")"
  [[ "$status" =~ ^[0-9]+$ ]] || die "the VM wrote a bad status: $status"
  exit "$status"
fi
if [[ -f "$RUN/hung" ]]; then
  show_failure
  log "error: the nested VM stopped running (no CPU time for 120 s): killed as hung"
  exit 75
fi
if [[ -n "$timeout" && "$qemu_status" == 124 ]]; then
  show_failure
  log "error: timed out after $timeout s"
  exit 124
fi
show_failure
if panic="$(grep -m1 'Kernel panic' "$console")"; then
  die "the nested VM's kernel panicked: $panic"
fi
if setup="$(grep -m1 'nested-init: error' "$console")"; then
  die "the nested VM could not set up: ${setup#*error: }"
fi
die "the nested VM ended without COMMAND's exit status (qemu exit $qemu_status)"
