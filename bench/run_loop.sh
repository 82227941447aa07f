#!/bin/sh
# Runs bench_loop (timer churn against libuv's uv_timer in the same process,
# call_soon throughput) and prints one table with the ratios libasync / libuv.
#
#   bench/run_loop.sh <meson-build-dir> [runs]     (medians of runs, default 5)
set -eu
build=${1:?usage: run_loop.sh <meson-build-dir> [runs]}
runs=${2:-5}
out=$(mktemp "${TMPDIR:-/tmp}/run_loop.XXXXXX")
trap 'rm -f "$out"' EXIT

echo "# machine: $(uname -sr), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $build/bench/bench_loop $runs"
"$build/bench/bench_loop" "$runs" | tee "$out" | grep -v '^result' || true

value() { awk -v k="$1" '$1 == "result" && $2 == k { v = $3 } END { print (v == "" ? "-" : v) }' "$out"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3f", a / b }'; }

echo
printf '%-24s %12s %12s %9s %16s %9s\n' "figure (ns/timer)" libasync "uv (malloc)" lib/uv "uv (prealloc)" lib/uv
for k in timers_fire timers_cancel; do
    l=$(value ${k}_ns); u=$(value uv_${k}_ns); p=$(value uv_prealloc_${k}_ns)
    printf '%-24s %12s %12s %9s %16s %9s\n' "$k" "$l" "$u" "$(ratio "$l" "$u")" "$p" "$(ratio "$l" "$p")"
done
echo
printf '%-24s %16s\n' "call_soon" "callbacks/s"
printf '%-24s %16s\n' "self-rescheduling chain" "$(value call_soon_chain_per_s)"
printf '%-24s %16s\n' "batch of 1,000,000" "$(value call_soon_batch_per_s)"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
