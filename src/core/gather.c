/*
 * Waiting on several futures: gather (all, in argument order), wait_any
 * (first completed) and wait_for (one, with a time-out).  Each puts one
 * waiter node per child on the child's waiter list; the node's notify does
 * the bookkeeping and wakes the parked task only when the combinator's
 * condition holds, so n children cost O(n) in all.
 */
#include <stdlib.h>

#include "core/internal.h"

/* Children waited for with nodes on the stack; more are malloc'd. */
#define SMALL_N 16

typedef struct multi_wait {
    async_future *const *futs; /* the children */
    size_t n;                  /* how many */
    size_t remaining;          /* children not done yet */
    size_t first;              /* index of the first child done (wait_any) */
    int first_error;           /* first failure seen (gather) */
    bool fail_fast;            /* wake on the first failure */
    bool any;                  /* wake on the first completion */
    async_task *task;          /* the parked task */
} multi_wait;

typedef struct multi_node {
    async__waiter w;  /* on futs[idx]->waiters */
    multi_wait *mw;   /* shared state */
    size_t idx;       /* which child */
} multi_node;

/* A child finished: count it and decide whether the waiter wakes now. */
static void multi_child_done(multi_wait *mw, size_t idx)
{
    async_future *f = mw->futs[idx];
    mw->remaining--;
    if (mw->first == SIZE_MAX)
        mw->first = idx;
    if (f->error && mw->first_error == 0)
        mw->first_error = f->error;
}

static bool multi_satisfied(const multi_wait *mw)
{
    if (mw->remaining == 0)
        return true;
    if (mw->any && mw->first != SIZE_MAX)
        return true;
    return mw->fail_fast && mw->first_error != 0;
}

static void multi_notify(async__waiter *w, int rc)
{
    (void)rc;
    multi_node *node = async__container_of(w, multi_node, w);
    multi_wait *mw = node->mw;
    multi_child_done(mw, node->idx);
    if (multi_satisfied(mw))
        async__task_wake(mw->task, 0);
}

static int multi_check(async_future *const *futs, size_t n, async_task **t)
{
    *t = async__task_current();
    if (!*t)
        return ASYNC_ENOTTASK;
    if (n && !futs)
        return ASYNC_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!futs[i])
            return ASYNC_EINVAL;
        if (futs[i] == &(*t)->fut)
            return ASYNC_EDEADLK;
        if (futs[i]->loop != (*t)->fut.loop)
            return ASYNC_EWRONGLOOP;
    }
    return 0;
}

/*
 * Parks until mw is satisfied or `deadline`; returns 0 or the park's error.
 * Nodes are registered only for children still pending.
 */
static int multi_park(multi_wait *mw, multi_node *nodes, uint64_t deadline)
{
    for (size_t i = 0; i < mw->n; i++) {
        nodes[i].mw = mw;
        nodes[i].idx = i;
        async__waiter_init(&nodes[i].w, mw->task);
        if (async_future_done(mw->futs[i]))
            multi_child_done(mw, i);
        else {
            nodes[i].w.notify = multi_notify;
            async__waiter_add(&nodes[i].w, &mw->futs[i]->waiters);
        }
    }
    int rc = 0;
    async__wait_set set = {mw->futs, mw->n};
    while (rc == 0 && !multi_satisfied(mw)) {
        async__task_wait_on(mw->task, ASYNC_WAIT_GATHER, &set);
        rc = async__task_park(mw->task, deadline);
    }
    for (size_t i = 0; i < mw->n; i++)
        async__waiter_remove(&nodes[i].w);
    return rc;
}

/* Cancels every unfinished child and waits, shielded, until each is done:
 * a cancelled gather does not return while its children still run. */
static void multi_cancel_children(multi_wait *mw)
{
    for (size_t i = 0; i < mw->n; i++)
        if (!async_future_done(mw->futs[i]))
            async_future_cancel(mw->futs[i]);
    async_shield_enter();
    for (size_t i = 0; i < mw->n; i++)
        (void)async__future_wait(mw->futs[i]);
    async_shield_leave();
}

static multi_node *nodes_get(multi_node *small, size_t n)
{
    return n <= SMALL_N ? small : malloc(n * sizeof(multi_node));
}

static void nodes_put(multi_node *small, multi_node *nodes)
{
    if (nodes != small)
        free(nodes);
}

static void gather_collect(multi_wait *mw, void **results, int *errors)
{
    for (size_t i = 0; i < mw->n; i++) {
        async_future *f = mw->futs[i];
        void *res = NULL;
        int err = async_future_result(f, &res);
        if (results)
            results[i] = err == 0 ? res : NULL;
        if (errors)
            errors[i] = err;
    }
}

int async_gather(async_future *const *futs, size_t n, unsigned flags,
                 void **results, int *errors)
{
    async_task *t;
    int rc = multi_check(futs, n, &t);
    if (rc)
        return rc;
    if (flags & ~ASYNC_GATHER_ALL)
        return ASYNC_EINVAL;
    multi_node small[SMALL_N];
    multi_node *nodes = nodes_get(small, n);
    if (!nodes)
        return ASYNC_ENOMEM;
    multi_wait mw = {.futs = futs, .n = n, .remaining = n, .first = SIZE_MAX,
                     .fail_fast = !(flags & ASYNC_GATHER_ALL), .task = t};
    rc = multi_park(&mw, nodes, ASYNC__FOREVER);
    nodes_put(small, nodes);
    if (rc) {
        multi_cancel_children(&mw);
        gather_collect(&mw, results, errors);
        return rc;
    }
    gather_collect(&mw, results, errors);
    /* asyncio's gather retrieves every child's exception from its done
     * callback, even after the outer future is done: children still
     * running (fail-fast return) never report "never retrieved". */
    for (size_t i = 0; i < n; i++)
        if (!async_future_done(futs[i]))
            futs[i]->retrieve_on_done = true;
    return mw.fail_fast ? mw.first_error : 0;
}

int async_wait_any(async_future *const *futs, size_t n, int64_t timeout,
                   size_t *index)
{
    async_task *t;
    int rc = multi_check(futs, n, &t);
    if (rc)
        return rc;
    if (n == 0 || !index)
        return ASYNC_EINVAL;
    multi_node small[SMALL_N];
    multi_node *nodes = nodes_get(small, n);
    if (!nodes)
        return ASYNC_ENOMEM;
    multi_wait mw = {.futs = futs, .n = n, .remaining = n, .first = SIZE_MAX,
                     .any = true, .task = t};
    rc = multi_park(&mw, nodes, async__deadline_after(t->fut.loop, timeout));
    nodes_put(small, nodes);
    if (rc == 0)
        *index = mw.first;
    return rc;
}

/* wait_for's outcome once the inner work, cancelled because of `rc`
 * (ASYNC_ETIMEDOUT or ASYNC_ECANCELED), has finished (CPython 3.12): an
 * inner result that survived the cancel wins a time-out; an inner error
 * other than the cancellation is returned as is; else rc. */
static int wait_for_outcome(async_future *f, int rc, void **result)
{
    void *res = NULL;
    int inner = async_future_result(f, &res);
    if (inner == 0 && rc == ASYNC_ETIMEDOUT) {
        if (result)
            *result = res;
        return 0;
    }
    if (inner != 0 && inner != ASYNC_ECANCELED)
        return inner;
    return rc;
}

int async_wait_for(async_future *f, int64_t timeout, void **result)
{
    async_task *t;
    int rc = multi_check(&f, f ? 1 : 0, &t);
    if (rc)
        return rc;
    if (!f)
        return ASYNC_EINVAL;
    if (timeout == ASYNC_NO_TIMEOUT)
        return async_future_await(f, result); /* asyncio: timeout=None */
    multi_node node;
    multi_wait mw = {.futs = &f, .n = 1, .remaining = 1, .first = SIZE_MAX,
                     .task = t};
    async_future_ref(f);
    /* A timeout <= 0 is a deadline already past: the park times out at
     * once unless f is done (CPython 3.12). */
    rc = multi_park(&mw, &node, async__deadline_after(t->fut.loop, timeout));
    if (rc == ASYNC_ETIMEDOUT && async_future_done(f))
        rc = 0; /* f finished in the iteration the timeout fired: it wins */
    if (rc) {
        /* Timed out or we were cancelled: the inner work is cancelled too,
         * and we return only once it has finished. */
        multi_cancel_children(&mw);
        rc = wait_for_outcome(f, rc, result);
    } else {
        rc = async_future_result(f, result);
    }
    async_future_unref(f);
    return rc;
}
