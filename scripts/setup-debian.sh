#!/usr/bin/env bash
# Installs what libasync needs on Debian/Ubuntu.
#   scripts/setup-debian.sh          build + demo: compiler, meson, ninja, cmocka,
#                                    OpenSSL (libssl-dev, optional: meson -Dtls)
#                                    and the openssl CLI the TLS tests use
#   scripts/setup-debian.sh --full   also the test matrix: valgrind, clang,
#                                    the aarch64 cross toolchain + qemu-user +
#                                    arm64 cmocka, the riscv64 cross
#                                    toolchain + cmocka built for it from
#                                    Debian's source package, and the bench
#                                    anchors (Boost.Context, libuv,
#                                    Go for the crypto/tls anchor), gdb
#                                    (the gdb extension's test)
set -euo pipefail

full=0
[ "${1:-}" = "--full" ] && full=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

pkgs=(gcc pkg-config meson ninja-build libcmocka-dev procps libssl-dev openssl)
if [ "$full" = 1 ]; then
  pkgs+=(valgrind g++ clang llvm gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
         libcmocka-dev:arm64 libboost-context-dev libuv1-dev
         gcc-riscv64-linux-gnu libc6-dev-riscv64-cross cmake dpkg-dev golang-go
         gdb)
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

# riscv64 cmocka.  Debian 12 has no riscv64 architecture, hence no
# libcmocka-dev:riscv64: build Debian's own source package (fetched and
# verified by apt-get source from the archive's deb-src index, read through a
# private apt configuration so the system's sources stay as they are) with
# the cross compiler, into the prefix cross/riscv64-linux.txt reads.
rv_prefix=/usr/local/riscv64-linux-gnu
if [ "$full" = 1 ] && [ ! -f "$rv_prefix/lib/pkgconfig/cmocka.pc" ]; then
  work=$(mktemp -d)
  trap '$SUDO rm -rf "$work"' EXIT
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  mkdir -p "$work/parts" "$work/lists/partial"
  # The mirror is the one this machine's apt already uses for binaries.
  mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' 2>/dev/null |
           grep -v -- '-security' | grep -m1 '/debian/$')
  [ -n "$mirror" ] || { echo "setup: no Debian mirror in the apt sources" >&2; exit 1; }
  printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "$codename" >"$work/parts/src.sources"
  apt_src=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/parts"
           -o "Dir::State::Lists=$work/lists" -o APT::Sandbox::User=root)
  $SUDO apt-get "${apt_src[@]}" update -q
  (cd "$work" && $SUDO apt-get "${apt_src[@]}" source -q cmocka)
  src=$(find "$work" -maxdepth 1 -type d -name 'cmocka-*' | head -1)
  cmake -S "$src" -B "$work/build" -DCMAKE_SYSTEM_NAME=Linux \
    -DCMAKE_SYSTEM_PROCESSOR=riscv64 -DCMAKE_C_COMPILER=riscv64-linux-gnu-gcc \
    -DCMAKE_INSTALL_PREFIX="$rv_prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF
  cmake --build "$work/build" -j "${JOBS:-2}"
  $SUDO cmake --install "$work/build"
fi
