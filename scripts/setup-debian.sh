#!/usr/bin/env bash
# Installs what libasync needs on Debian/Ubuntu.
#   scripts/setup-debian.sh          build + demo: compiler, meson, ninja, cmocka
#   scripts/setup-debian.sh --full   also the test matrix: valgrind, clang,
#                                    the aarch64 cross toolchain + qemu-user +
#                                    arm64 cmocka, and the bench anchors
#                                    (Boost.Context, libuv)
set -euo pipefail

full=0
[ "${1:-}" = "--full" ] && full=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

pkgs=(gcc pkg-config meson ninja-build libcmocka-dev procps)
if [ "$full" = 1 ]; then
  pkgs+=(valgrind clang llvm gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
         libcmocka-dev:arm64 libboost-context-dev libuv1-dev)
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
  fi
fi

# Skip the network when everything is already there.
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
