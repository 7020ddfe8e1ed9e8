#!/bin/sh
# /init of mote's Linux test guest (busybox). It reports what the guest sees,
# marks boot done on mote's boot timer, loads the virtio modules, then does
# the one thing `mote.do=` on the kernel command line asks for:
#   poweroff (default)  power off (mote exits 0)
#   reboot              reboot -f (mote's reboot exit code)
#   panic               /init exits: the kernel panics, and pvpanic tells mote
#   wait                sleep for ever (for --expect and --timeout)
#   blk-write           write the pattern of mote.seed=S over the first MiB of
#                       /dev/vda, flush, power off
#   blk-read            print the sha256 of the first MiB of /dev/vda
#   net                 eth0 gets mote.ip= (CIDR); ping mote.peer=, then wait
#                       until the peer has pinged us 3 times
#   rng                 read /dev/hwrng
# Every report line starts with "mote-linux: " so tests can find it.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

arg() { # the value of kernel parameter $1, or $2
  for word in $(cat /proc/cmdline); do
    case "$word" in "$1="*) echo "${word#*=}"; return ;; esac
  done
  echo "$2"
}
say() { echo "mote-linux: $*"; }

echo MOTE-LINUX-BOOT-OK
# The kernel's own clock at /init: guest work no monitor can take away.
say "uptime at init=$(cut -d' ' -f1 /proc/uptime)"
say "cpus=$(grep -c ^processor /proc/cpuinfo)"
say "model name=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
flags=" $(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -n 1) "
for f in cx16 xsave avx avx2 x2apic hypervisor; do
  case "$flags" in *" $f "*) say "flag $f=yes" ;; *) say "flag $f=no" ;; esac
done
say "date=$(date -u '+%Y-%m-%d %H:%M:%S')"
say "clocksources=$(cat /sys/devices/system/clocksource/clocksource0/available_clocksource)"
# Why the kernel refused the ACPI PM timer, if it did (its checks are timed).
say "pm-timer=$(dmesg | grep -m 2 -e 'PM-Timer.*abort' -e "'acpi_pm'" | tr '\n' ' ')"
# The boot timer (mote's port 0x440): any byte marks "boot done".
port-write @BOOT_TIMER_PORT@ 1 || say "writing the boot-timer port failed"

# The kernel package's modules that this kernel does not have built in,
# dependencies first. insmod fails for a module that is already loaded;
# /sys/module/NAME tells that apart from a real failure.
loaded=
for m in $(cat /etc/mote-modules); do
  name="${m%%:*}"
  if insmod "${m#*:}" 2>/tmp/insmod.err; then
    loaded="$loaded $name"
  elif [ ! -d "/sys/module/$name" ]; then
    say "insmod $name failed: $(cat /tmp/insmod.err)"
  fi
done
say "modules:$loaded"
# fw_cfg items (--fw-cfg) under opt/org.mote/, as qemu_fw_cfg shows them.
for f in /sys/firmware/qemu_fw_cfg/by_name/opt/org.mote/*/raw; do
  name="${f%/raw}"
  [ -e "$f" ] && say "fw_cfg ${name#/sys/firmware/qemu_fw_cfg/by_name/}=$(cat "$f")"
done
disks=
for d in /sys/block/vd*; do [ -e "$d" ] && disks="$disks ${d##*/}"; done
say "disks:$disks"
nics=
for n in /sys/class/net/*; do [ -e "$n" ] && [ "${n##*/}" != lo ] && nics="$nics ${n##*/}"; done
say "nics:$nics"

# The first MiB of /dev/vda: the pattern "mote pattern SEED\n" repeated.
pattern() { yes "mote pattern $1" | head -c 1048576; }
vda_sha() { dd if=/dev/vda bs=1M count=1 2>/dev/null | sha256sum | cut -d' ' -f1; }

action="$(arg mote.do poweroff)"
say "do=$action"
case "$action" in
  poweroff) ;;
  reboot) say "rebooting"; reboot -f ;;
  panic) say "exiting init"; exit 1 ;;
  wait) while :; do sleep 3600; done ;;
  blk-write)
    seed="$(arg mote.seed 0)"
    pattern "$seed" | dd of=/dev/vda bs=64k conv=fsync 2>/dev/null && sync &&
      say "vda written seed=$seed sha256=$(pattern "$seed" | sha256sum | cut -d' ' -f1)" ||
      say "vda write failed"
    ;;
  blk-read) say "vda sha256=$(vda_sha)" ;;
  net)
    ip link set lo up
    ip link set eth0 up && ip addr add "$(arg mote.ip '')" dev eth0 || say "eth0 setup failed"
    peer="$(arg mote.peer '')"
    if ping -c 3 -W 5 "$peer" >/tmp/ping.out 2>&1; then say "ping $peer ok"
    else say "ping $peer failed: $(tail -n 2 /tmp/ping.out | tr '\n' ' ')"; fi
    say "net up"
    # Icmp InEchos: the echo requests this guest has received.
    echoes=0
    for i in $(seq 600); do
      echoes="$(awk '/^Icmp: [A-Z]/ { for (i = 2; i <= NF; i++) if ($i == "InEchos") f = i }
        /^Icmp: [0-9]/ { print $f }' /proc/net/snmp)"
      [ "$echoes" -ge 3 ] && break
      sleep 0.1
    done
    say "pinged by peer $echoes times"
    ;;
  rng)
    say "hwrng=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
    say "rng 64 bytes: $(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')"
    ;;
  suspend)
    # Suspend to RAM (ACPI S3), as `systemctl suspend` would; back on a wake-up.
    echo deep >/sys/power/mem_sleep 2>/dev/null
    say "mem_sleep=$(cat /sys/power/mem_sleep 2>/dev/null)"
    if echo mem >/sys/power/state 2>/tmp/suspend.err; then say "resumed"
    else say "suspend failed: $(cat /tmp/suspend.err)"; fi
    ;;
  snapshot-loop)
    # For snapshot and restore: write a pattern to the disk, bring up the
    # NIC, then every tick read the disk back past the page cache and ping
    # the peer, mote.rounds times; the host snapshots and restores the VM
    # somewhere in between, and the ticks must go on.
    seed="$(arg mote.seed 0)"
    want="$(pattern "$seed" | sha256sum | cut -d' ' -f1)"
    pattern "$seed" | dd of=/dev/vda bs=64k conv=fsync 2>/dev/null
    ip link set lo up
    ip link set eth0 up && ip addr add "$(arg mote.ip '')" dev eth0 || say "eth0 setup failed"
    peer="$(arg mote.peer '')"
    say "loop ready"
    bad=0
    for i in $(seq "$(arg mote.rounds 40)"); do
      sleep 0.2
      echo 3 >/proc/sys/vm/drop_caches
      if [ "$(vda_sha)" = "$want" ]; then d=ok; else d=bad; bad=1; fi
      if ping -c 1 -W 3 "$peer" >/dev/null 2>&1; then n=ok; else n=bad; bad=1; fi
      say "tick $i disk=$d net=$n"
    done
    if [ "$bad" = 0 ]; then say "loop ok"; else say "loop failed"; fi
    ;;
  *) say "unknown mote.do=$action" ;;
esac
say "powering off"
poweroff -f
