/*
 * Task-local context (contextvars): get/set per task, copy at spawn,
 * callbacks that see the scheduling task's values, destructors run once per
 * value, keys outliving their creator's reference, and no context at all
 * for tasks that never set one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"

static async_loop *L;
static th_leaks leaks;
static async_context_key *K, *K2;
static int destroyed[8]; /* destroy calls per value (values are 1..7) */

static void destroy(void *value)
{
    destroyed[(intptr_t)value]++;
}

static int setup(void **state)
{
    (void)state;
    th_leaks_begin(&leaks);
    assert_int_equal(async_loop_new(&L), 0);
    assert_int_equal(async_context_key_new(&K, destroy), 0);
    assert_int_equal(async_context_key_new(&K2, NULL), 0);
    for (int i = 0; i < 8; i++)
        destroyed[i] = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    async_context_key_free(K);
    async_context_key_free(K2);
    assert_int_equal(async_loop_free(L), 0);
    th_leaks_end(&leaks);
    return 0;
}

static int run(async_fn fn, void *arg)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, fn, arg, NULL), 0);
    int rc = async_loop_run_until_complete(L, t, NULL);
    async_task_unref(t);
    return rc;
}

typedef struct rec {
    int rc[8];          /* return codes */
    intptr_t v[8];      /* values seen */
    bool b[4];          /* flags */
} rec;

static rec R;

static intptr_t get(void)
{
    return (intptr_t)async_context_get(K);
}

/* ---- get and set ------------------------------------------------------------- */

static int basic(void *arg, void **result)
{
    (void)arg, (void)result;
    void *v = (void *)9;
    R.b[0] = async_current_task()->ctx == NULL; /* nothing until a set */
    R.rc[0] = async_context_lookup(K, &v);
    R.v[0] = (intptr_t)v;                       /* untouched */
    R.rc[1] = async_context_set(K, (void *)1);
    R.v[1] = get();
    R.rc[2] = async_context_set(K, (void *)2);  /* replaces 1: destroyed */
    R.v[2] = get();
    R.rc[3] = async_context_set(K2, NULL);
    R.rc[4] = async_context_lookup(K2, &v);     /* set to NULL is set */
    R.v[3] = (intptr_t)v;
    R.rc[5] = async_context_set(NULL, NULL);
    R.rc[6] = async_context_lookup(K, NULL);
    R.v[4] = destroyed[1];
    return 0;
}

static void test_get_set(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(basic, NULL), 0);
    assert_true(R.b[0]);
    assert_int_equal(R.rc[0], ASYNC_ENOENT);
    assert_int_equal(R.v[0], 9);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.v[1], 1);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.v[2], 2);
    assert_int_equal(R.v[4], 1);    /* 1 destroyed when replaced */
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[4], 0);
    assert_int_equal(R.v[3], 0);
    assert_int_equal(R.rc[5], ASYNC_EINVAL);
    assert_int_equal(R.rc[6], ASYNC_EINVAL);
    assert_int_equal(destroyed[2], 1); /* with its task */
    /* Outside any task. */
    void *v;
    assert_int_equal(async_context_set(K, (void *)3), ASYNC_ENOTTASK);
    assert_int_equal(async_context_lookup(K, &v), ASYNC_ENOENT);
    assert_null(async_context_get(K));
    assert_null(async_context_get(NULL));
    assert_int_equal(async_context_key_new(NULL, NULL), ASYNC_EINVAL);
    async_context_key_free(NULL);
}

/* ---- spawned tasks copy ------------------------------------------------------------ */

static int child(void *arg, void **result)
{
    (void)result;
    intptr_t slot = (intptr_t)arg;
    R.v[slot] = get();
    async_yield();                        /* parent sets 5 meanwhile */
    R.v[slot + 1] = get();
    async_context_set(K, (void *)(intptr_t)(3 + slot / 2)); /* own value */
    R.v[slot + 2] = get();
    return 0;
}

static int parent(void *arg, void **result)
{
    (void)arg, (void)result;
    async_task *plain;
    async_spawn(&plain, child, (void *)(intptr_t)5); /* before any set */
    async_context_set(K, (void *)1);
    async_task *c;
    async_spawn(&c, child, (void *)(intptr_t)0);
    async_context_set(K, (void *)2); /* the child keeps 1 */
    async_await(c, NULL);
    async_await(plain, NULL);
    R.v[3] = get();                      /* the child's set is not ours */
    async_task_unref(c);
    async_task_unref(plain);
    R.b[0] = destroyed[3] == 1;          /* the child's value went with it */
    R.b[1] = destroyed[1] == 1;          /* 1: parent replaced, child gone */
    return 0;
}

static void test_spawn_copies(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(parent, NULL), 0);
    assert_int_equal(R.v[0], 1);
    assert_int_equal(R.v[1], 1);
    assert_int_equal(R.v[2], 3);
    assert_int_equal(R.v[3], 2);
    assert_int_equal(R.v[5], 0);         /* spawned before the set: empty */
    assert_int_equal(R.v[6], 0);
    assert_int_equal(R.v[7], 5);
    assert_true(R.b[0]);
    assert_true(R.b[1]);
    assert_int_equal(destroyed[1], 1);
    assert_int_equal(destroyed[2], 1);
    assert_int_equal(destroyed[3], 1);
    assert_int_equal(destroyed[4], 0); /* never set */
    assert_int_equal(destroyed[5], 1);
}

/* ---- callbacks ------------------------------------------------------------------ */

static int soon_cb(void *arg)
{
    R.v[(intptr_t)arg] = get();
    return 0;
}

static void done_cb(async_future *f, void *arg)
{
    (void)f;
    R.v[(intptr_t)arg] = get();
}

/* A callback with a context spawns a task: the task inherits it. */
static int inherit_child(void *arg, void **result)
{
    (void)arg, (void)result;
    R.v[5] = get();
    return 0;
}

static int spawn_cb(void *arg)
{
    (void)arg;
    return async_loop_spawn(L, NULL, inherit_child, NULL, NULL);
}

static int callbacks(void *arg, void **result)
{
    (void)arg, (void)result;
    async_context_set(K, (void *)1);
    async_loop *loop = async_get_running_loop();
    async_loop_call_soon(loop, soon_cb, (void *)0, NULL);
    async_loop_call_later(loop, ASYNC_MSEC, soon_cb, (void *)1, NULL);
    async_future *f;
    async_future_new(loop, &f);
    async_future_add_done_callback(f, done_cb, (void *)2);
    async_loop_call_soon(loop, spawn_cb, NULL, NULL);
    async_context_set(K, (void *)2); /* after scheduling: not seen */
    async_future_set_result(f, NULL);
    async_sleep(5 * ASYNC_MSEC);
    async_future_unref(f);
    R.v[3] = get();
    return 0;
}

static void test_callbacks_see_scheduler(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(callbacks, NULL), 0);
    assert_int_equal(R.v[0], 1);
    assert_int_equal(R.v[1], 1);
    assert_int_equal(R.v[2], 1);
    assert_int_equal(R.v[3], 2);
    assert_int_equal(R.v[5], 1);
    assert_int_equal(destroyed[1], 1);
    assert_int_equal(destroyed[2], 1);
}

/* A callback scheduled outside any task has no context. */
static void test_callback_outside_task(void **state)
{
    (void)state;
    R = (rec){0};
    R.v[0] = 99;
    assert_int_equal(async_loop_call_soon(L, soon_cb, (void *)0, NULL), 0);
    async_loop_stop(L);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(R.v[0], 0);
}

/* The creator frees the key while values still use it. */
static int early_key_free(void *arg, void **result)
{
    (void)arg, (void)result;
    async_context_key *k;
    async_context_key_new(&k, destroy);
    async_context_set(k, (void *)6);
    async_context_key_free(k); /* the value keeps the key alive */
    R.v[0] = (intptr_t)async_context_get(k);
    return 0;
}

static void test_key_freed_early(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(early_key_free, NULL), 0);
    assert_int_equal(R.v[0], 6);
    assert_int_equal(destroyed[6], 1);
}

/* Many keys grow one context; each value destroyed once. */
static int many_keys(void *arg, void **result)
{
    (void)arg, (void)result;
    async_context_key *k[6];
    for (int i = 0; i < 6; i++) {
        async_context_key_new(&k[i], i ? NULL : destroy);
        async_context_set(k[i], (void *)(intptr_t)(i + 1));
    }
    for (int i = 0; i < 6; i++)
        R.v[i] = (intptr_t)async_context_get(k[i]);
    for (int i = 0; i < 6; i++)
        async_context_key_free(k[i]);
    return 0;
}

static void test_many_keys(void **state)
{
    (void)state;
    R = (rec){0};
    assert_int_equal(run(many_keys, NULL), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(R.v[i], i + 1);
    assert_int_equal(destroyed[1], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_get_set),
        T(test_spawn_copies),
        T(test_callbacks_see_scheduler),
        T(test_callback_outside_task),
        T(test_key_freed_early),
        T(test_many_keys),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
