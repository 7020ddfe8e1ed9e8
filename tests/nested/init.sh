#!/bin/sh
# /init of the nested runner's VM (busybox; see run.sh): load the modules,
# build a root from the host's over 9p, run the job there, hand its exit
# status back through the job share, power off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() {
  echo "nested-init: error: $*" >/dev/console
  poweroff -f
}

for m in $(cat /etc/modules); do
  name="${m%%:*}"
  insmod "${m#*:}" 2>/tmp.err || [ -d "/sys/module/$name" ] || fail "insmod $name: $(cat /tmp.err)"
done
[ -e /dev/kvm ] || fail "no /dev/kvm after loading kvm_amd (does the emulated CPU have SVM?)"

opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$opts,ro,cache=loose" hostroot /host || fail "cannot mount the host's root over 9p"
mount -t tmpfs -o mode=755 tmpfs /host/run
mount -t ext4 /dev/vda /host/tmp || fail "cannot mount the scratch disk on /tmp"
mkdir -p /host/run/nested-job
mount -t 9p -o "$opts" job /host/run/nested-job || fail "cannot mount the job share"
for fs in proc sys dev; do mount --move "/$fs" "/host/$fs"; done
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts
[ -e /host/dev/ptmx ] || ln -s pts/ptmx /host/dev/ptmx
mount -t tmpfs tmpfs /host/dev/shm
# cgroup v2, for the cgroup tests (tests/boot/cgroup_test.py).
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup || fail "cannot mount cgroup2"
mount -t tmpfs tmpfs /host/var/tmp
chmod 1777 /host/tmp
while read -r tag dir; do
  [ -n "$tag" ] || continue
  # Under /tmp (the scratch disk) or /run the mount point is not there yet.
  mkdir -p "/host$dir"
  mount -t 9p -o "$opts,cache=mmap" "$tag" "/host$dir" || fail "cannot mount $dir writable"
done </host/run/nested-job/writable
port=
for p in /host/sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = mote.out ] && port="/host/dev/${p##*/}"
done
[ -n "$port" ] || fail "no virtio port mote.out for the job's output"
hostname nested
ip link set lo up

chroot /host /bin/bash /run/nested-job/job.sh </dev/null >"$port" 2>&1
echo "$?" >/host/run/nested-job/status
sync
poweroff -f
