#!/usr/bin/env bash
# One command: install everything the test matrix needs, then run the whole
# cmocka suite in every configuration the project promises:
#   1. default build (gcc, -Werror)
#   2. AddressSanitizer + UndefinedBehaviorSanitizer (with fiber annotations)
#   3. Valgrind (with stack registration)
#   4. clang, FP control words saved on every switch (-Dsave_fp_control=true)
#   4b. ThreadSanitizer (fiber annotations on every switch), every test but
#       the four that hold more coroutines than TSan allows threads
#   5. AArch64 cross build, run under qemu-user
#   5b. riscv64 cross build, run under qemu-user (cmocka for it is built
#       from Debian's source package by setup-debian.sh --full)
#   6. the Mach-O context-switch objects assembled for arm64 and x86_64 macOS
#   and, once each: the default build's programs under Valgrind, and
#   libasync as a static meson subproject of a tiny consumer
# and ends with one line: "N passed, N failed".
#
# JOBS=N limits the parallelism of every build (ninja -j N) and test run
# (meson test --num-processes N); unset, both use their defaults.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/setup-debian.sh --full || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

out=${BUILD_ROOT:-$root/build-test}
mkdir -p "$out"
passed=0
failed=0
ninja_jobs=()
test_jobs=()
if [ -n "${JOBS:-}" ]; then
  ninja_jobs=(-j "$JOBS")
  test_jobs=(--num-processes "$JOBS")
fi

# Runs `meson test` in a configured build dir and adds its counts.
run_suite() {
  local name=$1 dir=$2; shift 2
  echo "=== $name ==="
  local log="$out/$name.log"
  meson test -C "$dir" --print-errorlogs ${test_jobs[@]+"${test_jobs[@]}"} "$@" >"$log" 2>&1
  local rc=$?
  grep -E '^ *[0-9]+/[0-9]+ ' "$log" | grep -vE ' OK ' || true
  local ok fail
  ok=$(awk '/^Ok:/ {print $2}' "$log")
  fail=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {s += $NF} END {print s + 0}' "$log")
  ok=${ok:-0}
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
    fail=1 # the runner itself failed
    tail -20 "$log"
  fi
  echo "$name: $ok passed, $fail failed"
  passed=$((passed + ok))
  failed=$((failed + fail))
}

# Configures and builds; a build failure counts as one failed test.
setup_build() {
  local name=$1 dir=$2; shift 2
  rm -rf "$dir"
  if ! meson setup "$dir" "$@" >"$out/$name-setup.log" 2>&1 ||
     ! ninja -C "$dir" ${ninja_jobs[@]+"${ninja_jobs[@]}"} >"$out/$name-build.log" 2>&1; then
    echo "=== $name: build failed ==="
    tail -30 "$out/$name-setup.log" "$out/$name-build.log" 2>/dev/null
    failed=$((failed + 1))
    return 1
  fi
}

if setup_build default "$out/default" -Dwerror=true; then
  run_suite default "$out/default"
  # A program linked against the default build (no -Dvalgrind) runs under
  # Valgrind: stacks are registered at run time.  test_signal takes signals
  # on coroutine stacks, which made Valgrind itself crash without that.
  echo "=== valgrind on the default build ==="
  for prog in tests/test_signal examples/hello; do
    if valgrind --error-exitcode=99 --quiet "$out/default/$prog" \
         >"$out/default-valgrind.log" 2>&1; then
      echo "valgrind $prog: ok"
      passed=$((passed + 1))
    else
      echo "valgrind $prog: FAILED"
      tail -30 "$out/default-valgrind.log"
      failed=$((failed + 1))
    fi
  done
fi

# libasync as a consumer's meson subproject (static, nothing installed, no
# test dependencies).
echo "=== subproject ==="
if tests/subproject/check.sh "$out/subproject" >"$out/subproject.log" 2>&1; then
  echo "subproject: ok"
  passed=$((passed + 1))
else
  echo "subproject: FAILED"
  tail -30 "$out/subproject.log"
  failed=$((failed + 1))
fi

if setup_build sanitize "$out/sanitize" -Db_sanitize=address,undefined -Db_lundef=false \
     -Dexamples=false -Dbench=false; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_suite sanitize "$out/sanitize"
fi

if setup_build valgrind "$out/valgrind" -Dvalgrind=true -Dexamples=false -Dbench=false; then
  run_suite valgrind "$out/valgrind" --setup valgrind
fi

if CC=clang setup_build clang-fpctl "$out/clang-fpctl" -Dsave_fp_control=true -Dwerror=true; then
  run_suite clang-fpctl "$out/clang-fpctl"
fi

# ThreadSanitizer counts each coroutine (fiber) as a thread and dies past
# 8128 of them: test_coro (10,000 round-robin), test_task (100,000
# sleepers), test_gather and test_wait (10,000 children) cannot run under
# it; everything else, the cross-thread tests among them, does.
# handle_segv=0: test_stack's children fault on purpose.
if setup_build tsan "$out/tsan" -Db_sanitize=thread -Db_lundef=false \
     -Dexamples=false -Dbench=false; then
  tsan_tests=$(meson test -C "$out/tsan" --list 2>/dev/null |
    sed -n 's|^libasync:[^/]* / ||p' | grep -vxE 'coro|task|gather|wait')
  # shellcheck disable=SC2086 # one test name per word
  TSAN_OPTIONS=halt_on_error=1:handle_segv=0 run_suite tsan "$out/tsan" $tsan_tests
fi

if setup_build aarch64 "$out/aarch64" --cross-file cross/aarch64-linux.txt \
     -Dexamples=false -Dbench=false; then
  run_suite aarch64 "$out/aarch64" --timeout-multiplier 4
fi

if setup_build riscv64 "$out/riscv64" --cross-file cross/riscv64-linux.txt \
     -Dexamples=false -Dbench=false; then
  run_suite riscv64 "$out/riscv64" --timeout-multiplier 4
fi

echo "=== Mach-O ==="
for target in arm64-apple-macos11 x86_64-apple-macos11; do
  arch=aarch64
  [ "${target%%-*}" = x86_64 ] && arch=x86_64
  if clang -target "$target" -c "src/arch/$arch/switch.S" -I src/arch \
       -o "$out/switch-$target.o" 2>"$out/macho-$target.log"; then
    echo "Mach-O $target: ok"
    passed=$((passed + 1))
  else
    echo "Mach-O $target: FAILED"
    cat "$out/macho-$target.log"
    failed=$((failed + 1))
  fi
done

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
