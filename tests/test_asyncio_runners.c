/*
 * Port of CPython's Lib/test/test_asyncio/test_runners.py to the C API
 * (asyncio.run = async_run).
 *
 * Not ported, and why: asyncio.Runner (no counterpart object in libasync;
 * async_run creates its own loop), the debug flag, loop_factory and event
 * loop policies, async generators shutdown (test_asyncio_run_closes_gens_*),
 * contextvars (issue 10).  The signal cases (test_interrupt_call_soon,
 * test_interrupt_wait, test_interrupt_cancelled_task,
 * test_signal_install_not_supported_ok) need a process that may die of
 * SIGINT: they are in tests/test_run.c (test_ctrl_c_*), each scene in a
 * forked child, each naming the case it ports.
 */
#include "asyncio_port.h"

static struct {
    int n;
    int errors;
    bool leftover_stepped;
    bool leftover_cancelled;
} S;

static int return_42(void *arg, void **result)
{
    (void)arg;
    async_sleep(0);
    *result = (void *)42;
    return 0;
}

/* test_runners.py: RunTests.test_asyncio_run_return */
static void test_asyncio_run_return(void **state)
{
    (void)state;
    void *r = NULL;
    assert_int_equal(async_run(return_42, NULL, &r), 0);
    assert_ptr_equal(r, (void *)42);
}

static int raise_error(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_sleep(0);
    return ASYNC_EPIPE;
}

/* test_runners.py: RunTests.test_asyncio_run_raises */
static void test_asyncio_run_raises(void **state)
{
    (void)state;
    assert_int_equal(async_run(raise_error, NULL, NULL), ASYNC_EPIPE);
}

/* test_runners.py: RunTests.test_asyncio_run_only_coro (the C form: a
 * NULL function) */
static void test_asyncio_run_only_coro(void **state)
{
    (void)state;
    assert_int_equal(async_run(NULL, NULL, NULL), ASYNC_EINVAL);
}

static int nested_run(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return async_run(return_42, NULL, NULL);
}

/* test_runners.py: RunTests.test_asyncio_run_from_running_loop */
static void test_asyncio_run_from_running_loop(void **state)
{
    (void)state;
    assert_int_equal(async_run(nested_run, NULL, NULL), ASYNC_EOTHERLOOP);
}

static void count_handler(async_loop *loop, const async_exception_context *ctx,
                          void *arg)
{
    (void)loop;
    (void)arg;
    (void)ctx;
    S.errors++;
}

static int leftover_fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    S.leftover_stepped = true;
    int rc = async_sleep(ASYNC_SEC);
    if (rc == ASYNC_ECANCELED) {
        S.leftover_cancelled = true;
        return ASYNC_EPIPE; /* 1/0 during cancellation */
    }
    return rc;
}

static int main_leaves_task(void *arg, void **result)
{
    (void)arg;
    async_loop_set_exception_handler(async_get_running_loop(), count_handler,
                                     NULL);
    async_spawn(NULL, leftover_fails, NULL);
    *result = (void *)123;
    return 0;
}

/* test_runners.py: RunTests.test_asyncio_run_reports_hanging_tasks_errors
 * (and test_asyncio_run_cancel_hang's cleanup): a task spawned just before
 * main returned takes its first step, is cancelled by async_run, and its
 * error is reported. */
static void test_asyncio_run_reports_hanging_tasks_errors(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    void *r = NULL;
    assert_int_equal(async_run(main_leaves_task, NULL, &r), 0);
    assert_ptr_equal(r, (void *)123);
    assert_true(S.leftover_stepped);
    assert_true(S.leftover_cancelled);
    assert_int_equal(S.errors, 1);
}

static int cancelled_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task_cancel(async_current_task());
    return async_sleep(ASYNC_SEC);
}

/* test_runners.py: RunTests.test_asyncio_run_cancelled (main cancelled:
 * asyncio.run raises CancelledError). */
static void test_asyncio_run_cancelled(void **state)
{
    (void)state;
    assert_int_equal(async_run(cancelled_main, NULL, NULL), ASYNC_ECANCELED);
}

static void cb_count(async_future *f, void *arg)
{
    (void)f;
    (void)arg;
    S.n++;
}

static int complete_soon(void *arg, void **result)
{
    (void)result;
    return async_future_set_result(arg, NULL);
}

static int noop_step(void *arg, void **result)
{
    (void)arg;
    (void)result;
    S.leftover_stepped = true;
    return async_sleep(ASYNC_SEC);
}

static int spawn_then_return(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_spawn(NULL, noop_step, NULL);
    return 0;
}

/* run_until_complete returns in asyncio's iteration: done callbacks added
 * before completion have run, a task spawned just before the main task
 * returned has taken its first step (test_base_events.py / test_runners.py
 * behaviour of _run_until_complete_cb). */
static void test_run_until_complete_iteration(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    async_loop *loop;
    assert_int_equal(async_loop_new(&loop), 0);
    async_future *f;
    assert_int_equal(async_future_new(loop, &f), 0);
    assert_int_equal(async_future_add_done_callback(f, cb_count, NULL), 0);
    async_task *setter;
    assert_int_equal(async_loop_spawn(loop, &setter, complete_soon, f, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(loop, f, NULL), 0);
    assert_int_equal(S.n, 1);
    async_task *t;
    assert_int_equal(async_loop_spawn(loop, &t, spawn_then_return, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(loop, t, NULL), 0);
    assert_true(S.leftover_stepped);
    async_task_unref(t);
    async_task_unref(setter);
    async_future_unref(f);
    async_loop_set_exception_handler(loop, count_handler, NULL);
    async_loop_free(loop); /* the leftover is destroyed pending: reported */
    assert_int_equal(S.errors, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PORT_TEST(test_asyncio_run_return),
        PORT_TEST(test_asyncio_run_raises),
        PORT_TEST(test_asyncio_run_only_coro),
        PORT_TEST(test_asyncio_run_from_running_loop),
        PORT_TEST(test_asyncio_run_reports_hanging_tasks_errors),
        PORT_TEST(test_asyncio_run_cancelled),
        PORT_TEST(test_run_until_complete_iteration),
    };
    return cmocka_run_group_tests_name("asyncio_runners", tests, NULL, NULL);
}
