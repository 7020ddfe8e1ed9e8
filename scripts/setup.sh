#!/usr/bin/env bash
# Installs what mote needs from Debian 12's packages (only what is missing),
# then configures and builds it, tiny test kernels included, in ./build.
# Usage: scripts/setup.sh [extra meson setup options]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ meson ninja-build pkg-config cmake binutils python3
  libabsl-dev libfmt-dev libspdlog-dev libfdt-dev libcli11-dev catch2
  libseccomp-dev liburing-dev nlohmann-json3-dev acpica-tools iproute2
  clang-14 libclang-rt-14-dev clang-format-14
  # The nested KVM runner (tests/nested/run.sh) and the Linux test guest.
  qemu-system-x86 busybox-static cpio e2fsprogs
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi

if [ ! -f build/build.ninja ]; then
  meson setup build "$@"
fi
meson compile -C build
