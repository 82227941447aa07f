#!/bin/sh
# Echo server benchmark: examples/echo_server (libasync) against
# bench/epoll_echo_server (hand-written epoll) and bench/uv_echo_server
# (libuv, if it was built), all loaded by bench/echo_load in the same run,
# with examples/stream_echo_server (the streams layer: read + write +
# drain per message) beside them.
#
#   bench/run_echo.sh BUILD_DIR [RUNS] [SECONDS]
#
# For 100 and 1,000 connections x 64-byte and 16 KiB ping-pong messages,
# each server runs RUNS times (default 5; servers interleaved so that
# machine noise hits all of them alike) for SECONDS (default 3) after a
# 0.5 s warm-up, with the server pinned to CPU 0 and the load generator
# to CPU 1.  Reported: medians of round trips per second and of round
# trips per server CPU-second (user+system time of the server from
# /proc/PID/stat over the measured window), and the libasync/epoll and
# libasync/libuv ratios per CPU-second, and the stream/epoll ratio.  Then
# libasync with --threads 2 (server on both CPUs, so it shares CPU 1 with
# the generator).
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [RUNS] [SECONDS]" >&2
    exit 2
fi
build=$1
runs=${2:-5}
secs=${3:-3}
load="$build/bench/echo_load"
work=$(mktemp -d "${TMPDIR:-/tmp}/run_echo.XXXXXX")
spid=
cleanup() {
    if [ -n "$spid" ]; then
        kill -KILL "$spid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

servers="async epoll stream"
if [ -x "$build/bench/uv_echo_server" ]; then
    servers="$servers uv"
else
    echo "(libuv server not built: libuv not found at configure time)"
fi

server_cmd() {
    case $1 in
    async) echo "$build/examples/echo_server --port 0" ;;
    async2) echo "$build/examples/echo_server --port 0 --threads 2" ;;
    epoll) echo "$build/bench/epoll_echo_server --port 0" ;;
    stream) echo "$build/examples/stream_echo_server --port 0" ;;
    uv) echo "$build/bench/uv_echo_server --port 0" ;;
    esac
}

# run_one SERVER CPUS CONNS SIZE: one measurement; appends to $work files.
run_one() {
    out="$work/server.out"
    : >"$out"
    # shellcheck disable=SC2046
    taskset -c "$2" $(server_cmd "$1") >"$out" 2>&1 &
    spid=$!
    port=
    i=0
    while [ -z "$port" ] && [ $i -lt 100 ]; do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out")
        [ -n "$port" ] || sleep 0.05
        i=$((i + 1))
    done
    if [ -z "$port" ]; then
        echo "run_echo: $1 did not start:" >&2
        cat "$out" >&2
        exit 1
    fi
    res=$(taskset -c 1 "$load" --port "$port" --conns "$3" --size "$4" \
        --duration "$secs" --warmup 0.5 --server-pid "$spid")
    kill -TERM "$spid"
    wait "$spid" 2>/dev/null || true
    spid=
    key="$work/$1.$3.$4"
    echo "$res" | sed -n 's/.* rt_per_sec=\([0-9]*\).*/\1/p' >>"$key.rps"
    echo "$res" | sed -n 's/.* rt_per_cpu_sec=\([0-9]*\).*/\1/p' >>"$key.rpc"
}

median() {
    sort -n "$1" | awk '{v[NR] = $1} END {
        if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'
}

echo "echo ping-pong, $runs runs x ${secs} s each, medians; server on CPU 0, load on CPU 1"
printf '%-6s %-6s %-7s %12s %14s\n' conns size server "rt/s" "rt/server-CPU-s"
for cfg in "100 64" "100 16384" "1000 64" "1000 16384"; do
    set -- $cfg
    r=0
    while [ $r -lt "$runs" ]; do
        for s in $servers; do
            run_one "$s" 0 "$1" "$2"
        done
        r=$((r + 1))
    done
    for s in $servers; do
        printf '%-6s %-6s %-7s %12s %14s\n' "$1" "$2" "$s" \
            "$(median "$work/$s.$1.$2.rps")" "$(median "$work/$s.$1.$2.rpc")"
    done
    a=$(median "$work/async.$1.$2.rpc")
    line="  libasync/epoll per CPU-s: $(ratio "$a" "$(median "$work/epoll.$1.$2.rpc")")"
    if [ -f "$work/uv.$1.$2.rpc" ]; then
        line="$line   libasync/libuv per CPU-s: $(ratio "$a" "$(median "$work/uv.$1.$2.rpc")")"
    fi
    echo "$line"
    echo "  stream/epoll per CPU-s: $(ratio "$(median "$work/stream.$1.$2.rpc")" "$(median "$work/epoll.$1.$2.rpc")")"
done

echo
echo "libasync --threads 2 (server on CPUs 0-1, load on CPU 1), 100 conns x 64 B:"
rm -f "$work"/async.100.64.*
r=0
while [ $r -lt "$runs" ]; do
    run_one async 0 100 64
    run_one async2 0-1 100 64
    r=$((r + 1))
done
for s in async async2; do
    printf '  %-7s %12s rt/s %14s rt/server-CPU-s\n' "$s" \
        "$(median "$work/$s.100.64.rps")" "$(median "$work/$s.100.64.rpc")"
done
echo "  threads 2 / threads 1, rt/s: $(ratio "$(median "$work/async2.100.64.rps")" "$(median "$work/async.100.64.rps")")"
