/*
 * Hand-off wait queues for the synchronization primitives and queues.
 *
 * A waiter parks with an async__waitq_node on the primitive's FIFO list.
 * Whoever frees the resource does not just wake the first waiter: it grants
 * it, i.e. hands over the lock, the permit or the item inside the node, and
 * only then wakes the task.  Because ownership moves before the waiter runs,
 * a task arriving in between cannot barge in, which is what makes the
 * primitives FIFO fair.
 *
 * A park can end in two ways that race: a grant, or a cancellation or
 * deadline.  The first one decides the park's return code (the task's wake
 * code is set once), but a grant can still arrive after a cancellation woke
 * the task and before it ran, because the node stays on the list until the
 * task removes it.  Callers therefore look at `granted` after the park and
 * give back what they were handed when the park failed.
 */
#ifndef ASYNC_WAITQ_H
#define ASYNC_WAITQ_H

#include "core/internal.h"

/* A FIFO of parked tasks plus the count of grants still in flight. */
typedef struct async__waitq {
    async__list nodes; /* async__waitq_node.w.link, FIFO */
    size_t handed;     /* nodes granted whose task has not resumed yet: the
                        * object must outlive them, as they may still touch
                        * it (pass a lock on, take an item) */
} async__waitq;

typedef struct async__waitq_node {
    async__waiter w;   /* on the queue's list (w.link) */
    bool granted;      /* the object handed something to this node */
    int code;          /* what the grant says: 0, or an error to return */
    size_t index;      /* barrier: arrival index handed over */
    void *item;        /* queue: the item handed over (getter) or offered
                        * (putter) */
    uint64_t seq;      /* queue: the item's insertion sequence number */
} async__waitq_node;

static inline void async__waitq_init(async__waitq *q)
{
    async__list_init(&q->nodes);
    q->handed = 0;
}

static inline bool async__waitq_empty(const async__waitq *q)
{
    return async__list_empty(&q->nodes);
}

/* True while freeing the owner would pull memory from under a task. */
static inline bool async__waitq_busy(const async__waitq *q)
{
    return !async__list_empty(&q->nodes) || q->handed > 0;
}

static inline void async__waitq_notify(async__waiter *w, int rc)
{
    async__waitq_node *n = async__container_of(w, async__waitq_node, w);
    n->granted = true;
    n->code = rc;
    async__task_wake(w->task, 0);
}

/*
 * Parks task t on q with node n until a grant, `deadline` or cancellation;
 * returns 0 after a grant, else the park's error.  n->granted may be true
 * even when an error is returned (see above).
 */
static inline int async__waitq_park(async__waitq *q, async__waitq_node *n,
                                    struct async_task *t, uint64_t deadline)
{
    async__waiter_init(&n->w, t);
    n->w.notify = async__waitq_notify;
    n->granted = false;
    n->code = 0;
    async__waiter_add(&n->w, &q->nodes);
    int rc = 0;
    unsigned kind = t->wait_kind; /* set by the caller, cleared by a park */
    const void *obj = t->wait_obj;
    while (rc == 0 && !n->granted) {
        async__task_wait_on(t, kind, obj);
        rc = async__task_park(t, deadline);
    }
    async__waiter_remove(&n->w);
    if (n->granted)
        q->handed--;
    return rc;
}

/* The first node of q without unlinking it, or NULL. */
static inline async__waitq_node *async__waitq_first(async__waitq *q)
{
    if (async__list_empty(&q->nodes))
        return NULL;
    return async__container_of(q->nodes.next, async__waitq_node, w.link);
}

/* Pops the first node of q and grants it with `code`; false if none. */
static inline bool async__waitq_grant(async__waitq *q, int code)
{
    if (async__list_empty(&q->nodes))
        return false;
    q->handed++;
    return async__waiters_notify_one(&q->nodes, code);
}

/* Grants every node of q with `code`. */
static inline void async__waitq_grant_all(async__waitq *q, int code)
{
    while (async__waitq_grant(q, code))
        ;
}

#endif
