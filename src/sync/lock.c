/*
 * asyncio.Lock: a FIFO-fair lock for tasks.  Release never unlocks while
 * someone waits; it hands the lock to the first waiter instead (see
 * waitq.h), so `locked` stays true across the hand-off and no task can
 * barge in between.
 */
#include <stdlib.h>

#include "core/waitq.h"

struct async_lock {
    bool locked;          /* held by some task (or about to be, by a grantee) */
    async__waitq waiters; /* tasks waiting, FIFO */
};

int async_lock_new(async_lock **out)
{
    if (!out)
        return ASYNC_EINVAL;
    async_lock *lock = malloc(sizeof(*lock));
    if (!lock)
        return ASYNC_ENOMEM;
    lock->locked = false;
    async__waitq_init(&lock->waiters);
    *out = lock;
    return 0;
}

int async_lock_free(async_lock *lock)
{
    if (!lock)
        return 0;
    if (async__waitq_busy(&lock->waiters))
        return ASYNC_EBUSY;
    free(lock);
    return 0;
}

bool async_lock_locked(const async_lock *lock)
{
    return lock && lock->locked;
}

/* Waiters exist only while the lock is held, so this is the whole test. */
int async_lock_try_acquire(async_lock *lock)
{
    if (!lock)
        return ASYNC_EINVAL;
    if (lock->locked)
        return ASYNC_EAGAIN;
    lock->locked = true;
    return 0;
}

/* Hands the lock to the first waiter, or unlocks it if there is none. */
static void lock_pass_on(async_lock *lock)
{
    if (!async__waitq_grant(&lock->waiters, 0))
        lock->locked = false;
}

int async_lock_acquire_until(async_lock *lock, uint64_t deadline)
{
    if (!lock)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (async_lock_try_acquire(lock) == 0)
        return 0;
    async__waitq_node n;
    async__task_wait_on(t, ASYNC_WAIT_LOCK, lock);
    int rc = async__waitq_park(&lock->waiters, &n, t, deadline);
    if (rc && n.granted)
        lock_pass_on(lock); /* handed to us as we gave up: not ours */
    return rc;
}

int async_lock_acquire(async_lock *lock)
{
    return async_lock_acquire_until(lock, ASYNC__FOREVER);
}

int async_lock_release(async_lock *lock)
{
    if (!lock)
        return ASYNC_EINVAL;
    if (!lock->locked)
        return ASYNC_ENOTHELD;
    lock_pass_on(lock);
    return 0;
}
