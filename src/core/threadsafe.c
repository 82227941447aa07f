/*
 * Thread-safe futures (concurrent.futures.Future), run_coroutine_threadsafe
 * and wrap_future.
 *
 * A tsfuture is a mutex, a condition variable for plain threads, and a list
 * of links, one per loop future waiting for it (wrap / await).  Completion
 * (any thread) happens under the mutex: it records the outcome, broadcasts,
 * and posts every link to its loop's threadsafe queue
 * (async__loop_post_threadsafe, no allocation).  The link then runs on its
 * loop's thread, completes the loop future there, and frees itself, so
 * loop futures are only ever touched by their own thread.
 *
 * Loop close: every link and every run_coroutine_threadsafe watch
 * registers a close hook.  Hooks run before the loop marks itself closed,
 * and completion posts links while holding the tsfuture's mutex, so a link
 * is always either still on the tsfuture's list (the hook unlinks and frees
 * it) or already in the loop's queue (the queue's drop frees it): a post
 * never meets a closed loop, and nothing is freed on a foreign thread.
 *
 * Lock order: tsfuture mutex, then the loop's threadsafe-queue mutex.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/internal.h"

enum ts_state {
    TS_PENDING,
    TS_DONE,
    TS_CANCELLED,
};

/* A loop future waiting for a tsfuture. */
typedef struct ts_link {
    async__runnable run;     /* posted to `loop` when the tsfuture completes */
    struct ts_link *next;    /* in the tsfuture's list (under its mutex) */
    async_tsfuture *f;       /* a reference */
    async_future *local;     /* a reference; touched on the loop thread only */
    async_loop *loop;        /* local's loop */
    async__close_hook hook;  /* frees the link if the loop closes first */
} ts_link;

struct async_tsfuture {
    pthread_mutex_t lock;    /* guards state, outcome, links */
    pthread_cond_t cond;     /* plain threads in async_tsfuture_wait */
    atomic_uint refs;        /* references, any thread */
    int state;               /* enum ts_state */
    int error;               /* outcome code when done */
    void *result;            /* result when error == 0 */
    ts_link *links;          /* loop futures to complete */
    /* run_coroutine_threadsafe only.  loop, fn and arg are set before the
     * start is posted; the rest is touched on the loop's thread only. */
    async_loop *loop;        /* the task's loop, or NULL */
    async_fn fn;             /* the task's body */
    void *arg;               /* its argument */
    async__runnable start;   /* posted: spawns the task on the loop */
    async_task *task;        /* the running task (a reference), or NULL */
    async__waiter watch;     /* task-less node on the task's waiters */
    async__close_hook hook;  /* completes with ASYNC_ECLOSED at loop close */
};

/* A cancel request travelling to the task's loop. */
typedef struct ts_cancel {
    async__runnable run;     /* posted to f->loop */
    async_tsfuture *f;       /* a reference */
} ts_cancel;

/* ---- life cycle ---------------------------------------------------------------- */

static async_tsfuture *ts_alloc(unsigned refs)
{
    async_tsfuture *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&f->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc) {
        free(f);
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    atomic_init(&f->refs, refs);
    f->state = TS_PENDING;
    return f;
}

int async_tsfuture_new(async_tsfuture **out)
{
    if (!out)
        return ASYNC_EINVAL;
    async_tsfuture *f = ts_alloc(1);
    if (!f)
        return ASYNC_ENOMEM;
    *out = f;
    return 0;
}

async_tsfuture *async_tsfuture_ref(async_tsfuture *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void async_tsfuture_unref(async_tsfuture *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* ---- completion --------------------------------------------------------------- */

/* Records the outcome, wakes plain threads and posts the links.  0 or
 * ASYNC_EDONE. */
static int ts_complete(async_tsfuture *f, int error, void *result)
{
    pthread_mutex_lock(&f->lock);
    if (f->state != TS_PENDING) {
        pthread_mutex_unlock(&f->lock);
        return ASYNC_EDONE;
    }
    f->state = error == ASYNC_ECANCELED ? TS_CANCELLED : TS_DONE;
    f->error = error;
    f->result = error ? NULL : result;
    ts_link *l = f->links;
    f->links = NULL;
    while (l) {
        ts_link *next = l->next;
        /* Cannot fail: the loop's close hook would have unlinked l. */
        (void)async__loop_post_threadsafe(l->loop, &l->run);
        l = next;
    }
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    return 0;
}

int async_tsfuture_set_result(async_tsfuture *f, void *result)
{
    if (!f)
        return ASYNC_EINVAL;
    return ts_complete(f, 0, result);
}

int async_tsfuture_set_error(async_tsfuture *f, int error)
{
    if (!f || error >= 0)
        return ASYNC_EINVAL;
    return ts_complete(f, error, NULL);
}

static void cancel_run(async__runnable *r, bool drop)
{
    ts_cancel *c = async__container_of(r, ts_cancel, run);
    if (!drop && c->f->task)
        async_task_cancel(c->f->task);
    async_tsfuture_unref(c->f);
    free(c);
}

int async_tsfuture_cancel(async_tsfuture *f)
{
    if (!f)
        return ASYNC_EINVAL;
    ts_cancel *c = NULL;
    if (f->loop && !(c = malloc(sizeof(*c))))
        return ASYNC_ENOMEM;
    int rc = ts_complete(f, ASYNC_ECANCELED, NULL);
    if (rc || !c) {
        free(c);
        return rc;
    }
    c->run.run = cancel_run;
    c->f = async_tsfuture_ref(f);
    if (async__loop_post_threadsafe(f->loop, &c->run) != 0) {
        async_tsfuture_unref(f);
        free(c);
    }
    return 0;
}

/* ---- queries ----------------------------------------------------------------- */

/* Copies the outcome under the mutex; the state is returned. */
static int ts_snapshot(async_tsfuture *f, int *error, void **result)
{
    pthread_mutex_lock(&f->lock);
    int state = f->state;
    *error = f->error;
    *result = f->result;
    pthread_mutex_unlock(&f->lock);
    return state;
}

bool async_tsfuture_done(async_tsfuture *f)
{
    int err;
    void *res;
    return f && ts_snapshot(f, &err, &res) != TS_PENDING;
}

bool async_tsfuture_cancelled(async_tsfuture *f)
{
    int err;
    void *res;
    return f && ts_snapshot(f, &err, &res) == TS_CANCELLED;
}

int async_tsfuture_result(async_tsfuture *f, void **result)
{
    if (!f)
        return ASYNC_EINVAL;
    int err;
    void *res;
    if (ts_snapshot(f, &err, &res) == TS_PENDING)
        return ASYNC_EPENDING;
    if (err == 0 && result)
        *result = res;
    return err;
}

/* The absolute CLOCK_MONOTONIC time `timeout` ns from now. */
static struct timespec abs_after(int64_t timeout)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(timeout / ASYNC_SEC);
    ts.tv_nsec += (long)(timeout % ASYNC_SEC);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int async_tsfuture_wait(async_tsfuture *f, int64_t timeout, void **result)
{
    if (!f)
        return ASYNC_EINVAL;
    if (async_get_running_loop())
        return ASYNC_ERUNNING;
    struct timespec until = abs_after(timeout < 0 ? 0 : timeout);
    pthread_mutex_lock(&f->lock);
    while (f->state == TS_PENDING) {
        if (timeout < 0) {
            pthread_cond_wait(&f->cond, &f->lock);
        } else if (pthread_cond_timedwait(&f->cond, &f->lock, &until) ==
                   ETIMEDOUT) {
            break;
        }
    }
    bool pending = f->state == TS_PENDING;
    pthread_mutex_unlock(&f->lock);
    if (pending)
        return ASYNC_ETIMEDOUT;
    return async_tsfuture_result(f, result);
}

/* ---- loop futures waiting for a tsfuture ------------------------------------- */

static void link_free(ts_link *l)
{
    async_future_unref(l->local);
    async_tsfuture_unref(l->f);
    free(l);
}

/* Completes a pending loop future with a tsfuture's outcome. */
static void local_complete(async_future *local, int error, void *result)
{
    if (async_future_done(local))
        return;
    if (error == 0)
        async_future_set_result(local, result);
    else if (error == ASYNC_ECANCELED)
        async_future_cancel(local);
    else
        async_future_set_error(local, error);
}

static void link_run(async__runnable *r, bool drop)
{
    ts_link *l = async__container_of(r, ts_link, run);
    async__loop_remove_close_hook(l->loop, &l->hook);
    if (!drop) {
        int err;
        void *res;
        ts_snapshot(l->f, &err, &res);
        local_complete(l->local, err, res);
    }
    link_free(l);
}

static void link_close_hook(async_loop *loop, async__close_hook *h)
{
    (void)loop;
    ts_link *l = async__container_of(h, ts_link, hook);
    bool unlinked = false;
    pthread_mutex_lock(&l->f->lock);
    for (ts_link **p = &l->f->links; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            unlinked = true;
            break;
        }
    }
    pthread_mutex_unlock(&l->f->lock);
    if (unlinked)
        link_free(l); /* else it is queued: the queue's drop frees it */
}

int async_tsfuture_wrap(async_tsfuture *f, async_loop *loop,
                        async_future **out)
{
    if (!f || !loop || !out)
        return ASYNC_EINVAL;
    async_future *local;
    int rc = async_future_new(loop, &local);
    if (rc)
        return rc;
    ts_link *l = malloc(sizeof(*l));
    if (!l) {
        async_future_unref(local);
        return ASYNC_ENOMEM;
    }
    pthread_mutex_lock(&f->lock);
    if (f->state != TS_PENDING) {
        int err = f->error;
        void *res = f->result;
        pthread_mutex_unlock(&f->lock);
        free(l);
        local_complete(local, err, res);
        *out = local;
        return 0;
    }
    l->run.run = link_run;
    l->f = async_tsfuture_ref(f);
    l->local = async_future_ref(local);
    l->loop = loop;
    l->hook.fn = link_close_hook;
    l->next = f->links;
    f->links = l;
    pthread_mutex_unlock(&f->lock);
    async__loop_add_close_hook(loop, &l->hook);
    *out = local;
    return 0;
}

int async_tsfuture_await(async_tsfuture *f, void **result)
{
    if (!f)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    async_future *local;
    int rc = async_tsfuture_wrap(f, t->fut.loop, &local);
    if (rc)
        return rc;
    rc = async_future_await(local, result);
    /* The awaiting task was cancelled (which may have cancelled local, down
     * the await chain): cancel what it waited for, as asyncio's chained
     * future does.  A no-op when f itself was the one cancelled. */
    if (rc == ASYNC_ECANCELED)
        (void)async_tsfuture_cancel(f);
    async_future_unref(local);
    return rc;
}

/* ---- run_coroutine_threadsafe ---------------------------------------------------- */

/* Drops the watch on the finished (or abandoned) task and the loop side's
 * reference to f. */
static void rct_detach(async_tsfuture *f)
{
    async_task *t = f->task;
    f->task = NULL;
    async_task_unref(t);
    async_tsfuture_unref(f);
}

/* The task completed: runs inline in its completion, on the loop thread. */
static void rct_task_done(async__waiter *w, int rc)
{
    (void)rc;
    async_tsfuture *f = async__container_of(w, async_tsfuture, watch);
    void *res = NULL;
    int err = async_future_result(async_task_future(f->task), &res);
    ts_complete(f, err, res);
    async__loop_remove_close_hook(f->loop, &f->hook);
    rct_detach(f);
}

/* The loop closes with the task unfinished: it will never complete. */
static void rct_close_hook(async_loop *loop, async__close_hook *h)
{
    (void)loop;
    async_tsfuture *f = async__container_of(h, async_tsfuture, hook);
    async__waiter_remove(&f->watch);
    ts_complete(f, ASYNC_ECLOSED, NULL);
    rct_detach(f);
}

static void rct_start(async__runnable *r, bool drop)
{
    async_tsfuture *f = async__container_of(r, async_tsfuture, start);
    if (drop || async_tsfuture_done(f)) {
        ts_complete(f, ASYNC_ECLOSED, NULL); /* no-op if cancelled */
        async_tsfuture_unref(f);
        return;
    }
    async_task *t;
    int rc = async_loop_spawn(f->loop, &t, f->fn, f->arg, NULL);
    if (rc) {
        ts_complete(f, rc, NULL);
        async_tsfuture_unref(f);
        return;
    }
    f->task = t;
    async__waiter_init(&f->watch, NULL);
    f->watch.notify = rct_task_done;
    async__waiter_add(&f->watch, &t->fut.waiters);
    f->hook.fn = rct_close_hook;
    async__loop_add_close_hook(f->loop, &f->hook);
}

int async_run_coroutine_threadsafe(async_loop *loop, async_fn fn, void *arg,
                                   async_tsfuture **out)
{
    if (!loop || !fn || !out)
        return ASYNC_EINVAL;
    async_tsfuture *f = ts_alloc(2); /* the caller's, the loop side's */
    if (!f)
        return ASYNC_ENOMEM;
    f->loop = loop;
    f->fn = fn;
    f->arg = arg;
    f->start.run = rct_start;
    int rc = async__loop_post_threadsafe(loop, &f->start);
    if (rc) {
        async_tsfuture_unref(f);
        async_tsfuture_unref(f);
        return rc;
    }
    *out = f;
    return 0;
}
