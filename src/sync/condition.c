/*
 * asyncio.Condition: waiters park on the condition's own FIFO list after
 * releasing the bound lock, and take the lock again before they return --
 * shielded, so even a cancelled or timed-out wait comes back holding it.
 */
#include <limits.h>
#include <stdlib.h>

#include "core/waitq.h"

struct async_condition {
    async_lock *lock;     /* the bound lock */
    bool own_lock;        /* lock was created here and is freed here */
    async__waitq waiters; /* tasks waiting, FIFO */
};

int async_condition_new(async_condition **out, async_lock *lock)
{
    if (!out)
        return ASYNC_EINVAL;
    async_condition *c = malloc(sizeof(*c));
    if (!c)
        return ASYNC_ENOMEM;
    c->own_lock = lock == NULL;
    if (c->own_lock && async_lock_new(&lock) != 0) {
        free(c);
        return ASYNC_ENOMEM;
    }
    c->lock = lock;
    async__waitq_init(&c->waiters);
    *out = c;
    return 0;
}

int async_condition_free(async_condition *c)
{
    if (!c)
        return 0;
    if (async__waitq_busy(&c->waiters))
        return ASYNC_EBUSY;
    if (c->own_lock && async_lock_free(c->lock) != 0)
        return ASYNC_EBUSY;
    free(c);
    return 0;
}

async_lock *async_condition_lock(const async_condition *c)
{
    return c ? c->lock : NULL;
}

/* Wakes up to n waiters; returns how many. */
static int condition_wake(async_condition *c, size_t n)
{
    int woken = 0;
    while ((size_t)woken < n && woken < INT_MAX &&
           async__waitq_grant(&c->waiters, 0))
        woken++;
    return woken;
}

static int condition_check(async_condition *c, async_task **t)
{
    if (!c)
        return ASYNC_EINVAL;
    *t = async__task_current();
    if (!*t)
        return ASYNC_ENOTTASK;
    if (!async_lock_locked(c->lock))
        return ASYNC_ENOTHELD;
    return 0;
}

/* The wait proper, after condition_check succeeded. */
static int condition_wait(async_condition *c, async_task *t, uint64_t deadline)
{
    async_lock_release(c->lock);
    async__waitq_node n;
    async__task_wait_on(t, ASYNC_WAIT_CONDITION, c);
    int rc = async__waitq_park(&c->waiters, &n, t, deadline);
    if (rc && n.granted)
        condition_wake(c, 1); /* a notify we will not act on: pass it on */
    /* The caller holds the lock on return, whatever happened. */
    async_shield_enter();
    int lrc = async_lock_acquire(c->lock);
    async_shield_leave();
    (void)lrc; /* a shielded wait without a deadline cannot fail */
    return rc;
}

int async_condition_wait_until(async_condition *c, uint64_t deadline)
{
    async_task *t;
    int rc = condition_check(c, &t);
    if (rc)
        return rc;
    return condition_wait(c, t, deadline);
}

int async_condition_wait(async_condition *c)
{
    return async_condition_wait_until(c, ASYNC__FOREVER);
}

int async_condition_wait_for_until(async_condition *c, async_predicate pred,
                                   void *arg, uint64_t deadline)
{
    async_task *t;
    int rc = pred ? condition_check(c, &t) : ASYNC_EINVAL;
    while (rc == 0 && !pred(arg))
        rc = condition_wait(c, t, deadline);
    return rc;
}

int async_condition_wait_for(async_condition *c, async_predicate pred,
                             void *arg)
{
    return async_condition_wait_for_until(c, pred, arg, ASYNC__FOREVER);
}

int async_condition_notify(async_condition *c, size_t n)
{
    if (!c)
        return ASYNC_EINVAL;
    if (!async_lock_locked(c->lock))
        return ASYNC_ENOTHELD;
    return condition_wake(c, n);
}

int async_condition_notify_all(async_condition *c)
{
    return async_condition_notify(c, SIZE_MAX);
}
