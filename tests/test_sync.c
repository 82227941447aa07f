/*
 * Event, Lock, Semaphore, BoundedSemaphore, Condition and Barrier: the
 * semantics, FIFO fairness under 1,000 contending tasks, deadlines, and
 * cancellation of waiters, including cancellation racing with a hand-off.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"

enum { NCONTEND = 1000 };

static async_loop *L;
static th_leaks leaks;

/* What the tasks saw, recorded inside, asserted after the loop returns. */
typedef struct rec {
    async_lock *lock;           /* the object under test, by kind */
    async_semaphore *sem;
    async_event *ev;
    async_condition *cond;
    async_barrier *bar;
    async_task *tasks[8];       /* helper tasks, for cancelling */
    int rc[16];                 /* return codes, by slot */
    bool held[16];              /* what a task observed, by slot */
    int order[NCONTEND];        /* ids in the order they got the resource */
    int n;                      /* entries in order */
    int flag;                   /* shared state for predicates */
    uint64_t t0, t1;            /* loop times around a deadline wait */
} rec;

static rec R;

static const async_task_opts small_stack = {.stack_size = 64 * 1024};

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

/* Runs main(arg) as a task to completion and returns its outcome. */
static int run_main(async_fn main_fn, void *arg)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, main_fn, arg, NULL), 0);
    int rc = async_loop_run_until_complete(L, t, NULL);
    async_task_unref(t);
    return rc;
}

static int spawn_small(async_task **out, async_fn fn, void *arg)
{
    return async_spawn_opts(out, fn, arg, &small_stack);
}

/* Lets every ready task run a few steps. */
static void settle(int rounds)
{
    for (int i = 0; i < rounds; i++)
        async_yield();
}

/* ---- Event ----------------------------------------------------------------- */

static int event_waiter(void *arg, void **result)
{
    (void)result;
    int slot = (int)(intptr_t)arg;
    R.rc[slot] = async_event_wait(R.ev);
    return 0;
}

static int event_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *t[3];
    for (int i = 0; i < 3; i++)
        spawn_small(&t[i], event_waiter, (void *)(intptr_t)i);
    settle(3);
    R.held[0] = async_event_is_set(R.ev);
    R.rc[10] = async_event_free(R.ev); /* waiters: refused */
    async_event_set(R.ev);
    async_event_clear(R.ev); /* woken waiters still return 0 */
    for (int i = 0; i < 3; i++) {
        async_await(t[i], NULL);
        async_task_unref(t[i]);
    }
    async_event_set(R.ev);
    R.rc[3] = async_event_wait(R.ev); /* already set: at once */
    R.held[1] = async_event_is_set(R.ev);
    async_event_clear(R.ev);
    R.t0 = async_loop_time(L);
    R.rc[4] = async_event_wait_until(R.ev, R.t0 + 5 * ASYNC_MSEC);
    R.t1 = async_loop_time(L);
    return 0;
}

static void test_event(void **state)
{
    (void)state;
    assert_int_equal(async_event_new(&R.ev), 0);
    assert_int_equal(run_main(event_main, NULL), 0);
    assert_false(R.held[0]);
    assert_int_equal(R.rc[10], ASYNC_EBUSY);
    for (int i = 0; i < 4; i++)
        assert_int_equal(R.rc[i], 0);
    assert_true(R.held[1]);
    assert_int_equal(R.rc[4], ASYNC_ETIMEDOUT);
    assert_true(R.t1 - R.t0 >= 5 * ASYNC_MSEC);
    assert_int_equal(async_event_free(R.ev), 0);
}

static int event_cancel_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *t;
    spawn_small(&t, event_waiter, (void *)(intptr_t)0);
    settle(2);
    async_task_cancel(t);
    R.rc[1] = async_await(t, NULL);
    async_task_unref(t);
    R.rc[2] = async_event_free(R.ev); /* the waiter left: free works */
    R.ev = NULL;
    return 0;
}

static void test_event_cancel(void **state)
{
    (void)state;
    assert_int_equal(async_event_new(&R.ev), 0);
    assert_int_equal(run_main(event_cancel_main, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_ECANCELED);
    assert_int_equal(R.rc[2], 0);
}

static void test_event_bad_input(void **state)
{
    (void)state;
    async_event *ev;
    assert_int_equal(async_event_new(NULL), ASYNC_EINVAL);
    assert_int_equal(async_event_set(NULL), ASYNC_EINVAL);
    assert_int_equal(async_event_clear(NULL), ASYNC_EINVAL);
    assert_false(async_event_is_set(NULL));
    assert_int_equal(async_event_wait(NULL), ASYNC_EINVAL);
    assert_int_equal(async_event_free(NULL), 0);
    assert_int_equal(async_event_new(&ev), 0);
    assert_int_equal(async_event_wait(ev), ASYNC_ENOTTASK);
    assert_int_equal(async_event_free(ev), 0);
}

/* ---- Lock ------------------------------------------------------------------- */

static int lock_contender(void *arg, void **result)
{
    (void)result;
    int id = (int)(intptr_t)arg;
    int rc = async_lock_acquire(R.lock);
    if (rc)
        return rc;
    R.order[R.n++] = id;
    /* Hold it across a suspension so others pile up and may try to barge. */
    async_yield();
    return async_lock_release(R.lock);
}

static int lock_fair_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static async_task *t[NCONTEND];
    async_lock_acquire(R.lock);
    for (int i = 0; i < NCONTEND; i++)
        spawn_small(&t[i], lock_contender, (void *)(intptr_t)i);
    settle(2); /* all of them are queued now, in spawn order */
    async_lock_release(R.lock);
    int failures = 0;
    for (int i = 0; i < NCONTEND; i++) {
        failures += async_await(t[i], NULL) != 0;
        async_task_unref(t[i]);
    }
    R.rc[0] = failures;
    R.held[0] = async_lock_locked(R.lock);
    return 0;
}

/* 1,000 tasks contend: they get the lock in arrival order. */
static void test_lock_fifo_fair(void **state)
{
    (void)state;
    assert_int_equal(async_lock_new(&R.lock), 0);
    assert_int_equal(run_main(lock_fair_main, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.n, NCONTEND);
    for (int i = 0; i < NCONTEND; i++)
        assert_int_equal(R.order[i], i);
    assert_false(R.held[0]);
    assert_int_equal(async_lock_free(R.lock), 0);
}

/* A task that arrives after a release but before the waiter ran. */
static int lock_barger(void *arg, void **result)
{
    (void)arg;
    (void)result;
    R.rc[5] = async_lock_try_acquire(R.lock);
    int rc = async_lock_acquire(R.lock);
    if (rc == 0) {
        R.order[R.n++] = 99;
        async_lock_release(R.lock);
    }
    return rc;
}

static int lock_nobarge_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *w, *b;
    async_lock_acquire(R.lock);
    spawn_small(&w, lock_contender, (void *)(intptr_t)1);
    settle(2);
    async_lock_release(R.lock); /* handed to w, which has not run yet */
    R.held[0] = async_lock_locked(R.lock);
    spawn_small(&b, lock_barger, NULL);
    async_await(w, NULL);
    async_await(b, NULL);
    async_task_unref(w);
    async_task_unref(b);
    return 0;
}

static void test_lock_no_barging(void **state)
{
    (void)state;
    assert_int_equal(async_lock_new(&R.lock), 0);
    assert_int_equal(run_main(lock_nobarge_main, NULL), 0);
    assert_true(R.held[0]);
    assert_int_equal(R.rc[5], ASYNC_EAGAIN);
    assert_int_equal(R.n, 2);
    assert_int_equal(R.order[0], 1);
    assert_int_equal(R.order[1], 99);
    assert_false(async_lock_locked(R.lock));
    assert_int_equal(async_lock_free(R.lock), 0);
}

/* Acquires, records whether it got the lock, releases if it did. */
static int lock_waiter(void *arg, void **result)
{
    (void)result;
    int slot = (int)(intptr_t)arg;
    int rc = async_lock_acquire(R.lock);
    R.rc[slot] = rc;
    if (rc == 0) {
        R.order[R.n++] = slot;
        R.held[slot] = async_lock_locked(R.lock);
        async_shield_enter(); /* may be cancelled while holding it */
        async_yield();
        async_shield_leave();
        async_lock_release(R.lock);
    }
    return 0;
}

static int lock_cancel_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *a, *b, *c;
    async_lock_acquire(R.lock);
    spawn_small(&a, lock_waiter, (void *)(intptr_t)1);
    spawn_small(&b, lock_waiter, (void *)(intptr_t)2);
    spawn_small(&c, lock_waiter, (void *)(intptr_t)3);
    settle(2);
    /* Plain cancellation of a queued waiter: it leaves the queue. */
    async_task_cancel(b);
    settle(2);
    /* Race: a is cancelled, then (before it runs) the lock is handed to
     * it.  It must not keep the lock: it passes it on to c. */
    async_task_cancel(a);
    async_lock_release(R.lock);
    R.rc[10] = async_lock_free(R.lock); /* a still has to pass it on */
    async_await(a, NULL);
    async_await(b, NULL);
    async_await(c, NULL);
    R.held[0] = async_lock_locked(R.lock);
    async_task_unref(a);
    async_task_unref(b);
    async_task_unref(c);
    return 0;
}

static void test_lock_cancel_waiter(void **state)
{
    (void)state;
    assert_int_equal(async_lock_new(&R.lock), 0);
    assert_int_equal(run_main(lock_cancel_main, NULL), 0);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
    assert_int_equal(R.rc[2], ASYNC_ECANCELED);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[10], ASYNC_EBUSY);
    assert_int_equal(R.n, 1);
    assert_int_equal(R.order[0], 3);
    assert_false(R.held[0]);
    assert_int_equal(async_lock_free(R.lock), 0);
}

static int lock_grant_then_cancel_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *a;
    async_lock_acquire(R.lock);
    spawn_small(&a, lock_waiter, (void *)(intptr_t)1);
    settle(2);
    /* The hand-off comes first: a holds the lock and owns releasing it;
     * the cancellation hits its next suspension point. */
    async_lock_release(R.lock);
    async_task_cancel(a);
    R.rc[0] = async_await(a, NULL);
    R.held[0] = async_lock_locked(R.lock);
    async_task_unref(a);
    return 0;
}

static void test_lock_grant_then_cancel(void **state)
{
    (void)state;
    assert_int_equal(async_lock_new(&R.lock), 0);
    assert_int_equal(run_main(lock_grant_then_cancel_main, NULL), 0);
    assert_int_equal(R.rc[1], 0);
    assert_true(R.held[1]);
    assert_false(R.held[0]);
    assert_int_equal(async_lock_free(R.lock), 0);
}

static int lock_deadline_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_lock_acquire(R.lock);
    R.t0 = async_loop_time(L);
    /* Held by us: the wait times out and the lock stays ours. */
    R.rc[0] = async_lock_acquire_until(R.lock, R.t0 + 5 * ASYNC_MSEC);
    R.t1 = async_loop_time(L);
    R.held[0] = async_lock_locked(R.lock);
    R.rc[1] = async_lock_release(R.lock);
    /* A free lock is taken even with a deadline in the past. */
    R.rc[2] = async_lock_acquire_until(R.lock, 0);
    R.rc[3] = async_lock_release(R.lock);
    R.rc[4] = async_lock_release(R.lock);
    return 0;
}

static void test_lock_deadline(void **state)
{
    (void)state;
    assert_int_equal(async_lock_new(&R.lock), 0);
    assert_int_equal(run_main(lock_deadline_main, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_true(R.t1 - R.t0 >= 5 * ASYNC_MSEC);
    assert_true(R.held[0]); /* still the first holder's */
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[4], ASYNC_ENOTHELD);
    assert_int_equal(async_lock_free(R.lock), 0);
}

static int lock_busy_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *a;
    async_lock_acquire(R.lock);
    spawn_small(&a, lock_waiter, (void *)(intptr_t)1);
    settle(2);
    R.rc[0] = async_lock_free(R.lock);
    async_lock_release(R.lock);
    async_await(a, NULL);
    async_task_unref(a);
    return 0;
}

static void test_lock_bad_input(void **state)
{
    (void)state;
    async_lock *lock;
    assert_int_equal(async_lock_new(NULL), ASYNC_EINVAL);
    assert_int_equal(async_lock_acquire(NULL), ASYNC_EINVAL);
    assert_int_equal(async_lock_try_acquire(NULL), ASYNC_EINVAL);
    assert_int_equal(async_lock_release(NULL), ASYNC_EINVAL);
    assert_false(async_lock_locked(NULL));
    assert_int_equal(async_lock_free(NULL), 0);
    assert_int_equal(async_lock_new(&lock), 0);
    assert_int_equal(async_lock_release(lock), ASYNC_ENOTHELD);
    assert_false(async_lock_locked(lock));
    assert_int_equal(async_lock_acquire(lock), ASYNC_ENOTTASK);
    assert_int_equal(async_lock_try_acquire(lock), 0);
    assert_int_equal(async_lock_try_acquire(lock), ASYNC_EAGAIN);
    assert_int_equal(async_lock_release(lock), 0);
    assert_int_equal(async_lock_free(lock), 0);
    /* Freeing with waiters is refused. */
    R.lock = NULL;
    assert_int_equal(async_lock_new(&R.lock), 0);
    assert_int_equal(run_main(lock_busy_main, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_EBUSY);
    assert_int_equal(async_lock_free(R.lock), 0);
}

/* ---- Semaphore ---------------------------------------------------------------- */

static int sem_contender(void *arg, void **result)
{
    (void)result;
    int id = (int)(intptr_t)arg;
    int rc = async_semaphore_acquire(R.sem);
    if (rc)
        return rc;
    R.order[R.n++] = id;
    async_yield();
    return async_semaphore_release(R.sem);
}

static int sem_fair_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static async_task *t[NCONTEND];
    /* Take both permits so every contender queues. */
    async_semaphore_acquire(R.sem);
    async_semaphore_acquire(R.sem);
    for (int i = 0; i < NCONTEND; i++)
        spawn_small(&t[i], sem_contender, (void *)(intptr_t)i);
    settle(2);
    async_semaphore_release(R.sem);
    async_semaphore_release(R.sem);
    int failures = 0;
    for (int i = 0; i < NCONTEND; i++) {
        failures += async_await(t[i], NULL) != 0;
        async_task_unref(t[i]);
    }
    R.rc[0] = failures;
    return 0;
}

/* Two permits, 1,000 contenders: permits are granted in arrival order. */
static void test_semaphore_fifo_fair(void **state)
{
    (void)state;
    assert_int_equal(async_semaphore_new_bounded(&R.sem, 2), 0);
    assert_int_equal(run_main(sem_fair_main, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.n, NCONTEND);
    for (int i = 0; i < NCONTEND; i++)
        assert_int_equal(R.order[i], i);
    assert_int_equal(async_semaphore_value(R.sem), 2);
    assert_int_equal(async_semaphore_free(R.sem), 0);
}

static int sem_waiter(void *arg, void **result)
{
    (void)result;
    int slot = (int)(intptr_t)arg;
    int rc = async_semaphore_acquire(R.sem);
    R.rc[slot] = rc;
    if (rc == 0) {
        R.order[R.n++] = slot;
        async_semaphore_release(R.sem);
    }
    return 0;
}

static int sem_cancel_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *a, *b;
    async_semaphore_acquire(R.sem);
    spawn_small(&a, sem_waiter, (void *)(intptr_t)1);
    spawn_small(&b, sem_waiter, (void *)(intptr_t)2);
    settle(2);
    R.held[0] = async_semaphore_locked(R.sem);
    /* Cancelled, then handed the permit before it ran: passes it on. */
    async_task_cancel(a);
    async_semaphore_release(R.sem);
    async_await(a, NULL);
    async_await(b, NULL);
    async_task_unref(a);
    async_task_unref(b);
    R.rc[0] = (int)async_semaphore_value(R.sem);
    /* Deadline while no permit is free. */
    async_semaphore_acquire(R.sem);
    R.t0 = async_loop_time(L);
    R.rc[3] = async_semaphore_acquire_until(R.sem, R.t0 + 2 * ASYNC_MSEC);
    R.t1 = async_loop_time(L);
    R.rc[4] = async_semaphore_try_acquire(R.sem);
    async_semaphore_release(R.sem);
    return 0;
}

static void test_semaphore_cancel_and_deadline(void **state)
{
    (void)state;
    assert_int_equal(async_semaphore_new(&R.sem, 1), 0);
    assert_int_equal(run_main(sem_cancel_main, NULL), 0);
    assert_true(R.held[0]);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.n, 1);
    assert_int_equal(R.order[0], 2);
    assert_int_equal(R.rc[0], 1);
    assert_int_equal(R.rc[3], ASYNC_ETIMEDOUT);
    assert_true(R.t1 - R.t0 >= 2 * ASYNC_MSEC);
    assert_int_equal(R.rc[4], ASYNC_EAGAIN);
    assert_int_equal(async_semaphore_value(R.sem), 1);
    assert_int_equal(async_semaphore_free(R.sem), 0);
}

/* A waiter that keeps its permit (sem_waiter releases it at once). */
static int sem_keeper(void *arg, void **result)
{
    (void)result;
    int slot = (int)(intptr_t)arg;
    R.rc[slot] = async_semaphore_acquire(R.sem);
    if (R.rc[slot] == 0)
        R.order[R.n++] = slot;
    return 0;
}

/*
 * CPython 3.12's ordering: while a waiter that was handed a permit has not
 * resumed, a free permit is not for newcomers.  A newcomer queues (a
 * deadline that passes meanwhile leaves the count as it was) and is served
 * when the grantee resumes.
 */
static int sem_behind_grantee_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *a;
    async_semaphore_acquire(R.sem);
    spawn_small(&a, sem_keeper, (void *)(intptr_t)1);
    settle(1);
    async_semaphore_release(R.sem); /* handed to a */
    async_semaphore_release(R.sem); /* nobody queued: the count is 1 */
    R.rc[2] = (int)async_semaphore_value(R.sem);
    R.rc[3] = async_semaphore_try_acquire(R.sem);
    R.held[0] = async_semaphore_locked(R.sem);
    R.rc[4] = async_semaphore_acquire_until(R.sem, async_loop_time(L));
    R.rc[5] = (int)async_semaphore_value(R.sem);
    /* Served after a (the deadline only bounds a failure of this test). */
    R.rc[6] = async_semaphore_acquire_until(R.sem,
                                           async_loop_time(L) + ASYNC_SEC);
    R.order[R.n++] = 0;
    R.rc[7] = (int)async_semaphore_value(R.sem);
    async_await(a, NULL);
    async_task_unref(a);
    async_semaphore_release(R.sem);
    return 0;
}

static void test_semaphore_newcomer_behind_grantee(void **state)
{
    (void)state;
    assert_int_equal(async_semaphore_new(&R.sem, 1), 0);
    assert_int_equal(run_main(sem_behind_grantee_main, NULL), 0);
    assert_int_equal(R.rc[2], 1);
    assert_int_equal(R.rc[3], ASYNC_EAGAIN);
    assert_true(R.held[0]);
    assert_int_equal(R.rc[4], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[5], 1);
    assert_int_equal(R.rc[6], 0);
    assert_int_equal(R.rc[7], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.n, 2);
    assert_int_equal(R.order[0], 1);
    assert_int_equal(R.order[1], 0);
    assert_int_equal(async_semaphore_value(R.sem), 1);
    assert_int_equal(async_semaphore_free(R.sem), 0);
}

static void test_semaphore_bad_input(void **state)
{
    (void)state;
    async_semaphore *s;
    assert_int_equal(async_semaphore_new(&s, -1), ASYNC_EINVAL);
    assert_int_equal(async_semaphore_new_bounded(&s, -5), ASYNC_EINVAL);
    assert_int_equal(async_semaphore_new(NULL, 1), ASYNC_EINVAL);
    assert_int_equal(async_semaphore_acquire(NULL), ASYNC_EINVAL);
    assert_int_equal(async_semaphore_try_acquire(NULL), ASYNC_EINVAL);
    assert_int_equal(async_semaphore_release(NULL), ASYNC_EINVAL);
    assert_int_equal(async_semaphore_value(NULL), 0);
    assert_int_equal(async_semaphore_free(NULL), 0);

    /* Bounded: a release above the initial value is refused. */
    assert_int_equal(async_semaphore_new_bounded(&s, 1), 0);
    assert_int_equal(async_semaphore_release(s), ASYNC_ENOTHELD);
    assert_int_equal(async_semaphore_value(s), 1);
    assert_int_equal(async_semaphore_try_acquire(s), 0);
    assert_true(async_semaphore_locked(s));
    assert_int_equal(async_semaphore_try_acquire(s), ASYNC_EAGAIN);
    assert_int_equal(async_semaphore_release(s), 0);
    assert_int_equal(async_semaphore_release(s), ASYNC_ENOTHELD);
    assert_int_equal(async_semaphore_acquire(s), ASYNC_ENOTTASK);
    assert_int_equal(async_semaphore_free(s), 0);

    /* Unbounded: releases add permits; zero is a valid start. */
    assert_int_equal(async_semaphore_new(&s, 0), 0);
    assert_true(async_semaphore_locked(s));
    assert_int_equal(async_semaphore_release(s), 0);
    assert_int_equal(async_semaphore_release(s), 0);
    assert_int_equal(async_semaphore_value(s), 2);
    assert_int_equal(async_semaphore_free(s), 0);
    assert_int_equal(async_semaphore_new(&s, LONG_MAX), 0);
    assert_int_equal(async_semaphore_release(s), ASYNC_ENOSPC);
    assert_int_equal(async_semaphore_free(s), 0);
}

/* ---- Condition ---------------------------------------------------------------- */

static bool flag_is_set(void *arg)
{
    (void)arg;
    return R.flag != 0;
}

static int cond_waiter(void *arg, void **result)
{
    (void)result;
    int slot = (int)(intptr_t)arg;
    async_lock *lock = async_condition_lock(R.cond);
    int rc = async_lock_acquire(lock);
    if (rc)
        return rc;
    rc = async_condition_wait(R.cond);
    R.rc[slot] = rc;
    R.held[slot] = async_lock_locked(lock);
    if (rc == 0)
        R.order[R.n++] = slot;
    async_lock_release(lock);
    return 0;
}

static int cond_pred_waiter(void *arg, void **result)
{
    (void)result;
    int slot = (int)(intptr_t)arg;
    async_lock *lock = async_condition_lock(R.cond);
    async_lock_acquire(lock);
    R.rc[slot] = async_condition_wait_for(R.cond, flag_is_set, NULL);
    R.held[slot] = async_lock_locked(lock);
    async_lock_release(lock);
    return 0;
}

static int cond_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_lock *lock = async_condition_lock(R.cond);
    async_task *t[4];
    for (int i = 0; i < 3; i++)
        spawn_small(&t[i], cond_waiter, (void *)(intptr_t)(i + 1));
    spawn_small(&t[3], cond_pred_waiter, (void *)(intptr_t)4);
    settle(3);
    R.rc[10] = async_condition_notify(R.cond, 1); /* lock not held */
    R.rc[11] = async_condition_free(R.cond);      /* waiters */
    async_lock_acquire(lock);
    R.rc[12] = async_condition_notify(R.cond, 1); /* wakes waiter 1 */
    async_lock_release(lock);
    settle(3);
    async_lock_acquire(lock);
    R.rc[13] = async_condition_notify_all(R.cond); /* 2, 3 and the pred */
    async_lock_release(lock);
    settle(3);
    /* The predicate waiter went back to sleep: flag still 0. */
    R.held[0] = async_future_done(async_task_future(t[3]));
    async_lock_acquire(lock);
    R.flag = 1;
    async_condition_notify_all(R.cond);
    async_lock_release(lock);
    for (int i = 0; i < 4; i++) {
        async_await(t[i], NULL);
        async_task_unref(t[i]);
    }
    return 0;
}

static void test_condition_notify(void **state)
{
    (void)state;
    assert_int_equal(async_condition_new(&R.cond, NULL), 0);
    assert_int_equal(run_main(cond_main, NULL), 0);
    assert_int_equal(R.rc[10], ASYNC_ENOTHELD);
    assert_int_equal(R.rc[11], ASYNC_EBUSY);
    assert_int_equal(R.rc[12], 1);
    assert_int_equal(R.rc[13], 3);
    assert_false(R.held[0]);
    for (int i = 1; i <= 4; i++) {
        assert_int_equal(R.rc[i], 0);
        assert_true(R.held[i]);
    }
    assert_int_equal(R.n, 3);
    assert_int_equal(R.order[0], 1);
    assert_int_equal(R.order[1], 2);
    assert_int_equal(R.order[2], 3);
    assert_int_equal(async_condition_free(R.cond), 0);
}

static int cond_cancel_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_lock *lock = async_condition_lock(R.cond);
    async_task *a, *b, *c;
    spawn_small(&a, cond_waiter, (void *)(intptr_t)1);
    spawn_small(&b, cond_waiter, (void *)(intptr_t)2);
    spawn_small(&c, cond_waiter, (void *)(intptr_t)3);
    settle(3);
    /* a: cancelled while the lock is held by us: it must come back holding
     * the lock, so it waits for our release. */
    async_lock_acquire(lock);
    async_task_cancel(a);
    settle(2);
    R.held[0] = async_future_done(async_task_future(a));
    /* b: cancelled, then notified before it ran: the notification goes on
     * to c. */
    async_task_cancel(b);
    R.rc[10] = async_condition_notify(R.cond, 1);
    async_lock_release(lock);
    async_await(a, NULL);
    async_await(b, NULL);
    async_await(c, NULL);
    async_task_unref(a);
    async_task_unref(b);
    async_task_unref(c);
    /* Deadline: the wait times out and returns holding the lock. */
    async_lock_acquire(lock);
    R.t0 = async_loop_time(L);
    R.rc[4] = async_condition_wait_until(R.cond, R.t0 + 2 * ASYNC_MSEC);
    R.t1 = async_loop_time(L);
    R.held[4] = async_lock_locked(lock);
    R.rc[5] = async_condition_wait_for_until(R.cond, flag_is_set, NULL,
                                             R.t1 + ASYNC_MSEC);
    R.held[5] = async_lock_locked(lock);
    async_lock_release(lock);
    R.rc[6] = async_condition_wait(R.cond); /* lock not held */
    return 0;
}

static void test_condition_cancel_and_deadline(void **state)
{
    (void)state;
    assert_int_equal(async_condition_new(&R.cond, NULL), 0);
    assert_int_equal(run_main(cond_cancel_main, NULL), 0);
    assert_false(R.held[0]); /* a waited for the lock */
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
    assert_true(R.held[1]);
    assert_int_equal(R.rc[2], ASYNC_ECANCELED);
    assert_true(R.held[2]);
    assert_int_equal(R.rc[10], 1);
    assert_int_equal(R.rc[3], 0); /* got b's notification */
    assert_true(R.held[3]);
    assert_int_equal(R.rc[4], ASYNC_ETIMEDOUT);
    assert_true(R.t1 - R.t0 >= 2 * ASYNC_MSEC);
    assert_true(R.held[4]);
    assert_int_equal(R.rc[5], ASYNC_ETIMEDOUT);
    assert_true(R.held[5]);
    assert_int_equal(R.rc[6], ASYNC_ENOTHELD);
    assert_int_equal(async_condition_free(R.cond), 0);
}

static void test_condition_bad_input(void **state)
{
    (void)state;
    async_condition *c;
    async_lock *lock;
    assert_int_equal(async_condition_new(NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_condition_wait(NULL), ASYNC_EINVAL);
    assert_int_equal(async_condition_notify(NULL, 1), ASYNC_EINVAL);
    assert_int_equal(async_condition_notify_all(NULL), ASYNC_EINVAL);
    assert_null(async_condition_lock(NULL));
    assert_int_equal(async_condition_free(NULL), 0);
    assert_int_equal(async_lock_new(&lock), 0);
    assert_int_equal(async_condition_new(&c, lock), 0);
    assert_ptr_equal(async_condition_lock(c), lock);
    assert_int_equal(async_condition_wait(c), ASYNC_ENOTTASK);
    assert_int_equal(async_condition_wait_for(c, NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_condition_notify(c, 1), ASYNC_ENOTHELD);
    assert_int_equal(async_lock_try_acquire(lock), 0);
    assert_int_equal(async_condition_notify(c, 5), 0);
    assert_int_equal(async_lock_release(lock), 0);
    assert_int_equal(async_condition_free(c), 0);
    assert_int_equal(async_lock_free(lock), 0); /* still the caller's */
}

/* ---- Barrier ------------------------------------------------------------------ */

static int barrier_party(void *arg, void **result)
{
    (void)result;
    int slot = (int)(intptr_t)arg;
    int rc = async_barrier_wait(R.bar);
    R.rc[slot] = rc;
    if (rc < 0)
        return 0;
    /* A second cycle with the same parties. */
    R.rc[slot + 8] = async_barrier_wait(R.bar);
    return 0;
}

static int barrier_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *t[3];
    for (int i = 0; i < 3; i++) {
        spawn_small(&t[i], barrier_party, (void *)(intptr_t)i);
        settle(2); /* arrive in slot order */
        R.order[R.n++] = (int)async_barrier_n_waiting(R.bar);
    }
    for (int i = 0; i < 3; i++) {
        async_await(t[i], NULL);
        async_task_unref(t[i]);
    }
    return 0;
}

static void test_barrier_cycles(void **state)
{
    (void)state;
    assert_int_equal(async_barrier_new(&R.bar, 3), 0);
    assert_int_equal(async_barrier_parties(R.bar), 3);
    assert_int_equal(run_main(barrier_main, NULL), 0);
    assert_int_equal(R.order[0], 1);
    assert_int_equal(R.order[1], 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(R.rc[i], i); /* arrival index */
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        assert_true(R.rc[i + 8] >= 0 && R.rc[i + 8] < 3);
        seen |= 1 << R.rc[i + 8];
    }
    assert_int_equal(seen, 7);
    assert_int_equal(async_barrier_n_waiting(R.bar), 0);
    assert_int_equal(async_barrier_free(R.bar), 0);
}

static int barrier_once(void *arg, void **result)
{
    (void)result;
    int slot = (int)(intptr_t)arg;
    R.rc[slot] = async_barrier_wait(R.bar);
    return 0;
}

static int barrier_break_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *t[3];
    spawn_small(&t[0], barrier_once, (void *)(intptr_t)0);
    spawn_small(&t[1], barrier_once, (void *)(intptr_t)1);
    settle(2);
    /* A waiter that gives up withdraws: the cycle still needs 3. */
    async_task_cancel(t[1]);
    settle(2);
    R.order[0] = (int)async_barrier_n_waiting(R.bar);
    R.rc[10] = async_barrier_free(R.bar);
    async_barrier_abort(R.bar);
    async_await(t[0], NULL);
    R.rc[2] = async_barrier_wait(R.bar); /* broken: at once */
    R.held[0] = async_barrier_broken(R.bar);
    async_barrier_reset(R.bar);
    R.held[1] = async_barrier_broken(R.bar);
    spawn_small(&t[2], barrier_once, (void *)(intptr_t)3);
    settle(2);
    async_barrier_reset(R.bar); /* the waiter gets EBROKEN */
    async_await(t[2], NULL);
    R.t0 = async_loop_time(L);
    R.rc[4] = async_barrier_wait_until(R.bar, R.t0 + ASYNC_MSEC);
    R.order[1] = (int)async_barrier_n_waiting(R.bar);
    for (int i = 0; i < 3; i++)
        async_task_unref(t[i]);
    return 0;
}

static void test_barrier_abort_reset_cancel(void **state)
{
    (void)state;
    assert_int_equal(async_barrier_new(&R.bar, 3), 0);
    assert_int_equal(run_main(barrier_break_main, NULL), 0);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
    assert_int_equal(R.order[0], 1);
    assert_int_equal(R.rc[10], ASYNC_EBUSY);
    assert_int_equal(R.rc[0], ASYNC_EBROKEN);
    assert_int_equal(R.rc[2], ASYNC_EBROKEN);
    assert_true(R.held[0]);
    assert_false(R.held[1]);
    assert_int_equal(R.rc[3], ASYNC_EBROKEN);
    assert_int_equal(R.rc[4], ASYNC_ETIMEDOUT);
    assert_int_equal(R.order[1], 0);
    assert_int_equal(async_barrier_free(R.bar), 0);
}

static void test_barrier_bad_input(void **state)
{
    (void)state;
    async_barrier *b;
    assert_int_equal(async_barrier_new(&b, 0), ASYNC_EINVAL);
    assert_int_equal(async_barrier_new(NULL, 2), ASYNC_EINVAL);
    assert_int_equal(async_barrier_new(&b, UINT32_MAX), ASYNC_EINVAL);
    assert_int_equal(async_barrier_wait(NULL), ASYNC_EINVAL);
    assert_int_equal(async_barrier_abort(NULL), ASYNC_EINVAL);
    assert_int_equal(async_barrier_reset(NULL), ASYNC_EINVAL);
    assert_int_equal(async_barrier_parties(NULL), 0);
    assert_false(async_barrier_broken(NULL));
    assert_int_equal(async_barrier_free(NULL), 0);
    assert_int_equal(async_barrier_new(&b, 1), 0);
    assert_int_equal(async_barrier_wait(b), ASYNC_ENOTTASK);
    assert_int_equal(async_barrier_free(b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_fifo_fair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_no_barging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_cancel_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_grant_then_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_fifo_fair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_cancel_and_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_newcomer_behind_grantee, setup, teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_condition_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_condition_cancel_and_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_condition_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_barrier_cycles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_barrier_abort_reset_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_barrier_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
