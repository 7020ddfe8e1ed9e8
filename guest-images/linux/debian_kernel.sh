# Sourced, not run: fetching a Debian kernel package and picking modules out
# of it, shared by build-linux-guest.sh (the guest mote boots) and
# tests/nested/run.sh (the Linux that gives a nested /dev/kvm).
#
# The caller sets WORK (a private scratch directory) and defines
# log() and die().
#
#   kernel_package META REGEX   the concrete package META depends on whose name
#                               matches REGEX (e.g. linux-image-6.1.0-57-amd64);
#                               runs `apt-get update` once if apt knows no META
#   download_deb PACKAGE        apt-get download into $WORK; prints the .deb path
#   select_modules KROOT VERSION OUT OPTIONAL NAME...
#                               picks modules NAME... and their dependencies from
#                               an extracted kernel package into OUT (see below);
#                               names in OPTIONAL (" a b ") may be missing
#   busybox_binary              a static busybox: the installed one or the .deb's

# Prints the package META depends on whose name matches REGEX.
kernel_package() {
  local meta="$1" regex="$2" package
  package="$(apt-cache depends "$meta" 2>/dev/null |
    sed -n "s/^ *|\{0,1\}Depends: \($regex\)\$/\1/p" | head -n 1)"
  if [[ -z "$package" ]]; then
    # A fresh machine may have no package lists yet.
    [[ "$(id -u)" == 0 ]] || die "apt-cache does not know $meta; run 'apt-get update' as root"
    log "no package lists for $meta; running apt-get update"
    apt-get update -q >&2 || die "apt-get update failed"
    package="$(apt-cache depends "$meta" 2>/dev/null |
      sed -n "s/^ *|\{0,1\}Depends: \($regex\)\$/\1/p" | head -n 1)"
    [[ -n "$package" ]] || die "cannot resolve $meta to a kernel package"
  fi
  echo "$package"
}

# Downloads a .deb into $WORK (apt-get download writes to the current
# directory) and prints its path.
download_deb() {
  local package="$1"
  local sandbox=()
  # As root, apt hands the download to its _apt user, which cannot write into
  # a private work directory; it would fall back to root with a warning.
  [[ "$(id -u)" == 0 ]] && sandbox=(-o APT::Sandbox::User=root)
  (cd "$WORK" && apt-get download -q "${sandbox[@]}" "$package" >&2) ||
    die "apt-get download $package failed (no network to Debian's archive, or an unknown package)"
  local deb
  deb="$(find "$WORK" -maxdepth 1 -name "${package}_*.deb" | head -n 1)"
  [[ -n "$deb" ]] || die "no .deb for $package after download"
  echo "$deb"
}

# The module name of a module file: no directory, no .ko[.xz|.zst|.gz], and
# '_' for '-' (as the kernel names it).
module_name() {
  local name="${1##*/}"
  name="${name%.xz}"
  name="${name%.zst}"
  name="${name%.gz}"
  name="${name%.ko}"
  echo "${name//-/_}"
}

# Copies module SRC to DEST (a .ko), decompressing it: busybox insmod loads
# plain .ko files only.
install_module() {
  local src="$1" dest="$2"
  mkdir -p "${dest%/*}"
  case "$src" in
    *.ko) cp "$src" "$dest" ;;
    *.ko.xz)
      command -v xz >/dev/null || die "$src is xz-compressed and xz is not installed"
      xz -dc "$src" >"$dest" ;;
    *.ko.zst)
      command -v zstd >/dev/null || die "$src is zstd-compressed and zstd is not installed"
      zstd -qdc "$src" >"$dest" ;;
    *.ko.gz) gzip -dc "$src" >"$dest" ;;
    *) die "unknown module file type: $src" ;;
  esac
}

# The depends= field of a (plain) module's .modinfo: the modules it needs,
# comma-separated, as depmod reads it. The package ships no modules.dep
# (depmod writes it when the package is installed).
module_depends() {
  tr '\0' '\n' <"$1" | sed -n 's/^depends=//p'
}

# Picks modules and their dependencies from the extracted kernel package
# KROOT (kernel VERSION) into OUT:
#   OUT/root/lib/modules/VERSION/...  the modules, decompressed
#   OUT/order                         "NAME /lib/modules/VERSION/....ko" lines,
#                                     dependencies first
#   OUT/builtin                       the wanted modules the kernel has built in
#   OUT/wanted                        the names asked for, to validate a cache
select_modules() {
  local kroot="$1" version="$2" out="$3" optional="$4"
  shift 4
  local moddir="$kroot/lib/modules/$version"
  [[ -d "$moddir/kernel" ]] || die "the kernel package has no lib/modules/$version/kernel"
  declare -gA MOD_FILE=() MOD_BUILTIN=() MOD_STATE=()
  MOD_ORDER=()
  MOD_BUILTIN_USED=()
  local path
  if [[ -f "$moddir/modules.builtin" ]]; then
    while IFS= read -r path; do
      if [[ -n "$path" ]]; then MOD_BUILTIN["$(module_name "$path")"]=1; fi
    done <"$moddir/modules.builtin"
  fi
  while IFS= read -r -d '' path; do
    MOD_FILE["$(module_name "$path")"]="${path#"$moddir"/}"
  done < <(find "$moddir/kernel" -type f \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' \
    -o -name '*.ko.gz' \) -print0)
  mkdir -p "$out/root"
  MOD_ROOT="$out/root"
  MOD_VERSION="$version"
  MOD_SRC="$moddir"
  local name skipped=()
  for name in "$@"; do
    if [[ -z "${MOD_BUILTIN[$name]:-}" && -z "${MOD_FILE[$name]:-}" ]]; then
      [[ "$optional" == *" $name "* ]] || die "kernel $version has no $name, neither built in nor as a module"
      skipped+=("$name")
      continue
    fi
    visit_module "$name"
  done
  # printf with no arguments would still print one empty line.
  [[ ${#MOD_ORDER[@]} -eq 0 ]] || printf '%s\n' "${MOD_ORDER[@]}" >"$out/order"
  [[ ${#MOD_BUILTIN_USED[@]} -eq 0 ]] || printf '%s\n' "${MOD_BUILTIN_USED[@]}" >"$out/builtin"
  touch "$out/order" "$out/builtin"
  echo "$*" >"$out/wanted"
  log "kernel $version: built in: ${MOD_BUILTIN_USED[*]:-none}"
  log "kernel $version: modules carried: $(cut -d' ' -f1 "$out/order" | paste -sd' ')"
  if [[ ${#skipped[@]} -gt 0 ]]; then
    log "kernel $version: not in this kernel: ${skipped[*]}"
  fi
}

# Depth-first: a module's dependencies are appended to MOD_ORDER before it.
visit_module() {
  local name="$1"
  case "${MOD_STATE[$name]:-}" in
    visited) return ;;
    visiting) die "module dependency cycle through $name" ;;
  esac
  if [[ -n "${MOD_BUILTIN[$name]:-}" ]]; then
    MOD_BUILTIN_USED+=("$name")
    MOD_STATE["$name"]=visited
    return
  fi
  MOD_STATE["$name"]=visiting
  local rel="${MOD_FILE[$name]}"
  local dest="/lib/modules/$MOD_VERSION/${rel%.ko*}.ko"
  install_module "$MOD_SRC/$rel" "$MOD_ROOT$dest"
  local depends dep
  depends="$(module_depends "$MOD_ROOT$dest")"
  for dep in ${depends//,/ }; do
    [[ -n "${MOD_BUILTIN[$dep]:-}" || -n "${MOD_FILE[$dep]:-}" ]] ||
      die "$name needs $dep, which kernel $MOD_VERSION has neither built in nor as a module"
    visit_module "$dep"
  done
  MOD_STATE["$name"]=visited
  MOD_ORDER+=("$name $dest")
}

# The static busybox binary: the installed busybox-static if there is one,
# else from its .deb.
busybox_binary() {
  if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' &&
    [[ -x /bin/busybox ]]; then
    echo /bin/busybox
    return
  fi
  log "busybox-static not installed; downloading it"
  local deb
  deb="$(download_deb busybox-static)"
  dpkg-deb -x "$deb" "$WORK/busybox"
  echo "$WORK/busybox/bin/busybox"
}

# The insmod list for an /init: "NAME:PATH" words from OUT/order, dependencies
# first, joined with spaces.
module_insmod_list() {
  local name path list=""
  while read -r name path; do
    if [[ -n "$name" ]]; then list+="${list:+ }$name:$path"; fi
  done <"$1"
  echo "$list"
}
