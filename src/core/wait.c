/*
 * asyncio.wait and asyncio.as_completed, the task-array forms of the
 * combinators in gather.c, and gather of n calls of one function.
 *
 * wait puts one waiter node per pending future on that future's waiter
 * list, as gather does; the node's notify counts and wakes the task only
 * when return_when holds.  as_completed keeps its nodes registered for the
 * iterator's whole life, without a task (a node's notify just appends the
 * index to the iterator's completion array and wakes whichever task is
 * parked in next()), so completion order is exact and nothing is missed
 * between two calls.
 */
#include <limits.h>
#include <stdlib.h>

#include "core/internal.h"

/* Futures converted from tasks on the stack up to this many; more are
 * malloc'd. */
#define SMALL_N 16

/* True when an ETIMEDOUT from a park with `deadline` was our own deadline,
 * not an enclosing deadline scope's (which ended the park first). */
static bool own_deadline_passed(async_task *t, uint64_t deadline)
{
    uint64_t scope = t->shield ? ASYNC__FOREVER : t->scope_deadline;
    return deadline != ASYNC__FOREVER && deadline <= scope &&
           deadline <= async__loop_now(t->fut.loop);
}

/* ---- tasks to futures ------------------------------------------------------ */

/* The futures of tasks[0..n), in `small` when they fit; NULL on ENOMEM.
 * A NULL task gives a NULL future (the callee rejects it). */
static async_future **task_futures(async_task *const *tasks, size_t n,
                                   async_future **small)
{
    async_future **futs = small;
    if (n > SMALL_N && !(futs = malloc(n * sizeof(*futs))))
        return NULL;
    for (size_t i = 0; i < n; i++)
        futs[i] = async_task_future(tasks[i]);
    return futs;
}

static void task_futures_free(async_future **futs, async_future **small)
{
    if (futs != small)
        free(futs);
}

int async_gather_tasks(async_task *const *tasks, size_t n, unsigned flags,
                       void **results, int *errors)
{
    if (n && !tasks)
        return ASYNC_EINVAL;
    async_future *small[SMALL_N] = {NULL};
    async_future **futs = task_futures(tasks, n, small);
    if (!futs)
        return ASYNC_ENOMEM;
    int rc = async_gather(futs, n, flags, results, errors);
    task_futures_free(futs, small);
    return rc;
}

int async_wait_any_tasks(async_task *const *tasks, size_t n, int64_t timeout,
                         size_t *index)
{
    if (n && !tasks)
        return ASYNC_EINVAL;
    async_future *small[SMALL_N] = {NULL};
    async_future **futs = task_futures(tasks, n, small);
    if (!futs)
        return ASYNC_ENOMEM;
    int rc = async_wait_any(futs, n, timeout, index);
    task_futures_free(futs, small);
    return rc;
}

int async_wait_for_task(async_task *task, int64_t timeout, void **result)
{
    if (!task)
        return ASYNC_EINVAL;
    return async_wait_for(async_task_future(task), timeout, result);
}

int async_wait_tasks(async_task *const *tasks, size_t n, int64_t timeout,
                     async_return_when return_when, bool *done)
{
    if (n && !tasks)
        return ASYNC_EINVAL;
    async_future *small[SMALL_N] = {NULL};
    async_future **futs = task_futures(tasks, n, small);
    if (!futs)
        return ASYNC_ENOMEM;
    int rc = async_wait(futs, n, timeout, return_when, done);
    task_futures_free(futs, small);
    return rc;
}

/* ---- wait ------------------------------------------------------------------ */

typedef struct wait_state {
    async_future *const *futs;   /* the futures */
    size_t pending;              /* not done yet */
    async_return_when when;      /* the condition */
    bool satisfied;              /* the condition holds */
    async_task *task;            /* the parked task */
} wait_state;

typedef struct wait_node {
    async__waiter w;             /* on futs[idx]->waiters */
    wait_state *ws;              /* shared state */
    size_t idx;                  /* which future */
} wait_node;

/* Accounts for one more done future and evaluates return_when. */
static void wait_count(wait_state *ws, const async_future *f)
{
    ws->pending--;
    if (ws->pending == 0 || ws->when == ASYNC_FIRST_COMPLETED)
        ws->satisfied = true;
    /* asyncio's FIRST_EXCEPTION ignores cancelled futures. */
    if (ws->when == ASYNC_FIRST_EXCEPTION && f->state == ASYNC__DONE &&
        f->error != 0)
        ws->satisfied = true;
}

static void wait_notify(async__waiter *w, int rc)
{
    (void)rc;
    wait_node *node = async__container_of(w, wait_node, w);
    wait_count(node->ws, node->ws->futs[node->idx]);
    if (node->ws->satisfied)
        async__task_wake(node->ws->task, 0);
}

static int wait_check(async_future *const *futs, size_t n,
                      async_return_when when, async_task *t)
{
    if (!t)
        return ASYNC_ENOTTASK;
    if (n == 0 || !futs || n > INT_MAX)
        return ASYNC_EINVAL;
    if (when != ASYNC_FIRST_COMPLETED && when != ASYNC_FIRST_EXCEPTION &&
        when != ASYNC_ALL_COMPLETED)
        return ASYNC_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!futs[i])
            return ASYNC_EINVAL;
        if (futs[i] == &t->fut)
            return ASYNC_EDEADLK;
        if (futs[i]->loop != t->fut.loop)
            return ASYNC_EWRONGLOOP;
    }
    return 0;
}

/* Registers nodes on the pending futures, parks until the condition holds
 * or the deadline, unregisters.  0 (also on our own time-out) or the
 * park's error. */
static int wait_park(wait_state *ws, wait_node *nodes, size_t n,
                     uint64_t deadline)
{
    for (size_t i = 0; i < n; i++) {
        async__waiter_init(&nodes[i].w, ws->task);
        nodes[i].ws = ws;
        nodes[i].idx = i;
        if (async_future_done(ws->futs[i])) {
            wait_count(ws, ws->futs[i]);
        } else {
            nodes[i].w.notify = wait_notify;
            async__waiter_add(&nodes[i].w, &ws->futs[i]->waiters);
        }
    }
    int rc = 0;
    async__wait_set set = {ws->futs, n};
    while (rc == 0 && !ws->satisfied) {
        async__task_wait_on(ws->task, ASYNC_WAIT_GATHER, &set);
        rc = async__task_park(ws->task, deadline);
    }
    for (size_t i = 0; i < n; i++)
        async__waiter_remove(&nodes[i].w);
    if (rc == ASYNC_ETIMEDOUT && own_deadline_passed(ws->task, deadline))
        rc = 0;
    return rc;
}

int async_wait(async_future *const *futs, size_t n, int64_t timeout,
               async_return_when return_when, bool *done)
{
    async_task *t = async__task_current();
    int rc = wait_check(futs, n, return_when, t);
    if (rc)
        return rc;
    wait_node small[SMALL_N];
    wait_node *nodes = n <= SMALL_N ? small : malloc(n * sizeof(*nodes));
    if (!nodes)
        return ASYNC_ENOMEM;
    wait_state ws = {.futs = futs, .pending = n, .when = return_when,
                     .task = t};
    rc = wait_park(&ws, nodes, n, async__deadline_after(t->fut.loop, timeout));
    if (nodes != small)
        free(nodes);
    if (rc)
        return rc;
    int ndone = 0;
    for (size_t i = 0; i < n; i++) {
        bool d = async_future_done(futs[i]);
        ndone += d;
        if (done)
            done[i] = d;
    }
    return ndone;
}

/* ---- gather of n calls ------------------------------------------------------- */

/* Cancels every unfinished future of futs[0..n) and waits, shielded, until
 * each is done. */
static void cancel_and_drain(async_future *const *futs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!async_future_done(futs[i]))
            async_future_cancel(futs[i]);
    async_shield_enter();
    for (size_t i = 0; i < n; i++)
        (void)async__future_wait(futs[i]);
    async_shield_leave();
}

/* Spawns fn(args[i]) for i < n into futs[]; on failure cancels and drains
 * the ones spawned and returns the error (futs[] then holds no task). */
static int spawn_calls(async_fn fn, void *const *args, size_t n,
                       async_future **futs)
{
    for (size_t i = 0; i < n; i++) {
        async_task *task;
        int rc = async_spawn(&task, fn, args[i]);
        if (rc) {
            cancel_and_drain(futs, i);
            for (size_t j = 0; j < i; j++) {
                (void)async_future_result(futs[j], NULL);
                async_future_unref(futs[j]);
            }
            return rc;
        }
        futs[i] = async_task_future(task);
    }
    return 0;
}

int async_gather_calls(async_fn fn, void *const *args, size_t n,
                       unsigned flags, void **results, int *errors)
{
    if (!fn || (n && !args) || (flags & ~ASYNC_GATHER_ALL))
        return ASYNC_EINVAL;
    if (!async__task_current())
        return ASYNC_ENOTTASK;
    if (n == 0)
        return 0;
    async_future *small[SMALL_N] = {NULL};
    async_future **futs = n <= SMALL_N ? small : malloc(n * sizeof(*futs));
    if (!futs)
        return ASYNC_ENOMEM;
    int rc = spawn_calls(fn, args, n, futs);
    if (rc)
        goto free_futs;
    rc = async_gather(futs, n, flags, results, errors);
    if (rc && rc != ASYNC_ECANCELED) {
        /* Fail-fast: the others may still run; none outlives the call. */
        cancel_and_drain(futs, n);
        for (size_t i = 0; i < n; i++) {
            void *res = NULL;
            int err = async_future_result(futs[i], &res);
            if (results)
                results[i] = err == 0 ? res : NULL;
            if (errors)
                errors[i] = err;
        }
    }
    for (size_t i = 0; i < n; i++)
        async_future_unref(futs[i]);
free_futs:
    if (futs != small)
        free(futs);
    return rc;
}

/* ---- as_completed ------------------------------------------------------------- */

typedef struct ac_node {
    async__waiter w;               /* on futs[idx]->waiters, task-less */
    struct async_as_completed *it; /* the iterator */
    size_t idx;                    /* which future */
} ac_node;

struct async_as_completed {
    async_loop *loop;      /* the futures' loop (NULL when n == 0) */
    size_t n;              /* how many futures */
    async_future **futs;   /* a reference to each */
    ac_node *nodes;        /* one per future */
    size_t *order;         /* indices in completion order (append-only) */
    size_t ncompleted;     /* entries of order[] */
    size_t handed;         /* entries of order[] already returned */
    size_t limit;          /* once expired: entries that may still go out */
    uint64_t deadline;     /* overall deadline, or FOREVER */
    bool expired;          /* the deadline passed with futures pending */
    async_task *parked;    /* the task waiting in next(), or NULL */
};

static void ac_notify(async__waiter *w, int rc)
{
    (void)rc;
    ac_node *node = async__container_of(w, ac_node, w);
    struct async_as_completed *it = node->it;
    it->order[it->ncompleted++] = node->idx;
    if (it->parked)
        async__task_wake(it->parked, 0);
}

static int ac_check(async_future *const *futs, size_t n)
{
    if (n && !futs)
        return ASYNC_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!futs[i])
            return ASYNC_EINVAL;
        if (futs[i]->loop != futs[0]->loop)
            return ASYNC_EWRONGLOOP;
    }
    if (n && futs[0]->loop->closed)
        return ASYNC_ECLOSED;
    return 0;
}

static struct async_as_completed *ac_alloc(size_t n)
{
    struct async_as_completed *it = calloc(1, sizeof(*it));
    if (!it)
        return NULL;
    size_t m = n ? n : 1;
    it->futs = calloc(m, sizeof(*it->futs));
    it->nodes = calloc(m, sizeof(*it->nodes));
    it->order = calloc(m, sizeof(*it->order));
    if (!it->futs || !it->nodes || !it->order) {
        free(it->futs);
        free(it->nodes);
        free(it->order);
        free(it);
        return NULL;
    }
    return it;
}

int async_as_completed_new(async_as_completed **out, async_future *const *futs,
                           size_t n, int64_t timeout)
{
    if (!out)
        return ASYNC_EINVAL;
    int rc = ac_check(futs, n);
    if (rc)
        return rc;
    struct async_as_completed *it = ac_alloc(n);
    if (!it)
        return ASYNC_ENOMEM;
    it->n = n;
    it->loop = n ? futs[0]->loop : NULL;
    it->deadline = n ? async__deadline_after(it->loop, timeout) : ASYNC__FOREVER;
    for (size_t i = 0; i < n; i++) {
        ac_node *node = &it->nodes[i];
        it->futs[i] = async_future_ref(futs[i]);
        async__waiter_init(&node->w, NULL);
        node->w.notify = ac_notify;
        node->it = it;
        node->idx = i;
        if (async_future_done(futs[i]))
            it->order[it->ncompleted++] = i;
        else
            async__waiter_add(&node->w, &futs[i]->waiters);
    }
    *out = it;
    return 0;
}

int async_as_completed_new_tasks(async_as_completed **out,
                                 async_task *const *tasks, size_t n,
                                 int64_t timeout)
{
    if (n && !tasks)
        return ASYNC_EINVAL;
    async_future *small[SMALL_N] = {NULL};
    async_future **futs = task_futures(tasks, n, small);
    if (!futs)
        return ASYNC_ENOMEM;
    int rc = async_as_completed_new(out, futs, n, timeout);
    task_futures_free(futs, small);
    return rc;
}

/* Entries of order[] that may be handed out now. */
static size_t ac_available(const struct async_as_completed *it)
{
    return it->expired ? it->limit : it->ncompleted;
}

/* Parks until a future completes or the deadline; 0 or an error. */
static int ac_park(struct async_as_completed *it, async_task *t)
{
    it->parked = t;
    async__wait_set set = {(async_future *const *)it->futs, it->n};
    async__task_wait_on(t, ASYNC_WAIT_GATHER, &set);
    int rc = async__task_park(t, it->deadline);
    it->parked = NULL;
    if (rc == ASYNC_ETIMEDOUT && own_deadline_passed(t, it->deadline)) {
        it->expired = true;
        it->limit = it->ncompleted;
        rc = 0;
    }
    return rc;
}

int async_as_completed_next(async_as_completed *it, size_t *index)
{
    if (!it || !index)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (it->n && t->fut.loop != it->loop)
        return ASYNC_EWRONGLOOP;
    if (it->parked)
        return ASYNC_EBUSY;
    if (it->handed == it->n)
        return 0;
    if (!t->shield && async_task_cancelling(t))
        return ASYNC_ECANCELED;
    while (it->handed == ac_available(it)) {
        if (it->expired)
            return ASYNC_ETIMEDOUT;
        int rc = ac_park(it, t);
        if (rc)
            return rc;
    }
    *index = it->order[it->handed++];
    return 1;
}

void async_as_completed_free(async_as_completed *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n; i++) {
        /* At loop close a killed task's waiter list is reset without
         * unlinking its nodes: leave those alone. */
        if (!(it->loop->closed && it->futs[i]->is_task))
            async__waiter_remove(&it->nodes[i].w);
        async_future_unref(it->futs[i]);
    }
    free(it->futs);
    free(it->nodes);
    free(it->order);
    free(it);
}
