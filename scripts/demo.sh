#!/usr/bin/env bash
# One command: install build dependencies, build libasync, start the echo
# server, drive it with the echo client's load mode for a few seconds on
# loopback, print the figures, stop the server.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-debian.sh
build=build
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false -Dbench=false
fi
ninja -C "$build"
exec examples/run_demo.sh "$build"
