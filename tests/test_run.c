/*
 * async_run (asyncio.run): main's outcome, stray tasks cancelled and freed,
 * nesting refused.
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

static int fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_sleep(ASYNC_MSEC);
    return ASYNC_ECONNRESET;
}

/* main's error is async_run's return. */
static void test_main_error(void **state)
{
    (void)state;
    assert_int_equal(async_run(fails, NULL, NULL), ASYNC_ECONNRESET);
    assert_null(async_get_running_loop());
}

static int nested(void *arg, void **result)
{
    (void)result;
    *(int *)arg = async_run(fails, NULL, NULL);
    return 0;
}

/* async_run inside a running loop is refused. */
static void test_nested_refused(void **state)
{
    (void)state;
    int rc = 0;
    assert_int_equal(async_run(nested, &rc, NULL), 0);
    assert_int_equal(rc, ASYNC_EOTHERLOOP);
}

typedef struct strays {
    async_future *never;  /* a future nobody completes */
    int cancelled;        /* strays that saw ECANCELED */
    int cleanup_awaits;   /* shielded cleanup awaits that completed */
    int started;          /* stray_awaits bodies that began */
} strays;

static int stray_awaits(void *arg, void **result)
{
    (void)result;
    strays *s = arg;
    s->started++;
    int rc = async_await(s->never, NULL);
    if (rc == ASYNC_ECANCELED) {
        s->cancelled++;
        async_shield_enter(); /* cleanup may still await */
        if (async_sleep(ASYNC_MSEC) == 0)
            s->cleanup_awaits++;
        async_shield_leave();
    }
    return rc;
}

static int stray_spawns_more(void *arg, void **result)
{
    (void)result;
    strays *s = arg;
    int rc = async_sleep(3600 * ASYNC_SEC);
    if (rc == ASYNC_ECANCELED) {
        s->cancelled++;
        async_spawn(NULL, stray_awaits, s); /* born during the drain */
    }
    return rc;
}

static int main_leaves_strays(void *arg, void **result)
{
    (void)result;
    strays *s = arg;
    int rc = async_future_new(async_get_running_loop(), &s->never);
    if (rc)
        return rc;
    for (int i = 0; i < 4; i++)
        async_spawn(NULL, stray_awaits, s);
    async_spawn(NULL, stray_spawns_more, s);
    return async_sleep(ASYNC_MSEC);
}

/* Stray tasks are cancelled, can clean up, and are freed. */
static void test_strays(void **state)
{
    (void)state;
    strays s = {0};
    assert_int_equal(async_run(main_leaves_strays, &s, NULL), 0);
    /* The task born during the drain is cancelled before its first step,
     * so its body never runs. */
    assert_int_equal(s.started, 4);
    assert_int_equal(s.cancelled, 5);
    assert_int_equal(s.cleanup_awaits, 4);
    async_future_unref(s.never);
}

static int self_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task_cancel(async_current_task());
    return async_sleep(ASYNC_SEC);
}

/* A cancelled main gives ASYNC_ECANCELED. */
static void test_main_cancelled(void **state)
{
    (void)state;
    assert_int_equal(async_run(self_cancel, NULL, NULL), ASYNC_ECANCELED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_main_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_main_cancelled, setup, teardown),
    };
    return cmocka_run_group_tests_name("run", tests, NULL, NULL);
}
