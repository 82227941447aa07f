/*
 * Futures: states, results, errors, done callbacks, many awaiters,
 * "exception was never retrieved".
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

/* A future completes once; a second set is refused and changes nothing. */
static void test_states(void **state)
{
    (void)state;
    async_future *f;
    void *res = NULL;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_false(async_future_done(f));
    assert_false(async_future_cancelled(f));
    assert_int_equal(async_future_result(f, &res), ASYNC_EPENDING);
    assert_ptr_equal(async_future_loop(f), L);
    assert_int_equal(async_future_set_result(f, (void *)(intptr_t)5), 0);
    assert_true(async_future_done(f));
    assert_int_equal(async_future_set_result(f, (void *)(intptr_t)6), ASYNC_EDONE);
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), ASYNC_EDONE);
    assert_int_equal(async_future_cancel(f), ASYNC_EDONE);
    assert_int_equal(async_future_result(f, &res), 0);
    assert_int_equal((intptr_t)res, 5);
    async_future_unref(f);

    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_set_error(f, 0), ASYNC_EINVAL);
    assert_int_equal(async_future_set_error(f, 3), ASYNC_EINVAL);
    assert_false(async_future_done(f));
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), 0);
    res = (void *)1;
    assert_int_equal(async_future_result(f, &res), ASYNC_EPIPE);
    assert_ptr_equal(res, (void *)1); /* untouched on error */
    async_future_unref(f);

    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_cancel(f), 0);
    assert_true(async_future_cancelled(f));
    assert_true(async_future_done(f));
    assert_int_equal(async_future_result(f, NULL), ASYNC_ECANCELED);
    async_future_unref(f);
}

typedef struct cb_log {
    int calls[8]; /* tag of each call, in order */
    int n;        /* number of calls */
    bool inline_call; /* a callback ran inside set_result */
} cb_log;

static cb_log CB;
static bool in_set;

static void done_cb(async_future *f, void *arg)
{
    (void)f;
    if (in_set)
        CB.inline_call = true;
    if (CB.n < 8)
        CB.calls[CB.n++] = (int)(intptr_t)arg;
}

static int stop_cb(void *arg)
{
    (void)arg;
    return async_loop_stop(L);
}

/* Done callbacks run through the loop, in order, once; removal works. */
static void test_done_callbacks(void **state)
{
    (void)state;
    async_future *f;
    memset(&CB, 0, sizeof(CB));
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_add_done_callback(f, done_cb, (void *)1), 0);
    assert_int_equal(async_future_add_done_callback(f, done_cb, (void *)2), 0);
    assert_int_equal(async_future_add_done_callback(f, done_cb, (void *)3), 0);
    assert_int_equal(async_future_add_done_callback(f, done_cb, (void *)2), 0);
    assert_int_equal(async_future_remove_done_callback(f, done_cb, (void *)2), 2);
    assert_int_equal(async_future_remove_done_callback(f, done_cb, (void *)9), 0);
    in_set = true;
    assert_int_equal(async_future_set_result(f, NULL), 0);
    in_set = false;
    assert_int_equal(CB.n, 0); /* never inline */
    /* Added after completion: scheduled too, after the others. */
    assert_int_equal(async_future_add_done_callback(f, done_cb, (void *)4), 0);
    assert_int_equal(async_loop_call_soon(L, stop_cb, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_false(CB.inline_call);
    assert_int_equal(CB.n, 3);
    assert_int_equal(CB.calls[0], 1);
    assert_int_equal(CB.calls[1], 3);
    assert_int_equal(CB.calls[2], 4);
    assert_int_equal(async_future_add_done_callback(NULL, done_cb, NULL), ASYNC_EINVAL);
    assert_int_equal(async_future_add_done_callback(f, NULL, NULL), ASYNC_EINVAL);
    async_future_unref(f);
}

typedef struct awaiter_rec {
    async_future *f;
    int rc[8];
    void *res[8];
} awaiter_rec;

static int await_future(void *arg, void **result)
{
    (void)result;
    awaiter_rec *r = arg;
    static int slot;
    int me = slot++ % 8;
    r->rc[me] = async_await(r->f, &r->res[me]);
    return 0;
}

static int set_later(void *arg, void **result)
{
    (void)result;
    awaiter_rec *r = arg;
    async_sleep(1 * ASYNC_MSEC);
    return async_future_set_result(r->f, (void *)(intptr_t)77);
}

/* Many tasks await one future; all get the same outcome. */
static void test_many_awaiters(void **state)
{
    (void)state;
    awaiter_rec r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(async_future_new(L, &r.f), 0);
    async_task *tasks[6];
    for (int i = 0; i < 5; i++)
        assert_int_equal(async_loop_spawn(L, &tasks[i], await_future, &r, NULL), 0);
    assert_int_equal(async_loop_spawn(L, &tasks[5], set_later, &r, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, r.f, NULL), 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(async_loop_run_until_complete(L, tasks[i], NULL), 0);
        async_task_unref(tasks[i]);
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r.rc[i], 0);
        assert_int_equal((intptr_t)r.res[i], 77);
    }
    async_future_unref(r.f);
}

static int exc_count;
static int exc_error;
static char exc_msg[128];

static void exc_handler(async_loop *loop, const async_exception_context *ctx,
                        void *arg)
{
    (void)loop;
    (void)arg;
    exc_count++;
    exc_error = ctx->error;
    strncpy(exc_msg, ctx->message, sizeof(exc_msg) - 1);
}

static int failing_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return ASYNC_EPIPE;
}

static int failing_callback(void *arg)
{
    (void)arg;
    return ASYNC_ENOSPC;
}

/* Errors nobody retrieved are reported once, when freed. */
static void test_never_retrieved(void **state)
{
    (void)state;
    exc_count = 0;
    assert_int_equal(async_loop_set_exception_handler(L, exc_handler, NULL), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, failing_task, NULL, NULL), 0);
    async_future *done;
    assert_int_equal(async_future_new(L, &done), 0);
    assert_int_equal(async_loop_call_later(L, ASYNC_MSEC, stop_cb, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_true(async_future_done(async_task_future(t)));
    assert_int_equal(exc_count, 0);
    async_task_unref(t); /* last reference, error never looked at */
    assert_int_equal(exc_count, 1);
    assert_int_equal(exc_error, ASYNC_EPIPE);
    assert_string_equal(exc_msg, "Task exception was never retrieved");

    /* Retrieved: no report. */
    assert_int_equal(async_loop_spawn(L, &t, failing_task, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_EPIPE);
    async_task_unref(t);
    assert_int_equal(exc_count, 1);

    /* A plain future too, and a failing callback. */
    assert_int_equal(async_future_set_error(done, ASYNC_EBUSY), 0);
    async_future_unref(done);
    assert_int_equal(exc_count, 2);
    assert_string_equal(exc_msg, "Future exception was never retrieved");
    assert_int_equal(async_loop_call_soon(L, failing_callback, NULL, NULL), 0);
    assert_int_equal(async_loop_call_soon(L, stop_cb, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(exc_count, 3);
    assert_int_equal(exc_error, ASYNC_ENOSPC);
    assert_string_equal(exc_msg, "callback failed");
    assert_int_equal(async_loop_set_exception_handler(NULL, exc_handler, NULL), ASYNC_EINVAL);
}

/* Await outside a task is an error, not a hang. */
static void test_await_outside_task(void **state)
{
    (void)state;
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_await(f, NULL), ASYNC_ENOTTASK);
    assert_int_equal(async_future_await(NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_future_new(NULL, &f), ASYNC_EINVAL);
    assert_int_equal(async_future_set_result(NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_future_result(NULL, NULL), ASYNC_EINVAL);
    assert_false(async_future_done(NULL));
    async_future_unref(f);
    async_future_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_awaiters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_retrieved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_await_outside_task, setup, teardown),
    };
    return cmocka_run_group_tests_name("future", tests, NULL, NULL);
}
