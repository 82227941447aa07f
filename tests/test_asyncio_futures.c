/*
 * Port of CPython's Lib/test/test_asyncio/test_futures.py to the C API.
 *
 * Not ported, and why: repr / __str__ tests, the future iterator and
 * __await__ protocol (test_yield_from_twice, test_future_iter_*), pickling
 * and copy (test_copy_state), the C/Python implementation pairs (each case
 * here runs once against libasync), exception objects and tracebacks
 * (set_exception with a class, StopIteration, the cancel message and
 * _make_cancelled_error), concurrent.futures wrapping (wrap_future: the
 * executor's futures are tested in test_executor.c), and __del__ timing
 * beyond "reported once when the last reference goes".
 */
#include "asyncio_port.h"

/* test_futures.py: BaseFutureTests.test_initial_state */
static void test_initial_state(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_false(async_future_cancelled(f));
    assert_false(async_future_done(f));
    assert_ptr_equal(async_future_loop(f), L);
    assert_int_equal(async_future_cancel(f), 0);
    assert_true(async_future_cancelled(f));
    assert_true(async_future_done(f));
    async_future_unref(f);
}

/* test_futures.py: BaseFutureTests.test_cancel */
static void test_cancel(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_cancel(f), 0);
    assert_true(async_future_cancelled(f));
    assert_true(async_future_done(f));
    assert_int_equal(async_future_result(f, NULL), ASYNC_ECANCELED);
    assert_int_equal(async_future_set_result(f, NULL), ASYNC_EDONE);
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), ASYNC_EDONE);
    assert_int_equal(async_future_cancel(f), ASYNC_EDONE);
    async_future_unref(f);
}

/* test_futures.py: BaseFutureTests.test_result */
static void test_result(void **state)
{
    (void)state;
    async_future *f;
    void *r = NULL;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_result(f, &r), ASYNC_EPENDING);
    assert_int_equal(async_future_set_result(f, (void *)42), 0);
    assert_false(async_future_cancelled(f));
    assert_true(async_future_done(f));
    assert_int_equal(async_future_result(f, &r), 0);
    assert_ptr_equal(r, (void *)42);
    assert_int_equal(async_future_set_result(f, NULL), ASYNC_EDONE);
    assert_int_equal(async_future_cancel(f), ASYNC_EDONE);
    async_future_unref(f);
}

/* test_futures.py: BaseFutureTests.test_exception */
static void test_exception(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_set_error(f, 0), ASYNC_EINVAL); /* not an error */
    assert_false(async_future_done(f));
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), 0);
    assert_true(async_future_done(f));
    assert_false(async_future_cancelled(f));
    assert_int_equal(async_future_result(f, NULL), ASYNC_EPIPE);
    assert_int_equal(async_future_set_result(f, NULL), ASYNC_EDONE);
    async_future_unref(f);
}

static int await_future(void *arg, void **result)
{
    return async_await((async_future *)arg, result);
}

/* test_futures.py: BaseFutureTests.test_await (and test_future_source...):
 * awaiting a done future returns its result; awaiting a pending one waits. */
static void test_await(void **state)
{
    (void)state;
    async_future *f;
    void *r = NULL;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_set_result(f, (void *)7), 0);
    assert_int_equal(port_run(await_future, f, &r), 0);
    assert_ptr_equal(r, (void *)7);
    async_future_unref(f);
    assert_int_equal(async_future_new(L, &f), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, await_future, f, NULL), 0);
    port_run_briefly();
    assert_false(async_future_done(async_task_future(t)));
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_EPIPE);
    async_task_unref(t);
    async_future_unref(f);
}

static struct {
    int n;
    intptr_t order[8];
} CB;

static void record_cb(async_future *f, void *arg)
{
    (void)f;
    if (CB.n < 8)
        CB.order[CB.n] = (intptr_t)arg;
    CB.n++;
}

/* test_futures.py: BaseFutureDoneCallbackTests.test_callbacks_invoked_on_set_result
 * (callbacks run from the loop, in registration order, never inline). */
static void test_callbacks_invoked_on_set_result(void **state)
{
    (void)state;
    memset(&CB, 0, sizeof(CB));
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    for (intptr_t i = 1; i <= 3; i++)
        assert_int_equal(async_future_add_done_callback(f, record_cb, (void *)i), 0);
    assert_int_equal(async_future_set_result(f, (void *)42), 0);
    assert_int_equal(CB.n, 0);
    port_run_briefly();
    assert_int_equal(CB.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(CB.order[i], i + 1);
    async_future_unref(f);
}

/* test_futures.py: BaseFutureDoneCallbackTests.test_callbacks_invoked_on_set_exception */
static void test_callbacks_invoked_on_set_exception(void **state)
{
    (void)state;
    memset(&CB, 0, sizeof(CB));
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_add_done_callback(f, record_cb, (void *)5), 0);
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), 0);
    port_run_briefly();
    assert_int_equal(CB.n, 1);
    assert_int_equal(async_future_result(f, NULL), ASYNC_EPIPE);
    async_future_unref(f);
}

/* test_futures.py: BaseFutureDoneCallbackTests.test_remove_done_callback
 * (and test_remove_done_callbacks_list_mutation: removing every matching
 * registration). */
static void test_remove_done_callback(void **state)
{
    (void)state;
    memset(&CB, 0, sizeof(CB));
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_add_done_callback(f, record_cb, (void *)1), 0);
    assert_int_equal(async_future_add_done_callback(f, record_cb, (void *)2), 0);
    assert_int_equal(async_future_add_done_callback(f, record_cb, (void *)1), 0);
    assert_int_equal(async_future_remove_done_callback(f, record_cb, (void *)1), 2);
    assert_int_equal(async_future_remove_done_callback(f, record_cb, (void *)9), 0);
    assert_int_equal(async_future_set_result(f, NULL), 0);
    port_run_briefly();
    assert_int_equal(CB.n, 1);
    assert_int_equal(CB.order[0], 2);
    async_future_unref(f);
}

/* test_futures.py: BaseFutureDoneCallbackTests.test_callbacks_invoked_on_... (a
 * callback added to a done future is scheduled, not run inline) */
static void test_callback_added_when_done(void **state)
{
    (void)state;
    memset(&CB, 0, sizeof(CB));
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_set_result(f, NULL), 0);
    assert_int_equal(async_future_add_done_callback(f, record_cb, (void *)1), 0);
    assert_int_equal(CB.n, 0);
    port_run_briefly();
    assert_int_equal(CB.n, 1);
    async_future_unref(f);
}

/* test_futures.py: BaseFutureTests.test_tb_logger_exception_unretrieved */
static void test_tb_logger_exception_unretrieved(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), 0);
    async_future_unref(f);
    assert_int_equal(EXC.n, 1);
    assert_int_equal(EXC.error, ASYNC_EPIPE);
    assert_string_equal(EXC.msg, "Future exception was never retrieved");
}

/* test_futures.py: BaseFutureTests.test_tb_logger_exception_retrieved and
 * test_tb_logger_result_unretrieved (a result is never reported). */
static void test_tb_logger_retrieved(void **state)
{
    (void)state;
    async_future *f, *g;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), 0);
    assert_int_equal(async_future_result(f, NULL), ASYNC_EPIPE);
    async_future_unref(f);
    assert_int_equal(async_future_new(L, &g), 0);
    assert_int_equal(async_future_set_result(g, (void *)1), 0);
    async_future_unref(g);
    assert_int_equal(EXC.n, 0);
}

/* test_futures.py: BaseFutureTests.test_tb_logger_exception_cancelled...:
 * cancel() on a failed future clears the "never retrieved" report. */
static void test_cancel_failed_counts_as_retrieved(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), 0);
    assert_int_equal(async_future_cancel(f), ASYNC_EDONE);
    async_future_unref(f);
    assert_int_equal(EXC.n, 0);
}

/* test_futures.py: BaseFutureTests.test_set_result_... on a closed loop:
 * asyncio raises "Event loop is closed" when callbacks must be scheduled;
 * libasync always refuses with ASYNC_ECLOSED and changes nothing. */
static void test_set_result_closed_loop(void **state)
{
    (void)state;
    memset(&CB, 0, sizeof(CB));
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_add_done_callback(f, record_cb, NULL), 0);
    assert_int_equal(async_loop_close(L), 0);
    assert_int_equal(async_future_set_result(f, NULL), ASYNC_ECLOSED);
    assert_false(async_future_done(f));
    assert_int_equal(async_future_add_done_callback(f, record_cb, NULL), ASYNC_ECLOSED);
    async_future_unref(f);
    assert_int_equal(CB.n, 0);
}

/* test_futures.py: BaseFutureTests.test_constructor_use_running_loop /
 * test_uninitialized: bad input is refused. */
static void test_bad_input(void **state)
{
    (void)state;
    async_future *f = NULL;
    assert_int_equal(async_future_new(NULL, &f), ASYNC_EINVAL);
    assert_int_equal(async_future_new(L, NULL), ASYNC_EINVAL);
    assert_null(f);
    assert_int_equal(async_future_set_result(NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_future_cancel(NULL), ASYNC_EINVAL);
    assert_int_equal(async_future_result(NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_future_await(NULL, NULL), ASYNC_EINVAL);
    assert_false(async_future_done(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PORT_TEST(test_initial_state),
        PORT_TEST(test_cancel),
        PORT_TEST(test_result),
        PORT_TEST(test_exception),
        PORT_TEST(test_await),
        PORT_TEST(test_callbacks_invoked_on_set_result),
        PORT_TEST(test_callbacks_invoked_on_set_exception),
        PORT_TEST(test_remove_done_callback),
        PORT_TEST(test_callback_added_when_done),
        PORT_TEST(test_tb_logger_exception_unretrieved),
        PORT_TEST(test_tb_logger_retrieved),
        PORT_TEST(test_cancel_failed_counts_as_retrieved),
        PORT_TEST(test_set_result_closed_loop),
        PORT_TEST(test_bad_input),
    };
    return cmocka_run_group_tests_name("asyncio_futures", tests, NULL, NULL);
}
