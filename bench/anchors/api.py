"""asyncio anchor for bench/bench_api.c.

  as_completed  10,000 tasks (each awaits sleep(0) once) consumed through
                asyncio.as_completed: ns per task, create_task included
  rct           asyncio.run_coroutine_threadsafe(empty(), loop).result()
                with the loop running in another thread: ns per round trip

Output: "result <name> <value>" lines, as bench_api prints them.
Usage: python3 api.py [as_completed|rct|all] [runs]
"""
import asyncio
import statistics
import sys
import threading
import time

AC_TASKS = 10_000
RCT_CALLS = 20_000


async def yield_once():
    await asyncio.sleep(0)


async def bench_as_completed():
    t0 = time.perf_counter_ns()
    tasks = [asyncio.create_task(yield_once()) for _ in range(AC_TASKS)]
    got = 0
    for f in asyncio.as_completed(tasks):
        await f
        got += 1
    assert got == AC_TASKS
    return (time.perf_counter_ns() - t0) / AC_TASKS


async def empty():
    pass


def bench_rct():
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_forever)
    th.start()
    t0 = time.perf_counter_ns()
    for _ in range(RCT_CALLS):
        asyncio.run_coroutine_threadsafe(empty(), loop).result()
    ns = (time.perf_counter_ns() - t0) / RCT_CALLS
    loop.call_soon_threadsafe(loop.stop)
    th.join()
    loop.close()
    return ns


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    if mode in ("as_completed", "all"):
        v = []
        for i in range(runs):
            v.append(asyncio.run(bench_as_completed()))
            print(f"# as_completed run {i + 1}: {v[-1]:.1f} ns/task", flush=True)
        print(f"result as_completed_ns {statistics.median(v):.1f}")
    if mode in ("rct", "all"):
        v = []
        for i in range(runs):
            v.append(bench_rct())
            print(f"# rct run {i + 1}: {v[-1]:.1f} ns/call", flush=True)
        print(f"result rct_roundtrip_ns {statistics.median(v):.1f}")


if __name__ == "__main__":
    main()
