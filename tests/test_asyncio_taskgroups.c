/*
 * CPython's Lib/test/test_asyncio/test_taskgroups.py (3.12) ported to
 * libasync's task groups (async/group.h).  Each case names the CPython
 * test it ports.  `async with TaskGroup() as g:` becomes async_group_new,
 * the body, then async_group_leave(g, body_rc) with the error the body
 * "raised" (0 if none).  Exceptions become error codes: ZeroDivisionError
 * -EDOM, ValueError -ERANGE, MyExc -EPROTO, RuntimeError -ENOTRECOVERABLE,
 * CustomException -EBADMSG; an ExceptionGroup is the group's return value
 * (its first error) plus async_group_errors() (all of them).  Delays are
 * scaled down (0.1 s becomes 10 ms) keeping their order.
 *
 * Where libasync departs from asyncio on purpose, the departure is
 * documented in async/group.h or async/task.h and the case asserts
 * libasync's behaviour; the comment of the case says what asyncio does:
 *   - cancellation is level-triggered (async/task.h): after a cancel, every
 *     suspension point of the task returns ASYNC_ECANCELED until it
 *     returns, so cleanup that must wait does so in a shield scope;
 *   - an owner cancelled from outside whose children also failed gets the
 *     first child error and stays cancelled: CPython 3.13's rule (3.12
 *     raised CancelledError and dropped the child errors; test_taskgroup_15
 *     and _16 expect the ExceptionGroup from 3.13 on);
 *   - a nested group's failure is one error code, not a nested
 *     ExceptionGroup.
 *
 * Not ported:
 *   test_taskgroup_20, _20a, _21a and _test_taskgroup_21
 *   (KeyboardInterrupt / BaseException: Python's exception hierarchy, no C
 *   equivalent); test_taskgroup_task_context (contextvars);
 *   test_taskgroup_already_entered, test_taskgroup_double_enter and
 *   test_taskgroup_not_entered (`async with` entering: async_group_new
 *   creates and enters in one step, so a group cannot be entered twice or
 *   used unentered).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"

static async_loop *L;
static th_leaks leaks;

enum { MAXTASKS = 32 };

/* What the tasks saw, recorded inside, asserted after the loop returns. */
typedef struct rec {
    int fail;                   /* line of the first CHECK that failed */
    async_event *ev;            /* test_error_and_cancel's event */
    async_task *t[MAXTASKS];    /* every task spawned, unref'd at the end */
    int nt;                     /* entries in t */
    int count, count2;          /* the tests' nonlocal counters */
    int flag;                   /* the tests' NUM */
    int rc[8];                  /* return codes seen inside tasks */
    int errors[16];             /* async_group_errors() of a group */
    size_t nerrors;             /* its return value */
    async_task *r;              /* the runner task, for the children */
} rec;

static rec R;

/* Records a failed expectation (cmocka asserts cannot run in a task). */
#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c) && R.fail == 0)                                              \
            R.fail = __LINE__;                                                \
    } while (0)

/* asyncio.create_task(fn(arg)); the test keeps a reference until the end. */
static async_task *spawn(async_fn fn, intptr_t arg)
{
    async_task *t = NULL;
    if (R.nt == MAXTASKS || async_spawn(&t, fn, (void *)arg) != 0) {
        CHECK(false);
        return NULL;
    }
    R.t[R.nt++] = t;
    return t;
}

static bool done(async_task *t)
{
    return async_future_done(async_task_future(t));
}

static bool cancelled(async_task *t)
{
    return async_future_cancelled(async_task_future(t));
}

/* `await t`: its outcome (0 for a task that returned True). */
static int await_task(async_task *t)
{
    return async_task_await(t, NULL);
}

static int setup(void **state)
{
    (void)state;
    memset(&R, 0, sizeof(R));
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

/* Runs a case as the main task, then checks what it recorded and that no
 * object was left with a waiter. */
static void run_case(async_fn fn)
{
    async_task *m;
    assert_int_equal(async_loop_spawn(L, &m, fn, NULL, NULL), 0);
    int rc = async_loop_run_until_complete(L, m, NULL);
    async_task_unref(m);
    for (int i = 0; i < R.nt; i++) {
        assert_true(done(R.t[i]));
        async_task_unref(R.t[i]);
    }
    if (R.fail)
        print_message("CHECK failed at line %d\n", R.fail);
    assert_int_equal(R.fail, 0);
    assert_int_equal(rc, 0);
    assert_int_equal(async_event_free(R.ev), 0);
}

#define CASE(name)                                                            \
    static void test_##name(void **state)                                     \
    {                                                                         \
        (void)state;                                                          \
        run_case(case_##name);                                                \
    }

#define ZERO_DIVISION (-EDOM)
#define VALUE_ERROR (-ERANGE)
#define MY_EXC (-EPROTO)
#define RUNTIME_ERROR (-ENOTRECOVERABLE)
#define CUSTOM_EXC (-EBADMSG)

/* A child: sleeps `delay`, then returns `value` or fails with `err`.  A
 * cancelled sleep counts in R.count (the tests' "t2_cancel" / NUM). */
typedef struct spec {
    int64_t delay;  /* ns to sleep first */
    intptr_t value; /* the result on success */
    int err;        /* or the error to fail with */
} spec;

static int child(void *arg, void **result)
{
    const spec *s = arg;
    int rc = async_sleep(s->delay);
    if (rc) {
        R.count++;
        return rc;
    }
    if (s->err)
        return s->err;
    *result = (void *)s->value;
    return 0;
}

/* g.create_task(child(s)); the task is kept for the end of the case. */
static async_task *gspawn(async_group *g, const spec *s)
{
    async_task *t = NULL;
    if (R.nt == MAXTASKS || async_group_spawn(g, &t, child, (void *)s, NULL)) {
        CHECK(false);
        return NULL;
    }
    R.t[R.nt++] = t;
    return t;
}

static intptr_t task_value(async_task *t)
{
    void *v = NULL;
    CHECK(async_future_result(async_task_future(t), &v) == 0);
    return (intptr_t)v;
}

/* Records async_group_errors(g) in R.errors / R.nerrors. */
static void record_errors(async_group *g)
{
    R.nerrors = async_group_errors(g, R.errors, 16);
}

/* Every recorded error is `err` (get_error_types(eg) == {err}). */
static bool errors_all(int err)
{
    for (size_t i = 0; i < R.nerrors && i < 16; i++)
        if (R.errors[i] != err)
            return false;
    return R.nerrors > 0;
}

static async_group *group_new(void)
{
    async_group *g = NULL;
    CHECK(async_group_new(&g) == 0);
    return g;
}

static void group_free(async_group *g)
{
    CHECK(async_group_free(g) == 0);
}

/* r = asyncio.create_task(runner()); await asyncio.sleep(0.01);
 * r.cancel(); then returns `await r`. */
static int cancel_runner_soon(async_fn runner)
{
    async_task *r = spawn(runner, 0);
    async_sleep(10 * ASYNC_MSEC);
    CHECK(!done(r));
    async_task_cancel(r);
    return await_task(r);
}

static const spec s_42_10ms = {10 * ASYNC_MSEC, 42, 0};
static const spec s_11_20ms = {20 * ASYNC_MSEC, 11, 0};
static const spec s_42_1s = {ASYNC_SEC, 42, 0};
static const spec s_11_2s = {2 * ASYNC_SEC, 11, 0};
static const spec s_zerodiv_10ms = {10 * ASYNC_MSEC, 0, ZERO_DIVISION};
static const spec s_zerodiv_30ms = {30 * ASYNC_MSEC, 0, ZERO_DIVISION};
static const spec s_zerodiv_1s = {ASYNC_SEC, 0, ZERO_DIVISION};
static const spec s_sleep_5s = {5 * ASYNC_SEC, 0, 0};
static const spec s_sleep_10s = {10 * ASYNC_SEC, 0, 0};
static const spec s_valueerr_10ms = {10 * ASYNC_MSEC, 0, VALUE_ERROR};
static const spec s_valueerr_10s = {10 * ASYNC_SEC, 0, VALUE_ERROR};
static const spec s_runtime_0 = {0, 0, RUNTIME_ERROR};
static const spec s_valueerr_0 = {0, 0, VALUE_ERROR};
static const spec s_job_30ms = {30 * ASYNC_MSEC, 0, 0};

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_01 */
static int case_tg_01(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    async_task *t1 = gspawn(g, &s_42_10ms);
    async_task *t2 = gspawn(g, &s_11_20ms);
    CHECK(async_group_leave(g, 0) == 0);
    CHECK(task_value(t1) == 42);
    CHECK(task_value(t2) == 11);
    group_free(g);
    return 0;
}
CASE(tg_01)

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_02 */
static int case_tg_02(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    async_task *t1 = gspawn(g, &s_42_10ms);
    async_sleep(15 * ASYNC_MSEC);
    async_task *t2 = gspawn(g, &s_11_20ms);
    CHECK(async_group_leave(g, 0) == 0);
    CHECK(task_value(t1) == 42);
    CHECK(task_value(t2) == 11);
    group_free(g);
    return 0;
}
CASE(tg_02)

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_03 */
static int case_tg_03(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    async_task *t1 = gspawn(g, &s_42_1s);
    async_sleep(15 * ASYNC_MSEC);
    async_task_cancel(t1); /* everything else goes on as usual */
    async_task *t2 = gspawn(g, &s_11_20ms);
    CHECK(async_group_leave(g, 0) == 0);
    CHECK(cancelled(t1));
    CHECK(task_value(t2) == 11);
    group_free(g);
    return 0;
}
CASE(tg_03)

/* runner() of test_taskgroup_04: foo1 fails, foo2 is cancelled. */
static int runner_04(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    gspawn(g, &s_zerodiv_10ms);
    gspawn(g, &s_sleep_5s);
    int rc = async_group_leave(g, 0);
    record_errors(g);
    group_free(g);
    if (rc == 0)
        R.flag += 10;
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_04 */
static int case_tg_04(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(await_task(spawn(runner_04, 0)) == ZERO_DIVISION);
    CHECK(errors_all(ZERO_DIVISION));
    CHECK(R.flag == 0);
    CHECK(R.count == 1); /* t2_cancel */
    CHECK(cancelled(R.t[2]));
    return 0;
}
CASE(tg_04)

/* runner() of test_cancel_children_on_child_error. */
static int runner_children_on_child_error(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    for (int i = 0; i < 3; i++)
        gspawn(g, &s_zerodiv_10ms);
    gspawn(g, &s_sleep_5s);
    int rc = async_sleep(10 * ASYNC_SEC);
    if (rc == ASYNC_ECANCELED)
        R.count2++; /* runner_cancel */
    rc = async_group_leave(g, rc);
    record_errors(g);
    group_free(g);
    if (rc == 0)
        R.flag += 10;
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_cancel_children_on_child_error */
static int case_tg_cancel_children_on_child_error(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(await_task(spawn(runner_children_on_child_error, 0)) ==
          ZERO_DIVISION);
    CHECK(errors_all(ZERO_DIVISION));
    CHECK(R.flag == 0);
    CHECK(R.count >= 1); /* t2_cancel (and foo1s cancelled before failing) */
    CHECK(cancelled(R.t[4]));
    CHECK(R.count2 == 1);
    return 0;
}
CASE(tg_cancel_children_on_child_error)

/* runner() of test_cancellation: five children, an empty body. */
static int runner_five_sleepers(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    for (int i = 0; i < 5; i++)
        gspawn(g, &s_sleep_5s);
    int rc = async_group_leave(g, 0);
    group_free(g);
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_cancellation */
static int case_tg_cancellation(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(cancel_runner_soon(runner_five_sleepers) == ASYNC_ECANCELED);
    CHECK(R.count == 5);
    return 0;
}
CASE(tg_cancellation)

/* runner() of test_taskgroup_07: the body is cancelled too. */
static int runner_07(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    for (int i = 0; i < 5; i++)
        gspawn(g, &s_sleep_5s);
    int rc = async_sleep(10 * ASYNC_SEC);
    if (rc == ASYNC_ECANCELED)
        R.count += 10;
    rc = async_group_leave(g, rc);
    group_free(g);
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_07 */
static int case_tg_07(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(cancel_runner_soon(runner_07) == ASYNC_ECANCELED);
    CHECK(R.count == 15);
    return 0;
}
CASE(tg_07)

/* runner() of test_cancellation_in_body. */
static int runner_cancellation_in_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    for (int i = 0; i < 5; i++)
        gspawn(g, &s_zerodiv_1s);
    int rc = async_sleep(10 * ASYNC_SEC);
    rc = async_group_leave(g, rc);
    group_free(g);
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_cancellation_in_body */
static int case_tg_cancellation_in_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(cancel_runner_soon(runner_cancellation_in_body) ==
          ASYNC_ECANCELED);
    return 0;
}
CASE(tg_cancellation_in_body)

/* runner() of test_taskgroup_09 / _10: the body fails (1 / 0), after a
 * sleep or at once. */
static int runner_body_fails(void *arg, void **result)
{
    (void)result;
    async_group *g = group_new();
    gspawn(g, &s_42_1s);
    gspawn(g, &s_11_2s);
    if (arg)
        async_sleep(10 * ASYNC_MSEC);
    int rc = async_group_leave(g, ZERO_DIVISION);
    record_errors(g);
    R.rc[0] = async_task_cancelling(async_current_task()) != 0;
    group_free(g);
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_09 */
static int case_tg_09(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(await_task(spawn(runner_body_fails, 1)) == ZERO_DIVISION);
    CHECK(R.nerrors == 1 && errors_all(ZERO_DIVISION));
    CHECK(cancelled(R.t[1]));
    CHECK(cancelled(R.t[2]));
    CHECK(R.rc[0] == 0); /* the owner is not left cancelled */
    return 0;
}
CASE(tg_09)

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_10 */
static int case_tg_10(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(await_task(spawn(runner_body_fails, 0)) == ZERO_DIVISION);
    CHECK(R.nerrors == 1 && errors_all(ZERO_DIVISION));
    CHECK(cancelled(R.t[1]));
    CHECK(cancelled(R.t[2]));
    CHECK(R.rc[0] == 0);
    return 0;
}
CASE(tg_10)

/* runner() of test_taskgroup_11 / _12: nested groups, the inner one with
 * five failing children, the outer one with a sleeper in _12. */
static int runner_nested(void *arg, void **result)
{
    (void)result;
    async_group *g1 = group_new();
    if (arg)
        gspawn(g1, &s_sleep_10s);
    async_group *g2 = group_new();
    for (int i = 0; i < 5; i++)
        gspawn(g2, &s_zerodiv_1s);
    int rc = async_sleep(10 * ASYNC_SEC);
    rc = async_group_leave(g2, rc);
    rc = async_group_leave(g1, rc);
    group_free(g2);
    group_free(g1);
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_11 */
static int case_tg_11(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(cancel_runner_soon(runner_nested) == ASYNC_ECANCELED);
    return 0;
}
CASE(tg_11)

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_12 */
static int case_tg_12(void *arg, void **result)
{
    (void)result;
    async_task *r = spawn(runner_nested, 1);
    async_sleep(10 * ASYNC_MSEC);
    CHECK(!done(r));
    async_task_cancel(r);
    CHECK(await_task(r) == ASYNC_ECANCELED);
    (void)arg;
    return 0;
}
CASE(tg_12)

/* runner() of test_taskgroup_13 / _14: nested groups, one child each;
 * arg selects which one crashes first. */
static int runner_crash_nested(void *arg, void **result)
{
    (void)result;
    bool outer_first = arg != NULL;
    async_group *g1 = group_new();
    gspawn(g1, outer_first ? &s_valueerr_10ms : &s_valueerr_10s);
    async_group *g2 = group_new();
    gspawn(g2, outer_first ? &s_valueerr_10s : &s_valueerr_10ms);
    R.rc[0] = async_group_leave(g2, 0);
    int rc = async_group_leave(g1, R.rc[0]);
    record_errors(g1);
    group_free(g2);
    group_free(g1);
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_13: the outer group's
 * child fails, which cancels the body, so the inner group is cancelled;
 * its ASYNC_ECANCELED is not an error of the outer group. */
static int case_tg_13(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(await_task(spawn(runner_crash_nested, 1)) == VALUE_ERROR);
    CHECK(R.rc[0] == ASYNC_ECANCELED);
    CHECK(R.nerrors == 1 && errors_all(VALUE_ERROR));
    return 0;
}
CASE(tg_13)

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_14: the inner group
 * fails; the outer body leaves with that error, which cancels the outer
 * child.  asyncio nests ExceptionGroup(ExceptionGroup(ValueError)); here
 * the outer group records the inner group's first error as the body's. */
static int case_tg_14(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(await_task(spawn(runner_crash_nested, 0)) == VALUE_ERROR);
    CHECK(R.rc[0] == VALUE_ERROR);
    CHECK(R.nerrors == 1 && errors_all(VALUE_ERROR));
    CHECK(cancelled(R.t[1])); /* the outer child */
    return 0;
}
CASE(tg_14)

/* runner() of test_taskgroup_15: cancelled from outside, the body cleans
 * up for 50 ms (in a shield scope: cancellation is level-triggered), and
 * a child fails meanwhile. */
static int runner_15(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    gspawn(g, &s_zerodiv_30ms);
    int rc = async_sleep(10 * ASYNC_SEC);
    if (rc == ASYNC_ECANCELED) {
        async_shield_enter();
        R.rc[2] = async_sleep(50 * ASYNC_MSEC);
        async_shield_leave();
    }
    rc = async_group_leave(g, rc);
    R.rc[0] = rc;
    R.rc[1] = async_task_cancelling(async_current_task()) != 0;
    record_errors(g);
    group_free(g);
    return rc;
}

/*
 * test_taskgroups.py: TestTaskGroup.test_taskgroup_15.  CPython 3.12
 * raises CancelledError and drops the child error; 3.13 raises the
 * ExceptionGroup and keeps the task cancelled, which is libasync's rule
 * (async/group.h): the group returns the child error and the owner stays
 * cancelled.
 */
static int case_tg_15(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = cancel_runner_soon(runner_15);
    /* How a task that returns an error with a cancel pending ends is
     * async_task's rule (async/task.h), not the group's. */
    CHECK(rc == ZERO_DIVISION || rc == ASYNC_ECANCELED);
    CHECK(R.rc[2] == 0);
    CHECK(R.rc[0] == ZERO_DIVISION);
    CHECK(R.rc[1] == 1); /* still cancelled from outside */
    CHECK(R.nerrors == 1 && errors_all(ZERO_DIVISION));
    return 0;
}
CASE(tg_15)

/* runner() of test_taskgroup_16: awaits a task running runner_15's body. */
static int runner_16(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *t = spawn(runner_15, 0);
    return t ? await_task(t) : ASYNC_ENOMEM;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_16: as _15, one task
 * down the await chain: cancelling the runner cancels the task it awaits
 * (async_task_cancel), whose group then behaves as in _15. */
static int case_tg_16(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = cancel_runner_soon(runner_16);
    CHECK(rc == ZERO_DIVISION || rc == ASYNC_ECANCELED); /* async_task's rule */
    CHECK(R.rc[2] == 0);
    CHECK(R.rc[0] == ZERO_DIVISION);
    CHECK(R.rc[1] == 1); /* the nested runner was cancelled by the chain */
    CHECK(R.nerrors == 1 && errors_all(ZERO_DIVISION));
    return 0;
}
CASE(tg_16)

/* runner() of test_taskgroup_17: an empty group, a cancelled body. */
static int runner_17(void *arg, void **result)
{
    (void)result;
    async_group *g = group_new();
    int rc = async_sleep(10 * ASYNC_SEC);
    if (rc == ASYNC_ECANCELED) {
        R.flag += 10;
        if (arg)
            rc = MY_EXC; /* test_taskgroup_18: raise MyExc instead */
    }
    rc = async_group_leave(g, rc);
    R.rc[0] = rc;
    R.rc[1] = async_task_cancelling(async_current_task()) != 0;
    record_errors(g);
    group_free(g);
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_17 */
static int case_tg_17(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(cancel_runner_soon(runner_17) == ASYNC_ECANCELED);
    CHECK(R.flag == 10);
    CHECK(R.rc[0] == ASYNC_ECANCELED);
    CHECK(R.nerrors == 0);
    return 0;
}
CASE(tg_17)

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_18: a cancelled body
 * raises MyExc; the group reports it (asyncio: ExceptionGroup({MyExc})).
 * The cancellation from outside is not swallowed (async/group.h). */
static int case_tg_18(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *r = spawn(runner_17, 1);
    async_sleep(10 * ASYNC_MSEC);
    CHECK(!done(r));
    async_task_cancel(r);
    int rc = await_task(r);
    CHECK(rc == MY_EXC || rc == ASYNC_ECANCELED); /* async_task's rule */
    CHECK(R.flag == 10);
    CHECK(R.rc[0] == MY_EXC);
    CHECK(R.rc[1] == 1);
    CHECK(R.nerrors == 1 && errors_all(MY_EXC));
    return 0;
}
CASE(tg_18)

/* runner() of test_taskgroup_19: the body is cancelled by the group (a
 * child failed) and its cleanup raises MyExc. */
static int runner_19(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    gspawn(g, &s_zerodiv_10ms);
    int rc = async_sleep(10 * ASYNC_SEC); /* nested() */
    R.rc[2] = rc;
    rc = async_group_leave(g, MY_EXC); /* finally: raise MyExc */
    R.rc[1] = async_task_cancelling(async_current_task()) != 0;
    record_errors(g);
    group_free(g);
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_19 */
static int case_tg_19(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(await_task(spawn(runner_19, 0)) == ZERO_DIVISION);
    CHECK(R.rc[2] == ASYNC_ECANCELED);
    CHECK(R.rc[1] == 0); /* the group withdrew its own cancel */
    CHECK(R.nerrors == 2);
    CHECK(R.errors[0] == ZERO_DIVISION && R.errors[1] == MY_EXC);
    return 0;
}
CASE(tg_19)

/* runner() of test_taskgroup_22: two sleepers, an empty body. */
static int runner_22(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    gspawn(g, &s_42_1s);
    gspawn(g, &s_11_2s);
    int rc = async_group_leave(g, 0);
    group_free(g);
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_22 */
static int case_tg_22(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(cancel_runner_soon(runner_22) == ASYNC_ECANCELED);
    return 0;
}
CASE(tg_22)

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_23 (len(g._tasks) is
 * async_group_running) */
static int case_tg_23(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    for (int count = 0; count < 10; count++) {
        async_sleep(10 * ASYNC_MSEC);
        gspawn(g, &s_job_30ms);
        if (count == 5)
            CHECK(async_group_running(g) < 5);
    }
    async_sleep(135 * ASYNC_MSEC);
    CHECK(async_group_running(g) == 0);
    CHECK(async_group_leave(g, 0) == 0);
    group_free(g);
    return 0;
}
CASE(tg_23)

static async_group *G; /* the group root() and hydra() spawn into */

/* root(g) of test_taskgroup_24: spawns two more children later. */
static int root_24(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = async_sleep(10 * ASYNC_MSEC);
    if (rc)
        return rc;
    gspawn(G, &s_42_10ms);
    gspawn(G, &s_11_20ms);
    return 0;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_24 */
static int case_tg_24(void *arg, void **result)
{
    (void)arg;
    (void)result;
    G = group_new();
    async_task *t;
    CHECK(async_group_spawn(G, &t, root_24, NULL, NULL) == 0);
    R.t[R.nt++] = t;
    CHECK(async_group_leave(G, 0) == 0);
    CHECK(R.nt == 3);
    group_free(G);
    return 0;
}
CASE(tg_24)

/* hydra(g) of test_taskgroup_25: every head grows two more. */
static int hydra(void *arg, void **result)
{
    (void)arg;
    (void)result;
    R.count++; /* nhydras */
    int rc = async_sleep(ASYNC_MSEC);
    if (rc)
        return rc;
    /* After the abort the group refuses new children (ESHUTDOWN). */
    (void)async_group_spawn(G, NULL, hydra, NULL, NULL);
    (void)async_group_spawn(G, NULL, hydra, NULL, NULL);
    return 0;
}

/* hercules() of test_taskgroup_25. */
static int hercules(void *arg, void **result)
{
    (void)arg;
    (void)result;
    while (R.count < 10) {
        int rc = async_sleep(ASYNC_MSEC + ASYNC_MSEC / 2);
        if (rc)
            return rc;
    }
    return ZERO_DIVISION;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_25 */
static int case_tg_25(void *arg, void **result)
{
    (void)arg;
    (void)result;
    G = group_new();
    CHECK(async_group_spawn(G, NULL, hydra, NULL, NULL) == 0);
    CHECK(async_group_spawn(G, NULL, hercules, NULL, NULL) == 0);
    CHECK(async_group_leave(G, 0) == ZERO_DIVISION);
    record_errors(G);
    CHECK(errors_all(ZERO_DIVISION));
    CHECK(R.count >= 10);
    group_free(G);
    return 0;
}
CASE(tg_25)

static int yield_once(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return async_yield();
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_task_name */
static int case_tg_task_name(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    async_task_opts opts = {.name = "yolo"};
    async_task *t;
    CHECK(async_group_spawn(g, &t, yield_once, NULL, &opts) == 0);
    R.t[R.nt++] = t;
    CHECK(strcmp(async_task_name(t), "yolo") == 0);
    CHECK(async_group_leave(g, 0) == 0);
    group_free(g);
    return 0;
}
CASE(tg_task_name)

/* coro2(g) of test_taskgroup_no_create_task_after_failure. */
static int coro2_spawn_after_failure(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = async_sleep(ASYNC_SEC);
    if (rc == ASYNC_ECANCELED)
        R.rc[0] = async_group_spawn(G, NULL, child, (void *)&s_zerodiv_10ms,
                                    NULL);
    return 0; /* the test's coro2 swallows the CancelledError */
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_no_create_task_after_failure */
static int case_tg_no_create_task_after_failure(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const spec s_zerodiv_1ms = {ASYNC_MSEC, 0, ZERO_DIVISION};
    G = group_new();
    gspawn(G, &s_zerodiv_1ms);
    CHECK(async_group_spawn(G, NULL, coro2_spawn_after_failure, NULL, NULL) ==
          0);
    CHECK(async_group_leave(G, 0) == ZERO_DIVISION);
    record_errors(G);
    CHECK(R.nerrors == 1 && errors_all(ZERO_DIVISION));
    CHECK(R.rc[0] == ASYNC_ESHUTDOWN); /* asyncio: RuntimeError */
    group_free(G);
    return 0;
}
CASE(tg_no_create_task_after_failure)

static int raise_custom(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return CUSTOM_EXC;
}

/* main() of test_taskgroup_context_manager_exit_raises: a child fails,
 * the body is cancelled, and the body's own cleanup (the `database()`
 * context manager) fails too. */
static int main_exit_raises(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    CHECK(async_group_spawn(g, NULL, raise_custom, NULL, NULL) == 0);
    (void)async_sleep(ASYNC_SEC);
    R.rc[0] = async_group_leave(g, CUSTOM_EXC);
    R.rc[1] = async_task_cancelling(async_current_task()) != 0;
    record_errors(g);
    group_free(g);
    return 0;
}

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_context_manager_exit_raises */
static int case_tg_context_manager_exit_raises(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(await_task(spawn(main_exit_raises, 0)) == 0);
    CHECK(R.rc[0] == CUSTOM_EXC);
    CHECK(R.rc[1] == 0); /* task.cancelling() == 0 */
    CHECK(R.nerrors == 2 && errors_all(CUSTOM_EXC));
    return 0;
}
CASE(tg_context_manager_exit_raises)

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_finished and
 * test_coro_closed_when_tg_closed: no child after the group finished */
static int case_tg_finished(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    CHECK(async_group_leave(g, 0) == 0);
    CHECK(async_group_spawn(g, NULL, yield_once, NULL, NULL) ==
          ASYNC_ESHUTDOWN); /* asyncio: RuntimeError "is finished" */
    CHECK(async_group_running(g) == 0);
    group_free(g);
    return 0;
}
CASE(tg_finished)

/* test_taskgroups.py: TestTaskGroup.test_taskgroup_without_parent_task:
 * outside a task there is no owner */
static void test_tg_without_parent_task(void **state)
{
    (void)state;
    async_group *g = NULL;
    assert_int_equal(async_group_new(&g), ASYNC_ENOTTASK);
    assert_null(g);
}

/* test_taskgroups.py: TestTaskGroup.test_cancelling_level_preserved */
static int case_tg_cancelling_level_preserved(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g = group_new();
    gspawn(g, &s_runtime_0);
    CHECK(async_group_leave(g, 0) == RUNTIME_ERROR);
    group_free(g);
    CHECK(async_task_cancelling(async_current_task()) == 0);
    return 0;
}
CASE(tg_cancelling_level_preserved)

/* test_taskgroups.py: TestTaskGroup.test_nested_groups_both_cancelled */
static int case_tg_nested_groups_both_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *self = async_current_task();
    async_group *outer = group_new();
    async_group *inner = group_new();
    gspawn(inner, &s_runtime_0);
    gspawn(outer, &s_valueerr_0);
    CHECK(async_group_leave(inner, 0) == RUNTIME_ERROR);
    group_free(inner);
    CHECK(async_task_cancelling(self) == 1); /* the outer group's request */
    CHECK(async_group_leave(outer, 0) == VALUE_ERROR);
    group_free(outer);
    CHECK(async_task_cancelling(self) == 0);
    return 0;
}
CASE(tg_nested_groups_both_cancelled)

/* raise_error() of test_error_and_cancel. */
static int raise_error_after_event(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_event_set(R.ev);
    (void)async_yield();
    return RUNTIME_ERROR;
}

/* inner() of test_error_and_cancel. */
static int inner_error_and_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *self = async_current_task();
    async_group *g = group_new();
    CHECK(async_group_spawn(g, NULL, raise_error_after_event, NULL, NULL) ==
          0);
    int rc = async_sleep(ASYNC_SEC);
    CHECK(rc != 0); /* "Sleep in group should have been cancelled" */
    rc = async_group_leave(g, rc);
    R.rc[0] = rc;
    group_free(g);
    CHECK(async_task_cancelling(self) == 1);
    rc = async_sleep(ASYNC_SEC);
    CHECK(rc == ASYNC_ECANCELED); /* "Sleep after group should have been
                                   * cancelled" */
    return rc;
}

/* test_taskgroups.py: TestTaskGroup.test_error_and_cancel (outer()) */
static int case_tg_error_and_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    CHECK(async_event_new(&R.ev) == 0);
    async_task *t = spawn(inner_error_and_cancel, 0);
    CHECK(async_event_wait(R.ev) == 0);
    CHECK(async_task_cancelling(t) == 0);
    async_task_cancel(t);
    CHECK(async_task_cancelling(t) == 1);
    CHECK(await_task(t) == ASYNC_ECANCELED);
    CHECK(cancelled(t));
    /* The group reports the child's RuntimeError (asyncio: except*
     * RuntimeError), or the cancellation if the child was cancelled
     * before it failed. */
    CHECK(R.rc[0] == RUNTIME_ERROR || R.rc[0] == ASYNC_ECANCELED);
    return 0;
}
CASE(tg_error_and_cancel)

#define T(name) cmocka_unit_test_setup_teardown(test_##name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(tg_01),
        T(tg_02),
        T(tg_03),
        T(tg_04),
        T(tg_cancel_children_on_child_error),
        T(tg_cancellation),
        T(tg_07),
        T(tg_cancellation_in_body),
        T(tg_09),
        T(tg_10),
        T(tg_11),
        T(tg_12),
        T(tg_13),
        T(tg_14),
        T(tg_15),
        T(tg_16),
        T(tg_17),
        T(tg_18),
        T(tg_19),
        T(tg_22),
        T(tg_23),
        T(tg_24),
        T(tg_25),
        T(tg_task_name),
        T(tg_no_create_task_after_failure),
        T(tg_context_manager_exit_raises),
        T(tg_finished),
        cmocka_unit_test(test_tg_without_parent_task),
        T(tg_cancelling_level_preserved),
        T(tg_nested_groups_both_cancelled),
        T(tg_error_and_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
