/*
 * Port of CPython's Lib/test/test_asyncio/test_waitfor.py (3.12) to the C
 * API.  Timing runs on real time with lower bounds only, or on the loop's
 * virtual clock.
 *
 * Not ported, and why: the cases about coroutine objects being closed or
 * awaited (test_wait_for_coroutine_*: C has no un-awaited coroutine), the
 * cancel message, the reference-cycle test (test_wait_for_... gc), and the
 * cases only checking asyncio's internal timeout handle
 * (test_wait_for_timeout_handle_...).
 */
#include "asyncio_port.h"

#include "core/internal.h"

static struct {
    int rc[8];
    int n;
    bool ran;
    bool cancelled_seen;
    void *result;
} S;

static void rec(int rc)
{
    if (S.n < 8)
        S.rc[S.n] = rc;
    S.n++;
}

typedef struct wf {
    async_future *f;   /* what wait_for waits on */
    int64_t timeout;   /* its timeout */
} wf;

static int wait_for_body(void *arg, void **result)
{
    wf *w = arg;
    int rc = async_wait_for(w->f, w->timeout, result);
    rec(rc);
    return rc;
}

static int slow_task(void *arg, void **result)
{
    (void)arg;
    S.ran = true;
    int rc = async_sleep(10 * ASYNC_SEC);
    if (rc == ASYNC_ECANCELED)
        S.cancelled_seen = true;
    if (rc)
        return rc;
    *result = (void *)7;
    return 0;
}

/* test_waitfor.py: AsyncioWaitForTest.test_asyncio_wait_for_timeout (and
 * test_wait_for: the inner task is cancelled and has finished when
 * wait_for returns ETIMEDOUT). */
static void test_wait_for_timeout(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async__loop_use_virtual_clock(L, 0);
    async_task *inner;
    assert_int_equal(async_loop_spawn(L, &inner, slow_task, NULL, NULL), 0);
    wf w = {async_task_future(inner), 100 * ASYNC_MSEC};
    assert_int_equal(port_run(wait_for_body, &w, NULL), ASYNC_ETIMEDOUT);
    assert_true(S.cancelled_seen);
    assert_true(async_future_cancelled(async_task_future(inner)));
    assert_true(async_loop_time(L) >= 100 * ASYNC_MSEC);
    async_task_unref(inner);
}

static int set_later(void *arg)
{
    return async_future_set_result(arg, (void *)5);
}

/* test_waitfor.py: AsyncioWaitForTest.test_wait_for (result before the
 * timeout) and test_wait_for_race_condition. */
static void test_wait_for_race_condition(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async__loop_use_virtual_clock(L, 0);
    async_future *f;
    void *r = NULL;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_loop_call_later(L, 100 * ASYNC_MSEC, set_later, f, NULL), 0);
    wf w = {f, 200 * ASYNC_MSEC};
    assert_int_equal(port_run(wait_for_body, &w, &r), 0);
    assert_ptr_equal(r, (void *)5);
    async_future_unref(f);
}

/* The same iteration: the inner future is completed by a callback that
 * runs in the iteration the timeout fires (asyncio 3.12: the result wins). */
static void test_wait_for_result_wins_same_iteration(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async__loop_use_virtual_clock(L, 0);
    async_future *f;
    void *r = NULL;
    assert_int_equal(async_future_new(L, &f), 0);
    /* Both at loop time 100 ms; the callback's timer was armed first, so
     * it fires first, but the waiter, woken by its own timer in the same
     * iteration, sees the time-out and a done future. */
    assert_int_equal(async_loop_call_at(L, 100 * ASYNC_MSEC, set_later, f, NULL), 0);
    wf w = {f, 100 * ASYNC_MSEC};
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, wait_for_body, &w, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, &r), 0);
    assert_ptr_equal(r, (void *)5);
    async_task_unref(t);
    async_future_unref(f);
}

/* test_waitfor.py: test_wait_for_timeout_less_then_0_or_0_future_done */
static void test_wait_for_timeout_0_future_done(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_future *f;
    void *r = NULL;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_set_result(f, (void *)3), 0);
    wf w = {f, 0};
    assert_int_equal(port_run(wait_for_body, &w, &r), 0);
    assert_ptr_equal(r, (void *)3);
    async_future_unref(f);
}

/* wait_for(coro(), 0): the task made of the coroutine never starts. */
static int spawn_and_wait_for_0(void *arg, void **result)
{
    async_task **inner = arg;
    int rc = async_spawn(inner, slow_task, NULL);
    if (rc)
        return rc;
    return async_wait_for(async_task_future(*inner), 0, result);
}

/* test_waitfor.py: test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started */
static void test_wait_for_timeout_0_not_started(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_task *inner = NULL;
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, spawn_and_wait_for_0, &inner, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ETIMEDOUT);
    assert_true(async_future_cancelled(async_task_future(inner)));
    assert_false(S.ran);
    async_task_unref(inner);
    async_task_unref(t);
}

/* test_waitfor.py: test_wait_for_timeout_less_then_0_or_0 (a negative
 * timeout times out at once; asyncio, not EINVAL). */
static void test_wait_for_timeout_negative(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    wf w = {f, -10 * ASYNC_SEC};
    assert_int_equal(port_run(wait_for_body, &w, NULL), ASYNC_ETIMEDOUT);
    assert_true(async_future_cancelled(f));
    async_future_unref(f);
}

static int cleanup_slowly(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = async_sleep(10 * ASYNC_SEC);
    if (rc == ASYNC_ECANCELED) {
        async_shield_enter();
        async_sleep(50 * ASYNC_MSEC);
        async_shield_leave();
        S.cancelled_seen = true;
    }
    return rc;
}

/* test_waitfor.py: test_wait_for_waits_for_task_cancellation */
static void test_wait_for_waits_for_task_cancellation(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async__loop_use_virtual_clock(L, 0);
    async_task *inner;
    assert_int_equal(async_loop_spawn(L, &inner, cleanup_slowly, NULL, NULL), 0);
    wf w = {async_task_future(inner), 10 * ASYNC_MSEC};
    assert_int_equal(port_run(wait_for_body, &w, NULL), ASYNC_ETIMEDOUT);
    assert_true(S.cancelled_seen); /* the inner cleanup ran to its end first */
    assert_true(async_future_done(async_task_future(inner)));
    async_task_unref(inner);
}

static int fail_on_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = async_sleep(10 * ASYNC_SEC);
    return rc == ASYNC_ECANCELED ? ASYNC_EPIPE : rc; /* raise FooException */
}

/* test_waitfor.py: test_wait_for_reraises_exception_during_cancellation */
static void test_wait_for_reraises_exception_during_cancellation(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async__loop_use_virtual_clock(L, 0);
    async_task *inner;
    assert_int_equal(async_loop_spawn(L, &inner, fail_on_cancel, NULL, NULL), 0);
    wf w = {async_task_future(inner), 10 * ASYNC_MSEC};
    assert_int_equal(port_run(wait_for_body, &w, NULL), ASYNC_EPIPE);
    async_task_unref(inner);
}

static int swallow_cancel(void *arg, void **result)
{
    (void)arg;
    (void)async_sleep(10 * ASYNC_SEC);
    *result = (void *)9; /* suppresses the cancellation */
    return 0;
}

/* test_waitfor.py: test_wait_for_cancel_suppressed (3.12: the inner result
 * is returned). */
static void test_wait_for_cancel_suppressed(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async__loop_use_virtual_clock(L, 0);
    async_task *inner;
    void *r = NULL;
    assert_int_equal(async_loop_spawn(L, &inner, swallow_cancel, NULL, NULL), 0);
    wf w = {async_task_future(inner), 10 * ASYNC_MSEC};
    assert_int_equal(port_run(wait_for_body, &w, &r), 0);
    assert_ptr_equal(r, (void *)9);
    async_task_unref(inner);
}

/* test_waitfor.py: test_wait_for_self_cancellation / test_cancel_wait_for:
 * cancelling the task in wait_for cancels the inner work. */
static void test_cancel_wait_for(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_task *inner;
    assert_int_equal(async_loop_spawn(L, &inner, slow_task, NULL, NULL), 0);
    wf w = {async_task_future(inner), 60 * ASYNC_SEC};
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, wait_for_body, &w, NULL), 0);
    port_run_briefly();
    port_run_briefly();
    assert_int_equal(async_task_cancel(t), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_true(async_future_cancelled(async_task_future(inner)));
    async_task_unref(inner);
    async_task_unref(t);
}

/* test_waitfor.py: test_wait_for_with_none_timeout (wait_for(fut, None)
 * is a plain await: ASYNC_NO_TIMEOUT). */
static void test_wait_for_none_timeout(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async__loop_use_virtual_clock(L, 0);
    async_future *f;
    void *r = NULL;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_loop_call_later(L, 3600 * ASYNC_SEC, set_later, f, NULL), 0);
    wf w = {f, ASYNC_NO_TIMEOUT};
    assert_int_equal(port_run(wait_for_body, &w, &r), 0);
    assert_ptr_equal(r, (void *)5);
    async_future_unref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PORT_TEST(test_wait_for_timeout),
        PORT_TEST(test_wait_for_race_condition),
        PORT_TEST(test_wait_for_result_wins_same_iteration),
        PORT_TEST(test_wait_for_timeout_0_future_done),
        PORT_TEST(test_wait_for_timeout_0_not_started),
        PORT_TEST(test_wait_for_timeout_negative),
        PORT_TEST(test_wait_for_waits_for_task_cancellation),
        PORT_TEST(test_wait_for_reraises_exception_during_cancellation),
        PORT_TEST(test_wait_for_cancel_suppressed),
        PORT_TEST(test_cancel_wait_for),
        PORT_TEST(test_wait_for_none_timeout),
    };
    return cmocka_run_group_tests_name("asyncio_waitfor", tests, NULL, NULL);
}
