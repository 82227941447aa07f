/*
 * asyncio.Barrier.  The party that completes a cycle hands every waiter its
 * arrival index and starts the next cycle at once; since the waiters were
 * granted before they run, nobody can slip into the cycle that is draining,
 * so asyncio's draining state is not needed.
 */
#include <limits.h>
#include <stdlib.h>

#include "core/waitq.h"

struct async_barrier {
    unsigned parties;     /* tasks that make a cycle */
    unsigned count;       /* tasks waiting in the current cycle */
    bool broken;          /* aborted: waits fail until a reset */
    async__waitq waiters; /* tasks waiting, in arrival order */
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
    b->broken = false;
    async__waitq_init(&b->waiters);
    *out = b;
    return 0;
}

int async_barrier_free(async_barrier *b)
{
    if (!b)
        return 0;
    if (async__waitq_busy(&b->waiters))
        return ASYNC_EBUSY;
    free(b);
    return 0;
}

/* The last party arrived: release the waiters with their indices. */
static int barrier_complete(async_barrier *b)
{
    size_t index = 0;
    async__waitq_node *n;
    while ((n = async__waitq_first(&b->waiters))) {
        n->index = index++;
        async__waitq_grant(&b->waiters, 0);
    }
    b->count = 0;
    return (int)index;
}

int async_barrier_wait_until(async_barrier *b, uint64_t deadline)
{
    if (!b)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (b->broken)
        return ASYNC_EBROKEN;
    if (b->count + 1 == b->parties)
        return barrier_complete(b);
    b->count++;
    async__waitq_node n;
    int rc = async__waitq_park(&b->waiters, &n, t, deadline);
    if (rc) {
        if (!n.granted)
            b->count--; /* withdraw from the cycle */
        return rc;
    }
    return n.code ? n.code : (int)n.index;
}

int async_barrier_wait(async_barrier *b)
{
    return async_barrier_wait_until(b, ASYNC__FOREVER);
}

int async_barrier_abort(async_barrier *b)
{
    if (!b)
        return ASYNC_EINVAL;
    b->broken = true;
    b->count = 0;
    async__waitq_grant_all(&b->waiters, ASYNC_EBROKEN);
    return 0;
}

int async_barrier_reset(async_barrier *b)
{
    if (!b)
        return ASYNC_EINVAL;
    b->broken = false;
    b->count = 0;
    async__waitq_grant_all(&b->waiters, ASYNC_EBROKEN);
    return 0;
}

unsigned async_barrier_parties(const async_barrier *b)
{
    return b ? b->parties : 0;
}

unsigned async_barrier_n_waiting(const async_barrier *b)
{
    return b ? b->count : 0;
}

bool async_barrier_broken(const async_barrier *b)
{
    return b && b->broken;
}
