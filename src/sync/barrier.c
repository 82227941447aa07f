/*
 * asyncio.Barrier, with asyncio's four states:
 *
 *   filling    tasks arrive and wait; the last party releases them all
 *   draining   the released tasks are leaving; a task that calls wait now
 *              is held back until every released task has left, so it
 *              cannot mix into the cycle that is being released
 *   resetting  a reset hit a cycle with tasks inside: those still waiting,
 *              and those released but not yet resumed, fail with
 *              ASYNC_EBROKEN; newcomers are held back until all have left
 *   broken     aborted: every wait fails with ASYNC_EBROKEN until a reset
 *
 * `count` is asyncio's _count: the tasks inside wait() -- arrived in the
 * filling cycle, or released and not yet resumed.  The last one out ends a
 * drain or a reset (state back to filling) and lets the held-back tasks in.
 * A released task reads the state when it resumes, not when it is
 * released, exactly as asyncio's waiters re-check their predicate, so a
 * reset or an abort during a drain fails the tasks that have not left yet.
 */
#include <limits.h>
#include <stdlib.h>

#include "core/waitq.h"

typedef enum barrier_state {
    BARRIER_FILLING,
    BARRIER_DRAINING,
    BARRIER_RESETTING,
    BARRIER_BROKEN,
} barrier_state;

struct async_barrier {
    unsigned parties;     /* tasks that make a cycle */
    unsigned count;       /* tasks inside wait(): waiting in the filling
                           * cycle, or released and not yet resumed */
    barrier_state state;  /* see above */
    async__waitq waiters; /* tasks waiting for the filling cycle to end,
                           * in arrival order */
    async__waitq blocked; /* tasks held back by a drain or a reset */
};

int async_barrier_new(async_barrier **out, unsigned parties)
{
    if (!out || parties == 0 || parties > INT_MAX)
        return ASYNC_EINVAL;
    async_barrier *b = malloc(sizeof(*b));
    if (!b)
        return ASYNC_ENOMEM;
    b->parties = parties;
    b->count = 0;
    b->state = BARRIER_FILLING;
    async__waitq_init(&b->waiters);
    async__waitq_init(&b->blocked);
    *out = b;
    return 0;
}

int async_barrier_free(async_barrier *b)
{
    if (!b)
        return 0;
    if (async__waitq_busy(&b->waiters) || async__waitq_busy(&b->blocked))
        return ASYNC_EBUSY;
    free(b);
    return 0;
}

/* Wakes every task inside or held back, to re-read the state. */
static void barrier_wake_all(async_barrier *b)
{
    async__waitq_grant_all(&b->waiters, 0);
    async__waitq_grant_all(&b->blocked, 0);
}

/* asyncio's _block: waits while the barrier drains or resets; then 0, or
 * ASYNC_EBROKEN for a broken barrier, or the park's error. */
static int barrier_block(async_barrier *b, async_task *t, uint64_t deadline)
{
    while (b->state == BARRIER_DRAINING || b->state == BARRIER_RESETTING) {
        async__waitq_node n;
        async__task_wait_on(t, ASYNC_WAIT_BARRIER, b);
        int rc = async__waitq_park(&b->blocked, &n, t, deadline);
        if (rc)
            return rc; /* a wake-up is no resource: nothing to pass on */
    }
    return b->state == BARRIER_BROKEN ? ASYNC_EBROKEN : 0;
}

/* asyncio's _wait: waits until the filling cycle ends; 0 when it was
 * released, ASYNC_EBROKEN when it was reset or aborted, or the park's
 * error (the caller then withdraws from the cycle). */
static int barrier_wait_released(async_barrier *b, async_task *t,
                                 uint64_t deadline)
{
    int rc = 0;
    while (rc == 0 && b->state == BARRIER_FILLING) {
        async__waitq_node n;
        async__task_wait_on(t, ASYNC_WAIT_BARRIER, b);
        rc = async__waitq_park(&b->waiters, &n, t, deadline);
    }
    if (rc)
        return rc;
    if (b->state == BARRIER_BROKEN || b->state == BARRIER_RESETTING)
        return ASYNC_EBROKEN;
    return 0;
}

/* asyncio's _exit: the last task out ends a drain or a reset and lets the
 * held-back tasks in. */
static void barrier_exit(async_barrier *b)
{
    b->count--;
    if (b->count > 0)
        return;
    if (b->state == BARRIER_DRAINING || b->state == BARRIER_RESETTING)
        b->state = BARRIER_FILLING;
    async__waitq_grant_all(&b->blocked, 0);
}

int async_barrier_wait_until(async_barrier *b, uint64_t deadline)
{
    if (!b)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    int rc = barrier_block(b, t, deadline);
    if (rc)
        return rc;
    unsigned index = b->count++;
    if (index + 1 == b->parties) {
        b->state = BARRIER_DRAINING; /* release the cycle */
        async__waitq_grant_all(&b->waiters, 0);
    } else {
        rc = barrier_wait_released(b, t, deadline);
    }
    barrier_exit(b);
    return rc ? rc : (int)index;
}

int async_barrier_wait(async_barrier *b)
{
    return async_barrier_wait_until(b, ASYNC__FOREVER);
}

int async_barrier_abort(async_barrier *b)
{
    if (!b)
        return ASYNC_EINVAL;
    b->state = BARRIER_BROKEN;
    barrier_wake_all(b);
    return 0;
}

int async_barrier_reset(async_barrier *b)
{
    if (!b)
        return ASYNC_EINVAL;
    b->state = b->count > 0 ? BARRIER_RESETTING : BARRIER_FILLING;
    barrier_wake_all(b);
    return 0;
}

unsigned async_barrier_parties(const async_barrier *b)
{
    return b ? b->parties : 0;
}

unsigned async_barrier_n_waiting(const async_barrier *b)
{
    return b && b->state == BARRIER_FILLING ? b->count : 0;
}

bool async_barrier_broken(const async_barrier *b)
{
    return b && b->state == BARRIER_BROKEN;
}
