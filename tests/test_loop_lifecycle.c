/*
 * The loop lifecycle table of DESIGN.md, one test per row.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"

typedef struct rec {
    async_loop *loop;   /* loop under test */
    async_loop *other;  /* a second loop, for the cross-loop rows */
    int rc;             /* an error code seen inside a callback */
    int order[16];      /* callback ids in the order they ran */
    int n;              /* entries in order[] */
} rec;

static rec R;

static int setup(void **state)
{
    (void)state;
    memset(&R, 0, sizeof(R));
    assert_int_equal(async_loop_new(&R.loop), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_loop_free(R.loop), 0);
    if (R.other)
        assert_int_equal(async_loop_free(R.other), 0);
    return 0;
}

static int note(int id)
{
    if (R.n < 16)
        R.order[R.n++] = id;
    return 0;
}

static int cb_note1(void *arg) { (void)arg; return note(1); }
static int cb_note2(void *arg) { (void)arg; return note(2); }
static int cb_note3(void *arg) { (void)arg; return note(3); }

static int cb_stop(void *arg)
{
    (void)arg;
    return async_loop_stop(R.loop);
}

static int main_returns_7(void *arg, void **result)
{
    (void)arg;
    *result = (void *)(intptr_t)7;
    return 0;
}

/* Row: run (forever or until complete) on a closed loop. */
static void test_run_closed(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(R.loop, &f), 0);
    assert_int_equal(async_loop_close(R.loop), 0);
    assert_true(async_loop_is_closed(R.loop));
    assert_int_equal(async_loop_run_forever(R.loop), ASYNC_ECLOSED);
    assert_string_equal(async_strerror(ASYNC_ECLOSED), "event loop is closed");
    assert_int_equal(async_loop_run_future(R.loop, f, NULL), ASYNC_ECLOSED);
    async_future_unref(f);
}

static int cb_nested_run(void *arg)
{
    (void)arg;
    R.rc = async_loop_run_forever(R.loop);
    return async_loop_stop(R.loop);
}

/* Row: run while this loop is already running. */
static void test_run_nested(void **state)
{
    (void)state;
    assert_int_equal(async_loop_call_soon(R.loop, cb_nested_run, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    assert_int_equal(R.rc, ASYNC_ERUNNING);
    assert_string_equal(async_strerror(R.rc), "event loop is already running");
    assert_false(async_loop_is_running(R.loop));
}

static int cb_run_other(void *arg)
{
    (void)arg;
    R.rc = async_loop_run_forever(R.other);
    return async_loop_stop(R.loop);
}

/* Row: run while another loop runs in this thread. */
static void test_run_other_loop(void **state)
{
    (void)state;
    assert_int_equal(async_loop_new(&R.other), 0);
    assert_int_equal(async_loop_call_soon(R.loop, cb_run_other, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    assert_int_equal(R.rc, ASYNC_EOTHERLOOP);
    assert_string_equal(async_strerror(R.rc),
                        "another loop is running in this thread");
    assert_false(async_loop_is_running(R.other));
}

static int cb_stop_and_schedule(void *arg)
{
    (void)arg;
    note(1);
    async_loop_stop(R.loop);
    return async_loop_call_soon(R.loop, cb_note3, NULL, NULL);
}

/* Row: stop() during run_forever. */
static void test_stop_during_run(void **state)
{
    (void)state;
    assert_int_equal(async_loop_call_soon(R.loop, cb_stop_and_schedule, NULL, NULL), 0);
    assert_int_equal(async_loop_call_soon(R.loop, cb_note2, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    /* cb 2 was scheduled for the same iteration: it ran.  cb 3 was
     * scheduled during it: it waits for the next run. */
    assert_int_equal(R.n, 2);
    assert_int_equal(R.order[0], 1);
    assert_int_equal(R.order[1], 2);
    assert_false(async_loop_is_running(R.loop));
    assert_int_equal(async_loop_stop(R.loop), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    assert_int_equal(R.n, 3);
    assert_int_equal(R.order[2], 3);
}

static int cb_chain(void *arg)
{
    (void)arg;
    note(1);
    return async_loop_call_soon(R.loop, cb_note2, NULL, NULL);
}

/* Row: stop() before run_forever: exactly one iteration, zero timeout. */
static void test_stop_before_run(void **state)
{
    (void)state;
    assert_int_equal(async_loop_call_soon(R.loop, cb_chain, NULL, NULL), 0);
    /* A far timer must not make that single iteration block. */
    assert_int_equal(async_loop_call_later(R.loop, 3600 * ASYNC_SEC, cb_note3, NULL, NULL), 0);
    assert_int_equal(async_loop_stop(R.loop), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    assert_int_equal(R.n, 1);
    assert_int_equal(R.order[0], 1);
    /* Also with nothing at all to do: one non-blocking iteration. */
    assert_int_equal(async_loop_stop(R.loop), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    assert_int_equal(R.n, 2);
}

static int cb_set_result(void *arg)
{
    return async_future_set_result(arg, (void *)(intptr_t)42);
}

static int cb_set_error(void *arg)
{
    return async_future_set_error(arg, ASYNC_EPIPE);
}

/* Row: run_until_complete(f) returns its result or error. */
static void test_run_until_complete(void **state)
{
    (void)state;
    async_future *f;
    void *res = NULL;
    assert_int_equal(async_future_new(R.loop, &f), 0);
    assert_int_equal(async_loop_call_later(R.loop, 1 * ASYNC_MSEC, cb_set_result, f, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(R.loop, f, &res), 0);
    assert_int_equal((intptr_t)res, 42);
    assert_false(async_loop_is_running(R.loop));
    async_future_unref(f);

    assert_int_equal(async_future_new(R.loop, &f), 0);
    assert_int_equal(async_loop_call_soon(R.loop, cb_set_error, f, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(R.loop, f, &res), ASYNC_EPIPE);
    async_future_unref(f);

    async_task *t;
    res = NULL;
    assert_int_equal(async_loop_spawn(R.loop, &t, main_returns_7, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(R.loop, t, &res), 0);
    assert_int_equal((intptr_t)res, 7);
    /* Already done: returns at once with the same outcome. */
    res = NULL;
    assert_int_equal(async_loop_run_until_complete(R.loop, t, &res), 0);
    assert_int_equal((intptr_t)res, 7);
    async_task_unref(t);
}

/* Row: loop stopped before f completed. */
static void test_run_until_complete_stopped(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(R.loop, &f), 0);
    assert_int_equal(async_loop_call_soon(R.loop, cb_stop, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(R.loop, f, NULL), ASYNC_ESTOPPED);
    assert_string_equal(async_strerror(ASYNC_ESTOPPED),
                        "loop stopped before the future completed");
    assert_false(async_future_done(f));
    /* The loop is still usable and the future can still complete. */
    assert_int_equal(async_loop_call_soon(R.loop, cb_set_result, f, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(R.loop, f, NULL), 0);
    async_future_unref(f);
}

static int cb_close_self(void *arg)
{
    (void)arg;
    R.rc = async_loop_close(R.loop);
    return async_loop_stop(R.loop);
}

/* Row: close while running. */
static void test_close_running(void **state)
{
    (void)state;
    assert_int_equal(async_loop_call_soon(R.loop, cb_close_self, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    assert_int_equal(R.rc, ASYNC_ECLOSERUNNING);
    assert_string_equal(async_strerror(R.rc), "cannot close a running loop");
    assert_false(async_loop_is_closed(R.loop));
}

/* Row: close twice. */
static void test_close_twice(void **state)
{
    (void)state;
    assert_int_equal(async_loop_close(R.loop), 0);
    assert_int_equal(async_loop_close(R.loop), 0);
    assert_true(async_loop_is_closed(R.loop));
}

static int task_sleep_long(void *arg, void **result)
{
    (void)result;
    (void)arg;
    note(9); /* must never run when the test closes first */
    return async_sleep(3600 * ASYNC_SEC);
}

static int task_started_then_sleeps(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return async_sleep(3600 * ASYNC_SEC);
}

/* Row: close drops pending callbacks and timers, frees everything it owns. */
static void test_close_drops_everything(void **state)
{
    (void)state;
    th_leaks leaks;
    assert_int_equal(async_loop_free(R.loop), 0);
    th_leaks_begin(&leaks);
    assert_int_equal(async_loop_new(&R.loop), 0);

    async_handle *soon, *later;
    async_task *started, *unstarted;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(async_loop_spawn(R.loop, &started, task_started_then_sleeps, NULL, NULL), 0);
    assert_int_equal(async_loop_stop(R.loop), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0); /* starts it */
    assert_int_equal(async_loop_call_soon(R.loop, cb_note1, NULL, &soon), 0);
    assert_int_equal(async_loop_call_later(R.loop, ASYNC_SEC, cb_note2, NULL, &later), 0);
    assert_int_equal(async_loop_spawn(R.loop, &unstarted, task_sleep_long, NULL, NULL), 0);
    assert_int_equal(async_loop_add_reader(R.loop, fds[0], cb_note3, NULL), 0);

    assert_int_equal(async_loop_close(R.loop), 0);
    assert_int_equal(R.n, 0);
    assert_true(async_handle_cancelled(soon));
    assert_true(async_handle_cancelled(later));
    assert_true(async_future_cancelled(async_task_future(started)));
    assert_true(async_future_cancelled(async_task_future(unstarted)));
    async_handle_unref(soon);
    async_handle_unref(later);
    async_task_unref(started);
    async_task_unref(unstarted);
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(async_loop_free(R.loop), 0);
    R.loop = NULL;
    th_leaks_end(&leaks);
    assert_int_equal(async_loop_new(&R.loop), 0);
}

static int noop_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

/* Row: scheduling (call_soon, call_later, spawn) on a closed loop. */
static void test_schedule_closed(void **state)
{
    (void)state;
    async_handle *h = NULL;
    async_task *t = NULL;
    async_future *f = NULL;
    assert_int_equal(async_loop_close(R.loop), 0);
    assert_int_equal(async_loop_call_soon(R.loop, cb_note1, NULL, &h), ASYNC_ECLOSED);
    assert_int_equal(async_loop_call_later(R.loop, 0, cb_note1, NULL, &h), ASYNC_ECLOSED);
    assert_int_equal(async_loop_call_at(R.loop, 0, cb_note1, NULL, &h), ASYNC_ECLOSED);
    assert_int_equal(async_loop_call_soon_threadsafe(R.loop, cb_note1, NULL), ASYNC_ECLOSED);
    assert_int_equal(async_loop_spawn(R.loop, &t, noop_task, NULL, NULL), ASYNC_ECLOSED);
    assert_int_equal(async_future_new(R.loop, &f), ASYNC_ECLOSED);
    assert_int_equal(async_loop_add_reader(R.loop, 0, cb_note1, NULL), ASYNC_ECLOSED);
    assert_null(h);
    assert_null(t);
    assert_null(f);
    assert_int_equal(async_set_event_loop(R.loop), ASYNC_ECLOSED);
}

static int cb_query_running(void *arg)
{
    (void)arg;
    async_loop *l = NULL;
    R.rc = async_get_event_loop(&l);
    if (async_get_running_loop() == R.loop && l == R.loop)
        note(1);
    return async_loop_stop(R.loop);
}

/* Row: running-loop query outside any running loop. */
static void test_running_loop_query(void **state)
{
    (void)state;
    async_loop *l = (async_loop *)&R;
    assert_null(async_get_running_loop());
    assert_int_equal(async_get_event_loop(&l), ASYNC_ENOLOOP);
    assert_ptr_equal(l, (async_loop *)&R); /* untouched on error */
    assert_int_equal(async_loop_call_soon(R.loop, cb_query_running, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    assert_int_equal(R.rc, 0);
    assert_int_equal(R.n, 1);
    assert_null(async_get_running_loop());
    /* The default loop: set, read back, cleared by free. */
    assert_int_equal(async_set_event_loop(R.loop), 0);
    assert_int_equal(async_get_event_loop(&l), 0);
    assert_ptr_equal(l, R.loop);
    assert_int_equal(async_set_event_loop(NULL), 0);
    assert_int_equal(async_get_event_loop(&l), ASYNC_ENOLOOP);
}

/* Row: call_soon is FIFO, runs each callback once, handles cancel. */
static void test_call_soon_fifo(void **state)
{
    (void)state;
    async_handle *h;
    assert_int_equal(async_loop_call_soon(R.loop, cb_note1, NULL, NULL), 0);
    assert_int_equal(async_loop_call_soon(R.loop, cb_note2, NULL, &h), 0);
    assert_int_equal(async_loop_call_soon(R.loop, cb_note3, NULL, NULL), 0);
    assert_int_equal(async_handle_cancel(h), 0);
    assert_true(async_handle_cancelled(h));
    async_handle_unref(h);
    assert_int_equal(async_loop_call_soon(R.loop, cb_note1, NULL, NULL), 0);
    assert_int_equal(async_loop_call_soon(R.loop, cb_stop, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    assert_int_equal(R.n, 3);
    assert_int_equal(R.order[0], 1);
    assert_int_equal(R.order[1], 3);
    assert_int_equal(R.order[2], 1);
    /* Nothing runs twice. */
    assert_int_equal(async_loop_stop(R.loop), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    assert_int_equal(R.n, 3);
}

/* Row: call_later/call_at: monotonic, equal deadlines in scheduling order. */
static void test_call_later_order(void **state)
{
    (void)state;
    async__loop_use_virtual_clock(R.loop, 1000);
    uint64_t now = async_loop_time(R.loop);
    assert_int_equal(async_loop_call_at(R.loop, now + 50, cb_note3, NULL, NULL), 0);
    assert_int_equal(async_loop_call_later(R.loop, 10, cb_note1, NULL, NULL), 0);
    assert_int_equal(async_loop_call_at(R.loop, now + 10, cb_note2, NULL, NULL), 0);
    assert_int_equal(async_loop_call_later(R.loop, 10, cb_note3, NULL, NULL), 0);
    assert_int_equal(async_loop_call_at(R.loop, now + 60, cb_stop, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    assert_int_equal(R.n, 4);
    assert_int_equal(R.order[0], 1);
    assert_int_equal(R.order[1], 2);
    assert_int_equal(R.order[2], 3);
    assert_int_equal(R.order[3], 3);
    assert_true(async_loop_time(R.loop) >= now + 60);
}

static void *thread_call_soon(void *arg)
{
    (void)arg;
    usleep(50 * 1000); /* the loop is blocked in poll by now */
    async_loop_call_soon_threadsafe(R.loop, cb_stop, NULL);
    return NULL;
}

/* Row: call_soon_threadsafe from another thread wakes a blocked loop. */
static void test_call_soon_threadsafe(void **state)
{
    (void)state;
    pthread_t th;
    uint64_t t0 = async_loop_time(R.loop);
    assert_int_equal(pthread_create(&th, NULL, thread_call_soon, NULL), 0);
    /* Nothing else is scheduled: without the wakeup this blocks forever. */
    assert_int_equal(async_loop_run_forever(R.loop), 0);
    assert_true(async_loop_time(R.loop) - t0 >= 50 * (uint64_t)ASYNC_MSEC);
    pthread_join(th, NULL);
}

static int stray_task(void *arg, void **result)
{
    (void)result;
    int *cancelled = arg;
    int rc = async_sleep(3600 * ASYNC_SEC);
    if (rc == ASYNC_ECANCELED)
        (*cancelled)++;
    return rc;
}

static int run_main(void *arg, void **result)
{
    for (int i = 0; i < 3; i++)
        async_spawn(NULL, stray_task, arg);
    async_yield(); /* let them start sleeping */
    *result = (void *)(intptr_t)99;
    return 0;
}

/* Row: async_run: new loop, run main, cancel and drain leftovers, close. */
static void test_async_run(void **state)
{
    (void)state;
    th_leaks leaks;
    th_leaks_begin(&leaks);
    int cancelled = 0;
    void *res = NULL;
    assert_int_equal(async_run(run_main, &cancelled, &res), 0);
    assert_int_equal((intptr_t)res, 99);
    assert_int_equal(cancelled, 3);
    assert_null(async_get_running_loop());
    th_leaks_end(&leaks);
}

static int two_loops_thread_main(void *arg, void **result)
{
    (void)arg;
    *result = async_get_running_loop();
    return async_sleep(20 * ASYNC_MSEC);
}

static void *two_loops_thread(void *arg)
{
    void *res = NULL;
    *(int *)arg = async_run(two_loops_thread_main, NULL, &res);
    return res;
}

/* Two loops in two threads run independently. */
static void test_two_threads(void **state)
{
    (void)state;
    pthread_t a, b;
    int rca = -1, rcb = -1;
    void *la, *lb;
    assert_int_equal(pthread_create(&a, NULL, two_loops_thread, &rca), 0);
    assert_int_equal(pthread_create(&b, NULL, two_loops_thread, &rcb), 0);
    pthread_join(a, &la);
    pthread_join(b, &lb);
    assert_int_equal(rca, 0);
    assert_int_equal(rcb, 0);
    assert_non_null(la);
    assert_non_null(lb);
    assert_ptr_not_equal(la, lb);
}

/* Bad input: NULL everywhere, nothing happens. */
static void test_bad_input(void **state)
{
    (void)state;
    assert_int_equal(async_loop_new(NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_run_forever(NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_run_future(NULL, NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_run_future(R.loop, NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_stop(NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_close(NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_free(NULL), 0);
    assert_false(async_loop_is_running(NULL));
    assert_true(async_loop_is_closed(NULL));
    assert_int_equal(async_get_event_loop(NULL), ASYNC_EINVAL);
    assert_int_equal(async_run(NULL, NULL, NULL), ASYNC_EINVAL);
    /* A future of another loop. */
    async_future *f;
    assert_int_equal(async_loop_new(&R.other), 0);
    assert_int_equal(async_future_new(R.other, &f), 0);
    assert_int_equal(async_loop_run_future(R.loop, f, NULL), ASYNC_EWRONGLOOP);
    async_future_unref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_run_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_other_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_during_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_before_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_until_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_until_complete_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drops_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running_loop_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_soon_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_later_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_soon_threadsafe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests_name("loop_lifecycle", tests, NULL, NULL);
}
