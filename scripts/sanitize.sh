#!/usr/bin/env bash
# The sanitizer build, beside the main one (README: "Tests"):
#   build-san   clang, AddressSanitizer + UndefinedBehaviorSanitizer (any
#               report fails the test), with the libFuzzer targets: the whole
#               suite, fuzz-smoke included
# Usage: scripts/sanitize.sh setup   configure and build it
#        scripts/sanitize.sh test    run it (after setup); exit non-zero on a failure
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  setup)
    if [ ! -f build-san/build.ninja ]; then
      CC=clang-14 CXX=clang++-14 meson setup build-san -Dbuildtype=debug -Db_sanitize=address,undefined \
        -Db_lundef=false -Dwerror=false -Dcpp_args=-fno-sanitize-recover=all -Dfuzz=true
    fi
    meson compile -C build-san
    ;;
  test)
    meson test -C build-san --no-rebuild --print-errorlogs
    ;;
  *)
    echo "usage: $0 setup|test" >&2
    exit 2
    ;;
esac
