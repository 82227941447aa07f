/*
 * Port of CPython's Lib/test/test_asyncio/test_tasks.py to the C API.
 *
 * Not ported, and why: repr and names formatting beyond "Task-N", coroutine
 * objects and generators (test_get_coro, test_iscoroutinefunction,
 * test_yield_*, test_corowrapper_*), the cancel message argument and
 * exception chaining, contextvars (issue 10), current_task()/all_tasks()
 * with explicit loops (debug12 enumerates tasks), run_coroutine_threadsafe
 * (issue 10), eager task factories, __del__/GC timing beyond "reported once
 * when the last reference goes", and the C/Python implementation pairs.
 */
#include "asyncio_port.h"

static struct {
    int rc[8];
    int n;
    bool flag;
} S;

static void rec(int rc)
{
    if (S.n < 8)
        S.rc[S.n] = rc;
    S.n++;
}

static int return_42(void *arg, void **result)
{
    (void)arg;
    async_yield();
    *result = (void *)42;
    return 0;
}

/* test_tasks.py: BaseTaskTests.test_task_basics */
static void test_task_basics(void **state)
{
    (void)state;
    void *r = NULL;
    assert_int_equal(port_run(return_42, NULL, &r), 0);
    assert_ptr_equal(r, (void *)42);
}

/* test_tasks.py: BaseTaskTests.test_task_default_name / test_task_set_name */
static void test_task_names(void **state)
{
    (void)state;
    async_task *a, *b;
    assert_int_equal(async_loop_spawn(L, &a, return_42, NULL, NULL), 0);
    assert_int_equal(async_loop_spawn(L, &b, return_42, NULL, NULL), 0);
    assert_string_equal(async_task_name(a), "Task-1");
    assert_string_equal(async_task_name(b), "Task-2");
    assert_int_equal(async_task_set_name(b, "flop"), 0);
    assert_string_equal(async_task_name(b), "flop");
    assert_int_equal(async_loop_run_until_complete(L, b, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, a, NULL), 0);
    async_task_unref(a);
    async_task_unref(b);
}

/* test_tasks.py: BaseTaskTests.test_cancel (cancelled before its first
 * step: the body never runs) and test_cancel_yield. */
static void test_cancel(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, return_42, NULL, NULL), 0);
    assert_int_equal(async_task_cancel(t), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_true(async_future_cancelled(async_task_future(t)));
    assert_int_equal(async_task_cancel(t), ASYNC_EDONE);
    async_task_unref(t);
}

static int port_await_future(void *arg, void **result)
{
    return async_await((async_future *)arg, result);
}

/* test_tasks.py: BaseTaskTests.test_cancel_inner_future */
static void test_cancel_inner_future(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, port_await_future, f, NULL), 0);
    port_run_briefly();
    assert_int_equal(async_future_cancel(f), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_true(async_future_cancelled(f));
    assert_true(async_future_cancelled(async_task_future(t)));
    async_task_unref(t);
    async_future_unref(f);
}

/* test_tasks.py: BaseTaskTests.test_cancel_both_task_and_inner_future, and
 * the await chain: cancelling the task cancels the future it awaits
 * (asyncio's _fut_waiter). */
static void test_cancel_both_task_and_inner_future(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, port_await_future, f, NULL), 0);
    port_run_briefly();
    assert_int_equal(async_task_cancel(t), 0);
    assert_true(async_future_cancelled(f)); /* synchronously, as asyncio */
    assert_int_equal(async_future_cancel(f), ASYNC_EDONE);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_true(async_future_cancelled(async_task_future(t)));
    async_task_unref(t);
    async_future_unref(f);
}

static int await_task(void *arg, void **result)
{
    return async_await((async_task *)arg, result);
}

static int sleep_long(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = async_sleep(3600 * ASYNC_SEC);
    rec(rc);
    return rc;
}

/* test_tasks.py: BaseTaskTests.test_cancel_task_awaiting_task (the chain
 * through tasks: outer -> inner, both end cancelled, outer only after
 * inner finished). */
static void test_cancel_chain_of_tasks(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_task *inner, *outer;
    assert_int_equal(async_loop_spawn(L, &inner, sleep_long, NULL, NULL), 0);
    assert_int_equal(async_loop_spawn(L, &outer, await_task, inner, NULL), 0);
    port_run_briefly();
    port_run_briefly();
    assert_int_equal(async_task_cancel(outer), 0);
    assert_int_equal(async_task_cancelling(inner), 1);
    assert_int_equal(async_loop_run_until_complete(L, outer, NULL), ASYNC_ECANCELED);
    assert_true(async_future_done(async_task_future(inner)));
    assert_true(async_future_cancelled(async_task_future(inner)));
    assert_int_equal(S.rc[0], ASYNC_ECANCELED);
    async_task_unref(inner);
    async_task_unref(outer);
}

static int catch_cancel_return_42(void *arg, void **result)
{
    int rc = async_await((async_future *)arg, NULL);
    rec(rc);
    *result = (void *)42; /* "except CancelledError: return 42" */
    return 0;
}

/* test_tasks.py: BaseTaskTests.test_cancel_task_catching */
static void test_cancel_task_catching(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    async_task *t;
    void *r = NULL;
    assert_int_equal(async_loop_spawn(L, &t, catch_cancel_return_42, f, NULL), 0);
    port_run_briefly();
    assert_int_equal(async_task_cancel(t), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, &r), 0);
    assert_ptr_equal(r, (void *)42);
    assert_int_equal(S.rc[0], ASYNC_ECANCELED);
    assert_true(async_future_cancelled(f));
    async_task_unref(t);
    async_future_unref(f);
}

static int ignore_then_await(void *arg, void **result)
{
    async_future **fs = arg;
    rec(async_await(fs[0], NULL)); /* cancelled: swallowed */
    rec(async_await(fs[1], result));
    return 0;
}

/* test_tasks.py: BaseTaskTests.test_cancel_task_ignoring.  Departure
 * (level-triggered cancellation, see async_task_cancel): asyncio lets the
 * task swallow the CancelledError and await a second future to its result;
 * in libasync the second await returns ASYNC_ECANCELED at once. */
static void test_cancel_task_ignoring(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_future *fs[2];
    assert_int_equal(async_future_new(L, &fs[0]), 0);
    assert_int_equal(async_future_new(L, &fs[1]), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, ignore_then_await, fs, NULL), 0);
    port_run_briefly();
    assert_int_equal(async_task_cancel(t), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_int_equal(S.rc[0], ASYNC_ECANCELED);
    assert_int_equal(S.rc[1], ASYNC_ECANCELED);
    assert_false(async_future_done(fs[1])); /* already cancelled: left alone */
    async_future_unref(fs[0]);
    async_future_unref(fs[1]);
    async_task_unref(t);
}

static int cancel_self_then_sleep(void *arg, void **result)
{
    (void)arg;
    async_task *me = async_current_task();
    async_task_cancel(me);
    int rc = async_sleep(100 * ASYNC_SEC); /* cancelled immediately */
    if (rc)
        return rc;
    *result = (void *)12;
    return 0;
}

/* test_tasks.py: BaseTaskTests.test_cancel_current_task */
static void test_cancel_current_task(void **state)
{
    (void)state;
    assert_int_equal(port_run(cancel_self_then_sleep, NULL, NULL), ASYNC_ECANCELED);
}

static int cancel_self_then_return(void *arg, void **result)
{
    (void)arg;
    async_task_cancel(async_current_task());
    *result = (void *)12;
    return 0;
}

/* test_tasks.py: BaseTaskTests.test_cancel_at_end (_must_cancel: a cancel
 * no suspension point delivered still ends the task cancelled). */
static void test_cancel_at_end(void **state)
{
    (void)state;
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, cancel_self_then_return, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_true(async_future_cancelled(async_task_future(t)));
    async_task_unref(t);
}

/* test_tasks.py: BaseTaskTests.test_cancelling / test_uncancel_basic */
static void test_cancelling(void **state)
{
    (void)state;
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, sleep_long, NULL, NULL), 0);
    port_run_briefly();
    assert_int_equal(async_task_cancelling(t), 0);
    assert_int_equal(async_task_cancel(t), 0);
    assert_int_equal(async_task_cancel(t), 0);
    assert_int_equal(async_task_cancelling(t), 2);
    assert_int_equal(async_task_uncancel(t), 1);
    assert_int_equal(async_task_cancelling(t), 1);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_int_equal(async_task_cancelling(NULL), ASYNC_EINVAL);
    async_task_unref(t);
}

/* test_tasks.py: BaseTaskTests.test_set_result_causes_invalid_state /
 * test_task_set_methods: a task's future cannot be completed from outside
 * (asyncio: RuntimeError). */
static void test_task_set_methods(void **state)
{
    (void)state;
    async_task *t;
    void *r = NULL;
    assert_int_equal(async_loop_spawn(L, &t, return_42, NULL, NULL), 0);
    async_future *f = async_task_future(t);
    assert_int_equal(async_future_set_result(f, (void *)1), ASYNC_EPERM);
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), ASYNC_EPERM);
    assert_int_equal(async_loop_run_until_complete(L, t, &r), 0);
    assert_ptr_equal(r, (void *)42);
    assert_int_equal(async_future_set_result(f, (void *)1), ASYNC_EPERM);
    async_task_unref(t);
}

static int fail_epipe(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return ASYNC_EPIPE;
}

/* test_tasks.py: BaseTaskTests.test_exception_... never retrieved: a failed
 * task freed unretrieved is reported once; cancel() on it silences that. */
static void test_task_exception_never_retrieved(void **state)
{
    (void)state;
    async_task *t, *u;
    assert_int_equal(async_loop_spawn(L, &t, fail_epipe, NULL, NULL), 0);
    assert_int_equal(async_loop_spawn(L, &u, fail_epipe, NULL, NULL), 0);
    port_run_briefly();
    assert_int_equal(async_task_cancel(u), ASYNC_EDONE);
    async_task_unref(u);
    assert_int_equal(EXC.n, 0);
    async_task_unref(t);
    assert_int_equal(EXC.n, 1);
    assert_string_equal(EXC.msg, "Task exception was never retrieved");
}

static int shield_body(void *arg, void **result)
{
    int rc = async_shield((async_future *)arg, result);
    rec(rc);
    return rc;
}

/* test_tasks.py: BaseTaskTests.test_shield_result */
static void test_shield_result(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_future *f;
    void *r = NULL;
    assert_int_equal(async_future_new(L, &f), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, shield_body, f, NULL), 0);
    port_run_briefly();
    assert_int_equal(async_future_set_result(f, (void *)42), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, &r), 0);
    assert_ptr_equal(r, (void *)42);
    async_task_unref(t);
    async_future_unref(f);
}

/* test_tasks.py: BaseTaskTests.test_shield_cancel_inner */
static void test_shield_cancel_inner(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, shield_body, f, NULL), 0);
    port_run_briefly();
    assert_int_equal(async_future_cancel(f), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    async_task_unref(t);
    async_future_unref(f);
}

/* test_tasks.py: BaseTaskTests.test_shield_cancel_outer (the outer task is
 * cancelled at once, the inner keeps running; a later inner error counts
 * as retrieved). */
static void test_shield_cancel_outer(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, shield_body, f, NULL), 0);
    port_run_briefly();
    assert_int_equal(async_task_cancel(t), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_false(async_future_done(f));
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), 0);
    async_future_unref(f);
    assert_int_equal(EXC.n, 0);
    async_task_unref(t);
}

static int gather_two(void *arg, void **result)
{
    (void)result;
    async_future **fs = arg;
    int errors[2];
    int rc = async_gather(fs, 2, 0, NULL, errors);
    rec(rc);
    return rc;
}

/* test_tasks.py: GatherTests test_one_exception and the late errors: the
 * first failure returns at once; a child failing later is retrieved by
 * gather (no "never retrieved" report). */
static void test_gather_one_exception_then_late_error(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_future *fs[2];
    assert_int_equal(async_future_new(L, &fs[0]), 0);
    assert_int_equal(async_future_new(L, &fs[1]), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, gather_two, fs, NULL), 0);
    port_run_briefly();
    assert_int_equal(async_future_set_error(fs[0], ASYNC_EPIPE), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_EPIPE);
    assert_false(async_future_done(fs[1]));
    assert_int_equal(async_future_set_error(fs[1], ASYNC_EBADF), 0);
    async_future_unref(fs[0]);
    async_future_unref(fs[1]);
    assert_int_equal(EXC.n, 0);
    async_task_unref(t);
}

/* test_tasks.py: GatherTests test_cancel (cancelling the gathering task
 * cancels the children). */
static void test_gather_cancel(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_future *fs[2];
    assert_int_equal(async_future_new(L, &fs[0]), 0);
    assert_int_equal(async_future_new(L, &fs[1]), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, gather_two, fs, NULL), 0);
    port_run_briefly();
    assert_int_equal(async_task_cancel(t), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_true(async_future_cancelled(fs[0]));
    assert_true(async_future_cancelled(fs[1]));
    async_future_unref(fs[0]);
    async_future_unref(fs[1]);
    async_task_unref(t);
}

static int sleep_negative(void *arg, void **result)
{
    (void)arg;
    (void)result;
    rec(async_sleep(-1));
    rec(async_sleep(0));
    return 0;
}

/* test_tasks.py: SleepTests (asyncio.sleep with a negative delay returns
 * after one iteration). */
static void test_sleep_negative(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    assert_int_equal(port_run(sleep_negative, NULL, NULL), 0);
    assert_int_equal(S.n, 2);
    assert_int_equal(S.rc[0], 0);
    assert_int_equal(S.rc[1], 0);
}

static int check_current(void *arg, void **result)
{
    (void)arg;
    *result = async_current_task();
    return 0;
}

/* test_tasks.py: BaseTaskTests.test_current_task */
static void test_current_task(void **state)
{
    (void)state;
    assert_null(async_current_task());
    async_task *t;
    void *r = NULL;
    assert_int_equal(async_loop_spawn(L, &t, check_current, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, &r), 0);
    assert_ptr_equal(r, t);
    assert_null(async_current_task());
    async_task_unref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PORT_TEST(test_task_basics),
        PORT_TEST(test_task_names),
        PORT_TEST(test_cancel),
        PORT_TEST(test_cancel_inner_future),
        PORT_TEST(test_cancel_both_task_and_inner_future),
        PORT_TEST(test_cancel_chain_of_tasks),
        PORT_TEST(test_cancel_task_catching),
        PORT_TEST(test_cancel_task_ignoring),
        PORT_TEST(test_cancel_current_task),
        PORT_TEST(test_cancel_at_end),
        PORT_TEST(test_cancelling),
        PORT_TEST(test_task_set_methods),
        PORT_TEST(test_task_exception_never_retrieved),
        PORT_TEST(test_shield_result),
        PORT_TEST(test_shield_cancel_inner),
        PORT_TEST(test_shield_cancel_outer),
        PORT_TEST(test_gather_one_exception_then_late_error),
        PORT_TEST(test_gather_cancel),
        PORT_TEST(test_sleep_negative),
        PORT_TEST(test_current_task),
    };
    return cmocka_run_group_tests_name("asyncio_tasks", tests, NULL, NULL);
}
