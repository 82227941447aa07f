#!/bin/sh
# Runs bench_api (as_completed over 10,000 tasks, run_coroutine_threadsafe
# round trip) and its asyncio anchor in one invocation and prints the
# ratios libasync / asyncio.
#
#   bench/run_api.sh <meson-build-dir> [runs]
set -eu
build=${1:?usage: run_api.sh <meson-build-dir> [runs]}
runs=${2:-7}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/run_api.XXXXXX")
trap 'rm -rf "$out"' EXIT

echo "# machine: $(uname -sr), $(nproc) CPUs"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# libasync: $build/bench/bench_api all $runs"
"$build/bench/bench_api" all "$runs" | tee "$out/libasync" | grep -v '^result' || true
echo "# asyncio: python3 $here/anchors/api.py all $runs ($(python3 --version))"
python3 "$here/anchors/api.py" all "$runs" | tee "$out/py" | grep -v '^result' || true

value() {
    awk -v k="$2" '$1 == "result" && $2 == k { v = $3 } END { print (v == "" ? "-" : v) }' "$1"
}
echo
printf '%-34s %12s %12s %9s\n' figure libasync asyncio lib/py
for k in as_completed_ns rct_roundtrip_ns; do
    l=$(value "$out/libasync" "$k"); p=$(value "$out/py" "$k")
    printf '%-34s %12s %12s %9s\n' "$k" "$l" "$p" \
        "$(awk -v a="$l" -v b="$p" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3f", a / b }')"
done
page=$(value "$out/libasync" page_touch_ns)
echo "# first touch of a fresh page on this machine: $page ns (bench_api page)."
echo "# as_completed keeps 10,000 tasks alive at once, so each task's stack"
echo "# costs about one such touch; asyncio's tasks touch no new page."
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
