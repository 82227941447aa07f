#!/bin/sh
# The echo demo: start examples/echo_server on a free loopback port, load it
# with examples/echo_client for 3 seconds (50 connections, 64-byte
# messages, every byte verified), stop the server with SIGINT and check
# that it shut down cleanly and printed its totals.  Builds nothing.
#
#   examples/run_demo.sh BUILD_DIR
#
# Exits non-zero if anything fails.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
server="$1/examples/echo_server"
client="$1/examples/echo_client"
for exe in "$server" "$client"; do
    if [ ! -x "$exe" ]; then
        echo "run_demo: $exe not found; build first (ninja -C $1)" >&2
        exit 1
    fi
done

log=$(mktemp "${TMPDIR:-/tmp}/echo_demo.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$log"
}
trap cleanup EXIT INT TERM

# Port 0: the kernel picks a free port; the server prints it.
"$server" --host 127.0.0.1 --port 0 >"$log" 2>&1 &
pid=$!
port=
tries=0
while [ -z "$port" ]; do
    port=$(sed -n 's/^echo_server: listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
    if [ -z "$port" ]; then
        tries=$((tries + 1))
        if [ $tries -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "run_demo: the server did not start:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.05
    fi
done
echo "run_demo: echo_server is listening on 127.0.0.1:$port"

status=0
"$client" --host 127.0.0.1 --port "$port" --conns 50 --size 64 --duration 3 ||
    status=$?
if [ $status -ne 0 ]; then
    echo "run_demo: echo_client failed (exit status $status)" >&2
fi

kill -INT "$pid"
tries=0
while kill -0 "$pid" 2>/dev/null; do
    tries=$((tries + 1))
    if [ $tries -gt 200 ]; then
        echo "run_demo: the server did not stop within 10 s of SIGINT" >&2
        exit 1
    fi
    sleep 0.05
done
server_status=0
wait "$pid" || server_status=$?
pid=
cat "$log"
if [ $server_status -ne 0 ]; then
    echo "run_demo: echo_server exited with status $server_status" >&2
    exit 1
fi
if ! grep -q '^echo_server: totals:' "$log"; then
    echo "run_demo: echo_server printed no totals" >&2
    exit 1
fi
exit $status
