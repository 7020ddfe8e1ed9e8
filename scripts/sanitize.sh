#!/usr/bin/env bash
# The sanitizer builds, beside the main one (README: "Tests"):
#   build-san   clang, AddressSanitizer + UndefinedBehaviorSanitizer (any
#               report fails the test), with the libFuzzer targets: the whole
#               suite, fuzz-smoke included
#   build-tsan  g++, ThreadSanitizer: the unit tests and the control plane's
#               (suite control; those boot guests, so they skip without KVM)
# Usage: scripts/sanitize.sh setup   configure and build both
#        scripts/sanitize.sh test    run them (after setup); exit non-zero on a failure
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  setup)
    if [ ! -f build-san/build.ninja ]; then
      CC=clang-14 CXX=clang++-14 meson setup build-san -Dbuildtype=debug -Db_sanitize=address,undefined \
        -Db_lundef=false -Dwerror=false -Dcpp_args=-fno-sanitize-recover=all -Dfuzz=true
    fi
    meson compile -C build-san
    if [ ! -f build-tsan/build.ninja ]; then
      meson setup build-tsan -Dbuildtype=debug -Db_sanitize=thread -Dwerror=false
    fi
    # Only what those suites run.
    meson compile -C build-tsan tests/unit_tests tests/arch/x86/acpi/acpi_dump vmm/mote \
      guest-images/motetest.pvh
    ;;
  test)
    status=0
    meson test -C build-san --no-rebuild --print-errorlogs --no-suite kvm || status=$?
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
      meson test -C build-tsan --no-rebuild --suite unit --print-errorlogs || status=$?
    # Their guest tests, as the test command runs them (needs a usable /dev/kvm).
    scripts/guest_tests.sh build-san build-tsan || status=$?
    exit "$status"
    ;;
  *)
    echo "usage: $0 setup|test" >&2
    exit 2
    ;;
esac
