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
    exec build/vmm/mote run --kernel build/guest-images/motetest.pvh --cpus 2
    ;;
  test)
    scripts/sanitize.sh setup
    status=0
    # The hostile-guest tests run once, under the sanitizers (build-san).
    meson test -C build --print-errorlogs --no-suite hostile || status=$?
    scripts/sanitize.sh test || status=$?
    python3 scripts/test_summary.py build/meson-logs/testlog.json \
      build-san/meson-logs/testlog.json build-tsan/meson-logs/testlog.json
    exit "$status"
    ;;
  *)
    echo "usage: $0 boot|test" >&2
    exit 2
    ;;
esac
