#!/bin/sh
# Runs the task benchmarks (bench_tasks) and their Go and asyncio anchors in
# one invocation and prints one table with the ratios libasync / anchor.
#
#   bench/run_tasks.sh <meson-build-dir> [runs]
#
# The Go anchor is built (GO111MODULE=off, cache inside the build dir) and
# run with GOMAXPROCS=1 only when `go` is on PATH; the asyncio anchor only
# when python3 is.  Medians of `runs` runs (default 7; sleepers: 3).
# The sleepers' CPU time (user + system over the run) is printed beside the
# wall time: on a shared, loaded machine the wall is mostly time spent
# waiting for a CPU, while CPU time still compares the work done.
set -eu
build=${1:?usage: run_tasks.sh <meson-build-dir> [runs]}
runs=${2:-7}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/run_tasks.XXXXXX")
trap 'rm -rf "$out"' EXIT

echo "# machine: $(uname -sr), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "# libasync: $build/bench/bench_tasks all $runs"
"$build/bench/bench_tasks" all "$runs" | tee "$out/libasync" | grep -v '^result' || true

if command -v go >/dev/null 2>&1; then
    gobin="$build/bench/anchor_tasks_go"
    GOCACHE="$build/bench/go-cache" GO111MODULE=off \
        go build -o "$gobin" "$here/anchors/tasks.go"
    echo "# Go: GOMAXPROCS=1 $gobin all $runs ($(go version | cut -d' ' -f3))"
    GOMAXPROCS=1 "$gobin" all "$runs" | tee "$out/go" | grep -v '^result' || true
fi
if command -v python3 >/dev/null 2>&1; then
    echo "# asyncio: python3 $here/anchors/tasks.py all $runs ($(python3 --version))"
    python3 "$here/anchors/tasks.py" all "$runs" | tee "$out/py" | grep -v '^result' || true
fi

# value FILE KEY: the median a run printed, or "-"
value() {
    [ -f "$1" ] && awk -v k="$2" '$1 == "result" && $2 == k { v = $3 } END { print (v == "" ? "-" : v) }' "$1" || echo -
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3f", a / b }'
}
verdict() {
    awk -v a="$1" -v t="$2" 'BEGIN { if (a == "-" || t == "-") print "-"; else print (a <= t ? "met" : "NOT met") }'
}

echo
printf '%-30s %12s %12s %9s %12s %9s %10s %8s\n' figure libasync Go lib/Go asyncio lib/py target verdict
row() { # key label target
    l=$(value "$out/libasync" "$1"); g=$(value "$out/go" "$1"); p=$(value "$out/py" "$1")
    printf '%-30s %12s %12s %9s %12s %9s %10s %8s\n' "$2" "$l" "$g" "$(ratio "$l" "$g")" \
        "$p" "$(ratio "$l" "$p")" "$3" "$(verdict "$l" "$3")"
}
row yield_ns "yield (ns)" 15
row spawn_await_ns "spawn+await (ns)" 150
row sleepers_wall_s "100k sleepers wall (s)" 1.1
row sleepers_cpu_s "100k sleepers CPU (s)" -
row sleepers_rss_per_task_bytes "100k sleepers RSS/task (B)" 4500
echo "# libasync sleepers VMAs added at peak: $(value "$out/libasync" sleepers_vmas)"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
