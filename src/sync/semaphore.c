/*
 * asyncio.Semaphore and BoundedSemaphore, FIFO fair: while tasks wait, a
 * release hands its permit straight to the first of them instead of
 * raising the count, so a newcomer cannot take a permit meant for a waiter.
 *
 * As in CPython 3.12, a task also has to queue while a waiter that was
 * handed a permit has not resumed yet, even if the count is above 0 (the
 * task that released may re-acquire at once: it must not overtake the
 * waiters that were woken before it).  The count can therefore be above 0
 * while tasks wait; every waiter, when it resumes for whatever reason,
 * hands out such free permits to the waiters still queued
 * (semaphore_wake_waiters), the way asyncio's acquire does in its
 * `finally` clause.
 */
#include <limits.h>
#include <stdlib.h>

#include "core/waitq.h"

struct async_semaphore {
    long value;           /* free permits; 0 while anyone waits */
    long bound;           /* bounded: the initial value; else -1 */
    async__waitq waiters; /* tasks waiting, FIFO */
};

static int semaphore_create(async_semaphore **out, long value, bool bounded)
{
    if (!out || value < 0)
        return ASYNC_EINVAL;
    async_semaphore *sem = malloc(sizeof(*sem));
    if (!sem)
        return ASYNC_ENOMEM;
    sem->value = value;
    sem->bound = bounded ? value : -1;
    async__waitq_init(&sem->waiters);
    *out = sem;
    return 0;
}

int async_semaphore_new(async_semaphore **out, long value)
{
    return semaphore_create(out, value, false);
}

int async_semaphore_new_bounded(async_semaphore **out, long value)
{
    return semaphore_create(out, value, true);
}

int async_semaphore_free(async_semaphore *sem)
{
    if (!sem)
        return 0;
    if (async__waitq_busy(&sem->waiters))
        return ASYNC_EBUSY;
    free(sem);
    return 0;
}

long async_semaphore_value(const async_semaphore *sem)
{
    return sem ? sem->value : 0;
}

/* asyncio's locked(): no free permit, or tasks queued or still on their way
 * back from a grant (a granted node is still in asyncio's _waiters). */
static bool semaphore_must_wait(const async_semaphore *sem)
{
    return sem->value == 0 || async__waitq_busy(&sem->waiters);
}

bool async_semaphore_locked(const async_semaphore *sem)
{
    return sem && semaphore_must_wait(sem);
}

int async_semaphore_try_acquire(async_semaphore *sem)
{
    if (!sem)
        return ASYNC_EINVAL;
    if (semaphore_must_wait(sem))
        return ASYNC_EAGAIN;
    sem->value--;
    return 0;
}

/* Gives a permit to the first waiter, or back to the count. */
static void semaphore_pass_on(async_semaphore *sem)
{
    if (!async__waitq_grant(&sem->waiters, 0))
        sem->value++;
}

/* Hands free permits to the waiters still queued: they may have queued
 * behind a grantee although the count was above 0. */
static void semaphore_wake_waiters(async_semaphore *sem)
{
    while (sem->value > 0 && async__waitq_grant(&sem->waiters, 0))
        sem->value--;
}

int async_semaphore_acquire_until(async_semaphore *sem, uint64_t deadline)
{
    if (!sem)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (async_semaphore_try_acquire(sem) == 0)
        return 0;
    async__waitq_node n;
    async__task_wait_on(t, ASYNC_WAIT_SEMAPHORE, sem);
    int rc = async__waitq_park(&sem->waiters, &n, t, deadline);
    if (rc && n.granted)
        semaphore_pass_on(sem); /* the permit came as we gave up */
    semaphore_wake_waiters(sem);
    return rc;
}

int async_semaphore_acquire(async_semaphore *sem)
{
    return async_semaphore_acquire_until(sem, ASYNC__FOREVER);
}

int async_semaphore_release(async_semaphore *sem)
{
    if (!sem)
        return ASYNC_EINVAL;
    if (sem->bound >= 0 && sem->value >= sem->bound)
        return ASYNC_ENOTHELD;
    if (sem->value == LONG_MAX)
        return ASYNC_ENOSPC;
    semaphore_pass_on(sem);
    return 0;
}
