#!/usr/bin/env bash
# One command: install build dependencies, build libasync, start the echo
# server, drive it with the echo client's load mode for a few seconds on
# loopback, print the figures, stop the server.
#
# It builds in build-demo/ (a release build without tests), so the README's
# by-hand commands in build/ get a build of their own with the whole suite.
# JOBS=N limits the build to N parallel jobs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-debian.sh
build=build-demo
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false -Dbench=false
fi
ninja -C "$build" ${JOBS:+-j "$JOBS"}
exec examples/run_demo.sh "$build"
