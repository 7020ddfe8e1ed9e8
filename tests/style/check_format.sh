#!/usr/bin/env bash
# Fails, naming the files, when a C or C++ source is not as .clang-format
# would write it. Fix with: clang-format-14 -i FILE...
set -euo pipefail
cd "$(dirname "$0")/../.."
mapfile -t files < <(find vmm devices virtio arch tests guest-images examples \
  \( -name '*.cc' -o -name '*.h' -o -name '*.c' \) -type f | sort)
clang-format-14 --dry-run -Werror "${files[@]}"
echo "clang-format: ${#files[@]} files as .clang-format writes them"
