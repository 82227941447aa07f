#!/usr/bin/env bash
# libasync as a meson subproject, the way a consumer uses it: a tiny project
# with subprojects/libasync (a link to this tree) asks for
# dependency('libasync') with default_library=static.  Checks that
#   - it configures with pkg-config finding nothing (cmocka, libuv... are
#     not required: tests, examples and bench are off in a subproject),
#   - libasync builds no test, example or bench target and installs nothing,
#   - the dependency is the static library (the program needs no
#     libasync.so at run time),
#   - the program runs.
#
#   tests/subproject/check.sh [WORK_DIR]     (JOBS=N limits ninja)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/libasync-subproject.XXXXXX")}
rm -rf "$work"
mkdir -p "$work/subprojects"
cp "$here/meson.build" "$here/consumer.c" "$work/"
ln -s "$root" "$work/subprojects/libasync"

fail() {
  echo "subproject: $*" >&2
  exit 1
}

# An empty pkg-config search path: nothing optional may turn required.
empty=$(mktemp -d "${TMPDIR:-/tmp}/libasync-nopc.XXXXXX")
trap 'rm -rf "$empty"' EXIT
PKG_CONFIG_LIBDIR=$empty PKG_CONFIG_PATH= \
  meson setup "$work/build" "$work" >"$work/setup.log" 2>&1 ||
  { tail -30 "$work/setup.log"; fail "configure failed"; }

targets=$(meson introspect --targets "$work/build")
for unwanted in test_ bench_ '"hello"' echo_server guide_; do
  if grep -q "\"name\": \"$unwanted" <<<"$targets" ||
     grep -q "\"name\": $unwanted" <<<"$targets"; then
    fail "a target the consumer did not ask for: $unwanted"
  fi
done
installed=$(meson introspect --installed "$work/build")
[ "$installed" = "{}" ] || fail "installs files: $installed"

ninja -C "$work/build" ${JOBS:+-j "$JOBS"} >"$work/build.log" 2>&1 ||
  { tail -30 "$work/build.log"; fail "build failed"; }
[ -z "$(find "$work/build" -name 'libasync.so*')" ] ||
  fail "a shared libasync was built for default_library=static"
if ldd "$work/build/consumer" | grep -q libasync; then
  fail "the consumer links a shared libasync"
fi
out=$("$work/build/consumer") || fail "the consumer failed"
[ "$out" = "consumer: 42" ] || fail "unexpected output: $out"
echo "subproject: ok"
