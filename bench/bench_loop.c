/*
 * Loop benchmarks (issue 3): timer churn against libuv's uv_timer in the
 * same run, and call_soon throughput.
 *
 *   timers_fire     arm 1,000,000 timers with random delays in [0, 10 ms),
 *                   run the loop until all fired: ns per timer
 *   timers_cancel   arm-then-cancel 1,000,000 timers: ns per timer
 *                   (libasync: call_later + async_handle_cancel + unref)
 *   call_soon_chain a callback that reschedules itself N times: callbacks/s
 *   call_soon_batch N callbacks scheduled at once, then run: callbacks/s
 *
 * libuv (built in only when meson finds it) runs the same two timer loads
 * twice: "uv" mallocs each uv_timer_t and uv_close()s + frees it, as a
 * program must when timers come and go (libasync's call_later allocates its
 * handle too); "uv_prealloc" uses a preallocated array (fire) or one reused
 * handle (cancel), libuv's best case.
 *
 * Usage: bench_loop [runs]   (default 5; prints medians)
 * Output: "result <name> <value>" lines for bench/run_loop.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <async.h>

#if defined(HAVE_LIBUV)
#include <uv.h>
#endif

#define NTIMERS 1000000
#define NCALLS 1000000
#define WINDOW_NS (10 * ASYNC_MSEC)

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64: the same delays for every contender. */
static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
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

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "bench_loop: %s: %s\n", what, async_strerror(rc));
        exit(1);
    }
}

/* ---- libasync ------------------------------------------------------------ */

static async_loop *loop;
static long fired;
static long target;

static int on_timer(void *arg)
{
    (void)arg;
    if (++fired == target)
        async_loop_stop(loop);
    return 0;
}

static double la_timers_fire(void)
{
    check(async_loop_new(&loop), "loop_new");
    fired = 0;
    target = NTIMERS;
    rng_state = 88172645463325252u;
    uint64_t t0 = mono_ns();
    for (int i = 0; i < NTIMERS; i++)
        check(async_loop_call_later(loop, (int64_t)(rng() % WINDOW_NS),
                                    on_timer, NULL, NULL),
              "call_later");
    check(async_loop_run_forever(loop), "run_forever");
    uint64_t t1 = mono_ns();
    async_loop_free(loop);
    return (double)(t1 - t0) / NTIMERS;
}

static double la_timers_cancel(void)
{
    check(async_loop_new(&loop), "loop_new");
    rng_state = 88172645463325252u;
    uint64_t t0 = mono_ns();
    for (int i = 0; i < NTIMERS; i++) {
        async_handle *h;
        check(async_loop_call_later(loop, (int64_t)(rng() % WINDOW_NS),
                                    on_timer, NULL, &h),
              "call_later");
        async_handle_cancel(h);
        async_handle_unref(h);
    }
    uint64_t t1 = mono_ns();
    async_loop_free(loop);
    return (double)(t1 - t0) / NTIMERS;
}

static int on_chain(void *arg)
{
    (void)arg;
    if (++fired == target)
        return async_loop_stop(loop);
    return async_loop_call_soon(loop, on_chain, NULL, NULL);
}

static double la_call_soon_chain(void)
{
    check(async_loop_new(&loop), "loop_new");
    fired = 0;
    target = NCALLS;
    uint64_t t0 = mono_ns();
    check(async_loop_call_soon(loop, on_chain, NULL, NULL), "call_soon");
    check(async_loop_run_forever(loop), "run_forever");
    uint64_t t1 = mono_ns();
    async_loop_free(loop);
    return NCALLS / ((double)(t1 - t0) / 1e9);
}

static double la_call_soon_batch(void)
{
    check(async_loop_new(&loop), "loop_new");
    fired = 0;
    target = NCALLS;
    uint64_t t0 = mono_ns();
    for (int i = 0; i < NCALLS; i++)
        check(async_loop_call_soon(loop, on_timer, NULL, NULL), "call_soon");
    check(async_loop_run_forever(loop), "run_forever");
    uint64_t t1 = mono_ns();
    async_loop_free(loop);
    return NCALLS / ((double)(t1 - t0) / 1e9);
}

/* ---- libuv ------------------------------------------------------------------ */

#if defined(HAVE_LIBUV)
static void uv_free_cb(uv_handle_t *h)
{
    free(h);
}

static void uv_on_timer_close(uv_timer_t *t)
{
    fired++;
    uv_close((uv_handle_t *)t, uv_free_cb);
}

static void uv_on_timer(uv_timer_t *t)
{
    (void)t;
    fired++;
}

static double uv_timers_fire(int prealloc)
{
    uv_loop_t uvl;
    uv_loop_init(&uvl);
    uv_timer_t *arr = prealloc ? malloc(sizeof(*arr) * NTIMERS) : NULL;
    fired = 0;
    rng_state = 88172645463325252u;
    uint64_t t0 = mono_ns();
    uv_update_time(&uvl);
    for (int i = 0; i < NTIMERS; i++) {
        uv_timer_t *t = prealloc ? &arr[i] : malloc(sizeof(*t));
        uv_timer_init(&uvl, t);
        /* libuv counts in ms: the same window, rounded down. */
        uv_timer_start(t, prealloc ? uv_on_timer : uv_on_timer_close,
                       rng() % WINDOW_NS / ASYNC_MSEC, 0);
    }
    uv_run(&uvl, UV_RUN_DEFAULT);
    uint64_t t1 = mono_ns();
    if (fired != NTIMERS)
        fprintf(stderr, "bench_loop: libuv fired %ld\n", fired);
    if (prealloc) {
        for (int i = 0; i < NTIMERS; i++)
            uv_close((uv_handle_t *)&arr[i], NULL);
        uv_run(&uvl, UV_RUN_DEFAULT);
        free(arr);
    }
    uv_loop_close(&uvl);
    return (double)(t1 - t0) / NTIMERS;
}

static double uv_timers_cancel(int prealloc)
{
    uv_loop_t uvl;
    uv_loop_init(&uvl);
    uv_timer_t one;
    uv_timer_init(&uvl, &one);
    rng_state = 88172645463325252u;
    uint64_t t0 = mono_ns();
    for (int i = 0; i < NTIMERS; i++) {
        uv_timer_t *t = prealloc ? &one : malloc(sizeof(*t));
        if (!prealloc)
            uv_timer_init(&uvl, t);
        uv_timer_start(t, uv_on_timer, rng() % WINDOW_NS / ASYNC_MSEC, 0);
        uv_timer_stop(t);
        if (!prealloc)
            uv_close((uv_handle_t *)t, uv_free_cb);
    }
    /* The closes complete (and free) in the next loop run. */
    uv_run(&uvl, UV_RUN_NOWAIT);
    uint64_t t1 = mono_ns();
    uv_close((uv_handle_t *)&one, NULL);
    uv_run(&uvl, UV_RUN_DEFAULT);
    uv_loop_close(&uvl);
    return (double)(t1 - t0) / NTIMERS;
}

static double uv_fire_malloc(void) { return uv_timers_fire(0); }
static double uv_fire_prealloc(void) { return uv_timers_fire(1); }
static double uv_cancel_malloc(void) { return uv_timers_cancel(0); }
static double uv_cancel_prealloc(void) { return uv_timers_cancel(1); }
#endif

/* ---- driver ------------------------------------------------------------------ */

static void repeat(const char *name, double (*fn)(void), int runs)
{
    double v[32];
    for (int i = 0; i < runs; i++) {
        v[i] = fn();
        printf("# %s run %d: %.2f\n", name, i + 1, v[i]);
    }
    printf("result %s %.2f\n", name, median(v, runs));
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > 32)
        runs = 5;
    setvbuf(stdout, NULL, _IOLBF, 0);
    repeat("timers_fire_ns", la_timers_fire, runs);
#if defined(HAVE_LIBUV)
    repeat("uv_timers_fire_ns", uv_fire_malloc, runs);
    repeat("uv_prealloc_timers_fire_ns", uv_fire_prealloc, runs);
#endif
    repeat("timers_cancel_ns", la_timers_cancel, runs);
#if defined(HAVE_LIBUV)
    repeat("uv_timers_cancel_ns", uv_cancel_malloc, runs);
    repeat("uv_prealloc_timers_cancel_ns", uv_cancel_prealloc, runs);
#endif
    repeat("call_soon_chain_per_s", la_call_soon_chain, runs);
    repeat("call_soon_batch_per_s", la_call_soon_batch, runs);
    return 0;
}
