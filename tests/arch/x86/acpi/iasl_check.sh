#!/bin/sh
# iasl_check.sh ACPI_DUMP_BINARY
# Checks mote's ACPI tables with ACPICA's own tools, for several configs:
#  1. `iasl -d` disassembles each table: exit 0, no warning or error in its
#     output (a bad checksum is only a "Firmware Warning" there, exit 0) and
#     no "Invalid"/"Unknown"/"****" marker in the .dsl (the disassembler
#     writes broken subtables there instead of failing).
#  2. `iasl -oa` recompiles the .dsl: "0 Errors, 0 Warnings" required.
#  3. The recompiled table must equal ours byte for byte, except the header
#     checksum and creator id/revision (iasl puts its own) and, in AML, the
#     resource template End Tag checksum (iasl writes 0, mote a real one).
#     This catches encodings iasl reads back differently than intended, such
#     as a wrong PkgLength that silently re-nests objects.
# The RSDP is skipped: iasl 20200925 cannot load a bare RSDP file
# (tables_test.cc checks it). There are no SSDTs, so nothing for `-e`.
# Exit 0 if all pass, 1 on any failure, 77 (skipped) without iasl.
set -u

if [ $# -ne 1 ]; then
  echo "usage: $0 ACPI_DUMP_BINARY" >&2
  exit 2
fi
dump=$1
if ! command -v iasl >/dev/null 2>&1; then
  echo "iasl_check: SKIP: iasl not found (Debian package acpica-tools)"
  exit 77
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

checked=0
failures=0
fail() {
  echo "iasl_check: FAIL: $*"
  failures=$((failures + 1))
}
indent() { sed 's/^/    /' "$1"; }

# Unsigned byte at 0-based offset $2 of file $1.
byte_at() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' \n'; }

# Compares our table $1 with iasl's recompiled $2; prints unexplained
# differences and returns 1 if there are any.
same_table() {
  ours=$1
  theirs=$2
  if [ "$(wc -c <"$ours")" -ne "$(wc -c <"$theirs")" ]; then
    echo "size $(wc -c <"$ours") (mote) != $(wc -c <"$theirs") (iasl)"
    return 1
  fi
  bad=0
  # cmp -l: 1-based offset, then both bytes in octal.
  cmp -l "$ours" "$theirs" >"$tmp/cmp.out" 2>&1
  while read -r pos mine iasls; do
    off=$((pos - 1))
    case $off in
      9 | 28 | 29 | 30 | 31 | 32 | 33 | 34 | 35) continue ;;  # checksum, creator
    esac
    if [ "$iasls" = 0 ] && [ "$off" -gt 0 ] && [ "$(byte_at "$theirs" $((off - 1)))" = 121 ]; then
      continue  # End Tag (0x79) checksum
    fi
    echo "offset $off: mote 0$mine, iasl 0$iasls (octal)"
    bad=1
  done <"$tmp/cmp.out"
  return $bad
}

# --virtio-mmio=3 is slots 0xd0000000/0xd0001000/0xd0002000 (4 KiB, GSIs 5,
# 6, 7); =17 is every slot layout.h has, for hex names (VR0A..VR10) and GSIs
# above 15.
for config in "1" "2" "4" "255" "1 --pci" "4 --pci" "1 --virtio-mmio=3" \
  "4 --pci --virtio-mmio=16" "2 --pci --hpet" "2 --pci --acpi-full --hpet"; do
  dir="$tmp/cfg$(echo "$config" | tr -d ' =-')"
  mkdir "$dir"
  # shellcheck disable=SC2086  # config is several words on purpose
  if ! "$dump" "$dir" $config >"$dir/dump.log" 2>&1; then
    fail "[$config] acpi_dump failed:"
    indent "$dir/dump.log"
    continue
  fi
  for dat in "$dir"/*.dat; do
    name=$(basename "$dat" .dat)
    [ "$name" = RSDP ] && continue
    checked=$((checked + 1))

    (cd "$dir" && iasl -d "$name.dat") >"$dir/$name.d.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || grep -qiE 'error|warning' "$dir/$name.d.log"; then
      fail "[$config] iasl -d $name.dat (exit $rc):"
      indent "$dir/$name.d.log"
      continue
    fi
    marks='Invalid|Unknown|\*\*\*\*|[Ee]rror|[Ww]arning'
    if grep -nE "$marks" "$dir/$name.dsl" >"$dir/$name.marks"; then
      fail "[$config] iasl -d $name.dat reports problems in $name.dsl:"
      indent "$dir/$name.marks"
      continue
    fi

    (cd "$dir" && iasl -oa -p "rt_$name" "$name.dsl") >"$dir/$name.c.log" 2>&1
    rc=$?
    clean='Compilation successful\. 0 Errors, 0 Warnings'
    if [ $rc -ne 0 ] || ! grep -q "$clean" "$dir/$name.c.log"; then
      fail "[$config] iasl recompile of $name.dsl (exit $rc):"
      indent "$dir/$name.c.log"
      continue
    fi

    if ! same_table "$dat" "$dir/rt_$name.aml" >"$dir/$name.cmp"; then
      fail "[$config] $name: iasl's recompiled table differs from mote's:"
      indent "$dir/$name.cmp"
      continue
    fi
    echo "iasl_check: ok [$config] $name ($(wc -c <"$dat") bytes):" \
      "disassembled, recompiled, identical"
  done
done

if [ $checked -eq 0 ]; then
  fail "no tables were checked"
fi
echo "iasl_check: $checked tables checked, $failures failures"
[ $failures -eq 0 ]
