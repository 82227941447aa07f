/*
 * Cancellation: a request, delivered at suspension points, level-triggered;
 * shields; wait_for time-outs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"

static async_loop *L;
static th_leaks leaks;

/* What a task under test saw, recorded inside, asserted after. */
typedef struct seen {
    int rc[8];      /* return codes of successive suspension points */
    int n;          /* entries in rc */
    bool ran;       /* the body started */
    bool finished;  /* the body reached its end */
} seen;

static seen S;

static int setup(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
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

static void record(int rc)
{
    if (S.n < 8)
        S.rc[S.n++] = rc;
}

static int cancel_cb(void *arg)
{
    return async_task_cancel(arg);
}

/* Sleeps, then checks that every later suspension is cancelled too. */
static int sleeper(void *arg, void **result)
{
    (void)arg;
    (void)result;
    S.ran = true;
    int rc = async_sleep(3600 * ASYNC_SEC);
    record(rc);
    record(async_yield());
    record(async_sleep(ASYNC_MSEC));
    S.finished = true;
    return rc;
}

/* Cancelling a task blocked in sleep; level-triggered afterwards. */
static void test_cancel_in_sleep(void **state)
{
    (void)state;
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, sleeper, NULL, NULL), 0);
    assert_int_equal(async_loop_call_later(L, ASYNC_MSEC, cancel_cb, t, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_true(S.finished);
    assert_int_equal(S.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(S.rc[i], ASYNC_ECANCELED);
    assert_true(async_future_cancelled(async_task_future(t)));
    assert_int_equal(async_task_cancel(t), ASYNC_EDONE);
    async_task_unref(t);
}

static int awaiter(void *arg, void **result)
{
    (void)result;
    int rc = async_await((async_future *)arg, NULL);
    record(rc);
    return rc;
}

/* Cancelling a task blocked in await cancels the awaited future too
 * (asyncio's Task.cancel cancels _fut_waiter). */
static void test_cancel_in_await(void **state)
{
    (void)state;
    async_future *f;
    async_task *t;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_loop_spawn(L, &t, awaiter, f, NULL), 0);
    assert_int_equal(async_loop_call_later(L, ASYNC_MSEC, cancel_cb, t, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_int_equal(S.rc[0], ASYNC_ECANCELED);
    assert_true(async_future_cancelled(f));
    assert_int_equal(async_future_set_result(f, NULL), ASYNC_EDONE);
    async_future_unref(f);
    async_task_unref(t);
}

/* A task cancelled before it started never runs its body. */
static void test_cancel_not_started(void **state)
{
    (void)state;
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, sleeper, NULL, NULL), 0);
    assert_int_equal(async_task_cancel(t), 0);
    assert_true(async_task_cancelling(t));
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_false(S.ran);
    async_task_unref(t);
}

static int shielded(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_shield_enter();
    record(async_sleep(20 * ASYNC_MSEC)); /* cancel arrives meanwhile */
    record(async_yield());
    async_shield_leave();
    record(async_yield()); /* now the pending request is delivered */
    return S.rc[S.n - 1];
}

/* Cancel during a shield: cleanup code can await; delivered afterwards. */
static void test_cancel_shield(void **state)
{
    (void)state;
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, shielded, NULL, NULL), 0);
    assert_int_equal(async_loop_call_later(L, ASYNC_MSEC, cancel_cb, t, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_int_equal(S.n, 3);
    assert_int_equal(S.rc[0], 0);
    assert_int_equal(S.rc[1], 0);
    assert_int_equal(S.rc[2], ASYNC_ECANCELED);
    async_task_unref(t);
}

static int swallower(void *arg, void **result)
{
    (void)arg;
    record(async_sleep(3600 * ASYNC_SEC));
    *result = (void *)(intptr_t)5;
    return 0; /* ignores the request, like catching CancelledError */
}

/* A task that swallows the request completes normally. */
static void test_cancel_swallowed(void **state)
{
    (void)state;
    async_task *t;
    void *res = NULL;
    assert_int_equal(async_loop_spawn(L, &t, swallower, NULL, NULL), 0);
    assert_int_equal(async_loop_call_later(L, ASYNC_MSEC, cancel_cb, t, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, &res), 0);
    assert_int_equal(S.rc[0], ASYNC_ECANCELED);
    assert_int_equal((intptr_t)res, 5);
    assert_false(async_future_cancelled(async_task_future(t)));
    async_task_unref(t);
}

static int slow_value(void *arg, void **result)
{
    int rc = async_sleep((int64_t)(intptr_t)arg);
    record(rc);
    *result = (void *)(intptr_t)11;
    return rc;
}

typedef struct wf {
    int64_t inner;   /* inner sleep */
    int64_t timeout; /* wait_for time-out */
    int rc;          /* wait_for's return */
    void *res;       /* its result */
    bool inner_done; /* the inner task had finished when wait_for returned */
} wf;

static int wait_for_task(void *arg, void **result)
{
    (void)result;
    wf *w = arg;
    async_task *inner;
    int rc = async_spawn(&inner, slow_value, (void *)(intptr_t)w->inner);
    if (rc)
        return rc;
    w->rc = async_wait_for(async_task_future(inner), w->timeout, &w->res);
    w->inner_done = async_future_done(async_task_future(inner));
    async_task_unref(inner);
    return 0;
}

/* wait_for: the time-out cancels the inner work and waits for it. */
static void test_wait_for_timeout(void **state)
{
    (void)state;
    wf w = {.inner = 3600 * ASYNC_SEC, .timeout = 5 * ASYNC_MSEC};
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, wait_for_task, &w, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_int_equal(w.rc, ASYNC_ETIMEDOUT);
    assert_true(w.inner_done);
    assert_int_equal(S.rc[0], ASYNC_ECANCELED);
    async_task_unref(t);
}

/* wait_for: in time, the result comes through. */
static void test_wait_for_in_time(void **state)
{
    (void)state;
    wf w = {.inner = ASYNC_MSEC, .timeout = 10 * ASYNC_SEC};
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, wait_for_task, &w, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_int_equal(w.rc, 0);
    assert_int_equal((intptr_t)w.res, 11);
    assert_int_equal(S.rc[0], 0);
    async_task_unref(t);
}

/* Cancelling the task in wait_for cancels the inner work too. */
static void test_wait_for_outer_cancel(void **state)
{
    (void)state;
    wf w = {.inner = 3600 * ASYNC_SEC, .timeout = 3600 * ASYNC_SEC};
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, wait_for_task, &w, NULL), 0);
    assert_int_equal(async_loop_call_later(L, ASYNC_MSEC, cancel_cb, t, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_int_equal(w.rc, ASYNC_ECANCELED);
    assert_true(w.inner_done);
    assert_int_equal(S.rc[0], ASYNC_ECANCELED);
    async_task_unref(t);
}

static int shield_misuse(void *arg, void **result)
{
    (void)arg;
    (void)result;
    record(async_shield_leave());
    record(async_deadline_pop());
    record(async_wait_for(NULL, 0, NULL));
    return 0;
}

/* Shield and deadline misuse: clear errors. */
static void test_misuse(void **state)
{
    (void)state;
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, shield_misuse, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_int_equal(S.rc[0], ASYNC_EINVAL);
    assert_int_equal(S.rc[1], ASYNC_EINVAL);
    assert_int_equal(S.rc[2], ASYNC_EINVAL);
    async_task_unref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cancel_in_sleep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_await, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_not_started, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_shield, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_swallowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_in_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_outer_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
    };
    return cmocka_run_group_tests_name("cancel", tests, NULL, NULL);
}
