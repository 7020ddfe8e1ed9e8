#!/usr/bin/env bash
# The benchmarks, side by side with QEMU (not part of the test suite):
#   scripts/bench.sh [--runs N] [--out DIR]
# installs what they need from Debian (QEMU, fio, gnuplot) beside the build's
# own set-up, then runs tests/bench/compare.py (start-up, memory, launch
# rate, exit cost), blk_bench.py, net_bench.py and linux_boot.py (in the
# nested runner where this host's KVM cannot run Linux). Results: DIR
# (default build/bench) holds compare.md, compare-startup.png, blk.md,
# net.md, linux_boot.md and linux_boot.png.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=20
out=build/bench
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--out DIR]" >&2; exit 2 ;;
  esac
done
scripts/setup.sh
missing=()
for p in qemu-system-x86 fio gnuplot-nox; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi
mkdir -p "$out"
# The tiny guests need a usable /dev/kvm, else the nested runner (TCG: its
# absolute figures are the emulator's; the ratios of one run still hold).
kvm=()
if ! [ -w /dev/kvm ]; then
  echo "bench: no usable /dev/kvm here; running inside the nested KVM runner" >&2
  kvm=(tests/nested/run.sh --timeout 3600 --)
fi
"${kvm[@]}" python3 tests/bench/compare.py --runs "$runs" --out "$out"
"${kvm[@]}" python3 tests/bench/blk_bench.py --runs 3 --out "$out/blk.md"
"${kvm[@]}" python3 tests/bench/net_bench.py --runs 3 --out "$out/net.md"
"${kvm[@]}" python3 tests/bench/snapshot_bench.py --runs 5 --out "$out/snapshot"
"${kvm[@]}" python3 tests/bench/migration_bench.py --runs 5 --out "$out/migration"
# A stock Linux, side by side: needs a KVM that runs Linux, else the nested runner.
guest-images/linux/build-linux-guest.sh build/guest-images/linux
if [ -w /dev/kvm ] && grep -qw -e vmx -e svm /proc/cpuinfo; then
  python3 tests/bench/linux_boot.py --runs 5 --out "$out"
else
  tests/nested/run.sh --timeout 3600 -- python3 tests/bench/linux_boot.py --runs 5 --out "$out"
fi
