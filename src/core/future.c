/*
 * Futures: a pending slot that becomes DONE (result or error) or CANCELLED
 * exactly once, wakes every task parked on it and schedules its done
 * callbacks through the loop.
 */
#include <stdlib.h>

#include "core/context.h"



/* Frees a done-callback registration and its captured context. */
static void done_cb_free(async__done_cb *cb)
{
    async__context_unref(cb->ctx);
    free(cb);
}
/* ---- life cycle ------------------------------------------------------------ */

int async_future_new(async_loop *loop, async_future **out)
{
    if (!loop || !out)
        return ASYNC_EINVAL;
    if (loop->closed)
        return ASYNC_ECLOSED;
    async_future *f = malloc(sizeof(*f));
    if (!f)
        return ASYNC_ENOMEM;
    async__future_init(f, loop, false);
    *out = f;
    return 0;
}

async_future *async_future_ref(async_future *f)
{
    if (f)
        f->refs++;
    return f;
}

void async_future_unref(async_future *f)
{
    if (f && --f->refs == 0)
        async__future_release(f);
}

/* Reports an error nobody looked at, once, as asyncio does from __del__. */
static void future_report_unretrieved(async_future *f)
{
    if (f->state != ASYNC__DONE || f->error == 0 || f->retrieved)
        return;
    f->retrieved = true;
    async__loop_report(f->loop,
                       f->is_task ? "Task exception was never retrieved"
                                  : "Future exception was never retrieved",
                       f->error, f->is_task ? (async_task *)f : NULL, f);
}

static void done_cb_free_pending(async_future *f)
{
    async__done_cb *cb = f->callbacks;
    while (cb) {
        async__done_cb *next = cb->next;
        done_cb_free(cb);
        cb = next;
    }
    f->callbacks = NULL;
    f->callbacks_tail = &f->callbacks;
}

/* Frees the memory of a released future (a task's goes to the task cache). */
static void future_free(async_future *f)
{
    if (f->is_task)
        async__task_free((async_task *)f);
    else
        free(f);
}

/* async__future_release's rare work, out of line so that the common
 * release saves no registers: the never-retrieved report, done callbacks
 * that never ran. */
static __attribute__((noinline)) void future_release_extras(async_future *f)
{
    f->refs = 1; /* keep it alive while the handler looks at it */
    future_report_unretrieved(f);
    f->refs = 0;
    done_cb_free_pending(f);
}

void async__future_release(async_future *f)
{
    if (__builtin_expect((f->state == ASYNC__DONE && f->error != 0 &&
                          !f->retrieved) || f->callbacks, 0))
        future_release_extras(f);
    async_loop *loop = f->loop;
    /* The loop's memory outlives async_loop_free while futures point at
     * it, so the report above never touches freed memory.  Counted down
     * before the free so that the common case ends in a tail call. */
    if (__builtin_expect(--loop->nfutures == 0 && loop->freed, 0)) {
        future_free(f);
        async__loop_release(loop);
        return;
    }
    future_free(f);
}

/* ---- completion ------------------------------------------------------------ */

static void done_cb_run(async__runnable *r, bool drop)
{
    async__done_cb *cb = async__container_of(r, async__done_cb, run);
    if (!drop) {
        struct async__context *prev = async__context_swap(cb->ctx);
        cb->fn(cb->future, cb->arg);
        async__context_swap(prev);
    }
    async_future_unref(cb->future);
    done_cb_free(cb);
}

static void done_cb_schedule(async_future *f, async__done_cb *cb)
{
    cb->run.run = done_cb_run;
    cb->future = async_future_ref(f);
    async__loop_schedule(f->loop, &cb->run);
}

void async__future_complete(async_future *f, int error, void *result)
{
    f->state = error == ASYNC_ECANCELED ? ASYNC__CANCELLED : ASYNC__DONE;
    f->error = error;
    if (f->retrieve_on_done)
        f->retrieved = true;
    f->result = error ? NULL : result;
    async__waiters_notify_all(&f->waiters, 0);
    async__done_cb *cb = f->callbacks;
    f->callbacks = NULL;
    f->callbacks_tail = &f->callbacks;
    while (cb) {
        async__done_cb *next = cb->next;
        done_cb_schedule(f, cb);
        cb = next;
    }
}

int async__future_check_settable(const async_future *f)
{
    if (!f)
        return ASYNC_EINVAL;
    if (f->state != ASYNC__PENDING)
        return ASYNC_EDONE;
    if (f->loop->closed)
        return ASYNC_ECLOSED;
    return 0;
}

/* set_result / set_error: a task's own future is completed by its body
 * only (asyncio raises RuntimeError for Task.set_result). */
static int future_check_settable_outside(const async_future *f)
{
    if (f && f->is_task)
        return ASYNC_EPERM;
    int rc = async__future_check_settable(f);
    return rc ? rc : async__loop_check_thread(f->loop);
}

int async_future_set_result(async_future *f, void *result)
{
    int rc = future_check_settable_outside(f);
    if (rc)
        return rc;
    async__future_complete(f, 0, result);
    return 0;
}

int async_future_set_error(async_future *f, int error)
{
    if (f && error >= 0)
        return ASYNC_EINVAL;
    int rc = future_check_settable_outside(f);
    if (rc)
        return rc;
    async__future_complete(f, error, NULL);
    return 0;
}

int async_future_cancel(async_future *f)
{
    if (f && f->is_task)
        return async_task_cancel((async_task *)f); /* a request, as
                                                      Task.cancel() */
    int rc = async__future_check_settable(f);
    if (rc == 0 || rc == ASYNC_EDONE) {
        int wrong = async__loop_check_thread(f->loop);
        if (wrong)
            return wrong;
    }
    if (rc == ASYNC_EDONE)
        ((async_future *)f)->retrieved = true; /* asyncio: cancel() clears
                                                  __log_traceback */
    if (rc)
        return rc;
    if (f->cancel_fn)
        return f->cancel_fn(f);
    async__future_complete(f, ASYNC_ECANCELED, NULL);
    return 0;
}

/* ---- queries ----------------------------------------------------------------- */

bool async_future_done(const async_future *f)
{
    return f && f->state != ASYNC__PENDING;
}

bool async_future_cancelled(const async_future *f)
{
    return f && f->state == ASYNC__CANCELLED;
}

async_loop *async_future_loop(const async_future *f)
{
    return f ? f->loop : NULL;
}

int async_future_result(async_future *f, void **result)
{
    if (!f)
        return ASYNC_EINVAL;
    if (f->state == ASYNC__PENDING)
        return ASYNC_EPENDING;
    f->retrieved = true;
    if (f->error == 0 && result)
        *result = f->result;
    return f->error;
}

/* ---- done callbacks ---------------------------------------------------------- */

int async_future_add_done_callback(async_future *f, async_done_fn fn, void *arg)
{
    if (!f || !fn)
        return ASYNC_EINVAL;
    if (f->loop->closed)
        return ASYNC_ECLOSED;
    int rc = async__loop_check_thread(f->loop);
    if (rc)
        return rc;
    async__done_cb *cb = malloc(sizeof(*cb));
    if (!cb)
        return ASYNC_ENOMEM;
    cb->fn = fn;
    cb->arg = arg;
    cb->next = NULL;
    cb->ctx = async__context_capture();
    if (f->state != ASYNC__PENDING) {
        done_cb_schedule(f, cb);
        return 0;
    }
    *f->callbacks_tail = cb;
    f->callbacks_tail = &cb->next;
    return 0;
}

int async_future_remove_done_callback(async_future *f, async_done_fn fn,
                                      void *arg)
{
    if (!f || !fn)
        return ASYNC_EINVAL;
    int removed = 0;
    async__done_cb **p = &f->callbacks;
    while (*p) {
        async__done_cb *cb = *p;
        if (cb->fn == fn && cb->arg == arg) {
            *p = cb->next;
            done_cb_free(cb);
            removed++;
        } else {
            p = &cb->next;
        }
    }
    f->callbacks_tail = p;
    return removed;
}

/* ---- awaiting -------------------------------------------------------------------- */

int async__future_wait(async_future *f)
{
    async_task *t = async__task_current();
    while (f->state == ASYNC__PENDING) {
        async__waiter w;
        async__waiter_init(&w, t);
        async__waiter_add(&w, &f->waiters);
        async__task_wait_on(t, ASYNC_WAIT_FUTURE, f);
        int rc = async__task_park(t, ASYNC__FOREVER);
        async__waiter_remove(&w);
        if (rc)
            return rc;
    }
    return 0;
}

int async__future_wait_shielded(async_task *t, async_future *f, int rc)
{
    t->shield++;
    (void)async__future_wait(f);
    t->shield--;
    return rc;
}

int async_shield(async_future *f, void **result)
{
    if (!f)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (f == &t->fut)
        return ASYNC_EDEADLK;
    if (f->loop != t->fut.loop)
        return ASYNC_EWRONGLOOP;
    async_future_ref(f);
    t->fut_waiter = f; /* released if the task is killed; never cancelled */
    t->shielding = true;
    int rc = async__future_wait(f);
    t->shielding = false;
    t->fut_waiter = NULL;
    if (rc == 0)
        rc = async_future_result(f, result);
    else
        f->retrieve_on_done = true; /* asyncio's shield retrieves the inner
                                       exception once the outer is gone */
    async_future_unref(f);
    return rc;
}

/* async_future_await's rare cases, once the wait for f has returned rc:
 * a deadline scope that expired, a cancellation of the awaiting task t.
 * Returns the await's outcome (0: f's own outcome decides). */
static __attribute__((noinline)) int
future_await_interrupted(async_task *t, async_future *f, int rc)
{
    if (rc == ASYNC_ETIMEDOUT && !async_future_done(f)) {
        /* A deadline scope expired (asyncio: the timeout cancels the task,
         * which cancels what it awaits): cancel f and wait for it, still
         * as t's fut_waiter (a kill meanwhile releases it). */
        t->fut_waiter = f;
        async_future_cancel(f);
        rc = async__future_wait_shielded(t, f, rc);
        t->fut_waiter = NULL;
    }
    if (rc == 0 && t->cancel_requested && !t->shield) {
        t->must_cancel = false;
        rc = ASYNC_ECANCELED; /* cancelled while waiting: f was cancelled
                                 too and has finished */
    }
    return rc;
}

int async_future_await(async_future *f, void **result)
{
    if (!f)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (f == &t->fut)
        return ASYNC_EDEADLK;
    if (f->loop != t->fut.loop)
        return ASYNC_EWRONGLOOP;
    async_future_ref(f);
    t->fut_waiter = f; /* async_task_cancel cancels it, a kill unrefs it */
    int rc = async__future_wait(f);
    t->fut_waiter = NULL;
    if (__builtin_expect(rc != 0 || t->cancel_requested, 0))
        rc = future_await_interrupted(t, f, rc);
    if (rc == 0)
        rc = async_future_result(f, result);
    async_future_unref(f);
    return rc;
}
