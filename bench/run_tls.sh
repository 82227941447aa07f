#!/bin/sh
# TLS benchmark: examples/stream_echo_server --tls (libasync streams over
# the TLS engine) against a Go crypto/tls echo server (bench/anchors/
# tls_echo.go, built here with the system's Go: Debian golang-go) and
# asyncio's stream echo server with ssl= (bench/anchors/tls_echo.py), all
# driven by bench/tls_load (OpenSSL client threads) in the same run.
#
#   bench/run_tls.sh BUILD_DIR [RUNS] [SECONDS]
#
# One ECDSA P-256 certificate, made here, serves all three; TLS 1.3 only.
# Two loads: echo (10 connections, 16 KiB messages, round trips) and
# handshakes (8 client threads: connect, full handshake without
# resumption, a 1-byte echo, close).  Each server runs RUNS times (default
# 3, servers interleaved) for SECONDS (default 3) after a 0.5 s warm-up,
# pinned to CPU 0 with the load on CPU 1.  Reported: medians of operations
# per second and per server CPU-second (user+system from /proc/PID/stat),
# and the libasync/Go and libasync/asyncio ratios per CPU-second.
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [RUNS] [SECONDS]" >&2
    exit 2
fi
build=$1
runs=${2:-3}
secs=${3:-3}
src=$(cd "$(dirname "$0")" && pwd)
load="$build/bench/tls_load"
work=$(mktemp -d "${TMPDIR:-/tmp}/run_tls.XXXXXX")
spid=
cleanup() {
    if [ -n "$spid" ]; then
        kill -KILL "$spid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ ! -x "$load" ]; then
    echo "run_tls: $load missing (was the build configured with TLS?)" >&2
    exit 1
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

servers="async"
if command -v go >/dev/null 2>&1; then
    cp "$src/anchors/tls_echo.go" "$work/"
    (cd "$work" && GOCACHE="$work/gocache" GOFLAGS= GO111MODULE=off \
        go build -o tls_echo_go tls_echo.go)
    servers="$servers go"
else
    echo "(Go not found: install golang-go, scripts/setup-debian.sh --full)"
fi
servers="$servers py"
echo "go: $(go version 2>/dev/null || echo none); $(python3 --version); $(openssl version)"

server_cmd() {
    case $1 in
    async) echo "$build/examples/stream_echo_server --port 0 --tls $work/cert.pem $work/key.pem" ;;
    go) echo "$work/tls_echo_go --port 0 --cert $work/cert.pem --key $work/key.pem" ;;
    py) echo "python3 $src/anchors/tls_echo.py 0 $work/cert.pem $work/key.pem" ;;
    esac
}

# run_one SERVER MODE CONNS SIZE: one measurement, appended to $work files.
run_one() {
    out="$work/server.out"
    : >"$out"
    # shellcheck disable=SC2046
    taskset -c 0 $(server_cmd "$1") >"$out" 2>&1 &
    spid=$!
    port=
    i=0
    while [ -z "$port" ] && [ $i -lt 200 ]; do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out")
        [ -n "$port" ] || sleep 0.05
        i=$((i + 1))
    done
    if [ -z "$port" ]; then
        echo "run_tls: $1 did not start:" >&2
        cat "$out" >&2
        exit 1
    fi
    res=$(taskset -c 1 "$load" --port "$port" --mode "$2" --conns "$3" \
        --size "$4" --duration "$secs" --warmup 0.5 --server-pid "$spid")
    kill -TERM "$spid"
    wait "$spid" 2>/dev/null || true
    spid=
    key="$work/$1.$2"
    echo "$res" | sed -n 's/.* ops_per_sec=\([0-9]*\).*/\1/p' >>"$key.ops"
    echo "$res" | sed -n 's/.* ops_per_cpu_sec=\([0-9]*\).*/\1/p' >>"$key.cpu"
}

median() {
    sort -n "$1" | awk '{v[NR] = $1} END {
        if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

echo "TLS 1.3, ECDSA P-256; $runs runs x ${secs} s, medians; server on CPU 0, load on CPU 1"
printf '%-28s %-7s %12s %16s\n' load server "ops/s" "ops/server-CPU-s"
for cfg in "echo 10 16384 round-trips,10x16KiB" "handshake 8 1 handshakes+1B-echo"; do
    set -- $cfg
    r=0
    while [ $r -lt "$runs" ]; do
        for s in $servers; do
            run_one "$s" "$1" "$2" "$3"
        done
        r=$((r + 1))
    done
    for s in $servers; do
        printf '%-28s %-7s %12s %16s\n' "$4" "$s" \
            "$(median "$work/$s.$1.ops")" "$(median "$work/$s.$1.cpu")"
    done
    a=$(median "$work/async.$1.cpu")
    line="  per server CPU-s:"
    if [ -f "$work/go.$1.cpu" ]; then
        line="$line libasync/Go $(ratio "$a" "$(median "$work/go.$1.cpu")")"
    fi
    line="$line  libasync/asyncio $(ratio "$a" "$(median "$work/py.$1.cpu")")"
    echo "$line"
done
