/*
 * Port of CPython's Lib/test/test_asyncio/test_timeouts.py to libasync's
 * timeout objects (async/timeout.h).  Each test is named after the CPython
 * test it ports; where libasync's level-triggered cancellation makes the
 * body differ, the comment says how.  `async with timeout(...) as cm: body`
 * becomes enter, body, rc = leave(&cm, rc).  The loop runs on a virtual
 * clock, so "time.sleep(x)" (a busy loop) is an advance of the clock.
 *
 * Not ported: test_repr_* (no repr in C) and test_timeout_exception_cause
 * (no exception chaining: the code is the whole story).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
    async__loop_use_virtual_clock(L, 1000 * ASYNC_SEC);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_loop_free(L), 0);
    th_leaks_end(&leaks);
    return 0;
}

/* What a test body records, asserted after the loop returns. */
typedef struct rec {
    int rc[8];         /* return codes, in the order the body took them */
    bool b[8];         /* flags */
    uint64_t u[8];     /* times */
    async_timeout *cm; /* a scope shared with another task */
} rec;

static rec R;

static int run(async_fn fn)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, fn, &R, NULL), 0);
    int rc = async_loop_run_until_complete(L, t, NULL);
    async_task_unref(t);
    return rc;
}

static uint64_t now(void)
{
    return async_loop_time(L);
}

/* test_timeout_basic */
static int timeout_basic(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    R.rc[0] = async_timeout_enter(&cm, 10 * ASYNC_MSEC);
    R.rc[1] = async_sleep(10 * ASYNC_SEC);
    R.rc[2] = async_timeout_leave(&cm, R.rc[1]);
    R.b[0] = async_timeout_expired(&cm);
    R.b[1] = async_task_cancelling(async_current_task());
    return 0;
}

static void test_timeout_basic(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(timeout_basic), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED); /* CancelledError inside */
    assert_int_equal(R.rc[2], ASYNC_ETIMEDOUT); /* TimeoutError outside */
    assert_true(R.b[0]);
    assert_false(R.b[1]); /* the scope withdrew its cancel request */
}

/* test_timeout_at_basic */
static int timeout_at_basic(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    R.u[0] = now() + 10 * ASYNC_MSEC;
    async_timeout_enter_at(&cm, R.u[0]);
    R.rc[0] = async_timeout_leave(&cm, async_sleep(10 * ASYNC_SEC));
    R.b[0] = async_timeout_expired(&cm);
    R.u[1] = async_timeout_when(&cm);
    return 0;
}

static void test_timeout_at_basic(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(timeout_at_basic), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_true(R.b[0]);
    assert_true(R.u[0] == R.u[1]);
}

/* test_nested_timeouts: only the outermost expired scope reports the
 * time-out; the inner one passes the cancellation on. */
static int nested_timeouts(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm1 = ASYNC_TIMEOUT_INIT, cm2 = ASYNC_TIMEOUT_INIT;
    uint64_t deadline = now() + 10 * ASYNC_MSEC;
    async_timeout_enter_at(&cm1, deadline);
    async_timeout_enter_at(&cm2, deadline);
    int rc = async_sleep(10 * ASYNC_SEC);
    R.rc[0] = rc = async_timeout_leave(&cm2, rc);
    R.rc[1] = async_timeout_leave(&cm1, rc);
    R.b[0] = async_timeout_expired(&cm1);
    R.b[1] = async_timeout_expired(&cm2);
    return 0;
}

static void test_nested_timeouts(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(nested_timeouts), 0);
    assert_int_equal(R.rc[0], ASYNC_ECANCELED); /* "cancelled = True" */
    assert_int_equal(R.rc[1], ASYNC_ETIMEDOUT);
    assert_true(R.b[0]);
    assert_true(R.b[1]);
}

/* test_waiter_cancelled */
static int waiter_cancelled(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&cm, 10 * ASYNC_MSEC);
    R.rc[0] = async_sleep(10 * ASYNC_SEC);
    R.rc[1] = async_timeout_leave(&cm, R.rc[0]);
    return 0;
}

static void test_waiter_cancelled(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(waiter_cancelled), 0);
    assert_int_equal(R.rc[0], ASYNC_ECANCELED);
    assert_int_equal(R.rc[1], ASYNC_ETIMEDOUT);
}

/* test_timeout_not_called */
static int timeout_not_called(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&cm, 10 * ASYNC_SEC);
    R.rc[0] = async_timeout_leave(&cm, async_sleep(10 * ASYNC_MSEC));
    R.u[0] = now();
    R.b[0] = async_timeout_expired(&cm);
    R.u[1] = async_timeout_when(&cm);
    return 0;
}

static void test_timeout_not_called(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(timeout_not_called), 0);
    assert_int_equal(R.rc[0], 0);
    assert_false(R.b[0]);
    assert_true(R.u[1] > R.u[0]);
}

/* test_timeout_disabled and test_timeout_at_disabled: asyncio's None is
 * ASYNC_NEVER. */
static int timeout_disabled(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    R.rc[0] = async_timeout_enter_at(&cm, ASYNC_NEVER);
    R.rc[1] = async_timeout_leave(&cm, async_sleep(10 * ASYNC_MSEC));
    R.b[0] = async_timeout_expired(&cm);
    R.u[0] = async_timeout_when(&cm);
    return 0;
}

static void test_timeout_disabled(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(timeout_disabled), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_false(R.b[0]);
    assert_true(R.u[0] == ASYNC_NEVER);
}

/* test_timeout_zero */
static int timeout_zero(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    R.u[0] = now();
    async_timeout_enter(&cm, 0);
    R.rc[0] = async_timeout_leave(&cm, async_sleep(10 * ASYNC_SEC));
    R.u[1] = now();
    R.b[0] = async_timeout_expired(&cm);
    R.u[2] = async_timeout_when(&cm);
    return 0;
}

static void test_timeout_zero(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(timeout_zero), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_true(R.b[0]);
    assert_true(R.u[0] <= R.u[2] && R.u[2] <= R.u[1]);
}

/*
 * test_timeout_zero_sleep_zero and test_timeout_in_the_past_sleep_zero.
 * The expiry runs before the yielding task resumes, as in asyncio; a yield
 * that was already queued when the cancel came may still return 0 (the
 * request is delivered at the next suspension point), so the body takes a
 * second one.
 */
static int sleep_zero_body(int64_t delay)
{
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    R.u[0] = now();
    async_timeout_enter(&cm, delay);
    int rc = async_sleep(0);
    if (rc == 0)
        rc = async_yield();
    R.rc[0] = async_timeout_leave(&cm, rc);
    R.u[1] = now();
    R.b[0] = async_timeout_expired(&cm);
    R.u[2] = async_timeout_when(&cm);
    return 0;
}

static int timeout_zero_sleep_zero(void *arg, void **result)
{
    (void)arg, (void)result;
    return sleep_zero_body(0);
}

static void test_timeout_zero_sleep_zero(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(timeout_zero_sleep_zero), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_true(R.b[0]);
    assert_true(R.u[0] <= R.u[2] && R.u[2] <= R.u[1]);
}

static int timeout_in_the_past_sleep_zero(void *arg, void **result)
{
    (void)arg, (void)result;
    return sleep_zero_body(-11 * ASYNC_SEC);
}

static void test_timeout_in_the_past_sleep_zero(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(timeout_in_the_past_sleep_zero), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_true(R.b[0]);
    assert_true(R.u[2] <= R.u[0] && R.u[2] == R.u[0] - 11 * ASYNC_SEC);
}

/* test_foreign_exception_passed */
static int foreign_exception_passed(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&cm, 10 * ASYNC_MSEC);
    R.rc[0] = async_timeout_leave(&cm, ASYNC_EPIPE); /* raise KeyError */
    R.b[0] = async_timeout_expired(&cm);
    return 0;
}

static void test_foreign_exception_passed(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(foreign_exception_passed), 0);
    assert_int_equal(R.rc[0], ASYNC_EPIPE);
    assert_false(R.b[0]);
}

/* test_foreign_exception_on_timeout: the body fails with its own error
 * while being cancelled by the expiry; that error wins. */
static int crash(void)
{
    int rc = async_sleep(ASYNC_SEC);
    R.rc[0] = rc;
    return ASYNC_EPIPE; /* finally: 1/0 */
}

static int foreign_exception_on_timeout(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&cm, 10 * ASYNC_MSEC);
    R.rc[1] = async_timeout_leave(&cm, crash());
    R.b[0] = async_task_cancelling(async_current_task());
    R.rc[2] = async_sleep(ASYNC_MSEC); /* the task is not left cancelled */
    return 0;
}

static void test_foreign_exception_on_timeout(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(foreign_exception_on_timeout), 0);
    assert_int_equal(R.rc[0], ASYNC_ECANCELED);
    assert_int_equal(R.rc[1], ASYNC_EPIPE);
    assert_false(R.b[0]);
    assert_int_equal(R.rc[2], 0);
}

/* test_foreign_cancel_doesnt_timeout_if_not_expired */
static int foreign_cancel(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&cm, 10 * ASYNC_SEC);
    async_task_cancel(async_current_task());
    R.rc[0] = async_timeout_leave(&cm, async_sleep(10 * ASYNC_SEC));
    R.b[0] = async_timeout_expired(&cm);
    return R.rc[0];
}

static void test_foreign_cancel_doesnt_timeout_if_not_expired(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(foreign_cancel), ASYNC_ECANCELED);
    assert_int_equal(R.rc[0], ASYNC_ECANCELED);
    assert_false(R.b[0]);
}

/* test_outer_task_is_not_cancelled */
static int outer_not_cancelled(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&cm, ASYNC_MSEC);
    R.rc[0] = async_timeout_leave(&cm, async_sleep(10 * ASYNC_SEC));
    return 0;
}

static int outer_main(void *arg, void **result)
{
    (void)arg, (void)result;
    async_task *t;
    async_spawn(&t, outer_not_cancelled, NULL);
    R.rc[1] = async_await(t, NULL);
    R.b[0] = async_future_cancelled(async_task_future(t));
    R.b[1] = async_future_done(async_task_future(t));
    async_task_unref(t);
    return 0;
}

static void test_outer_task_is_not_cancelled(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(outer_main), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[1], 0);
    assert_false(R.b[0]);
    assert_true(R.b[1]);
}

/* test_nested_timeouts_concurrent: the outer scope expires while the
 * inner one has not; the inner passes the cancellation through (asyncio's
 * inner assertRaises(TimeoutError) lets the CancelledError by). */
static int nested_concurrent(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout outer = ASYNC_TIMEOUT_INIT, inner = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&outer, 2 * ASYNC_MSEC);
    async_timeout_enter(&inner, 100 * ASYNC_MSEC);
    async__loop_advance_clock(L, 10 * ASYNC_MSEC); /* time.sleep(0.01) */
    int rc = async_sleep(ASYNC_SEC);
    R.rc[0] = rc = async_timeout_leave(&inner, rc);
    R.rc[1] = async_timeout_leave(&outer, rc);
    R.b[0] = async_timeout_expired(&inner);
    return 0;
}

static void test_nested_timeouts_concurrent(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(nested_concurrent), 0);
    assert_int_equal(R.rc[0], ASYNC_ECANCELED);
    assert_int_equal(R.rc[1], ASYNC_ETIMEDOUT);
    assert_false(R.b[0]);
}

/* test_nested_timeouts_loop_busy: both expire during one busy step; the
 * sleep after the inner scope is interrupted by the outer one at once. */
static int nested_loop_busy(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout outer = ASYNC_TIMEOUT_INIT, inner = ASYNC_TIMEOUT_INIT;
    R.u[0] = now();
    async_timeout_enter(&outer, 100 * ASYNC_MSEC); /* (1) */
    async_timeout_enter(&inner, 10 * ASYNC_MSEC);  /* (2) */
    async__loop_advance_clock(L, 100 * ASYNC_MSEC); /* time.sleep(0.1) */
    int rc = async_sleep(ASYNC_SEC);
    R.rc[0] = async_timeout_leave(&inner, rc);
    rc = async_sleep(10 * ASYNC_SEC); /* interrupted by (1) */
    R.rc[1] = rc;
    R.rc[2] = async_timeout_leave(&outer, rc);
    R.u[1] = now();
    return 0;
}

static void test_nested_timeouts_loop_busy(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(nested_loop_busy), 0);
    assert_true(R.rc[0] == ASYNC_ECANCELED || R.rc[0] == ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
    assert_int_equal(R.rc[2], ASYNC_ETIMEDOUT);
    assert_true(R.u[0] <= R.u[1] && R.u[1] <= R.u[0] + ASYNC_SEC);
}

/* test_reschedule */
static int reschedule_f(void *arg, void **result)
{
    (void)result;
    async_future *fut = arg;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    async_timeout_enter_at(&cm, R.u[0]);
    R.cm = &cm;
    async_future_set_result(fut, &cm);
    int rc = async_timeout_leave(&cm, async_sleep(50 * ASYNC_SEC));
    R.b[0] = async_timeout_expired(&cm);
    R.cm = NULL;
    return rc;
}

static int reschedule_main(void *arg, void **result)
{
    (void)arg, (void)result;
    async_future *fut;
    async_future_new(L, &fut);
    R.u[0] = now() + 10 * ASYNC_SEC;
    R.u[1] = R.u[0] + 20 * ASYNC_SEC;
    async_task *t;
    async_spawn(&t, reschedule_f, fut);
    void *cmv;
    async_await(fut, &cmv);
    async_timeout *cm = cmv;
    R.u[2] = async_timeout_when(cm);
    R.rc[0] = async_timeout_reschedule(cm, R.u[1]);
    R.u[3] = async_timeout_when(cm);
    R.rc[1] = async_timeout_reschedule(cm, ASYNC_NEVER);
    R.u[4] = async_timeout_when(cm);
    async_task_cancel(t);
    R.rc[2] = async_await(t, NULL);
    async_task_unref(t);
    async_future_unref(fut);
    return 0;
}

static void test_reschedule(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(reschedule_main), 0);
    assert_true(R.u[2] == R.u[0]);
    assert_int_equal(R.rc[0], 0);
    assert_true(R.u[3] == R.u[1]);
    assert_int_equal(R.rc[1], 0);
    assert_true(R.u[4] == ASYNC_NEVER);
    assert_int_equal(R.rc[2], ASYNC_ECANCELED);
    assert_false(R.b[0]);
}

/* Rescheduling moves the expiry both ways (not in CPython's file: its
 * test_reschedule never lets the scope fire). */
static int reschedule_fires(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    uint64_t t0 = now();
    async_timeout_enter(&cm, 10 * ASYNC_MSEC);
    async_timeout_reschedule(&cm, t0 + 50 * ASYNC_MSEC);
    R.rc[0] = async_timeout_leave(&cm, async_sleep(ASYNC_SEC));
    R.u[0] = now() - t0;
    async_timeout cm2 = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&cm2, ASYNC_SEC);
    async_timeout_reschedule(&cm2, 0); /* the past: next iteration */
    R.rc[1] = async_timeout_leave(&cm2, async_sleep(ASYNC_SEC));
    R.rc[2] = async_timeout_reschedule(&cm2, ASYNC_NEVER); /* finished */
    return 0;
}

static void test_reschedule_fires(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(reschedule_fires), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_true(R.u[0] >= 50 * ASYNC_MSEC && R.u[0] < ASYNC_SEC);
    assert_int_equal(R.rc[1], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[2], ASYNC_EINVAL);
}

/* test_nested_timeout_in_finally.  Departure: cancellation is
 * level-triggered, so cleanup code after the outer expiry is still being
 * cancelled: the inner scope sees ASYNC_ECANCELED at once instead of
 * timing out on its own; the outer scope still reports the time-out. */
static int nested_in_finally(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout outer = ASYNC_TIMEOUT_INIT, inner = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&outer, 10 * ASYNC_MSEC);
    int rc = async_sleep(ASYNC_SEC);
    R.rc[0] = rc;
    async_timeout_enter(&inner, 10 * ASYNC_MSEC); /* finally: */
    R.rc[1] = async_timeout_leave(&inner, async_sleep(10 * ASYNC_SEC));
    R.rc[2] = async_timeout_leave(&outer, rc);
    return 0;
}

static void test_nested_timeout_in_finally(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(nested_in_finally), 0);
    assert_int_equal(R.rc[0], ASYNC_ECANCELED);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
    assert_int_equal(R.rc[2], ASYNC_ETIMEDOUT);
}

/* test_timeout_after_cancellation.  "except CancelledError: pass" is an
 * explicit async_task_uncancel() in libasync (level-triggered). */
static int after_cancellation(void *arg, void **result)
{
    (void)arg, (void)result;
    async_task_cancel(async_current_task());
    R.rc[0] = async_sleep(ASYNC_SEC);
    async_task_uncancel(async_current_task());
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&cm, 0);
    R.rc[1] = async_timeout_leave(&cm, async_sleep(ASYNC_SEC));
    return 0;
}

static void test_timeout_after_cancellation(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(after_cancellation), 0);
    assert_int_equal(R.rc[0], ASYNC_ECANCELED);
    assert_int_equal(R.rc[1], ASYNC_ETIMEDOUT);
}

/* test_cancel_in_timeout_after_cancellation */
static int cancel_in_timeout_after_cancellation(void *arg, void **result)
{
    (void)arg, (void)result;
    async_task_cancel(async_current_task());
    R.rc[0] = async_sleep(ASYNC_SEC);
    async_task_uncancel(async_current_task());
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&cm, ASYNC_SEC);
    async_task_cancel(async_current_task());
    R.rc[1] = async_timeout_leave(&cm, async_sleep(2 * ASYNC_SEC));
    return R.rc[1];
}

static void test_cancel_in_timeout_after_cancellation(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(cancel_in_timeout_after_cancellation),
                     ASYNC_ECANCELED);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
}

/* test_timeout_already_entered, test_timeout_double_enter,
 * test_timeout_finished, test_timeout_not_entered */
static int state_errors(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    R.rc[0] = async_timeout_enter(&cm, 10 * ASYNC_MSEC);
    R.rc[1] = async_timeout_enter(&cm, 10 * ASYNC_MSEC); /* already entered */
    R.rc[2] = async_timeout_leave(&cm, 0);
    R.rc[3] = async_timeout_enter(&cm, 10 * ASYNC_MSEC); /* double enter */
    R.rc[4] = async_timeout_reschedule(&cm, now());      /* finished */
    R.rc[5] = async_timeout_leave(&cm, 0);               /* left twice */
    async_timeout fresh = ASYNC_TIMEOUT_INIT;
    R.rc[6] = async_timeout_reschedule(&fresh, now());   /* not entered */
    R.u[0] = async_timeout_when(&fresh);
    return 0;
}

static void test_timeout_state_errors(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(state_errors), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], ASYNC_EINVAL);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[3], ASYNC_EINVAL);
    assert_int_equal(R.rc[4], ASYNC_EINVAL);
    assert_int_equal(R.rc[5], ASYNC_EINVAL);
    assert_int_equal(R.rc[6], ASYNC_EINVAL);
    assert_true(R.u[0] == ASYNC_NEVER);
}

/* test_timeout_without_task */
static void test_timeout_without_task(void **state)
{
    (void)state;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    assert_int_equal(async_timeout_enter(&cm, 10 * ASYNC_MSEC),
                     ASYNC_ENOTTASK);
    assert_int_equal(async_timeout_reschedule(&cm, 0), ASYNC_EINVAL);
    assert_false(async_timeout_expired(&cm));
    assert_int_equal(async_timeout_enter(NULL, 0), ASYNC_EINVAL);
    assert_int_equal(async_timeout_enter_at(NULL, 0), ASYNC_EINVAL);
    assert_int_equal(async_timeout_leave(NULL, 0), ASYNC_EINVAL);
    assert_int_equal(async_timeout_reschedule(NULL, 0), ASYNC_EINVAL);
    assert_true(async_timeout_when(NULL) == ASYNC_NEVER);
    assert_false(async_timeout_expired(NULL));
}

/* Leaving from another task is refused; the owner still can. */
static int other_leaver(void *arg, void **result)
{
    (void)result;
    R.rc[0] = async_timeout_leave(arg, 0);
    return 0;
}

static int wrong_task(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&cm, ASYNC_SEC);
    async_task *t;
    async_spawn(&t, other_leaver, &cm);
    async_await(t, NULL);
    async_task_unref(t);
    R.rc[1] = async_timeout_leave(&cm, 0);
    return 0;
}

static void test_timeout_leave_wrong_task(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(wrong_task), 0);
    assert_int_equal(R.rc[0], ASYNC_EINVAL);
    assert_int_equal(R.rc[1], 0);
}

/* A shield delays the expiry's cancellation until the shield scope ends. */
static int shielded(void *arg, void **result)
{
    (void)arg, (void)result;
    async_timeout cm = ASYNC_TIMEOUT_INIT;
    async_timeout_enter(&cm, 10 * ASYNC_MSEC);
    async_shield_enter();
    R.rc[0] = async_sleep(50 * ASYNC_MSEC); /* completes despite expiry */
    async_shield_leave();
    R.rc[1] = async_sleep(ASYNC_SEC);
    R.rc[2] = async_timeout_leave(&cm, R.rc[1]);
    return 0;
}

static void test_timeout_shielded(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(shielded), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
    assert_int_equal(R.rc[2], ASYNC_ETIMEDOUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_timeout_basic),
        T(test_timeout_at_basic),
        T(test_nested_timeouts),
        T(test_waiter_cancelled),
        T(test_timeout_not_called),
        T(test_timeout_disabled),
        T(test_timeout_zero),
        T(test_timeout_zero_sleep_zero),
        T(test_timeout_in_the_past_sleep_zero),
        T(test_foreign_exception_passed),
        T(test_foreign_exception_on_timeout),
        T(test_foreign_cancel_doesnt_timeout_if_not_expired),
        T(test_outer_task_is_not_cancelled),
        T(test_nested_timeouts_concurrent),
        T(test_nested_timeouts_loop_busy),
        T(test_reschedule),
        T(test_reschedule_fires),
        T(test_nested_timeout_in_finally),
        T(test_timeout_after_cancellation),
        T(test_cancel_in_timeout_after_cancellation),
        T(test_timeout_state_errors),
        T(test_timeout_without_task),
        T(test_timeout_leave_wrong_task),
        T(test_timeout_shielded),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
