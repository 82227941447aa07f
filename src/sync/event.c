/*
 * asyncio.Event: a flag; setting it wakes every task waiting for it.  A
 * woken waiter returns 0 even if the flag is cleared again before it runs,
 * because the set it waited for did happen.
 */
#include <stdlib.h>

#include "core/waitq.h"

struct async_event {
    bool set;             /* the flag */
    async__waitq waiters; /* tasks waiting for the flag */
};

int async_event_new(async_event **out)
{
    if (!out)
        return ASYNC_EINVAL;
    async_event *ev = malloc(sizeof(*ev));
    if (!ev)
        return ASYNC_ENOMEM;
    ev->set = false;
    async__waitq_init(&ev->waiters);
    *out = ev;
    return 0;
}

int async_event_free(async_event *ev)
{
    if (!ev)
        return 0;
    if (async__waitq_busy(&ev->waiters))
        return ASYNC_EBUSY;
    free(ev);
    return 0;
}

int async_event_set(async_event *ev)
{
    if (!ev)
        return ASYNC_EINVAL;
    ev->set = true;
    async__waitq_grant_all(&ev->waiters, 0);
    return 0;
}

int async_event_clear(async_event *ev)
{
    if (!ev)
        return ASYNC_EINVAL;
    ev->set = false;
    return 0;
}

bool async_event_is_set(const async_event *ev)
{
    return ev && ev->set;
}

int async_event_wait_until(async_event *ev, uint64_t deadline)
{
    if (!ev)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (ev->set)
        return 0;
    async__waitq_node n;
    async__task_wait_on(t, ASYNC_WAIT_EVENT, ev);
    return async__waitq_park(&ev->waiters, &n, t, deadline);
}

int async_event_wait(async_event *ev)
{
    return async_event_wait_until(ev, ASYNC__FOREVER);
}
