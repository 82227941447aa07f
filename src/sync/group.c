/*
 * Task groups (asyncio.TaskGroup).  Each child carries a waiter node on its
 * own future, so the group hears of a child's end inline, at the moment it
 * completes: it records the error, starts the abort on the first failure,
 * and wakes the owner parked in async_group_wait when the last child ends.
 *
 * The body leaves through async_group_leave with its own outcome; an error
 * there aborts the children like a child failure would (asyncio's
 * __aexit__ with an exception), and is recorded after the children's.
 *
 * Telling "the group cancelled the body" apart from "someone cancelled the
 * owner" relies on the task's count of cancel requests: the group makes
 * one request at most and withdraws exactly that one with
 * async_task_uncancel, so any other request survives.
 */
#include <stdlib.h>

#include "core/internal.h"

typedef struct group_child {
    async__waiter w;      /* on task->fut.waiters, without a parked task */
    async__list link;     /* in the group's running list */
    async_task *task;     /* the group's reference to the child */
    struct async_group *g;/* the group it belongs to */
} group_child;

struct async_group {
    async_task *owner;     /* the task that opened the scope (referenced) */
    async__list running;   /* group_child.link of unfinished children */
    size_t nrunning;       /* length of running */
    size_t nspawned;       /* children ever spawned: bounds nerrors */
    int *errors;           /* child errors in failure order, then the
                            * body's; room for one per child plus the
                            * body's, reserved ahead (at new and at spawn)
                            * so recording an error never allocates */
    size_t nerrors;        /* entries in errors */
    size_t errcap;         /* room in errors */
    bool aborting;         /* children were cancelled: no more spawns */
    bool owner_cancelled;  /* we asked the owner to cancel: undo once */
    bool waiting;          /* the owner is parked in async_group_wait */
    bool done;             /* async_group_wait has finished */
    int result;            /* what async_group_wait returned */
};

enum { GROUP_ERRORS_MIN = 4 }; /* room reserved by async_group_new */

int async_group_new(async_group **out)
{
    if (!out)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    async_group *g = calloc(1, sizeof(*g));
    if (!g)
        return ASYNC_ENOMEM;
    g->errors = malloc(GROUP_ERRORS_MIN * sizeof(int));
    if (!g->errors) {
        free(g);
        return ASYNC_ENOMEM;
    }
    g->errcap = GROUP_ERRORS_MIN;
    g->owner = async_task_ref(t);
    async__list_init(&g->running);
    *out = g;
    return 0;
}

/* Cancels every running child; on the first call also the body, unless
 * the owner is already waiting for the children. */
static void group_abort(async_group *g, bool cancel_body)
{
    if (!g->aborting) {
        g->aborting = true;
        for (async__list *n = g->running.next; n != &g->running; n = n->next)
            async_task_cancel(async__container_of(n, group_child, link)->task);
    }
    if (cancel_body && !g->waiting && !g->owner_cancelled &&
        async_task_cancel(g->owner) == 0)
        g->owner_cancelled = true;
}

/* A child finished (called inline from its completion). */
static void group_child_done(async__waiter *w, int rc)
{
    (void)rc;
    group_child *c = async__container_of(w, group_child, w);
    async_group *g = c->g;
    int err = async_future_result(&c->task->fut, NULL); /* retrieved */
    async__list_remove(&c->link);
    g->nrunning--;
    async_task_unref(c->task);
    free(c);
    if (err != 0 && err != ASYNC_ECANCELED) {
        g->errors[g->nerrors++] = err;
        group_abort(g, true);
    }
    if (g->nrunning == 0 && g->waiting)
        async__task_wake(g->owner, 0);
}

/* Room for one more child's error (besides the body's); 0 or
 * ASYNC_ENOMEM. */
static int group_reserve_error(async_group *g)
{
    if (g->nspawned + 2 <= g->errcap)
        return 0;
    size_t cap = g->errcap * 2;
    int *errors = realloc(g->errors, cap * sizeof(int));
    if (!errors)
        return ASYNC_ENOMEM;
    g->errors = errors;
    g->errcap = cap;
    return 0;
}

int async_group_spawn(async_group *g, async_task **out, async_fn fn,
                      void *arg, const async_task_opts *opts)
{
    if (!g || !fn)
        return ASYNC_EINVAL;
    if (g->done || g->aborting)
        return ASYNC_ESHUTDOWN;
    if (group_reserve_error(g) != 0)
        return ASYNC_ENOMEM;
    group_child *c = malloc(sizeof(*c));
    if (!c)
        return ASYNC_ENOMEM;
    int rc = async_loop_spawn(g->owner->fut.loop, &c->task, fn, arg, opts);
    if (rc) {
        free(c);
        return rc;
    }
    c->g = g;
    async__waiter_init(&c->w, NULL);
    c->w.notify = group_child_done;
    async__waiter_add(&c->w, &c->task->fut.waiters);
    c->task->parent = g->owner;
    async__list_push_back(&g->running, &c->link);
    g->nrunning++;
    g->nspawned++;
    if (out)
        *out = async_task_ref(c->task);
    return 0;
}

/* Parks the owner until no child runs; 0 or the park's error. */
static int group_park(async_group *g, async_task *t)
{
    int rc = 0;
    while (rc == 0 && g->nrunning > 0) {
        async__task_wait_on(t, ASYNC_WAIT_GROUP, g);
        rc = async__task_park(t, ASYNC__FOREVER);
    }
    return rc;
}

/* The outcome, once no child runs: errors first -- the children's, then
 * the body's, the order of asyncio's ExceptionGroup, which is raised even
 * when cancelled -- then a cancellation that was not ours (or that the
 * body left with), then a deadline. */
static int group_outcome(async_group *g, async_task *t, int rc, int body_rc)
{
    if (g->owner_cancelled) {
        g->owner_cancelled = false;
        async_task_uncancel(t);
    }
    if (body_rc != 0 && body_rc != ASYNC_ECANCELED)
        g->errors[g->nerrors++] = body_rc; /* room reserved ahead */
    if (g->nerrors > 0)
        return g->errors[0];
    if (async_task_cancelling(t) || body_rc == ASYNC_ECANCELED)
        return ASYNC_ECANCELED;
    return rc == ASYNC_ETIMEDOUT ? rc : 0;
}

int async_group_leave(async_group *g, int body_rc)
{
    if (!g || body_rc > 0)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (t != g->owner)
        return ASYNC_EPERM;
    if (g->done)
        return g->result;
    g->waiting = true;
    if (body_rc != 0)
        group_abort(g, false); /* the body failed: the children go */
    int rc = group_park(g, t);
    if (rc) {
        /* Cancelled or timed out: the children go too, and we return only
         * once they have finished. */
        group_abort(g, false);
        async_shield_enter();
        (void)group_park(g, t);
        async_shield_leave();
    }
    g->waiting = false;
    g->done = true;
    g->result = group_outcome(g, t, rc, body_rc);
    return g->result;
}

int async_group_wait(async_group *g)
{
    return async_group_leave(g, 0);
}

size_t async_group_errors(const async_group *g, int *errors, size_t n)
{
    if (!g)
        return 0;
    for (size_t i = 0; i < n && i < g->nerrors; i++)
        errors[i] = g->errors[i];
    return g->nerrors;
}

size_t async_group_running(const async_group *g)
{
    return g ? g->nrunning : 0;
}

int async_group_free(async_group *g)
{
    if (!g)
        return 0;
    if (g->nrunning > 0)
        return ASYNC_EBUSY;
    if (g->owner_cancelled)
        async_task_uncancel(g->owner);
    async_task_unref(g->owner);
    free(g->errors);
    free(g);
    return 0;
}
