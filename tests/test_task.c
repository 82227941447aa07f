/*
 * Tasks: spawn, await, yield, sleep, names, the running-loop query inside a
 * task, and 100,000 concurrent sleepers without leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"
#include "coro/stack.h"

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

static int return_arg(void *arg, void **result)
{
    *result = arg;
    return 0;
}

typedef struct multi {
    async_task *target;  /* task to await */
    int rc[4];           /* outcomes seen by awaiters */
    void *res[4];        /* results seen by awaiters */
    int n;               /* awaiters done */
} multi;

static int await_target(void *arg, void **result)
{
    (void)result;
    multi *m = arg;
    int i = m->n++;
    m->rc[i] = async_await(m->target, &m->res[i]);
    return 0;
}

/* Awaiting a finished task, and two tasks awaiting the same task. */
static void test_await_shared_and_finished(void **state)
{
    (void)state;
    multi m = {0};
    assert_int_equal(async_loop_spawn(L, &m.target, return_arg, (void *)0x55, NULL), 0);
    async_task *a, *b;
    assert_int_equal(async_loop_spawn(L, &a, await_target, &m, NULL), 0);
    assert_int_equal(async_loop_spawn(L, &b, await_target, &m, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, b, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, a, NULL), 0);
    /* A third awaiter after the target finished. */
    async_task *c;
    assert_int_equal(async_loop_spawn(L, &c, await_target, &m, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, c, NULL), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(m.rc[i], 0);
        assert_ptr_equal(m.res[i], (void *)0x55);
    }
    async_task_unref(a);
    async_task_unref(b);
    async_task_unref(c);
    async_task_unref(m.target);
}

static int await_self(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return async_await(async_current_task(), NULL);
}

/* A task awaiting itself gets an error, not a hang. */
static void test_await_self(void **state)
{
    (void)state;
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, await_self, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_EDEADLK);
    async_task_unref(t);
}

typedef struct inside {
    async_loop *running;  /* async_get_running_loop() inside */
    async_task *current;  /* async_current_task() inside */
    char name[32];        /* async_task_name(current) inside */
    int spawn_rc;         /* async_spawn with NULL fn */
} inside;

static int look_inside(void *arg, void **result)
{
    (void)result;
    inside *in = arg;
    in->running = async_get_running_loop();
    in->current = async_current_task();
    strncpy(in->name, async_task_name(in->current), sizeof(in->name) - 1);
    in->spawn_rc = async_spawn(NULL, NULL, NULL);
    return 0;
}

/* The running-loop and current-task queries inside a task; names. */
static void test_queries_inside(void **state)
{
    (void)state;
    inside in;
    memset(&in, 0, sizeof(in));
    async_task *t;
    async_task_opts opts = {.name = "worker"};
    assert_int_equal(async_loop_spawn(L, &t, look_inside, &in, &opts), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_ptr_equal(in.running, L);
    assert_ptr_equal(in.current, t);
    assert_string_equal(in.name, "worker");
    assert_int_equal(in.spawn_rc, ASYNC_EINVAL);
    assert_null(async_current_task());
    assert_int_equal(async_task_set_name(t, "renamed"), 0);
    assert_string_equal(async_task_name(t), "renamed");
    async_task_unref(t);
    /* Default names are Task-N. */
    assert_int_equal(async_loop_spawn(L, &t, return_arg, NULL, NULL), 0);
    assert_memory_equal(async_task_name(t), "Task-", 5);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    async_task_unref(t);
}

static int order[16];
static int norder;

static int yielder(void *arg, void **result)
{
    (void)result;
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 3; i++) {
        order[norder++] = id;
        if (async_yield() != 0)
            return ASYNC_EFAILED;
    }
    return 0;
}

/* Yield round-robins ready tasks in FIFO order. */
static void test_yield_round_robin(void **state)
{
    (void)state;
    norder = 0;
    async_task *a, *b;
    assert_int_equal(async_loop_spawn(L, &a, yielder, (void *)1, NULL), 0);
    assert_int_equal(async_loop_spawn(L, &b, yielder, (void *)2, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, b, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, a, NULL), 0);
    int want[] = {1, 2, 1, 2, 1, 2};
    assert_int_equal(norder, 6);
    assert_memory_equal(order, want, sizeof(want));
    async_task_unref(a);
    async_task_unref(b);
}

typedef struct sleeper {
    int64_t delay;     /* how long to sleep */
    uint64_t start;    /* loop time before */
    uint64_t end;      /* loop time after */
    int rc;            /* async_sleep's return */
} sleeper;

static int sleep_task(void *arg, void **result)
{
    (void)result;
    sleeper *s = arg;
    s->start = async_loop_time(async_get_running_loop());
    s->rc = async_sleep(s->delay);
    s->end = async_loop_time(async_get_running_loop());
    return s->rc;
}

/* A sleep never ends early (real clock: lower bounds only). */
static void test_sleep_lower_bound(void **state)
{
    (void)state;
    sleeper s[3] = {{.delay = 20 * ASYNC_MSEC}, {.delay = 1 * ASYNC_MSEC},
                    {.delay = 1500 * ASYNC_USEC}};
    async_task *t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(async_loop_spawn(L, &t[i], sleep_task, &s[i], NULL), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(async_loop_run_until_complete(L, t[i], NULL), 0);
        assert_int_equal(s[i].rc, 0);
        assert_true(s[i].end - s[i].start >= (uint64_t)s[i].delay);
        async_task_unref(t[i]);
    }
}

static int counter_cb(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

typedef struct zero_sleep {
    int *counter;      /* bumped by a callback each iteration */
    int seen_before;   /* counter before sleep(0) */
    int seen_after;    /* counter after it */
} zero_sleep;

static int sleep_zero(void *arg, void **result)
{
    (void)result;
    zero_sleep *z = arg;
    async_loop_call_soon(async_get_running_loop(), counter_cb, z->counter, NULL);
    z->seen_before = *z->counter;
    int rc = async_sleep(0);
    z->seen_after = *z->counter;
    return rc;
}

/* sleep(0) gives the loop exactly one turn. */
static void test_sleep_zero(void **state)
{
    (void)state;
    int counter = 0;
    zero_sleep z = {.counter = &counter};
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, sleep_zero, &z, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_int_equal(z.seen_before, 0);
    assert_int_equal(z.seen_after, 1);
    async_task_unref(t);
}

static int sleeps_with_virtual_clock(void *arg, void **result)
{
    (void)result;
    int *order_out = arg;
    int id = order_out[0]++;
    int rc = async_sleep((int64_t)(3 - id) * ASYNC_SEC);
    order_out[1 + (order_out[4]++)] = id;
    return rc;
}

/* Sleepers wake in deadline order; the virtual clock makes it exact. */
static void test_sleep_order_virtual(void **state)
{
    (void)state;
    async__loop_use_virtual_clock(L, 0);
    int data[5] = {0};
    async_task *t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(async_loop_spawn(L, &t[i], sleeps_with_virtual_clock, data, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(async_loop_run_until_complete(L, t[i], NULL), 0);
    assert_int_equal(data[1], 2);
    assert_int_equal(data[2], 1);
    assert_int_equal(data[3], 0);
    assert_true(async_loop_time(L) >= 3 * (uint64_t)ASYNC_SEC);
    for (int i = 0; i < 3; i++)
        async_task_unref(t[i]);
}

static int scope_rc[4];

static int deadline_scope(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_loop *loop = async_get_running_loop();
    scope_rc[0] = async_deadline_push(async_loop_time(loop) + 5 * ASYNC_MSEC);
    scope_rc[1] = async_sleep(ASYNC_SEC);   /* ends early: time-out */
    scope_rc[2] = async_yield();            /* still expired: level */
    async_deadline_pop();
    scope_rc[3] = async_sleep(ASYNC_MSEC);  /* scope gone: normal sleep */
    return 0;
}

/* A deadline scope times out every suspension inside it. */
static void test_deadline_scope(void **state)
{
    (void)state;
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, deadline_scope, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_int_equal(scope_rc[0], 0);
    assert_int_equal(scope_rc[1], ASYNC_ETIMEDOUT);
    assert_int_equal(scope_rc[2], ASYNC_ETIMEDOUT);
    assert_int_equal(scope_rc[3], 0);
    async_task_unref(t);
    assert_int_equal(async_deadline_push(0), ASYNC_ENOTTASK);
    assert_int_equal(async_deadline_pop(), ASYNC_ENOTTASK);
}

enum { SLEEPERS = 100000 };

static int done_sleepers;

static int short_sleeper(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = async_sleep(10 * ASYNC_MSEC);
    if (rc == 0)
        done_sleepers++;
    return rc;
}

static int spawn_sleepers(void *arg, void **result)
{
    (void)result;
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        int rc = async_spawn(NULL, short_sleeper, NULL);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * How many stacks can live at once.  Natively guard regions cost no VMA and
 * the answer is all of them.  Where guards fall back to mprotect (qemu-user,
 * kernels before 6.13) every live stack costs two VMAs, and
 * vm.max_map_count (65530 by default) is the limit: the test then runs as
 * many sleepers as fit, and says so.
 */
static int sleepers_that_fit(void)
{
    if (!async__stack_guard_splits_vma())
        return SLEEPERS;
    long max_maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &max_maps) != 1)
            max_maps = 65530;
        fclose(f);
    }
    long fit = (max_maps - th_count_maps() - 1000) / 2;
    if (fit >= SLEEPERS)
        return SLEEPERS;
    print_message("mprotect guards (2 VMAs per stack) and vm.max_map_count "
                  "%ld: running %ld concurrent sleepers instead of %d\n",
                  max_maps, fit, SLEEPERS);
    return (int)fit;
}

/* 100,000 concurrent sleeping tasks finish; nothing leaks. */
static void test_100k_sleepers(void **state)
{
    (void)state;
    done_sleepers = 0;
    int n = sleepers_that_fit();
    assert_true(n >= 10000);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, spawn_sleepers, &n, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    assert_true(async__loop_task_count(L) > 0);
    while (async__loop_task_count(L) > 0) {
        async_loop_stop(L);
        assert_int_equal(async_loop_run_forever(L), 0);
    }
    assert_int_equal(done_sleepers, n);
    async_task_unref(t);
}

/* Bad input: no task is created, nothing is scheduled. */
static void test_bad_input(void **state)
{
    (void)state;
    async_task *t = NULL;
    assert_int_equal(async_spawn(&t, return_arg, NULL), ASYNC_ENOLOOP);
    assert_int_equal(async_loop_spawn(NULL, &t, return_arg, NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_spawn(L, &t, NULL, NULL, NULL), ASYNC_EINVAL);
    async_task_opts tiny = {.stack_size = 1};
    assert_int_equal(async_loop_spawn(L, &t, return_arg, NULL, &tiny), ASYNC_EINVAL);
    async_task_opts huge = {.stack_size = (size_t)1 << 40};
    assert_int_equal(async_loop_spawn(L, &t, return_arg, NULL, &huge), ASYNC_EINVAL);
    assert_null(t);
    assert_int_equal(async__loop_task_count(L), 0);
    assert_int_equal(async_yield(), ASYNC_ENOTTASK);
    assert_int_equal(async_sleep(1), ASYNC_ENOTTASK);
    assert_int_equal(async_sleep(-1), ASYNC_ENOTTASK);
    assert_int_equal(async_shield_enter(), ASYNC_ENOTTASK);
    assert_int_equal(async_task_await(NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_task_cancel(NULL), ASYNC_EINVAL);
    assert_null(async_task_future(NULL));
    async_task_unref(NULL);
    /* A custom stack size within bounds works. */
    async_task_opts big = {.stack_size = 1024 * 1024};
    assert_int_equal(async_loop_spawn(L, &t, return_arg, (void *)3, &big), 0);
    void *res;
    assert_int_equal(async_loop_run_until_complete(L, t, &res), 0);
    assert_ptr_equal(res, (void *)3);
    async_task_unref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_await_shared_and_finished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_await_self, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queries_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yield_round_robin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleep_lower_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleep_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleep_order_virtual, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_100k_sleepers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests_name("task", tests, NULL, NULL);
}
