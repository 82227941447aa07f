/*
 * Thread-safe futures across threads and loops: run_coroutine_threadsafe
 * waited on by a plain thread (result, error, time-out, cancel), awaited by
 * a task of another loop (and cancelled there), wrap_future, hand-off
 * futures set by plain threads, loop futures of another loop refused with
 * ASYNC_EWRONGLOOP, and loops that close with work still pending.
 *
 * Each loop runs on its own thread and is closed there, so its thread's
 * stack pool is drained before the leak check.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"

static th_leaks leaks;

static int setup(void **state)
{
    (void)state;
    th_leaks_begin(&leaks);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    th_leaks_end(&leaks);
    return 0;
}

/* ---- a loop on its own thread -------------------------------------------------- */

typedef struct loop_thread {
    async_loop *loop;  /* created by the starter, run and closed by the thread */
    pthread_t thread;  /* runs it */
} loop_thread;

static void *loop_thread_main(void *arg)
{
    loop_thread *lt = arg;
    async_loop_run_forever(lt->loop);
    async_loop_close(lt->loop);
    return NULL;
}

static void lt_start(loop_thread *lt)
{
    assert_int_equal(async_loop_new(&lt->loop), 0);
    assert_int_equal(pthread_create(&lt->thread, NULL, loop_thread_main, lt), 0);
}

static int stop_cb(void *arg)
{
    return async_loop_stop(arg);
}

/* Stops the loop, joins its thread (which closes it), frees it. */
static void lt_stop(loop_thread *lt)
{
    assert_int_equal(async_loop_call_soon_threadsafe(lt->loop, stop_cb, lt->loop),
                     0);
    pthread_join(lt->thread, NULL);
    assert_int_equal(async_loop_free(lt->loop), 0);
}

/* Polls *v until it differs from `from` (at most about 10 s); its value. */
static int wait_changed(atomic_int *v, int from)
{
    struct timespec ts = {0, 1000 * 1000};
    for (int i = 0; i < 10000 && atomic_load(v) == from; i++)
        nanosleep(&ts, NULL);
    return atomic_load(v);
}

/* ---- coroutines run on the loops ------------------------------------------------ */

static int answer(void *arg, void **result)
{
    (void)arg;
    int rc = async_yield();
    *result = (void *)(intptr_t)42;
    return rc;
}

static int fail_pipe(void *arg, void **result)
{
    (void)arg, (void)result;
    return ASYNC_EPIPE;
}

/* Sleeps `*arg` ms (real time) and records what the sleep returned. */
typedef struct sleeper {
    int ms;                /* how long */
    atomic_int rc;         /* the sleep's return, or 1 while sleeping */
} sleeper;

static int sleep_fn(void *arg, void **result)
{
    (void)result;
    sleeper *s = arg;
    atomic_store(&s->rc, 1);
    int rc = async_sleep((int64_t)s->ms * ASYNC_MSEC);
    atomic_store(&s->rc, rc);
    return rc;
}

/* ---- plain thread waiting ------------------------------------------------------- */

static void test_rct_result(void **state)
{
    (void)state;
    loop_thread lt;
    lt_start(&lt);
    async_tsfuture *f;
    assert_int_equal(async_run_coroutine_threadsafe(lt.loop, answer, NULL, &f),
                     0);
    void *res = NULL;
    assert_int_equal(async_tsfuture_wait(f, -1, &res), 0);
    assert_int_equal((intptr_t)res, 42);
    assert_true(async_tsfuture_done(f));
    assert_false(async_tsfuture_cancelled(f));
    res = NULL;
    assert_int_equal(async_tsfuture_result(f, &res), 0);
    assert_int_equal((intptr_t)res, 42);
    assert_int_equal(async_tsfuture_set_result(f, NULL), ASYNC_EDONE);
    assert_int_equal(async_tsfuture_cancel(f), ASYNC_EDONE);
    async_tsfuture_unref(f);

    assert_int_equal(async_run_coroutine_threadsafe(lt.loop, fail_pipe, NULL, &f),
                     0);
    assert_int_equal(async_tsfuture_wait(f, 10 * ASYNC_SEC, NULL), ASYNC_EPIPE);
    async_tsfuture_unref(f);
    lt_stop(&lt);
}

static void test_rct_timeout_then_cancel(void **state)
{
    (void)state;
    loop_thread lt;
    lt_start(&lt);
    sleeper s = {.ms = 100000};
    atomic_init(&s.rc, 0);
    async_tsfuture *f;
    assert_int_equal(async_run_coroutine_threadsafe(lt.loop, sleep_fn, &s, &f),
                     0);
    assert_int_equal(wait_changed(&s.rc, 0), 1); /* it sleeps on its loop */
    assert_int_equal(async_tsfuture_wait(f, 20 * ASYNC_MSEC, NULL),
                     ASYNC_ETIMEDOUT);
    assert_false(async_tsfuture_done(f)); /* a time-out cancels nothing */
    assert_int_equal(async_tsfuture_result(f, NULL), ASYNC_EPENDING);
    assert_int_equal(async_tsfuture_cancel(f), 0);
    assert_true(async_tsfuture_cancelled(f));
    assert_int_equal(async_tsfuture_wait(f, -1, NULL), ASYNC_ECANCELED);
    /* The cancel request reaches the task on its loop soon after. */
    assert_int_equal(wait_changed(&s.rc, 1), ASYNC_ECANCELED);
    lt_stop(&lt);
    async_tsfuture_unref(f);
}

/* Cancelled before the loop even started the task: it never runs. */
static void test_rct_cancel_before_start(void **state)
{
    (void)state;
    async_loop *loop;
    assert_int_equal(async_loop_new(&loop), 0);
    sleeper s = {.ms = 1};
    atomic_init(&s.rc, 0);
    async_tsfuture *f;
    assert_int_equal(async_run_coroutine_threadsafe(loop, sleep_fn, &s, &f), 0);
    assert_int_equal(async_tsfuture_cancel(f), 0);
    async_loop_stop(loop);
    assert_int_equal(async_loop_run_forever(loop), 0);
    assert_int_equal(atomic_load(&s.rc), 0);
    assert_int_equal(async_tsfuture_result(f, NULL), ASYNC_ECANCELED);
    async_tsfuture_unref(f);
    assert_int_equal(async_loop_free(loop), 0);
}

/* The loop closes before the task started / while it runs: ECLOSED. */
static void test_rct_loop_closes(void **state)
{
    (void)state;
    async_loop *loop;
    assert_int_equal(async_loop_new(&loop), 0);
    async_tsfuture *never_started, *running;
    sleeper s = {.ms = 100000};
    atomic_init(&s.rc, 0);
    assert_int_equal(async_run_coroutine_threadsafe(loop, sleep_fn, &s,
                                                    &running), 0);
    async_loop_stop(loop);
    assert_int_equal(async_loop_run_forever(loop), 0); /* starts the task */
    assert_int_equal(async_run_coroutine_threadsafe(loop, answer, NULL,
                                                    &never_started), 0);
    assert_int_equal(async_loop_close(loop), 0);
    assert_int_equal(async_tsfuture_wait(never_started, -1, NULL),
                     ASYNC_ECLOSED);
    assert_int_equal(async_tsfuture_wait(running, -1, NULL), ASYNC_ECLOSED);
    assert_int_equal(async_run_coroutine_threadsafe(loop, answer, NULL,
                                                    &never_started),
                     ASYNC_ECLOSED);
    async_tsfuture_unref(never_started);
    async_tsfuture_unref(running);
    assert_int_equal(async_loop_free(loop), 0);
}

static void test_errors(void **state)
{
    (void)state;
    async_tsfuture *f;
    async_loop *loop;
    assert_int_equal(async_loop_new(&loop), 0);
    assert_int_equal(async_run_coroutine_threadsafe(NULL, answer, NULL, &f),
                     ASYNC_EINVAL);
    assert_int_equal(async_run_coroutine_threadsafe(loop, NULL, NULL, &f),
                     ASYNC_EINVAL);
    assert_int_equal(async_run_coroutine_threadsafe(loop, answer, NULL, NULL),
                     ASYNC_EINVAL);
    assert_int_equal(async_tsfuture_new(NULL), ASYNC_EINVAL);
    assert_int_equal(async_tsfuture_new(&f), 0);
    assert_int_equal(async_tsfuture_set_error(f, 0), ASYNC_EINVAL);
    assert_int_equal(async_tsfuture_set_error(NULL, ASYNC_EPIPE), ASYNC_EINVAL);
    assert_int_equal(async_tsfuture_set_result(NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_tsfuture_cancel(NULL), ASYNC_EINVAL);
    assert_int_equal(async_tsfuture_result(NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_tsfuture_wait(NULL, 0, NULL), ASYNC_EINVAL);
    assert_int_equal(async_tsfuture_await(NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_tsfuture_await(f, NULL), ASYNC_ENOTTASK);
    async_future *w;
    assert_int_equal(async_tsfuture_wrap(NULL, loop, &w), ASYNC_EINVAL);
    assert_int_equal(async_tsfuture_wrap(f, NULL, &w), ASYNC_EINVAL);
    assert_int_equal(async_tsfuture_wrap(f, loop, NULL), ASYNC_EINVAL);
    assert_false(async_tsfuture_done(NULL));
    assert_false(async_tsfuture_cancelled(NULL));
    assert_int_equal(async_tsfuture_wait(f, 0, NULL), ASYNC_ETIMEDOUT);
    assert_int_equal(async_tsfuture_set_error(f, ASYNC_EPIPE), 0);
    assert_int_equal(async_tsfuture_wait(f, 0, NULL), ASYNC_EPIPE);
    async_tsfuture_unref(f);
    async_tsfuture_unref(NULL);
    assert_int_equal(async_loop_close(loop), 0);
    assert_int_equal(async_tsfuture_wrap(f, loop, &w), ASYNC_ECLOSED);
    assert_int_equal(async_loop_free(loop), 0);
}

/* ---- tasks of another loop -------------------------------------------------------- */

typedef struct cross {
    async_loop *other;      /* the loop that runs the work */
    sleeper s;              /* the work, for the cancel case */
    async_tsfuture *f;      /* the work's future */
    int rc;                 /* what the await returned */
    intptr_t value;         /* its result */
    int wait_rc;            /* async_tsfuture_wait from inside a loop */
    int wrong_rc;           /* awaiting a loop future of `other` */
    async_future *foreign;  /* that future (created on `other`'s thread) */
} cross;

static int cross_await(void *arg, void **result)
{
    (void)result;
    cross *c = arg;
    int rc = async_run_coroutine_threadsafe(c->other, answer, NULL, &c->f);
    if (rc)
        return rc;
    void *res = NULL;
    c->rc = async_tsfuture_await(c->f, &res);
    c->value = (intptr_t)res;
    c->wait_rc = async_tsfuture_wait(c->f, 0, NULL);
    if (c->foreign)
        c->wrong_rc = async_future_await(c->foreign, NULL);
    async_tsfuture_unref(c->f);
    return 0;
}

static void test_await_from_other_loop(void **state)
{
    (void)state;
    loop_thread lt;
    lt_start(&lt);
    cross c = {.other = lt.loop};
    /* A loop future of the other loop, made before it runs anything. */
    assert_int_equal(async_future_new(lt.loop, &c.foreign), 0);
    assert_int_equal(async_run(cross_await, &c, NULL), 0);
    lt_stop(&lt);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.value, 42);
    assert_int_equal(c.wait_rc, ASYNC_ERUNNING);
    assert_int_equal(c.wrong_rc, ASYNC_EWRONGLOOP);
    async_future_unref(c.foreign);
}

/* Cancelling the awaiting task cancels the tsfuture and the remote task. */
static int cross_cancel_victim(void *arg, void **result)
{
    (void)result;
    cross *c = arg;
    c->rc = async_tsfuture_await(c->f, NULL);
    return c->rc;
}

static int cross_cancel_main(void *arg, void **result)
{
    (void)result;
    cross *c = arg;
    int rc = async_run_coroutine_threadsafe(c->other, sleep_fn, &c->s, &c->f);
    if (rc)
        return rc;
    async_task *t;
    async_spawn(&t, cross_cancel_victim, c);
    /* Until the remote task sleeps (then the victim awaits for sure). */
    for (int i = 0; i < 10000; i++)
        if (async_sleep(ASYNC_MSEC) || atomic_load(&c->s.rc) == 1)
            break;
    async_task_cancel(t);
    (void)async_await(t, NULL);
    async_task_unref(t);
    return 0;
}

static void test_await_cancelled(void **state)
{
    (void)state;
    loop_thread lt;
    lt_start(&lt);
    cross c = {.other = lt.loop, .s = {.ms = 100000}};
    atomic_init(&c.s.rc, 0);
    assert_int_equal(async_run(cross_cancel_main, &c, NULL), 0);
    assert_int_equal(c.rc, ASYNC_ECANCELED);
    assert_true(async_tsfuture_cancelled(c.f));
    assert_int_equal(wait_changed(&c.s.rc, 1), ASYNC_ECANCELED);
    lt_stop(&lt);
    async_tsfuture_unref(c.f);
}

/* ---- hand-off futures set by plain threads ------------------------------------- */

static void *set_later(void *arg)
{
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    async_tsfuture_set_result(arg, (void *)(intptr_t)7);
    return NULL;
}

typedef struct handoff {
    async_tsfuture *f;     /* set by a plain thread */
    int rc;                /* await's return */
    intptr_t value;        /* await's result */
    int wrap_rc;           /* the wrapper's outcome */
    intptr_t wrap_value;   /* the wrapper's result */
} handoff;

static int handoff_main(void *arg, void **result)
{
    (void)result;
    handoff *h = arg;
    async_future *w;
    int rc = async_tsfuture_wrap(h->f, async_get_running_loop(), &w);
    if (rc)
        return rc;
    pthread_t th;
    pthread_create(&th, NULL, set_later, h->f);
    void *res = NULL;
    h->rc = async_tsfuture_await(h->f, &res);
    h->value = (intptr_t)res;
    res = NULL;
    h->wrap_rc = async_await(w, &res);
    h->wrap_value = (intptr_t)res;
    async_future_unref(w);
    pthread_join(th, NULL);
    /* Wrapping a done tsfuture gives a done loop future. */
    rc = async_tsfuture_wrap(h->f, async_get_running_loop(), &w);
    if (rc == 0 && !async_future_done(w))
        rc = ASYNC_EFAILED;
    async_future_unref(w);
    return rc;
}

static void test_handoff_from_plain_thread(void **state)
{
    (void)state;
    handoff h = {0};
    assert_int_equal(async_tsfuture_new(&h.f), 0);
    assert_int_equal(async_run(handoff_main, &h, NULL), 0);
    assert_int_equal(h.rc, 0);
    assert_int_equal(h.value, 7);
    assert_int_equal(h.wrap_rc, 0);
    assert_int_equal(h.wrap_value, 7);
    async_tsfuture_unref(h.f);
}

/* A wrapper still pending when its loop closes: nothing leaks, and the
 * tsfuture can still complete afterwards. */
static void test_wrap_pending_at_close(void **state)
{
    (void)state;
    async_loop *loop;
    assert_int_equal(async_loop_new(&loop), 0);
    async_tsfuture *f;
    assert_int_equal(async_tsfuture_new(&f), 0);
    async_future *w, *w2;
    assert_int_equal(async_tsfuture_wrap(f, loop, &w), 0);
    assert_int_equal(async_tsfuture_wrap(f, loop, &w2), 0);
    async_future_unref(w2);
    assert_int_equal(async_loop_close(loop), 0);
    assert_false(async_future_done(w));
    assert_int_equal(async_tsfuture_set_result(f, NULL), 0);
    async_future_unref(w);
    async_tsfuture_unref(f);
    assert_int_equal(async_loop_free(loop), 0);
}

/* Completed while its link is queued, then the loop closes: the queue's
 * drop frees the link. */
static void test_wrap_queued_at_close(void **state)
{
    (void)state;
    async_loop *loop;
    assert_int_equal(async_loop_new(&loop), 0);
    async_tsfuture *f;
    assert_int_equal(async_tsfuture_new(&f), 0);
    async_future *w;
    assert_int_equal(async_tsfuture_wrap(f, loop, &w), 0);
    assert_int_equal(async_tsfuture_set_error(f, ASYNC_EPIPE), 0);
    assert_int_equal(async_loop_close(loop), 0);
    async_future_unref(w);
    async_tsfuture_unref(f);
    assert_int_equal(async_loop_free(loop), 0);
}

/* Many round trips between two loop threads and the main thread at once:
 * the TSan configuration checks the hand-over. */
enum { ROUNDS = 200 };

static int ping_main(void *arg, void **result)
{
    (void)result;
    async_loop *other = arg;
    for (int i = 0; i < ROUNDS; i++) {
        async_tsfuture *f;
        int rc = async_run_coroutine_threadsafe(other, answer, NULL, &f);
        if (rc)
            return rc;
        void *res = NULL;
        rc = async_tsfuture_await(f, &res);
        async_tsfuture_unref(f);
        if (rc || (intptr_t)res != 42)
            return rc ? rc : ASYNC_EFAILED;
    }
    return 0;
}

static void *ping_thread(void *arg)
{
    intptr_t rc = async_run(ping_main, arg, NULL);
    return (void *)rc;
}

static void test_round_trips_concurrent(void **state)
{
    (void)state;
    loop_thread lt;
    lt_start(&lt);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ping_thread, lt.loop), 0);
    for (int i = 0; i < ROUNDS; i++) {
        async_tsfuture *f;
        assert_int_equal(async_run_coroutine_threadsafe(lt.loop, answer, NULL,
                                                        &f), 0);
        void *res = NULL;
        assert_int_equal(async_tsfuture_wait(f, -1, &res), 0);
        assert_int_equal((intptr_t)res, 42);
        async_tsfuture_unref(f);
    }
    void *trc;
    pthread_join(th, &trc);
    assert_int_equal((intptr_t)trc, 0);
    lt_stop(&lt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_rct_result),
        T(test_rct_timeout_then_cancel),
        T(test_rct_cancel_before_start),
        T(test_rct_loop_closes),
        T(test_errors),
        T(test_await_from_other_loop),
        T(test_await_cancelled),
        T(test_handoff_from_plain_thread),
        T(test_wrap_pending_at_close),
        T(test_wrap_queued_at_close),
        T(test_round_trips_concurrent),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
