/*
 * Benchmarks of the issue-10 task API, against bench/anchors/api.py
 * (asyncio) in the same run (bench/run_api.sh):
 *
 *   as_completed  10,000 tasks (each yields once) consumed through
 *                 async_as_completed_next: ns per task, spawn included
 *   rct           async_run_coroutine_threadsafe + async_tsfuture_wait of an
 *                 empty coroutine on a loop running in another thread,
 *                 from a plain thread: ns per round trip
 *   page          the machine's cost of a first touch: one write to each of
 *                 10,000 fresh pages 64 KiB apart (a new stack's top page,
 *                 what as_completed's 10,000 live tasks each need): ns per
 *                 page.  Context for as_completed, whose Python anchor
 *                 touches no new page per task; on virtual machines that
 *                 back guest memory lazily it can be tens of microseconds.
 *
 * Output: "result <name> <median>" lines for the driver.
 * Usage: bench_api [as_completed|rct|page|all] [runs]
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <async.h>

enum { AC_TASKS = 10000, RCT_CALLS = 20000 };

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- as_completed ----------------------------------------------------------- */

static int yield_once(void *arg, void **result)
{
    (void)arg, (void)result;
    return async_yield();
}

static int ac_main(void *arg, void **result)
{
    (void)result;
    double *ns = arg;
    async_task **t = malloc(AC_TASKS * sizeof(*t));
    if (!t)
        return ASYNC_ENOMEM;
    uint64_t t0 = now_ns();
    int rc = 0, n = 0;
    for (; n < AC_TASKS && rc == 0; n++)
        if ((rc = async_spawn(&t[n], yield_once, NULL)))
            break;
    async_as_completed *it = NULL;
    if (rc == 0)
        rc = async_as_completed_new_tasks(&it, t, (size_t)n, ASYNC_NO_TIMEOUT);
    size_t idx, got = 0;
    while (rc == 0 && (rc = async_as_completed_next(it, &idx)) == 1) {
        rc = async_task_await(t[idx], NULL); /* done: the result at once */
        got++;
    }
    *ns = (double)(now_ns() - t0) / AC_TASKS;
    async_as_completed_free(it);
    for (int i = 0; i < n; i++)
        async_task_unref(t[i]);
    free(t);
    return rc == 0 && got == AC_TASKS ? 0 : ASYNC_EFAILED;
}

/* ---- run_coroutine_threadsafe round trip ------------------------------------- */

static int empty(void *arg, void **result)
{
    (void)arg, (void)result;
    return 0;
}

static void *loop_thread(void *arg)
{
    async_loop_run_forever(arg);
    async_loop_close(arg);
    return NULL;
}

static int stop_cb(void *arg)
{
    return async_loop_stop(arg);
}

static int rct_run(double *ns)
{
    async_loop *loop;
    int rc = async_loop_new(&loop);
    if (rc)
        return rc;
    pthread_t th;
    pthread_create(&th, NULL, loop_thread, loop);
    uint64_t t0 = now_ns();
    for (int i = 0; i < RCT_CALLS && rc == 0; i++) {
        async_tsfuture *f;
        rc = async_run_coroutine_threadsafe(loop, empty, NULL, &f);
        if (rc == 0) {
            rc = async_tsfuture_wait(f, -1, NULL);
            async_tsfuture_unref(f);
        }
    }
    *ns = (double)(now_ns() - t0) / RCT_CALLS;
    async_loop_call_soon_threadsafe(loop, stop_cb, loop);
    pthread_join(th, NULL);
    async_loop_free(loop);
    return rc;
}

/* ---- first touch of a fresh page ---------------------------------------------- */

enum { PAGE_TOUCHES = 10000, PAGE_STRIDE = 64 * 1024 };
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

static int page_run(double *ns)
{
    size_t len = (size_t)PAGE_TOUCHES * PAGE_STRIDE;
    volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < PAGE_TOUCHES; i++)
        p[i * PAGE_STRIDE + PAGE_STRIDE - 64] = 1;
    *ns = (double)(now_ns() - t0) / PAGE_TOUCHES;
    munmap((void *)p, len);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "all";
    int runs = argc > 2 ? atoi(argv[2]) : 7;
    if (runs < 1 || runs > 100)
        runs = 7;
    double v[100];
    bool all = strcmp(mode, "all") == 0;
    if (all || strcmp(mode, "as_completed") == 0) {
        for (int i = 0; i < runs; i++) {
            if (async_run(ac_main, &v[i], NULL))
                return 1;
            printf("# as_completed run %d: %.1f ns/task\n", i + 1, v[i]);
        }
        printf("result as_completed_ns %.1f\n", median(v, runs));
    }
    if (all || strcmp(mode, "rct") == 0) {
        for (int i = 0; i < runs; i++) {
            if (rct_run(&v[i]))
                return 1;
            printf("# rct run %d: %.1f ns/call\n", i + 1, v[i]);
        }
        printf("result rct_roundtrip_ns %.1f\n", median(v, runs));
    }
    if (all || strcmp(mode, "page") == 0) {
        for (int i = 0; i < runs; i++) {
            if (page_run(&v[i]))
                return 1;
            printf("# page run %d: %.1f ns/page\n", i + 1, v[i]);
        }
        printf("result page_touch_ns %.1f\n", median(v, runs));
    }
    return 0;
}
