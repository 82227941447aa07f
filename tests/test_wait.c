/*
 * asyncio.wait, as_completed, the task-array combinators and gather of n
 * calls: each return_when, time-outs that cancel nothing, cancellation at
 * each suspension point, argument errors, and iterators that outlive their
 * futures' loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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

/* Runs fn(arg) as a task on L until it finishes; returns its outcome. */
static int run_task(async_fn fn, void *arg)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, fn, arg, NULL), 0);
    int rc = async_loop_run_until_complete(L, t, NULL);
    async_task_unref(t);
    return rc;
}

/* A child: sleeps ms, then returns (intptr_t)ms or fails with `error`. */
typedef struct child {
    int ms;       /* how long to sleep */
    int error;    /* 0, or what to fail with */
    int sleep_rc; /* what the sleep returned */
} child;

static int child_fn(void *arg, void **result)
{
    child *c = arg;
    c->sleep_rc = async_sleep((int64_t)c->ms * ASYNC_MSEC);
    if (c->sleep_rc)
        return c->sleep_rc;
    *result = (void *)(intptr_t)c->ms;
    return c->error;
}

enum { MAXC = 8 };

/* A scenario run inside one task: spawn children, call the function under
 * test, record, then cancel and reap whatever is left. */
typedef struct scene {
    child c[MAXC];             /* the children */
    size_t n;                  /* how many */
    async_task *t[MAXC];       /* their tasks */
    async_future *f[MAXC];     /* their futures */
    int64_t timeout;           /* argument under test */
    async_return_when when;    /* argument under test */
    bool done[MAXC];           /* wait's done flags */
    int rc;                    /* the call's return */
    uint64_t elapsed;          /* ns the call took */
    size_t order[MAXC + 2];    /* as_completed: what each next() gave */
    int next_rc[MAXC + 2];     /* as_completed: each next()'s return */
    size_t nnext;              /* how many next() calls */
    bool cancelled_after[MAXC];/* child cancelled when the call returned */
} scene;

static void scene_spawn(scene *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (async_spawn(&s->t[i], child_fn, &s->c[i]) != 0)
            abort();
        s->f[i] = async_task_future(s->t[i]);
    }
}

static void scene_reap(scene *s)
{
    for (size_t i = 0; i < s->n; i++) {
        s->cancelled_after[i] = async_task_cancelling(s->t[i]);
        async_task_cancel(s->t[i]);
        async_shield_enter();
        (void)async_await(s->t[i], NULL);
        async_shield_leave();
        async_task_unref(s->t[i]);
    }
}

static int wait_scene(void *arg, void **result)
{
    (void)result;
    scene *s = arg;
    scene_spawn(s);
    uint64_t t0 = async_loop_time(L);
    s->rc = async_wait(s->f, s->n, s->timeout, s->when, s->done);
    s->elapsed = async_loop_time(L) - t0;
    scene_reap(s);
    return 0;
}

static void test_wait_first_completed(void **state)
{
    (void)state;
    scene s = {.n = 3, .c = {{.ms = 30}, {.ms = 10}, {.ms = 50}},
               .timeout = ASYNC_NO_TIMEOUT, .when = ASYNC_FIRST_COMPLETED};
    assert_int_equal(run_task(wait_scene, &s), 0);
    assert_int_equal(s.rc, 1);
    assert_false(s.done[0]);
    assert_true(s.done[1]);
    assert_false(s.done[2]);
    assert_true(s.elapsed >= 10 * ASYNC_MSEC);
    assert_false(s.cancelled_after[0]); /* wait cancels nothing */
}

static void test_wait_all_completed(void **state)
{
    (void)state;
    scene s = {.n = 3, .c = {{.ms = 30}, {.ms = 10, .error = ASYNC_EPIPE},
                             {.ms = 20}},
               .timeout = ASYNC_NO_TIMEOUT, .when = ASYNC_ALL_COMPLETED};
    assert_int_equal(run_task(wait_scene, &s), 0);
    assert_int_equal(s.rc, 3);
    assert_true(s.done[0] && s.done[1] && s.done[2]);
    assert_true(s.elapsed >= 30 * ASYNC_MSEC);
}

static void test_wait_first_exception(void **state)
{
    (void)state;
    scene s = {.n = 3, .c = {{.ms = 5}, {.ms = 10, .error = ASYNC_EPIPE},
                             {.ms = 1000}},
               .timeout = ASYNC_NO_TIMEOUT, .when = ASYNC_FIRST_EXCEPTION};
    assert_int_equal(run_task(wait_scene, &s), 0);
    assert_int_equal(s.rc, 2);
    assert_true(s.done[0] && s.done[1]);
    assert_false(s.done[2]);
    assert_true(s.elapsed >= 10 * ASYNC_MSEC);
    assert_true(s.elapsed < 1000 * ASYNC_MSEC);
}

/* FIRST_EXCEPTION with no failure is ALL_COMPLETED. */
static void test_wait_first_exception_none_fails(void **state)
{
    (void)state;
    scene s = {.n = 2, .c = {{.ms = 5}, {.ms = 20}}, .timeout = ASYNC_NO_TIMEOUT,
               .when = ASYNC_FIRST_EXCEPTION};
    assert_int_equal(run_task(wait_scene, &s), 0);
    assert_int_equal(s.rc, 2);
    assert_true(s.elapsed >= 20 * ASYNC_MSEC);
}

/* A negative time-out means "now", as asyncio's call_later(negative) does:
 * the wait returns after one iteration with nothing done and nothing
 * cancelled (the children still finish afterwards). */
static void test_wait_negative_timeout_is_now(void **state)
{
    (void)state;
    scene s = {.n = 2, .c = {{.ms = 200}, {.ms = 300}}, .timeout = -5,
               .when = ASYNC_ALL_COMPLETED};
    assert_int_equal(run_task(wait_scene, &s), 0);
    assert_int_equal(s.rc, 0);
    assert_false(s.done[0]);
    assert_false(s.done[1]);
}

/* A cancelled future is not an exception for FIRST_EXCEPTION (asyncio). */
static int wait_cancelled_scene(void *arg, void **result)
{
    (void)result;
    scene *s = arg;
    async_future *plain[2];
    async_future_new(L, &plain[0]);
    async_future_new(L, &plain[1]);
    async_future_cancel(plain[0]);
    uint64_t t0 = async_loop_time(L);
    s->rc = async_wait(plain, 2, 20 * ASYNC_MSEC, ASYNC_FIRST_EXCEPTION,
                       s->done);
    s->elapsed = async_loop_time(L) - t0;
    async_future_unref(plain[0]);
    async_future_unref(plain[1]);
    return 0;
}

static void test_wait_first_exception_ignores_cancel(void **state)
{
    (void)state;
    scene s = {0};
    assert_int_equal(run_task(wait_cancelled_scene, &s), 0);
    assert_int_equal(s.rc, 1);
    assert_true(s.done[0]);
    assert_false(s.done[1]);
    assert_true(s.elapsed >= 20 * ASYNC_MSEC); /* ran into the time-out */
}

/* On time-out wait returns normally and cancels nothing. */
static void test_wait_timeout(void **state)
{
    (void)state;
    scene s = {.n = 2, .c = {{.ms = 1000}, {.ms = 2000}},
               .timeout = 50 * ASYNC_MSEC, .when = ASYNC_ALL_COMPLETED};
    assert_int_equal(run_task(wait_scene, &s), 0);
    assert_int_equal(s.rc, 0);
    assert_false(s.done[0] || s.done[1]);
    assert_true(s.elapsed >= 50 * ASYNC_MSEC);
    assert_false(s.cancelled_after[0] || s.cancelled_after[1]);
    /* The children were still sleeping when reaped. */
    assert_int_equal(s.c[0].sleep_rc, ASYNC_ECANCELED);
}

static void test_wait_already_done(void **state)
{
    (void)state;
    scene s = {.n = 1, .c = {{.ms = 0}}, .timeout = ASYNC_NO_TIMEOUT,
               .when = ASYNC_FIRST_COMPLETED};
    /* The child runs before the waiter looks (spawned first, yields). */
    assert_int_equal(run_task(wait_scene, &s), 0);
    assert_int_equal(s.rc, 1);
}

/* Errors, and the task array form. */
typedef struct errs {
    int n0, nullf, bad_when, self, wrong, tasks, any_tasks, gather_tasks,
        wait_for_task;
    size_t any_index;
    void *res[2];
    void *wf_res;
} errs;

static int errs_fn(void *arg, void **result)
{
    (void)result;
    errs *e = arg;
    async_future *f;
    async_future_new(L, &f);
    async_future *one[1] = {f};
    async_future *nul[1] = {NULL};
    e->n0 = async_wait(one, 0, ASYNC_NO_TIMEOUT, ASYNC_ALL_COMPLETED, NULL);
    e->nullf = async_wait(nul, 1, ASYNC_NO_TIMEOUT, ASYNC_ALL_COMPLETED, NULL);
    e->bad_when = async_wait(one, 1, -1, (async_return_when)7, NULL);
    async_future *self[1] = {async_task_future(async_current_task())};
    e->self = async_wait(self, 1, ASYNC_NO_TIMEOUT, ASYNC_ALL_COMPLETED, NULL);
    async_loop *other;
    async_loop_new(&other);
    async_future *of;
    async_future_new(other, &of);
    async_future *wrong[1] = {of};
    e->wrong = async_wait(wrong, 1, ASYNC_NO_TIMEOUT, ASYNC_ALL_COMPLETED, NULL);
    async_future_unref(of);
    async_loop_free(other);
    async_future_unref(f);

    child c[2] = {{.ms = 20}, {.ms = 10}};
    async_task *t[2];
    async_spawn(&t[0], child_fn, &c[0]);
    async_spawn(&t[1], child_fn, &c[1]);
    bool done[2];
    e->tasks = async_wait_tasks(t, 2, ASYNC_NO_TIMEOUT, ASYNC_FIRST_COMPLETED, done);
    e->any_tasks = async_wait_any_tasks(t, 2, ASYNC_NO_TIMEOUT, &e->any_index);
    e->gather_tasks = async_gather_tasks(t, 2, 0, e->res, NULL);
    e->wait_for_task = async_wait_for_task(t[0], ASYNC_SEC, &e->wf_res);
    async_task_unref(t[0]);
    async_task_unref(t[1]);
    return 0;
}

static void test_wait_errors_and_tasks(void **state)
{
    (void)state;
    errs e = {0};
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    async_future *one[1] = {f};
    assert_int_equal(async_wait(one, 1, ASYNC_NO_TIMEOUT, ASYNC_ALL_COMPLETED, NULL),
                     ASYNC_ENOTTASK);
    assert_int_equal(async_gather_calls(child_fn, NULL, 0, 0, NULL, NULL),
                     ASYNC_ENOTTASK);
    async_future_unref(f);
    assert_int_equal(run_task(errs_fn, &e), 0);
    assert_int_equal(e.n0, ASYNC_EINVAL);
    assert_int_equal(e.nullf, ASYNC_EINVAL);
    assert_int_equal(e.bad_when, ASYNC_EINVAL);
    assert_int_equal(e.self, ASYNC_EDEADLK);
    assert_int_equal(e.wrong, ASYNC_EWRONGLOOP);
    assert_int_equal(e.tasks, 1);
    assert_int_equal(e.any_tasks, 0);
    assert_int_equal(e.any_index, 1);
    assert_int_equal(e.gather_tasks, 0);
    assert_int_equal((intptr_t)e.res[0], 20);
    assert_int_equal((intptr_t)e.res[1], 10);
    assert_int_equal(e.wait_for_task, 0);
    assert_int_equal((intptr_t)e.wf_res, 20);
    assert_int_equal(async_wait_for_task(NULL, 0, NULL), ASYNC_EINVAL);
    assert_int_equal(async_gather_tasks(NULL, 1, 0, NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_wait_any_tasks(NULL, 1, 0, NULL), ASYNC_EINVAL);
    assert_int_equal(async_wait_tasks(NULL, 1, 0, ASYNC_ALL_COMPLETED, NULL),
                     ASYNC_EINVAL);
}

/* Cancelling a task parked in wait: ECANCELED, the futures untouched. */
typedef struct cancel_wait {
    async_future *f;   /* waited for */
    int rc;            /* wait's return */
} cancel_wait;

static int cancel_wait_fn(void *arg, void **result)
{
    (void)result;
    cancel_wait *cw = arg;
    async_future *one[1] = {cw->f};
    cw->rc = async_wait(one, 1, ASYNC_NO_TIMEOUT, ASYNC_ALL_COMPLETED, NULL);
    return cw->rc;
}

static int cancel_wait_main(void *arg, void **result)
{
    (void)result;
    cancel_wait *cw = arg;
    async_future_new(L, &cw->f);
    async_task *t;
    async_spawn(&t, cancel_wait_fn, cw);
    async_sleep(ASYNC_MSEC);
    async_task_cancel(t);
    (void)async_await(t, NULL);
    async_task_unref(t);
    return 0;
}

static void test_wait_cancelled(void **state)
{
    (void)state;
    cancel_wait cw = {0};
    assert_int_equal(run_task(cancel_wait_main, &cw), 0);
    assert_int_equal(cw.rc, ASYNC_ECANCELED);
    assert_false(async_future_done(cw.f));
    async_future_unref(cw.f);
}

/* A deadline scope ending first is ASYNC_ETIMEDOUT, not a normal return. */
static int wait_scope_fn(void *arg, void **result)
{
    (void)result;
    scene *s = arg;
    async_future *f;
    async_future_new(L, &f);
    async_future *one[1] = {f};
    async_deadline_push(async_loop_time(L) + 10 * ASYNC_MSEC);
    s->rc = async_wait(one, 1, ASYNC_SEC, ASYNC_ALL_COMPLETED, NULL);
    async_deadline_pop();
    async_future_unref(f);
    return 0;
}

static void test_wait_deadline_scope(void **state)
{
    (void)state;
    scene s = {0};
    assert_int_equal(run_task(wait_scope_fn, &s), 0);
    assert_int_equal(s.rc, ASYNC_ETIMEDOUT);
}

/* ---- as_completed ---------------------------------------------------------- */

static int ac_scene(void *arg, void **result)
{
    (void)result;
    scene *s = arg;
    scene_spawn(s);
    async_as_completed *it;
    s->rc = async_as_completed_new(&it, s->f, s->n, s->timeout);
    if (s->rc) {
        scene_reap(s);
        return 0;
    }
    for (s->nnext = 0; s->nnext < s->n + 2; s->nnext++) {
        int rc = async_as_completed_next(it, &s->order[s->nnext]);
        s->next_rc[s->nnext] = rc;
        if (rc == 0)
            break;
    }
    async_as_completed_free(it);
    scene_reap(s);
    return 0;
}

static void test_as_completed_order(void **state)
{
    (void)state;
    scene s = {.n = 4, .c = {{.ms = 30}, {.ms = 10}, {.ms = 20},
                             {.ms = 15, .error = ASYNC_EPIPE}},
               .timeout = ASYNC_NO_TIMEOUT};
    assert_int_equal(run_task(ac_scene, &s), 0);
    assert_int_equal(s.rc, 0);
    assert_int_equal(s.nnext, 4);
    size_t want[4] = {1, 3, 2, 0};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(s.next_rc[i], 1);
        assert_int_equal(s.order[i], want[i]);
    }
    assert_int_equal(s.next_rc[4], 0);
}

static void test_as_completed_timeout(void **state)
{
    (void)state;
    scene s = {.n = 3, .c = {{.ms = 1000}, {.ms = 10}, {.ms = 2000}},
               .timeout = 50 * ASYNC_MSEC};
    assert_int_equal(run_task(ac_scene, &s), 0);
    assert_int_equal(s.next_rc[0], 1);
    assert_int_equal(s.order[0], 1);
    /* Every later step times out; the loop gives up after n + 2 calls. */
    for (size_t i = 1; i < s.n + 2; i++)
        assert_int_equal(s.next_rc[i], ASYNC_ETIMEDOUT);
    assert_false(s.cancelled_after[0] || s.cancelled_after[2]);
}

static void test_as_completed_empty(void **state)
{
    (void)state;
    scene s = {.n = 0, .timeout = ASYNC_NO_TIMEOUT};
    assert_int_equal(run_task(ac_scene, &s), 0);
    assert_int_equal(s.nnext, 0);
    assert_int_equal(s.next_rc[0], 0);
}

/* Futures done before the iterator exists come out in index order. */
static int ac_done_fn(void *arg, void **result)
{
    (void)result;
    scene *s = arg;
    async_future *f[3];
    for (size_t i = 0; i < 3; i++)
        async_future_new(L, &f[i]);
    async_future_set_result(f[2], NULL);
    async_future_set_error(f[0], ASYNC_EPIPE);
    async_as_completed *it;
    async_as_completed_new(&it, f, 3, 0);
    for (size_t i = 0; i < 3; i++)
        s->next_rc[i] = async_as_completed_next(it, &s->order[i]);
    async_as_completed_free(it);
    (void)async_future_result(f[0], NULL);
    for (size_t i = 0; i < 3; i++)
        async_future_unref(f[i]);
    return 0;
}

static void test_as_completed_already_done(void **state)
{
    (void)state;
    scene s = {0};
    assert_int_equal(run_task(ac_done_fn, &s), 0);
    assert_int_equal(s.next_rc[0], 1);
    assert_int_equal(s.order[0], 0);
    assert_int_equal(s.next_rc[1], 1);
    assert_int_equal(s.order[1], 2);
    assert_int_equal(s.next_rc[2], ASYNC_ETIMEDOUT); /* timeout 0 */
}

/* Cancellation at next(): parked, and with a result ready. */
typedef struct ac_cancel {
    async_as_completed *it; /* shared iterator */
    async_future *f[2];     /* its futures */
    int rc[4];              /* the consumer's next() returns */
    size_t idx;             /* the index finally handed out */
    int busy_rc;            /* a second consumer's next() */
} ac_cancel;

static int ac_consumer(void *arg, void **result)
{
    (void)result;
    ac_cancel *a = arg;
    size_t idx;
    a->rc[0] = async_as_completed_next(a->it, &idx); /* parked: cancelled */
    a->rc[1] = async_as_completed_next(a->it, &idx); /* still cancelled */
    async_task_uncancel(async_current_task());
    a->rc[2] = async_as_completed_next(a->it, &a->idx);
    return 0;
}

static int ac_second(void *arg, void **result)
{
    (void)result;
    ac_cancel *a = arg;
    size_t idx;
    a->busy_rc = async_as_completed_next(a->it, &idx);
    return 0;
}

static int ac_cancel_main(void *arg, void **result)
{
    (void)result;
    ac_cancel *a = arg;
    async_future_new(L, &a->f[0]);
    async_future_new(L, &a->f[1]);
    async_as_completed_new(&a->it, a->f, 2, ASYNC_NO_TIMEOUT);
    async_task *t, *t2;
    async_spawn(&t, ac_consumer, a);
    async_yield(); /* the consumer parks in next() */
    async_spawn(&t2, ac_second, a);
    async_await(t2, NULL);
    async_task_cancel(t);
    async_future_set_result(a->f[1], NULL); /* ready, but t is cancelling */
    async_await(t, NULL);
    async_task_unref(t);
    async_task_unref(t2);
    async_as_completed_free(a->it);
    async_future_unref(a->f[0]);
    async_future_unref(a->f[1]);
    return 0;
}

static void test_as_completed_cancelled(void **state)
{
    (void)state;
    ac_cancel a = {0};
    assert_int_equal(run_task(ac_cancel_main, &a), 0);
    assert_int_equal(a.busy_rc, ASYNC_EBUSY);
    assert_int_equal(a.rc[0], ASYNC_ECANCELED);
    assert_int_equal(a.rc[1], ASYNC_ECANCELED);
    assert_int_equal(a.rc[2], 1);
    assert_int_equal(a.idx, 1);
}

static void test_as_completed_errors(void **state)
{
    (void)state;
    async_as_completed *it;
    async_future *f, *g;
    async_loop *other;
    assert_int_equal(async_loop_new(&other), 0);
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_new(other, &g), 0);
    async_future *two[2] = {f, g};
    async_future *nul[1] = {NULL};
    assert_int_equal(async_as_completed_new(NULL, two, 1, ASYNC_NO_TIMEOUT), ASYNC_EINVAL);
    assert_int_equal(async_as_completed_new(&it, NULL, 1, ASYNC_NO_TIMEOUT), ASYNC_EINVAL);
    assert_int_equal(async_as_completed_new(&it, nul, 1, ASYNC_NO_TIMEOUT), ASYNC_EINVAL);
    assert_int_equal(async_as_completed_new(&it, two, 2, ASYNC_NO_TIMEOUT),
                     ASYNC_EWRONGLOOP);
    assert_int_equal(async_as_completed_new_tasks(&it, NULL, 1, ASYNC_NO_TIMEOUT),
                     ASYNC_EINVAL);
    /* Created outside a task; next() needs one. */
    assert_int_equal(async_as_completed_new(&it, two, 1, ASYNC_NO_TIMEOUT), 0);
    size_t idx;
    assert_int_equal(async_as_completed_next(it, &idx), ASYNC_ENOTTASK);
    assert_int_equal(async_as_completed_next(NULL, &idx), ASYNC_EINVAL);
    async_as_completed_free(it);
    async_as_completed_free(NULL);
    async_future_unref(f);
    async_future_unref(g);
    async_loop_free(other);
}

/* The iterator is freed with futures pending, which complete later. */
static int ac_early_free_fn(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_future *f;
    async_future_new(L, &f);
    async_as_completed *it;
    async_as_completed_new(&it, &f, 1, ASYNC_NO_TIMEOUT);
    async_as_completed_free(it);
    async_future_set_result(f, NULL);
    async_future_unref(f);
    return 0;
}

static void test_as_completed_free_early(void **state)
{
    (void)state;
    assert_int_equal(run_task(ac_early_free_fn, NULL), 0);
}

/* The loop closes (killing the tasks) while the iterator still watches
 * them; it is freed after the close. */
static int ac_outlive_fn(void *arg, void **result)
{
    (void)result;
    async_as_completed **itp = arg;
    async_task *t[2];
    static child c[2] = {{.ms = 100000}, {.ms = 100000}};
    async_spawn(&t[0], child_fn, &c[0]);
    async_spawn(&t[1], child_fn, &c[1]);
    async_future *plain;
    async_future_new(L, &plain);
    async_as_completed_new_tasks(itp, t, 2, ASYNC_NO_TIMEOUT);
    async_task_unref(t[0]);
    async_task_unref(t[1]);
    async_future_unref(plain);
    async_yield();
    return 0;
}

static void test_as_completed_outlives_loop(void **state)
{
    (void)state;
    async_as_completed *it = NULL;
    assert_int_equal(run_task(ac_outlive_fn, &it), 0);
    assert_non_null(it);
    assert_int_equal(async_loop_close(L), 0);
    async_as_completed_free(it);
}

/* 10,000 tasks, every index exactly once. */
static int yield_child(void *arg, void **result)
{
    (void)result;
    for (intptr_t i = 0; i < (intptr_t)arg % 5; i++)
        async_yield();
    return 0;
}

static int ac_many_fn(void *arg, void **result)
{
    (void)result;
    size_t *seen = arg;
    enum { N = 10000 };
    async_task **t = calloc(N, sizeof(*t));
    for (size_t i = 0; i < N; i++)
        async_spawn(&t[i], yield_child, (void *)(intptr_t)i);
    async_as_completed *it;
    if (async_as_completed_new_tasks(&it, t, N, ASYNC_NO_TIMEOUT) == 0) {
        size_t idx;
        while (async_as_completed_next(it, &idx) == 1)
            seen[idx]++;
        async_as_completed_free(it);
    }
    for (size_t i = 0; i < N; i++)
        async_task_unref(t[i]);
    free(t);
    return 0;
}

static void test_as_completed_many(void **state)
{
    (void)state;
    size_t *seen = calloc(10000, sizeof(*seen));
    assert_int_equal(run_task(ac_many_fn, seen), 0);
    for (size_t i = 0; i < 10000; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
}

/* ---- gather_calls ----------------------------------------------------------- */

typedef struct calls {
    child c[4];        /* one per call */
    void *args[4];     /* &c[i] */
    size_t n;          /* how many */
    unsigned flags;    /* gather flags */
    void *results[4];  /* results[] */
    int errors[4];     /* errors[] */
    int rc;            /* the call's return */
    size_t alive;      /* tasks of the loop left when it returned */
} calls;

static int calls_fn(void *arg, void **result)
{
    (void)result;
    calls *c = arg;
    for (size_t i = 0; i < c->n; i++)
        c->args[i] = &c->c[i];
    c->rc = async_gather_calls(child_fn, c->args, c->n, c->flags, c->results,
                               c->errors);
    c->alive = async__loop_task_count(L);
    return 0;
}

static void test_gather_calls_results(void **state)
{
    (void)state;
    calls c = {.n = 3, .c = {{.ms = 30}, {.ms = 10}, {.ms = 20}}};
    assert_int_equal(run_task(calls_fn, &c), 0);
    assert_int_equal(c.rc, 0);
    assert_int_equal((intptr_t)c.results[0], 30);
    assert_int_equal((intptr_t)c.results[1], 10);
    assert_int_equal((intptr_t)c.results[2], 20);
    assert_int_equal(c.alive, 1);
}

static void test_gather_calls_fail_fast(void **state)
{
    (void)state;
    calls c = {.n = 3, .c = {{.ms = 30}, {.ms = 10, .error = ASYNC_EPIPE},
                             {.ms = 5}}};
    assert_int_equal(run_task(calls_fn, &c), 0);
    assert_int_equal(c.rc, ASYNC_EPIPE);
    assert_int_equal(c.errors[0], ASYNC_ECANCELED);
    assert_int_equal(c.errors[1], ASYNC_EPIPE);
    assert_int_equal(c.errors[2], 0);
    assert_int_equal((intptr_t)c.results[2], 5);
    assert_int_equal(c.alive, 1); /* no child outlives the call */
}

static void test_gather_calls_all(void **state)
{
    (void)state;
    calls c = {.n = 3, .flags = ASYNC_GATHER_ALL,
               .c = {{.ms = 30}, {.ms = 10, .error = ASYNC_EPIPE}, {.ms = 5}}};
    assert_int_equal(run_task(calls_fn, &c), 0);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.errors[0], 0);
    assert_int_equal(c.errors[1], ASYNC_EPIPE);
    assert_int_equal((intptr_t)c.results[0], 30);
}

static int calls_cancel_main(void *arg, void **result)
{
    (void)result;
    calls *c = arg;
    async_task *t;
    async_spawn(&t, calls_fn, c);
    async_sleep(5 * ASYNC_MSEC);
    async_task_cancel(t);
    (void)async_await(t, NULL);
    async_task_unref(t);
    return 0;
}

static void test_gather_calls_cancelled(void **state)
{
    (void)state;
    calls c = {.n = 2, .c = {{.ms = 1000}, {.ms = 2000}}};
    assert_int_equal(run_task(calls_cancel_main, &c), 0);
    assert_int_equal(c.rc, ASYNC_ECANCELED);
    assert_int_equal(c.errors[0], ASYNC_ECANCELED);
    assert_int_equal(c.errors[1], ASYNC_ECANCELED);
    assert_int_equal(c.c[0].sleep_rc, ASYNC_ECANCELED);
}

static int calls_errors_fn(void *arg, void **result)
{
    (void)result;
    int *rc = arg;
    rc[0] = async_gather_calls(NULL, NULL, 0, 0, NULL, NULL);
    rc[1] = async_gather_calls(child_fn, NULL, 2, 0, NULL, NULL);
    rc[2] = async_gather_calls(child_fn, NULL, 0, 8, NULL, NULL);
    rc[3] = async_gather_calls(child_fn, NULL, 0, 0, NULL, NULL);
    return 0;
}

static void test_gather_calls_errors(void **state)
{
    (void)state;
    int rc[4];
    assert_int_equal(run_task(calls_errors_fn, rc), 0);
    assert_int_equal(rc[0], ASYNC_EINVAL);
    assert_int_equal(rc[1], ASYNC_EINVAL);
    assert_int_equal(rc[2], ASYNC_EINVAL);
    assert_int_equal(rc[3], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_wait_first_completed),
        T(test_wait_all_completed),
        T(test_wait_first_exception),
        T(test_wait_first_exception_none_fails),
    T(test_wait_negative_timeout_is_now),
        T(test_wait_first_exception_ignores_cancel),
        T(test_wait_timeout),
        T(test_wait_already_done),
        T(test_wait_errors_and_tasks),
        T(test_wait_cancelled),
        T(test_wait_deadline_scope),
        T(test_as_completed_order),
        T(test_as_completed_timeout),
        T(test_as_completed_empty),
        T(test_as_completed_already_done),
        T(test_as_completed_cancelled),
        T(test_as_completed_errors),
        T(test_as_completed_free_early),
        T(test_as_completed_outlives_loop),
        T(test_as_completed_many),
        T(test_gather_calls_results),
        T(test_gather_calls_fail_fast),
        T(test_gather_calls_all),
        T(test_gather_calls_cancelled),
        T(test_gather_calls_errors),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
