/*
 * gather and wait_any: argument order, fail-fast vs wait-for-all,
 * cancellation of the gather, 0 and 10,000 children.
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
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_loop_free(L), 0);
    th_leaks_end(&leaks);
    return 0;
}

/* A child: sleeps `ms`, then returns `value` or fails with `error`. */
typedef struct child {
    int ms;          /* how long to sleep */
    int error;       /* 0, or the error to fail with */
    intptr_t value;  /* the result */
    int sleep_rc;    /* what its sleep returned */
    bool finished;   /* it returned */
} child;

static int child_fn(void *arg, void **result)
{
    child *c = arg;
    c->sleep_rc = async_sleep((int64_t)c->ms * ASYNC_MSEC);
    c->finished = true;
    if (c->sleep_rc)
        return c->sleep_rc;
    *result = (void *)c->value;
    return c->error;
}

/* The gathering task's view. */
typedef struct gathering {
    child *children;     /* one per child */
    size_t n;            /* how many */
    unsigned flags;      /* gather flags */
    int rc;              /* gather's return */
    void **results;      /* results[] */
    int *errors;         /* errors[] */
    size_t running_after;/* children not done when gather returned */
} gathering;

static int gather_fn(void *arg, void **result)
{
    (void)result;
    gathering *g = arg;
    async_task **tasks = calloc(g->n ? g->n : 1, sizeof(*tasks));
    async_future **futs = calloc(g->n ? g->n : 1, sizeof(*futs));
    for (size_t i = 0; i < g->n; i++) {
        if (async_spawn(&tasks[i], child_fn, &g->children[i]) != 0)
            return ASYNC_EFAILED;
        futs[i] = async_task_future(tasks[i]);
    }
    g->rc = async_gather(futs, g->n, g->flags, g->results, g->errors);
    for (size_t i = 0; i < g->n; i++) {
        if (!async_future_done(futs[i]))
            g->running_after++;
        async_future_result(futs[i], NULL); /* mark retrieved */
    }
    /* Let stragglers finish before this task releases them. */
    for (size_t i = 0; i < g->n; i++)
        async_await(tasks[i], NULL);
    for (size_t i = 0; i < g->n; i++)
        async_task_unref(tasks[i]);
    free(tasks);
    free(futs);
    return 0;
}

static void run_gather(gathering *g)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, gather_fn, g, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    async_task_unref(t);
}

/* Results come back in argument order, not completion order. */
static void test_argument_order(void **state)
{
    (void)state;
    child c[3] = {{.ms = 6, .value = 1}, {.ms = 1, .value = 2}, {.ms = 3, .value = 3}};
    void *res[3];
    int err[3];
    gathering g = {.children = c, .n = 3, .results = res, .errors = err};
    run_gather(&g);
    assert_int_equal(g.rc, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal((intptr_t)res[i], i + 1);
        assert_int_equal(err[i], 0);
    }
}

/* Default: the first error completes the gather; others keep running. */
static void test_fail_fast(void **state)
{
    (void)state;
    child c[3] = {{.ms = 1, .error = ASYNC_EPIPE}, {.ms = 30, .value = 2},
                  {.ms = 2, .error = ASYNC_EBUSY}};
    int err[3];
    gathering g = {.children = c, .n = 3, .errors = err};
    run_gather(&g);
    assert_int_equal(g.rc, ASYNC_EPIPE);
    assert_int_equal(err[0], ASYNC_EPIPE);
    assert_int_equal(err[1], ASYNC_EPENDING);
    assert_true(g.running_after >= 1);
    assert_true(c[1].finished); /* it was not cancelled */
    assert_int_equal(c[1].sleep_rc, 0);
}

/* With ASYNC_GATHER_ALL: wait for all, one error per slot. */
static void test_gather_all(void **state)
{
    (void)state;
    child c[4] = {{.ms = 1, .error = ASYNC_EPIPE}, {.ms = 5, .value = 2},
                  {.ms = 2, .error = ASYNC_EBUSY}, {.ms = 0, .value = 4}};
    void *res[4];
    int err[4];
    gathering g = {.children = c, .n = 4, .flags = ASYNC_GATHER_ALL,
                   .results = res, .errors = err};
    run_gather(&g);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.running_after, 0);
    assert_int_equal(err[0], ASYNC_EPIPE);
    assert_int_equal(err[1], 0);
    assert_int_equal((intptr_t)res[1], 2);
    assert_int_equal(err[2], ASYNC_EBUSY);
    assert_int_equal(err[3], 0);
    assert_int_equal((intptr_t)res[3], 4);
}

/* Zero children: done at once. */
static void test_zero_children(void **state)
{
    (void)state;
    gathering g = {.n = 0};
    run_gather(&g);
    assert_int_equal(g.rc, 0);
}

/* 10,000 children. */
static void test_ten_thousand(void **state)
{
    (void)state;
    enum { N = 10000 };
    child *c = calloc(N, sizeof(*c));
    void **res = calloc(N, sizeof(*res));
    for (int i = 0; i < N; i++) {
        c[i].ms = i % 7;
        c[i].value = i;
    }
    gathering g = {.children = c, .n = N, .results = res};
    run_gather(&g);
    assert_int_equal(g.rc, 0);
    for (int i = 0; i < N; i++)
        assert_int_equal((intptr_t)res[i], i);
    free(c);
    free(res);
}

static int cancel_cb(void *arg)
{
    return async_task_cancel(arg);
}

/* Cancelling the gather (its task) cancels every child. */
static void test_cancel_gather(void **state)
{
    (void)state;
    child c[3] = {{.ms = 3600000}, {.ms = 3600000}, {.ms = 0, .value = 1}};
    int err[3];
    gathering g = {.children = c, .n = 3, .errors = err};
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, gather_fn, &g, NULL), 0);
    assert_int_equal(async_loop_call_later(L, 2 * ASYNC_MSEC, cancel_cb, t, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_int_equal(g.rc, ASYNC_ECANCELED);
    assert_int_equal(c[0].sleep_rc, ASYNC_ECANCELED);
    assert_int_equal(c[1].sleep_rc, ASYNC_ECANCELED);
    assert_int_equal(err[0], ASYNC_ECANCELED);
    assert_int_equal(err[2], 0);
    assert_int_equal(g.running_after, 0);
    async_task_unref(t);
}

typedef struct any {
    child c[3];     /* the racers */
    int rc;         /* wait_any's return */
    size_t index;   /* the winner */
    int64_t timeout;/* wait_any's time-out */
} any;

static int wait_any_fn(void *arg, void **result)
{
    (void)result;
    any *a = arg;
    async_task *t[3];
    async_future *f[3];
    for (int i = 0; i < 3; i++) {
        async_spawn(&t[i], child_fn, &a->c[i]);
        f[i] = async_task_future(t[i]);
    }
    a->index = 99;
    a->rc = async_wait_any(f, 3, a->timeout, &a->index);
    for (int i = 0; i < 3; i++) {
        async_task_cancel(t[i]);
        async_await(t[i], NULL);
        async_task_unref(t[i]);
    }
    return 0;
}

/* wait_any: first completed wins; the others are left running. */
static void test_wait_any(void **state)
{
    (void)state;
    any a = {.c = {{.ms = 50}, {.ms = 2}, {.ms = 30}}, .timeout = ASYNC_NO_TIMEOUT};
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, wait_any_fn, &a, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.index, 1);
    assert_int_equal(a.c[0].sleep_rc, ASYNC_ECANCELED); /* cancelled by us after */
    async_task_unref(t);

    any b = {.c = {{.ms = 500}, {.ms = 500}, {.ms = 500}}, .timeout = 2 * ASYNC_MSEC};
    assert_int_equal(async_loop_spawn(L, &t, wait_any_fn, &b, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_int_equal(b.rc, ASYNC_ETIMEDOUT);
    assert_int_equal(b.index, 99);
    async_task_unref(t);
}

static int bad_gather(void *arg, void **result)
{
    (void)result;
    int *rc = arg;
    async_future *self = async_task_future(async_current_task());
    async_future *nulls[1] = {NULL};
    size_t idx;
    rc[0] = async_gather(NULL, 1, 0, NULL, NULL);
    rc[1] = async_gather(nulls, 1, 0, NULL, NULL);
    rc[2] = async_gather(&self, 1, 0, NULL, NULL);
    rc[3] = async_wait_any(NULL, 0, -1, &idx);
    rc[4] = async_gather(&self, 1, 0x80, NULL, NULL);
    return 0;
}

/* Bad input. */
static void test_bad_input(void **state)
{
    (void)state;
    int rc[5];
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, bad_gather, rc, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_int_equal(rc[0], ASYNC_EINVAL);
    assert_int_equal(rc[1], ASYNC_EINVAL);
    assert_int_equal(rc[2], ASYNC_EDEADLK);
    assert_int_equal(rc[3], ASYNC_EINVAL);
    assert_int_equal(rc[4], ASYNC_EDEADLK);
    async_task_unref(t);
    assert_int_equal(async_gather(NULL, 0, 0, NULL, NULL), ASYNC_ENOTTASK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_argument_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gather_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ten_thousand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_gather, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_any, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests_name("gather", tests, NULL, NULL);
}
