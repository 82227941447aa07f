/*
 * Timeout objects: asyncio.timeout(delay) and asyncio.timeout_at(when) as a
 * scope with when(), reschedule() and expired().
 *
 *     async_timeout tm = ASYNC_TIMEOUT_INIT;
 *     int rc = async_timeout_enter(&tm, 50 * ASYNC_MSEC);  // async with
 *     if (rc)                                              //   timeout(0.05):
 *         return rc;
 *     rc = do_work();                                      //   ...
 *     rc = async_timeout_leave(&tm, rc);                   // (exit)
 *     // rc == ASYNC_ETIMEDOUT: this scope expired; async_timeout_expired(&tm)
 *
 * Semantics are asyncio's: when the deadline passes, the scope cancels its
 * task (async_task_cancel), so the suspension point the task is in, and
 * every later one (cancellation is level-triggered in libasync), returns
 * ASYNC_ECANCELED.  async_timeout_leave() then withdraws that request
 * (async_task_uncancel) and turns ASYNC_ECANCELED into ASYNC_ETIMEDOUT,
 * but only at the scope that expired and only when no other cancel request
 * is left (a task cancelled from outside stays cancelled, and nested scopes
 * report the time-out at the outermost expired one, as asyncio's
 * `uncancel() <= cancelling` rule does).  Code between an inner scope and
 * the expired outer one sees ASYNC_ECANCELED, as in asyncio it sees
 * CancelledError.  A shield scope (async_shield_enter) delays the
 * cancellation like any other.
 *
 * Beside this, async_deadline_push()/pop() (async/task.h) remain the
 * lower-level, allocation-free form: suspension points inside them return
 * ASYNC_ETIMEDOUT directly and the deadline cannot move.
 *
 * The scope belongs to the task that entered it: call enter, reschedule and
 * leave from that task (reschedule may also come from another task or a
 * callback of the same loop, as in asyncio), and leave before the task's
 * function returns.  The struct may live on the task's stack.
 */
#ifndef ASYNC_TIMEOUT_H
#define ASYNC_TIMEOUT_H

#include <stdbool.h>
#include <stdint.h>

#include <async/error.h>
#include <async/loop.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A deadline that never comes: asyncio's `when=None`. */
#define ASYNC_NEVER UINT64_MAX

/* A timeout scope.  The fields are private: use the functions below. */
typedef struct async_timeout {
    async_task *task_;      /* the task that entered, while entered */
    async_handle *handle_;  /* the armed expiry callback, or NULL */
    uint64_t when_;         /* the deadline, or ASYNC_NEVER */
    unsigned cancelling_;   /* the task's cancel requests at enter */
    int state_;             /* created, entered, expiring, expired, exited */
} async_timeout;

/* Initialiser of a scope that has not been entered (asyncio.timeout()
 * before `async with`). */
#define ASYNC_TIMEOUT_INIT {NULL, NULL, 0, 0, 0}

/*
 * Enters the scope on the current task: it expires `delay` ns from now
 * (asyncio.timeout(delay); a delay <= 0 expires at the next loop
 * iteration, as asyncio's does) or at loop time `when` (timeout_at;
 * ASYNC_NEVER = no deadline, asyncio's None; a time in the past expires at
 * the next iteration).  tm must be ASYNC_TIMEOUT_INIT.  Returns 0,
 * ASYNC_EINVAL (NULL tm, or a scope already entered or finished: asyncio's
 * "has already been entered"), ASYNC_ENOTTASK, or ASYNC_ENOMEM; on error
 * nothing changed.
 */
ASYNC_API int async_timeout_enter(async_timeout *tm, int64_t delay);
ASYNC_API int async_timeout_enter_at(async_timeout *tm, uint64_t when);

/*
 * Leaves the scope (asyncio's __aexit__).  `rc` is the code the body ended
 * with; the return value is what the scope ends with: ASYNC_ETIMEDOUT if
 * this scope expired, rc is ASYNC_ECANCELED and no other cancel request is
 * pending; otherwise rc unchanged (a foreign error passes through, also
 * after expiry).  If the scope expired, its cancel request is withdrawn
 * whatever rc is.  Returns ASYNC_EINVAL (NULL tm, not entered, already
 * left) or ASYNC_ENOTTASK/ASYNC_EINVAL when called from another task.
 */
ASYNC_API int async_timeout_leave(async_timeout *tm, int rc);

/* The deadline (loop time), or ASYNC_NEVER (also for NULL). */
ASYNC_API uint64_t async_timeout_when(const async_timeout *tm);

/*
 * Moves the deadline of an entered scope to loop time `when` (ASYNC_NEVER
 * disarms it; a time in the past expires at the next iteration).  Returns
 * 0, ASYNC_EINVAL (NULL, never entered: "has not been entered", already
 * left: "finished", or already expired: asyncio cannot reschedule an
 * expiring scope either) or ASYNC_ENOMEM (nothing changed).
 */
ASYNC_API int async_timeout_reschedule(async_timeout *tm, uint64_t when);

/* True once the deadline fired, even after leave (asyncio's expired()). */
ASYNC_API bool async_timeout_expired(const async_timeout *tm);

#ifdef __cplusplus
}
#endif

#endif
