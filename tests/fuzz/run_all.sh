#!/usr/bin/env bash
# Runs every fuzz target for as long as asked, two at a time, and collects
# what they find (README: "Fuzzing"):
#   tests/fuzz/run_all.sh [--seconds N] [--build DIR] [--jobs J] [TARGET...]
# Sets up DIR (default build-san: clang, ASan + UBSan, -Dfuzz=true) if it is
# not there. Each target starts from its seed corpus and keeps what it learns
# in DIR/fuzz-corpus/TARGET (never in the repository); crashes, leaks and
# timeouts land in DIR/fuzz-crashes/. Prints executions per target and exits
# non-zero if anything was found.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=600 build=build-san jobs=2
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -*) echo "usage: $0 [--seconds N] [--build DIR] [--jobs J] [TARGET...]" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ -f "$build/build.ninja" ] || scripts/sanitize.sh setup "$build"
meson compile -C "$build" >/dev/null
((${#targets[@]})) || targets=($(ls tests/fuzz/corpus))
crashes="$build/fuzz-crashes"
mkdir -p "$crashes" "$build/fuzz-logs"
stamp="$build/fuzz-logs/.started"
touch "$stamp"  # findings are the crash files newer than this
run_one() {
  local t="$1"
  mkdir -p "$build/fuzz-corpus/$t"
  local dirs=("$build/fuzz-corpus/$t" "tests/fuzz/corpus/$t")
  [ -d "tests/fuzz/regressions/$t" ] && dirs+=("tests/fuzz/regressions/$t")
  "$build/tests/fuzz/fuzz_$t" "${dirs[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -entropic=0 -print_final_stats=1 \
    -artifact_prefix="$crashes/$t-" >"$build/fuzz-logs/$t.log" 2>&1 || true
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz-logs/$t.log")
  echo "$t: ${runs:-?} executions in ${seconds} s$(grep -q 'ERROR: libFuzzer\|SUMMARY: ' "$build/fuzz-logs/$t.log" && echo ', FOUND SOMETHING (see '"$build/fuzz-logs/$t.log"')')"
}
export -f run_one
export build seconds crashes
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
found=$(find "$crashes" -type f -newer "$stamp" | wc -l)
echo "fuzz: ${#targets[@]} targets, $found new findings in $crashes"
[ "$found" -eq 0 ]
