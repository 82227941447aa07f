/*
 * Synchronization and queue benchmarks (issue 6):
 *
 *   lock_handoff   two tasks take turns on one Lock: each release hands the
 *                  lock to the other, waiting task (FIFO hand-off), so every
 *                  acquire/release pair includes a park, a wake and a switch:
 *                  ns per hand-off
 *   lock_fast      acquire + release of a free lock in one task: ns per pair
 *   queue_bounded  a producer and a consumer through a bounded Queue
 *                  (maxsize 64): ns per operation (put or get)
 *   queue_fast     try_put + try_get in one task, no waiting: ns per
 *                  operation
 *
 * Usage: bench_sync [runs]  (default 7).  Prints the median of the runs as
 * "result <name> <ns>" lines and "#" lines for people.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <async.h>

#define HANDOFFS 1000000 /* per task */
#define FAST_OPS 10000000
#define QUEUE_ITEMS 2000000

static uint64_t mono_ns(void)
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

static void check(const char *what, int rc)
{
    if (rc) {
        fprintf(stderr, "bench_sync: %s: %s\n", what, async_strerror(rc));
        exit(1);
    }
}

/* ---- lock --------------------------------------------------------------------- */

static int lock_turns(void *arg, void **result)
{
    (void)result;
    async_lock *lock = arg;
    for (int i = 0; i < HANDOFFS; i++) {
        check("acquire", async_lock_acquire(lock));
        check("release", async_lock_release(lock));
    }
    return 0;
}

static int lock_handoff_main(void *arg, void **result)
{
    double *ns = arg;
    (void)result;
    async_lock *lock;
    async_task *a, *b;
    check("lock_new", async_lock_new(&lock));
    /* Hold the lock until both are queued, so they alternate from the
     * start: each release hands it to the other task. */
    check("acquire", async_lock_acquire(lock));
    check("spawn", async_spawn(&a, lock_turns, lock));
    check("spawn", async_spawn(&b, lock_turns, lock));
    async_yield();
    uint64_t t0 = mono_ns();
    check("release", async_lock_release(lock));
    check("await", async_await(a, NULL));
    check("await", async_await(b, NULL));
    *ns = (double)(mono_ns() - t0) / (2.0 * HANDOFFS);
    async_task_unref(a);
    async_task_unref(b);
    return async_lock_free(lock);
}

static int lock_fast_main(void *arg, void **result)
{
    double *ns = arg;
    (void)result;
    async_lock *lock;
    check("lock_new", async_lock_new(&lock));
    uint64_t t0 = mono_ns();
    for (int i = 0; i < FAST_OPS; i++) {
        check("acquire", async_lock_acquire(lock));
        check("release", async_lock_release(lock));
    }
    *ns = (double)(mono_ns() - t0) / FAST_OPS;
    return async_lock_free(lock);
}

/* ---- queue -------------------------------------------------------------------- */

static int producer(void *arg, void **result)
{
    (void)result;
    for (uintptr_t i = 1; i <= QUEUE_ITEMS; i++)
        check("put", async_queue_put(arg, (void *)i));
    return 0;
}

static int consumer(void *arg, void **result)
{
    (void)result;
    void *item;
    for (int i = 0; i < QUEUE_ITEMS; i++)
        check("get", async_queue_get(arg, &item));
    return 0;
}

static int queue_bounded_main(void *arg, void **result)
{
    double *ns = arg;
    (void)result;
    async_queue *q;
    async_task *p, *c;
    async_queue_opts o = {.maxsize = 64};
    check("queue_new", async_queue_new(&q, &o));
    uint64_t t0 = mono_ns();
    check("spawn", async_spawn(&c, consumer, q));
    check("spawn", async_spawn(&p, producer, q));
    check("await", async_await(p, NULL));
    check("await", async_await(c, NULL));
    *ns = (double)(mono_ns() - t0) / (2.0 * QUEUE_ITEMS);
    async_task_unref(p);
    async_task_unref(c);
    return async_queue_free(q);
}

static int queue_fast_main(void *arg, void **result)
{
    double *ns = arg;
    (void)result;
    async_queue *q;
    void *item;
    check("queue_new", async_queue_new(&q, NULL));
    uint64_t t0 = mono_ns();
    for (uintptr_t i = 1; i <= FAST_OPS; i++) {
        check("try_put", async_queue_try_put(q, (void *)i));
        check("try_get", async_queue_try_get(q, &item));
    }
    *ns = (double)(mono_ns() - t0) / (2.0 * FAST_OPS);
    return async_queue_free(q);
}

static void bench(const char *name, async_fn fn, int runs)
{
    double v[32] = {0};
    for (int i = 0; i < runs; i++)
        check(name, async_run(fn, &v[i], NULL));
    double lo = v[0], hi = v[0];
    for (int i = 1; i < runs; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    printf("# %-15s median of %d runs (min %.1f, max %.1f ns)\n", name, runs,
           lo, hi);
    printf("result %s %.2f\n", name, median(v, runs));
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    if (runs < 1 || runs > 32) {
        fprintf(stderr, "usage: bench_sync [runs 1..32]\n");
        return 2;
    }
    bench("lock_handoff", lock_handoff_main, runs);
    bench("lock_fast", lock_fast_main, runs);
    bench("queue_bounded", queue_bounded_main, runs);
    bench("queue_fast", queue_fast_main, runs);
    return 0;
}
