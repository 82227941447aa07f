/*
 * Timeout objects (asyncio.timeout / timeout_at), built on the task's
 * cancellation count exactly as asyncio's timeouts.py is: the expiry is a
 * loop callback that cancels the task; leaving the scope withdraws that
 * request and, if no other request remains than those present at enter,
 * reports ASYNC_ETIMEDOUT instead of ASYNC_ECANCELED.  The expiry callback
 * is an ordinary loop handle (call_at, or call_soon for a deadline already
 * past, so that it runs before a task that yields right after entering, as
 * in asyncio).
 */
#include "core/internal.h"

enum timeout_state {
    TM_CREATED = 0, /* ASYNC_TIMEOUT_INIT: never entered */
    TM_ENTERED,     /* armed (or disabled), not fired */
    TM_EXPIRING,    /* fired: the task has our cancel request */
    TM_EXPIRED,     /* left after firing */
    TM_EXITED,      /* left without firing */
};

static int timeout_fire(void *arg)
{
    async_timeout *tm = arg;
    async_handle_unref(tm->handle_);
    tm->handle_ = NULL;
    tm->state_ = TM_EXPIRING;
    async_task_cancel(tm->task_);
    return 0;
}

/* Arms the expiry for tm->task_ at `when` (nothing for ASYNC_NEVER);
 * stores the handle in *handle.  0 or ASYNC_ENOMEM / the loop's error. */
static int timeout_arm(async_timeout *tm, uint64_t when, async_handle **handle)
{
    async_loop *loop = tm->task_->fut.loop;
    *handle = NULL;
    if (when == ASYNC_NEVER)
        return 0;
    if (when <= async__loop_now(loop))
        return async_loop_call_soon(loop, timeout_fire, tm, handle);
    return async_loop_call_at(loop, when, timeout_fire, tm, handle);
}

static void timeout_disarm(async_timeout *tm)
{
    if (!tm->handle_)
        return;
    async_handle_cancel(tm->handle_);
    async_handle_unref(tm->handle_);
    tm->handle_ = NULL;
}

int async_timeout_enter_at(async_timeout *tm, uint64_t when)
{
    if (!tm)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (tm->state_ != TM_CREATED)
        return ASYNC_EINVAL;
    tm->task_ = t;
    async_handle *h;
    int rc = timeout_arm(tm, when, &h);
    if (rc) {
        tm->task_ = NULL;
        return rc;
    }
    tm->handle_ = h;
    tm->when_ = when;
    tm->cancelling_ = t->cancel_count;
    tm->state_ = TM_ENTERED;
    return 0;
}

int async_timeout_enter(async_timeout *tm, int64_t delay)
{
    async_task *t = async__task_current();
    if (!tm)
        return ASYNC_EINVAL;
    if (!t)
        return ASYNC_ENOTTASK;
    uint64_t now = async__loop_now(t->fut.loop);
    uint64_t when;
    if (delay >= 0) {
        when = now + (uint64_t)delay;
        if (when < now || when == ASYNC_NEVER)
            when = ASYNC_NEVER - 1; /* far, but still a deadline */
    } else {
        uint64_t back = (uint64_t)-(delay + 1) + 1; /* |delay|, no overflow */
        when = now > back ? now - back : 0;
    }
    return async_timeout_enter_at(tm, when);
}

int async_timeout_leave(async_timeout *tm, int rc)
{
    if (!tm || (tm->state_ != TM_ENTERED && tm->state_ != TM_EXPIRING))
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (t != tm->task_)
        return ASYNC_EINVAL;
    timeout_disarm(tm);
    tm->task_ = NULL;
    if (tm->state_ == TM_ENTERED) {
        tm->state_ = TM_EXITED;
        return rc;
    }
    tm->state_ = TM_EXPIRED;
    int left = async_task_uncancel(t);
    if (left >= 0 && (unsigned)left <= tm->cancelling_ &&
        rc == ASYNC_ECANCELED)
        rc = ASYNC_ETIMEDOUT;
    return rc;
}

uint64_t async_timeout_when(const async_timeout *tm)
{
    if (!tm || tm->state_ == TM_CREATED)
        return ASYNC_NEVER;
    return tm->when_;
}

int async_timeout_reschedule(async_timeout *tm, uint64_t when)
{
    if (!tm || tm->state_ != TM_ENTERED)
        return ASYNC_EINVAL;
    async_handle *h;
    int rc = timeout_arm(tm, when, &h);
    if (rc)
        return rc;
    timeout_disarm(tm);
    tm->handle_ = h;
    tm->when_ = when;
    return 0;
}

bool async_timeout_expired(const async_timeout *tm)
{
    return tm && (tm->state_ == TM_EXPIRING || tm->state_ == TM_EXPIRED);
}
