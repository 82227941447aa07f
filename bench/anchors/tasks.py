"""asyncio anchor for bench/bench_tasks.c.

  yield     asyncio.sleep(0) ping-pong between two tasks, ns per sleep(0)
  spawn     create_task + await of an empty coroutine, ns each
  sleepers  100,000 tasks sleeping 1 s: wall time, CPU time (user +
            system) and peak RSS per task (VmHWM growth / 100,000), in a
            fresh child process

Output: "result <name> <value>" lines, as bench_tasks prints them.
Usage: python3 tasks.py [yield|spawn|sleepers|all] [runs]
"""
import asyncio
import resource
import statistics
import subprocess
import sys
import time

YIELDS_PER_TASK = 200_000   # asyncio is ~100x slower than the C version
SPAWNS = 100_000
SLEEPERS = 100_000


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


async def yielder():
    for _ in range(YIELDS_PER_TASK):
        await asyncio.sleep(0)


async def bench_yield():
    t0 = time.perf_counter_ns()
    await asyncio.gather(asyncio.create_task(yielder()),
                         asyncio.create_task(yielder()))
    return (time.perf_counter_ns() - t0) / (2 * YIELDS_PER_TASK)


async def empty():
    pass


async def bench_spawn():
    t0 = time.perf_counter_ns()
    for _ in range(SPAWNS):
        await asyncio.create_task(empty())
    return (time.perf_counter_ns() - t0) / SPAWNS


async def sleepers_child():
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    left = SLEEPERS

    async def sleeper():
        nonlocal left
        await asyncio.sleep(1)
        left -= 1
        if left == 0:
            done.set_result(None)

    hwm0 = status_kb("VmHWM")
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(sleeper()) for _ in range(SLEEPERS)]
    await done
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    hwm1 = status_kb("VmHWM")
    del tasks
    print(f"result sleepers_wall_s {wall:.4f}")
    print(f"result sleepers_cpu_s {cpu:.4f}")
    print(f"result sleepers_rss_per_task_bytes {(hwm1 - hwm0) * 1024 / SLEEPERS:.0f}")


def repeat(name, runs, coro_fn):
    v = []
    for i in range(runs):
        v.append(asyncio.run(coro_fn()))
        print(f"# {name} run {i + 1}: {v[-1]:.2f} ns", flush=True)
    print(f"result {name} {statistics.median(v):.2f}", flush=True)


def sleepers_in_child():
    out = subprocess.run([sys.executable, __file__, "sleepers-child"],
                         check=True, capture_output=True, text=True).stdout
    vals = {}
    for line in out.splitlines():
        print("# child:", line)
        f = line.split()
        if len(f) == 3 and f[0] == "result":
            vals[f[1]] = float(f[2])
    return (vals["sleepers_wall_s"], vals["sleepers_rss_per_task_bytes"],
            vals["sleepers_cpu_s"])


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    if mode == "sleepers-child":
        asyncio.run(sleepers_child())
        return
    every = mode == "all"
    if every or mode == "yield":
        repeat("yield_ns", runs, bench_yield)
    if every or mode == "spawn":
        repeat("spawn_await_ns", runs, bench_spawn)
    if every or mode == "sleepers":
        res = [sleepers_in_child() for _ in range(min(runs, 3))]
        print(f"result sleepers_wall_s {statistics.median(r[0] for r in res):.4f}")
        print(f"result sleepers_rss_per_task_bytes {statistics.median(r[1] for r in res):.0f}")
        print(f"result sleepers_cpu_s {statistics.median(r[2] for r in res):.4f}")


if __name__ == "__main__":
    main()
