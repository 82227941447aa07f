/*
 * Callbacks and timers: order under the virtual clock, cancellation,
 * lower bounds on the real clock, threadsafe scheduling from many threads,
 * callbacks that schedule more during an iteration, bad input.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"

static async_loop *L;
static th_leaks leaks;

static int setup(void **state)
{
    (void)state;
    th_leaks_begin(&leaks);
    assert_int_equal(async_loop_new(&L), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_loop_free(L), 0);
    th_leaks_end(&leaks);
    return 0;
}

static int stop_cb(void *arg)
{
    (void)arg;
    return async_loop_stop(L);
}

enum { NTIMERS = 2000 };

typedef struct fired {
    uint64_t when[NTIMERS];  /* deadline of each timer */
    int order[NTIMERS];      /* timer ids in firing order */
    uint64_t at[NTIMERS];    /* loop time when each fired */
    int n;                   /* timers fired */
} fired;

static fired F;

static int timer_cb(void *arg)
{
    int id = (int)(intptr_t)arg;
    F.at[F.n] = async_loop_time(L);
    F.order[F.n++] = id;
    return 0;
}

/* Random deadlines fire sorted by (deadline, scheduling order). */
static void test_timers_random_virtual(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    async__loop_use_virtual_clock(L, 0);
    srand(12345);
    async_handle *cancelled[NTIMERS / 10];
    int ncancelled = 0;
    for (int i = 0; i < NTIMERS; i++) {
        F.when[i] = (uint64_t)(rand() % 500) * ASYNC_MSEC;
        async_handle **h = i % 10 == 3 ? &cancelled[ncancelled++] : NULL;
        assert_int_equal(async_loop_call_at(L, F.when[i], timer_cb, (void *)(intptr_t)i, h), 0);
    }
    for (int i = 0; i < ncancelled; i++) {
        assert_true(async_handle_when(cancelled[i]) <= 500 * ASYNC_MSEC);
        assert_int_equal(async_handle_cancel(cancelled[i]), 0);
        async_handle_unref(cancelled[i]);
    }
    assert_int_equal(async_loop_call_at(L, ASYNC_SEC, stop_cb, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(F.n, NTIMERS - ncancelled);
    for (int k = 0; k < F.n; k++) {
        int id = F.order[k];
        assert_true(id % 10 != 3);
        assert_true(F.at[k] >= F.when[id]); /* never early */
        if (k > 0) {
            int prev = F.order[k - 1];
            assert_true(F.when[prev] < F.when[id] ||
                        (F.when[prev] == F.when[id] && prev < id));
        }
    }
}

/* Real clock: a timer never fires before its deadline. */
static void test_timers_real_lower_bound(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    uint64_t t0 = async_loop_time(L);
    int64_t delays[] = {1500 * ASYNC_USEC, 3 * ASYNC_MSEC, 250 * ASYNC_USEC, 10 * ASYNC_MSEC};
    for (int i = 0; i < 4; i++) {
        F.when[i] = t0 + (uint64_t)delays[i];
        assert_int_equal(async_loop_call_later(L, delays[i], timer_cb, (void *)(intptr_t)i, NULL), 0);
    }
    assert_int_equal(async_loop_call_later(L, 11 * ASYNC_MSEC, stop_cb, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(F.n, 4);
    for (int k = 0; k < 4; k++)
        assert_true(F.at[k] >= F.when[F.order[k]]);
    assert_int_equal(F.order[0], 2);
    assert_int_equal(F.order[3], 3);
}

/* Cancelling handles: before running, after running (no-op), repeatedly. */
static void test_handle_cancel(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    async_handle *soon, *later;
    assert_int_equal(async_loop_call_soon(L, timer_cb, (void *)1, &soon), 0);
    assert_int_equal(async_loop_call_later(L, ASYNC_MSEC, timer_cb, (void *)2, &later), 0);
    assert_false(async_handle_cancelled(soon));
    assert_int_equal(async_loop_call_later(L, 3 * ASYNC_MSEC, stop_cb, NULL, NULL), 0);
    assert_int_equal(async_handle_cancel(later), 0);
    assert_int_equal(async_handle_cancel(later), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(F.n, 1);
    assert_int_equal(F.order[0], 1);
    assert_int_equal(async_handle_cancel(soon), 0); /* already ran */
    assert_int_equal(async_handle_cancel(NULL), ASYNC_EINVAL);
    async_handle_unref(soon);
    async_handle_unref(later);
    assert_int_equal(F.n, 1);
}

static int rescheduler(void *arg)
{
    int *count = arg;
    if (++*count < 5)
        return async_loop_call_soon(L, rescheduler, count, NULL);
    return async_loop_stop(L);
}

static int iteration_counter(void *arg)
{
    int *iters = arg;
    ++*iters;
    return async_loop_call_soon(L, iteration_counter, iters, NULL);
}

/* A callback that reschedules itself runs once per iteration, not in a
 * tight loop that starves the rest. */
static void test_reschedule_each_iteration(void **state)
{
    (void)state;
    int count = 0, iters = 0;
    assert_int_equal(async_loop_call_soon(L, iteration_counter, &iters, NULL), 0);
    assert_int_equal(async_loop_call_soon(L, rescheduler, &count, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(count, 5);
    assert_int_equal(iters, 5);
}

enum { THREADS = 4, PER_THREAD = 2000 };

static atomic_int ts_count;

static int ts_cb(void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&ts_count, 1) + 1 == THREADS * PER_THREAD)
        async_loop_stop(L);
    return 0;
}

static void *ts_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++)
        if (async_loop_call_soon_threadsafe(L, ts_cb, NULL) != 0)
            abort();
    return NULL;
}

/* Many threads schedule concurrently; every callback runs exactly once. */
static void test_threadsafe_many(void **state)
{
    (void)state;
    atomic_store(&ts_count, 0);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ts_thread, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&ts_count), THREADS * PER_THREAD);
    /* Nothing is left to run twice. */
    assert_int_equal(async_loop_stop(L), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(atomic_load(&ts_count), THREADS * PER_THREAD);
}

static int nop(void *arg)
{
    (void)arg;
    return 0;
}

/* Bad input: clear errors, nothing scheduled. */
static void test_bad_input(void **state)
{
    (void)state;
    async_handle *h = NULL;
    assert_int_equal(async_loop_call_soon(NULL, nop, NULL, &h), ASYNC_EINVAL);
    assert_int_equal(async_loop_call_soon(L, NULL, NULL, &h), ASYNC_EINVAL);
    assert_int_equal(async_loop_call_later(L, -1, NULL, NULL, &h), ASYNC_EINVAL);
    assert_int_equal(async_loop_call_later(NULL, 1, nop, NULL, &h), ASYNC_EINVAL);
    assert_int_equal(async_loop_call_at(L, 0, NULL, NULL, &h), ASYNC_EINVAL);
    assert_int_equal(async_loop_call_soon_threadsafe(NULL, nop, NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_call_soon_threadsafe(L, NULL, NULL), ASYNC_EINVAL);
    assert_null(h);
    assert_null(async__timer_heap_min(&L->timers));
    assert_null(L->ready_head);
    assert_int_equal(async_loop_time(NULL), 0);
    assert_int_equal(async_handle_when(NULL), 0);
    assert_false(async_handle_cancelled(NULL));
    async_handle_unref(NULL);
    assert_string_equal(async_strerror(ASYNC_EINVAL), "invalid argument");
    assert_string_equal(async_err_name(ASYNC_ECLOSED), "ECLOSED");
    assert_string_equal(async_err_name(12345), "UNKNOWN");
    assert_non_null(async_strerror(-EROFS));
    assert_string_equal(async_version_string(), ASYNC_VERSION_STRING);
    assert_int_equal(async_version(), ASYNC_VERSION_HEX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timers_random_virtual, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timers_real_lower_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handle_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reschedule_each_iteration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threadsafe_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests_name("loop_callbacks", tests, NULL, NULL);
}
