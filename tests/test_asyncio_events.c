/*
 * Port of CPython's Lib/test/test_asyncio/test_events.py to the C API: the
 * EventLoopTestsMixin cases about callbacks, timers, threads and the loop's
 * life cycle, plus HandleTests / TimerTests.
 *
 * Not ported, and why: transports and protocols (create_connection,
 * create_server, datagram endpoints, pipes, subprocess protocols: libasync
 * has streams instead, tested in test_net / test_stream), SSL, sock_*
 * helpers, signal handlers (test_signal.c), the policy machinery
 * (get_event_loop_policy, child watchers), repr of handles, and the
 * selector-specific variants (each case here runs on the one backend).
 */
#include <pthread.h>
#include <unistd.h>

#include "asyncio_port.h"

static struct {
    int n;
    intptr_t order[16];
} C;

static int record(void *arg)
{
    if (C.n < 16)
        C.order[C.n] = (intptr_t)arg;
    C.n++;
    return 0;
}

static int record_stop(void *arg)
{
    record(arg);
    return async_loop_stop(L);
}

/* test_events.py: EventLoopTestsMixin.test_run_until_complete_nesting */
static int nested(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_future *f;
    int rc = async_future_new(async_get_running_loop(), &f);
    if (rc)
        return rc;
    rc = async_loop_run_until_complete(async_get_running_loop(), f, NULL);
    async_future_unref(f);
    return rc;
}

static void test_run_until_complete_nesting(void **state)
{
    (void)state;
    assert_int_equal(port_run(nested, NULL, NULL), ASYNC_ERUNNING);
}

/* test_events.py: EventLoopTestsMixin.test_run_until_complete_stopped */
static void test_run_until_complete_stopped(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_loop_call_soon(L, record_stop, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, f, NULL), ASYNC_ESTOPPED);
    async_future_unref(f);
}

/* test_events.py: EventLoopTestsMixin.test_call_later (never early) */
static void test_call_later(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    uint64_t t0 = async_loop_time(L);
    assert_int_equal(async_loop_call_later(L, 10 * ASYNC_MSEC, record_stop, (void *)1, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(C.n, 1);
    assert_true(async_loop_time(L) - t0 >= 10 * ASYNC_MSEC);
}

/* test_events.py: EventLoopTestsMixin.test_call_soon (FIFO) */
static void test_call_soon(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    for (intptr_t i = 0; i < 5; i++)
        assert_int_equal(async_loop_call_soon(L, record, (void *)i, NULL), 0);
    assert_int_equal(async_loop_call_soon(L, record_stop, (void *)5, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(C.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(C.order[i], i);
}

static void *thread_post(void *arg)
{
    (void)arg;
    for (intptr_t i = 0; i < 4; i++)
        async_loop_call_soon_threadsafe(L, record, (void *)(100 + i));
    async_loop_call_soon_threadsafe(L, record_stop, (void *)104);
    return NULL;
}

/* test_events.py: EventLoopTestsMixin.test_call_soon_threadsafe (from
 * another thread, in the order accepted) */
static void test_call_soon_threadsafe(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thread_post, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    pthread_join(th, NULL);
    assert_int_equal(C.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(C.order[i], 100 + i);
}

static int mix_soon_and_threadsafe(void *arg)
{
    (void)arg;
    async_loop_call_soon(L, record, (void *)1, NULL);
    async_loop_call_soon_threadsafe(L, record, (void *)2);
    async_loop_call_soon(L, record, (void *)3, NULL);
    async_loop_call_soon_threadsafe(L, record_stop, (void *)4);
    return 0;
}

/* test_events.py: EventLoopTestsMixin.test_call_soon_threadsafe_same_thread
 * (on the loop's thread, FIFO with call_soon) */
static void test_call_soon_threadsafe_same_thread(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    assert_int_equal(async_loop_call_soon(L, mix_soon_and_threadsafe, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(C.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(C.order[i], i + 1);
}

static int job_square(void *arg, void **result)
{
    intptr_t n = (intptr_t)arg;
    *result = (void *)(n * n);
    return 0;
}

/* test_events.py: EventLoopTestsMixin.test_run_in_executor */
static void test_run_in_executor(void **state)
{
    (void)state;
    async_future *f;
    void *r = NULL;
    assert_int_equal(async_run_in_executor(L, job_square, (void *)7, &f), 0);
    assert_int_equal(async_loop_run_until_complete(L, f, &r), 0);
    assert_ptr_equal(r, (void *)49);
    async_future_unref(f);
}

static int fds[2];

static int on_readable(void *arg)
{
    (void)arg;
    char buf[8];
    ssize_t n = read(fds[0], buf, sizeof(buf));
    C.n += (int)n;
    async_loop_remove_reader(L, fds[0]);
    return async_loop_stop(L);
}

/* test_events.py: EventLoopTestsMixin.test_reader_callback */
static void test_reader_callback(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(async_loop_add_reader(L, fds[0], on_readable, NULL), 0);
    assert_int_equal(async_loop_add_reader(L, fds[0], on_readable, NULL), ASYNC_EEXIST);
    assert_int_equal(write(fds[1], "abc", 3), 3);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(C.n, 3);
    close(fds[0]);
    close(fds[1]);
}

/* test_events.py: EventLoopTestsMixin.test_close / test_run_until_complete
 * on a closed loop */
static void test_close(void **state)
{
    (void)state;
    assert_false(async_loop_is_closed(L));
    assert_int_equal(async_loop_close(L), 0);
    assert_true(async_loop_is_closed(L));
    assert_int_equal(async_loop_close(L), 0); /* a second close is a no-op */
    assert_int_equal(async_loop_run_forever(L), ASYNC_ECLOSED);
    assert_int_equal(async_loop_call_soon(L, record, NULL, NULL), ASYNC_ECLOSED);
    assert_int_equal(async_loop_call_soon_threadsafe(L, record, NULL), ASYNC_ECLOSED);
    async_future *f = NULL;
    assert_int_equal(async_future_new(L, &f), ASYNC_ECLOSED);
}

/* test_events.py: HandleTests.test_handle / test_handle_cancel */
static void test_handle_cancel(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    async_handle *h;
    assert_int_equal(async_loop_call_soon(L, record, (void *)1, &h), 0);
    assert_false(async_handle_cancelled(h));
    assert_int_equal(async_handle_cancel(h), 0);
    assert_true(async_handle_cancelled(h));
    port_run_briefly();
    assert_int_equal(C.n, 0);
    async_handle_unref(h);
}

/* test_events.py: TimerTests.test_when / test_timer (when() is the
 * deadline; a cancelled timer never runs) */
static void test_timer_when(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    async_handle *h;
    uint64_t when = async_loop_time(L) + ASYNC_SEC;
    assert_int_equal(async_loop_call_at(L, when, record, NULL, &h), 0);
    assert_int_equal(async_handle_when(h), when);
    assert_int_equal(async_handle_cancel(h), 0);
    port_run_briefly();
    assert_int_equal(C.n, 0);
    async_handle_unref(h);
}

/* test_events.py: EventLoopTestsMixin.test_run_forever_... stop before
 * run: exactly one iteration (asyncio's test_run_once). */
static void test_stop_before_run_runs_once(void **state)
{
    (void)state;
    memset(&C, 0, sizeof(C));
    assert_int_equal(async_loop_call_soon(L, record, (void *)1, NULL), 0);
    async_loop_stop(L);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(C.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PORT_TEST(test_run_until_complete_nesting),
        PORT_TEST(test_run_until_complete_stopped),
        PORT_TEST(test_call_later),
        PORT_TEST(test_call_soon),
        PORT_TEST(test_call_soon_threadsafe),
        PORT_TEST(test_call_soon_threadsafe_same_thread),
        PORT_TEST(test_run_in_executor),
        PORT_TEST(test_reader_callback),
        PORT_TEST(test_close),
        PORT_TEST(test_handle_cancel),
        PORT_TEST(test_timer_when),
        PORT_TEST(test_stop_before_run_runs_once),
    };
    return cmocka_run_group_tests_name("asyncio_events", tests, NULL, NULL);
}
