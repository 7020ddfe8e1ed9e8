#!/bin/sh
# Where a VM's exits go: runs COMMAND (a monitor booting a guest) with the
# host kernel's KVM tracepoints counted per key (exit reason, port, MMIO
# address, MSR, userspace exit reason) by tracefs histogram triggers, then
# prints the histograms. Needs root and a kernel with CONFIG_HIST_TRIGGERS
# (Debian's has it); the nested runner's L1 kernel qualifies.
#
# Usage: tests/bench/exit_profile.sh COMMAND...
#   e.g. tests/nested/run.sh -- tests/bench/exit_profile.sh build/vmm/mote run \
#        --kernel build/guest-images/linux/vmlinuz --initrd ... --cmdline 'console=ttyS0 quiet'
# Exit reasons are the vendor's numbers: on AMD 0x400 (1024) is a nested page
# fault, 0x7b (123) port I/O, 0x60 (96) an interrupt, 0x7c (124) an MSR,
# 0x72 (114) CPUID; on Intel 48 is an EPT violation, 30 port I/O.
set -eu
[ $# -gt 0 ] || { echo "usage: $0 COMMAND..." >&2; exit 2; }
tracing=/sys/kernel/tracing
mountpoint -q "$tracing" || mount -t tracefs tracefs "$tracing" ||
  { echo "exit_profile: cannot mount tracefs on $tracing (root?)" >&2; exit 2; }
counts="kvm_exit:exit_reason kvm_pio:port kvm_mmio:gpa kvm_msr:ecx kvm_userspace_exit:reason"
trigger() { # $1: "" to add, "!" to remove
  for c in $counts; do
    echo "$1hist:keys=${c#*:}:sort=hitcount.descending:size=4096" \
      > "$tracing/events/kvm/${c%%:*}/trigger"
  done
}
trigger ""
trap 'trigger "!"' EXIT
start=$(date +%s%N)
rc=0
"$@" </dev/null >/dev/null 2>&1 || rc=$?
echo "exit_profile: $1 exited $rc after $(( ($(date +%s%N) - start) / 1000000 )) ms"
for c in $counts; do
  echo "-- ${c%%:*} by ${c#*:}"
  grep -v -e '^#' -e '^$' "$tracing/events/kvm/${c%%:*}/hist"
done
