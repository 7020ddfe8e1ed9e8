#!/usr/bin/env bash
# The guest tests (suite kvm) of the three builds, for a machine with a KVM
# that runs guests: the host's /dev/kvm, or the nested runner's
# (tests/nested/run.sh -- scripts/guest_tests.sh). scripts/quickstart.sh test
# calls it after the builds.
#   build       suite kvm but hostile; suite linux too unless --no-linux
#   build-san   suite kvm but linux and bench (so the hostile guests run once, here,
#               under ASan+UBSan)
#   build-tsan  suite control, under ThreadSanitizer
# Logs: BUILD/meson-logs/testlog-kvm.json. Exits non-zero if a test failed.
# Usage: scripts/guest_tests.sh [--no-linux] [BUILD...]   (default: all three)
set -uo pipefail
cd "$(dirname "$0")/.."
no_linux=()
if [ "${1:-}" = --no-linux ]; then no_linux=(--no-suite linux); shift; fi
(($#)) || set -- build build-san build-tsan
status=0
test_kvm() { meson test --no-rebuild --print-errorlogs --logbase testlog-kvm "$@" || status=$?; }
for b in "$@"; do
  case "$b" in
    build) test_kvm -C build --suite kvm --no-suite hostile "${no_linux[@]}" ;;
    build-san) test_kvm -C build-san --suite kvm --no-suite linux --no-suite bench ;;
    build-tsan)
      TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" test_kvm -C build-tsan --suite control ;;
    *) echo "guest_tests: unknown build directory $b" >&2; exit 2 ;;
  esac
done
exit "$status"
