#!/usr/bin/env bash
# The README's two commands.
#   scripts/quickstart.sh boot  - set up, build, and boot the default tiny guest
#   scripts/quickstart.sh test  - set up, build, and run the whole test suite
#                                 (also under ASan+UBSan with the fuzz-smoke
#                                 suite, and under TSan: unit and control),
#                                 ending with a "N passed, N failed" line
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-boot}"
scripts/setup.sh
case "$what" in
  boot)
    boot=(build/vmm/mote run --kernel build/guest-images/motetest.pvh --cpus 2)
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then exec "${boot[@]}"; fi
    echo "quickstart: no usable /dev/kvm here; booting inside the nested KVM runner (tests/nested/run.sh)" >&2
    exec tests/nested/run.sh -- "${boot[@]}"
    ;;
  test)
    scripts/sanitize.sh setup
    status=0
    logs=(build/meson-logs/testlog.json)
    # Guest tests (suite kvm) need a usable /dev/kvm: the host's, or the
    # nested runner's (tests/nested/run.sh: QEMU TCG with an emulated SVM CPU
    # and a Debian kernel with kvm_amd) where the host has none.
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
      kvm_mode="host (/dev/kvm)"
      # The hostile-guest tests run once, under the sanitizers (build-san).
      meson test -C build --print-errorlogs --no-suite hostile || status=$?
    else
      kvm_mode="nested (no usable /dev/kvm here: tests/nested/run.sh)"
      meson test -C build --print-errorlogs --no-suite kvm --no-suite hostile || status=$?
      tests/nested/run.sh -- meson test -C build --no-rebuild --print-errorlogs --suite kvm \
        --no-suite hostile --logbase testlog-kvm || status=$?
      logs+=(build/meson-logs/testlog-kvm.json)
    fi
    scripts/sanitize.sh test || status=$?
    echo "kvm: $kvm_mode"
    python3 scripts/test_summary.py "${logs[@]}" \
      build-san/meson-logs/testlog.json build-tsan/meson-logs/testlog.json || status=$?
    exit "$status"
    ;;
  *)
    echo "usage: $0 boot|test" >&2
    exit 2
    ;;
esac
