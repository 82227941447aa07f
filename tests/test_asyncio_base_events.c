/*
 * Port of CPython's Lib/test/test_asyncio/test_base_events.py to the C API:
 * BaseEventLoopTests about timers, run_until_complete, the exception
 * handler and closing.
 *
 * Not ported, and why: getaddrinfo / create_connection / create_server /
 * sendfile internals (mocked sockets: libasync's networking is tested in
 * test_net and test_stream), _run_once's debug slow-callback logging, the
 * default executor object and set_default_executor (one pool per loop),
 * set_debug / coroutine origin tracking, async generator hooks, and
 * KeyboardInterrupt cases (SIGINT handling is not implemented yet).
 */
#include "asyncio_port.h"

#include "core/internal.h"

static struct {
    int n;
    intptr_t order[8];
} C;

static int record(void *arg)
{
    if (C.n < 8)
        C.order[C.n] = (intptr_t)arg;
    C.n++;
    return 0;
}

/* test_base_events.py: BaseEventLoopTests.test_call_later_negative_delays
 * (they run at the next iteration, in deadline order) */
static void test_call_later_negative_delays(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    /* CPython reads the real clock; a stalled machine could then read it
     * 1 ms apart between the two calls.  The virtual clock keeps the two
     * deadlines 1 ms apart, as the test means. */
    async__loop_use_virtual_clock(L, 1000 * ASYNC_MSEC);
    assert_int_equal(async_loop_call_later(L, -1 * ASYNC_MSEC, record, (void *)'a', NULL), 0);
    assert_int_equal(async_loop_call_later(L, -2 * ASYNC_MSEC, record, (void *)'b', NULL), 0);
    port_run_briefly();
    assert_int_equal(C.n, 2);
    assert_int_equal(C.order[0], 'b');
    assert_int_equal(C.order[1], 'a');
}

static int record_stop(void *arg)
{
    record(arg);
    return async_loop_stop(L);
}

/* test_base_events.py: BaseEventLoopTests.test_time_and_call_at */
static void test_time_and_call_at(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    async__loop_use_virtual_clock(L, 1000);
    uint64_t when = async_loop_time(L) + 100 * ASYNC_MSEC;
    assert_int_equal(async_loop_call_at(L, when, record_stop, (void *)1, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(C.n, 1);
    assert_true(async_loop_time(L) >= when);
}

/* test_base_events.py: BaseEventLoopTests.test_call_later (order of equal
 * and different deadlines) */
static void test_call_later_order(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    async__loop_use_virtual_clock(L, 0);
    assert_int_equal(async_loop_call_later(L, 20 * ASYNC_MSEC, record_stop, (void *)3, NULL), 0);
    assert_int_equal(async_loop_call_later(L, 10 * ASYNC_MSEC, record, (void *)1, NULL), 0);
    assert_int_equal(async_loop_call_later(L, 10 * ASYNC_MSEC, record, (void *)2, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(C.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(C.order[i], i + 1);
}

/* test_base_events.py: BaseEventLoopTests.test__run_once_schedule_handle:
 * what a callback schedules runs in the next iteration, not this one */
static int reschedule(void *arg)
{
    record(arg);
    return async_loop_call_soon(L, record, (void *)2, NULL);
}

static void test_run_once_schedules_next_iteration(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    assert_int_equal(async_loop_call_soon(L, reschedule, (void *)1, NULL), 0);
    port_run_briefly();
    assert_int_equal(C.n, 1);
    port_run_briefly();
    assert_int_equal(C.n, 2);
}

static int fail_cb(void *arg)
{
    (void)arg;
    return ASYNC_EPIPE;
}

/* test_base_events.py: BaseEventLoopTests.test_set_exc_handler_custom and
 * test_default_exc_handler_callback (a failing callback is reported) */
static void test_exc_handler_callback(void **state)
{
    (void)state;
    assert_int_equal(async_loop_call_soon(L, fail_cb, NULL, NULL), 0);
    port_run_briefly();
    assert_int_equal(EXC.n, 1);
    assert_int_equal(EXC.error, ASYNC_EPIPE);
    assert_string_equal(EXC.msg, "callback failed");
    /* Back to the default handler (stderr). */
    assert_int_equal(async_loop_set_exception_handler(L, NULL, NULL), 0);
    assert_int_equal(async_loop_set_exception_handler(NULL, NULL, NULL), ASYNC_EINVAL);
}

/* test_base_events.py: BaseEventLoopTests.test_run_until_complete_type_error
 * and test_run_until_complete_loop (a future of another loop) */
static void test_run_until_complete_bad_input(void **state)
{
    (void)state;
    assert_int_equal(async_loop_run_future(L, NULL, NULL), ASYNC_EINVAL);
    async_loop *other;
    assert_int_equal(async_loop_new(&other), 0);
    async_future *f;
    assert_int_equal(async_future_new(other, &f), 0);
    assert_int_equal(async_loop_run_until_complete(L, f, NULL), ASYNC_EWRONGLOOP);
    async_future_unref(f);
    async_loop_free(other);
}

/* test_base_events.py: BaseEventLoopTests.test_run_until_complete_... a
 * future already done still runs one iteration (_run_until_complete_cb is
 * scheduled with call_soon) */
static void test_run_until_complete_done_future_runs_once(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    async_future *f;
    void *r = NULL;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_set_result(f, (void *)4), 0);
    assert_int_equal(async_loop_call_soon(L, record, (void *)1, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, f, &r), 0);
    assert_ptr_equal(r, (void *)4);
    assert_int_equal(C.n, 1);
    async_future_unref(f);
}

/* test_base_events.py: BaseEventLoopTests.test_close (closing a running
 * loop is refused; queued callbacks are dropped by close) */
static int close_inside(void *arg)
{
    (void)arg;
    C.order[0] = async_loop_close(L);
    return async_loop_stop(L);
}

static void test_close(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    assert_int_equal(async_loop_call_soon(L, close_inside, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(C.order[0], ASYNC_ECLOSERUNNING);
    assert_int_equal(async_loop_call_soon(L, record, (void *)1, NULL), 0);
    assert_int_equal(async_loop_close(L), 0);
    assert_int_equal(C.n, 0);
    assert_int_equal(async_loop_call_later(L, 1, record, NULL, NULL), ASYNC_ECLOSED);
}

/* test_base_events.py: BaseEventLoopTests.test_call_soon_non_callable (the
 * C form: a NULL callback) */
static void test_call_soon_non_callable(void **state)
{
    (void)state;
    assert_int_equal(async_loop_call_soon(L, NULL, NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_call_later(L, 1, NULL, NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_call_at(L, 1, NULL, NULL, NULL), ASYNC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PORT_TEST(test_call_later_negative_delays),
        PORT_TEST(test_time_and_call_at),
        PORT_TEST(test_call_later_order),
        PORT_TEST(test_run_once_schedules_next_iteration),
        PORT_TEST(test_exc_handler_callback),
        PORT_TEST(test_run_until_complete_bad_input),
        PORT_TEST(test_run_until_complete_done_future_runs_once),
        PORT_TEST(test_close),
        PORT_TEST(test_call_soon_non_callable),
    };
    return cmocka_run_group_tests_name("asyncio_base_events", tests, NULL, NULL);
}
