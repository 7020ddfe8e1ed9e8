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
    guest-images/linux/build-linux-guest.sh build/guest-images/linux
    status=0
    # Guest tests (suite kvm, scripts/guest_tests.sh) need a KVM that runs
    # guests: the host's /dev/kvm, or the nested runner's (tests/nested/run.sh:
    # QEMU TCG with an emulated SVM CPU and Debian's kernel with kvm_amd)
    # where the host has none. A host KVM without VMX or SVM in the CPU flags
    # (kvm_pvm) runs the tiny guests but not Linux: suite linux goes nested.
    # Each nested runner keeps one core busy: two run side by side.
    # A nested VM that stops running (exit 75: tests/nested/run.sh says why)
    # gets one more try, said on the log; any other status stands.
    nested() { # LABEL COMMAND...
      local label="$1" attempt status; shift
      for attempt in 1 2; do
        set +e
        tests/nested/run.sh --timeout 3600 -- "$@" 2>&1 | sed -u "s/^/[nested $label] /"
        status=${PIPESTATUS[0]}
        set -e
        if [ "$status" != 75 ] || [ "$attempt" = 2 ]; then return "$status"; fi
        echo "quickstart: the nested VM of '$label' stopped running; running '$label' once more" >&2
      done
    }
    logs=()
    for b in build build-san build-tsan; do logs+=("$b/meson-logs/testlog.json" "$b/meson-logs/testlog-kvm.json"); done
    # A log left by an earlier run must not stand in for one that never ran.
    rm -f "${logs[@]}" build/meson-logs/testlog-linux.json
    # The suites that need no KVM, first.
    meson test -C build --no-rebuild --print-errorlogs --no-suite kvm || status=$?
    meson test -C build-san --no-rebuild --print-errorlogs --no-suite kvm || status=$?
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
      meson test -C build-tsan --no-rebuild --print-errorlogs --suite unit || status=$?
    jobs_=()
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
      if grep -qw -e vmx -e svm /proc/cpuinfo; then
        kvm_mode="host (/dev/kvm)"
        scripts/guest_tests.sh || status=$?
      else
        kvm_mode="host (/dev/kvm), suite linux nested (this KVM has no VMX/SVM: kvm_pvm cannot run Linux)"
        nested linux meson test -C build --no-rebuild --print-errorlogs --suite linux \
          --logbase testlog-linux &
        jobs_+=($!)
        scripts/guest_tests.sh --no-linux || status=$?
        logs+=(build/meson-logs/testlog-linux.json)
      fi
    else
      kvm_mode="nested (no usable /dev/kvm here: tests/nested/run.sh)"
      nested build-san scripts/guest_tests.sh build-san &
      jobs_+=($!)
      nested build scripts/guest_tests.sh build build-tsan &
      jobs_+=($!)
    fi
    for job in "${jobs_[@]}"; do wait "$job" || status=$?; done
    echo "kvm: $kvm_mode"
    python3 scripts/test_summary.py "${logs[@]}" || status=$?
    exit "$status"
    ;;
  *)
    echo "usage: $0 boot|test" >&2
    exit 2
    ;;
esac
