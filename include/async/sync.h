/*
 * Synchronization between tasks: asyncio's Event, Lock, Semaphore,
 * BoundedSemaphore, Condition and Barrier, in C.
 *
 * These never block the thread: a task that has to wait parks (like any
 * other suspension point) and the loop runs other tasks meanwhile.  They
 * are not thread-safe: use each object from the thread of one loop.
 *
 * Objects belong to no loop: create one with its async_*_new() function
 * (anywhere, even before a loop exists) and release it with async_*_free().
 * Freeing an object that tasks are still waiting on -- or that just handed
 * something to a task which has not run yet -- is refused with ASYNC_EBUSY
 * and changes nothing; free(NULL) returns 0.
 *
 * Waiting.  Every call that may wait has two forms: the plain one waits as
 * long as it takes, the _until one gives up at loop time `deadline` (as
 * async_loop_time(); UINT64_MAX means never) with ASYNC_ETIMEDOUT.  Both
 * must be called from inside a task (else ASYNC_ENOTTASK) and are
 * cancellable: once the task is cancelled the wait returns ASYNC_ECANCELED.
 * Cancellation is level-triggered (async/task.h): the request stays
 * pending, so every later wait of the task returns ASYNC_ECANCELED too,
 * until the task returns or calls async_task_uncancel (asyncio delivers
 * one CancelledError, which the coroutine may catch and go on waiting).
 * A call that can complete at once (a free lock, a set event) completes
 * without suspending, even for a cancelled task or a passed deadline, as in
 * asyncio; a deadline scope (async_deadline_push) ends waits like a
 * deadline does.
 *
 * Fairness and hand-off.  Waiters are served strictly in arrival order: a
 * release hands the lock (or permit) directly to the first waiter, so a
 * task that did not wait cannot take it first (asyncio unlocks and wakes
 * the waiter, which takes the lock when it runs; a newcomer cannot barge in
 * there either, but the lock reads unlocked meanwhile -- here it stays
 * locked across the hand-off).  A waiter that gives up (cancellation or
 * deadline) never leaves the object in a wrong state: if the cancellation
 * came first and the lock or permit reached it afterwards, it passes it on
 * to the next waiter.  If the grant came first, the grant wins: the call
 * returns 0 and the cancellation hits the task's next suspension point
 * (asyncio raises CancelledError and gives the lock back).  The task then
 * really holds the lock, so 0 is the truthful answer and the caller's
 * usual release path runs.
 */
#ifndef ASYNC_SYNC_H
#define ASYNC_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <async/error.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Event ---------------------------------------------------------------- */

/* A flag tasks can wait for (asyncio.Event); starts cleared. */
typedef struct async_event async_event;

/* Creates a cleared event.  Returns 0, ASYNC_EINVAL (out NULL) or
 * ASYNC_ENOMEM; *out is set only on success. */
ASYNC_API int async_event_new(async_event **out);

/* Frees ev.  Returns 0 (also for NULL) or ASYNC_EBUSY (tasks are waiting:
 * nothing is freed). */
ASYNC_API int async_event_free(async_event *ev);

/* Sets the flag and wakes every waiting task; a no-op if already set.
 * Any code may call it.  Returns 0 or ASYNC_EINVAL (NULL). */
ASYNC_API int async_event_set(async_event *ev);

/* Clears the flag (tasks woken by an earlier set still return 0).
 * Returns 0 or ASYNC_EINVAL. */
ASYNC_API int async_event_clear(async_event *ev);

/* True if the flag is set (false for NULL). */
ASYNC_API bool async_event_is_set(const async_event *ev);

/* Waits until the flag is set; returns at once if it already is.  Returns
 * 0, ASYNC_EINVAL, ASYNC_ENOTTASK, ASYNC_ECANCELED or ASYNC_ETIMEDOUT. */
ASYNC_API int async_event_wait(async_event *ev);
ASYNC_API int async_event_wait_until(async_event *ev, uint64_t deadline);

/* ---- Lock ------------------------------------------------------------------ */

/* A mutual-exclusion lock for tasks (asyncio.Lock); FIFO fair.  Like
 * asyncio's, it has no owner: any code may release it. */
typedef struct async_lock async_lock;

/* Creates an unlocked lock.  Returns 0, ASYNC_EINVAL or ASYNC_ENOMEM. */
ASYNC_API int async_lock_new(async_lock **out);

/* Frees the lock (locked or not).  Returns 0 (also for NULL) or
 * ASYNC_EBUSY (tasks are waiting). */
ASYNC_API int async_lock_free(async_lock *lock);

/*
 * Acquires the lock, waiting in FIFO order behind earlier waiters.  Returns
 * 0 (the caller now holds the lock), ASYNC_EINVAL, ASYNC_ENOTTASK,
 * ASYNC_ECANCELED or ASYNC_ETIMEDOUT; after an error the caller does not
 * hold the lock.
 *
 * Difference from asyncio: the lock is handed over (see "Fairness and
 * hand-off" above).  A waiter that was handed the lock before it was
 * cancelled returns 0 holding it, and the cancellation hits its next
 * suspension point (asyncio raises CancelledError and passes the lock on);
 * the grant came first, and returning 0 keeps "0 means you hold it" true.
 */
ASYNC_API int async_lock_acquire(async_lock *lock);
ASYNC_API int async_lock_acquire_until(async_lock *lock, uint64_t deadline);

/* Acquires the lock only if that needs no waiting (unlocked, nobody
 * queued).  Any code may call it.  Returns 0, ASYNC_EINVAL or ASYNC_EAGAIN
 * (it would have to wait: nothing changed). */
ASYNC_API int async_lock_try_acquire(async_lock *lock);

/* Releases the lock: the first waiter (if any) gets it directly, so the
 * lock stays locked (asyncio unlocks it until the waiter runs).  Any code
 * may call it.  Returns 0, ASYNC_EINVAL, or ASYNC_ENOTHELD (the lock is not
 * locked: nothing changes). */
ASYNC_API int async_lock_release(async_lock *lock);

/* True if the lock is held (false for NULL). */
ASYNC_API bool async_lock_locked(const async_lock *lock);

/* ---- Semaphore and BoundedSemaphore ------------------------------------- */

/*
 * A counter of permits (asyncio.Semaphore / BoundedSemaphore); FIFO fair,
 * with CPython 3.12's ordering: a task that releases and re-acquires at
 * once queues behind the waiters its release (or an earlier one) woke,
 * even if a permit is free at that moment -- a permit handed to a waiter
 * that has not resumed yet still counts as taken for newcomers.
 */
typedef struct async_semaphore async_semaphore;

/*
 * Creates a semaphore holding `value` permits.  The bounded kind refuses a
 * release that would take it above `value`.  Returns 0, ASYNC_EINVAL (out
 * NULL or value < 0) or ASYNC_ENOMEM.
 */
ASYNC_API int async_semaphore_new(async_semaphore **out, long value);
ASYNC_API int async_semaphore_new_bounded(async_semaphore **out, long value);

/* Frees it.  Returns 0 (also for NULL) or ASYNC_EBUSY (tasks waiting). */
ASYNC_API int async_semaphore_free(async_semaphore *sem);

/*
 * Takes one permit, waiting in FIFO order while there is none or other
 * tasks are queued (see above).  Returns 0, ASYNC_EINVAL, ASYNC_ENOTTASK,
 * ASYNC_ECANCELED or ASYNC_ETIMEDOUT; after an error the caller holds no
 * permit.
 *
 * Difference from asyncio: a permit handed to the waiter by a release
 * before the waiter was cancelled is kept -- the call returns 0 and the
 * cancellation hits the task's next suspension point (it stays pending:
 * cancellation is level-triggered).  asyncio's acquire raises
 * CancelledError and gives the permit back.  The grant came first, and the
 * caller then really holds the permit, so 0 is the truthful answer; a
 * cancel that came first still returns ASYNC_ECANCELED and passes a
 * permit that arrives afterwards on to the next waiter.
 */
ASYNC_API int async_semaphore_acquire(async_semaphore *sem);
ASYNC_API int async_semaphore_acquire_until(async_semaphore *sem,
                                            uint64_t deadline);

/* Takes a permit only if one is free and nobody is queued (a waiter that
 * was handed a permit and has not resumed yet counts as queued).  Any code
 * may call it.  Returns 0, ASYNC_EINVAL or ASYNC_EAGAIN. */
ASYNC_API int async_semaphore_try_acquire(async_semaphore *sem);

/*
 * Returns one permit: the first waiter (if any) gets it directly.  Any code
 * may call it.  Returns 0, ASYNC_EINVAL, ASYNC_ENOTHELD (bounded semaphore
 * already at its initial value: released more often than acquired), or
 * ASYNC_ENOSPC (the count would overflow a long); on error nothing changes.
 */
ASYNC_API int async_semaphore_release(async_semaphore *sem);

/* Free permits now (0 for NULL).  Permits handed to waiters are not free;
 * the count can be above 0 for a moment while tasks queue behind a waiter
 * that was handed a permit and has not resumed yet. */
ASYNC_API long async_semaphore_value(const async_semaphore *sem);

/* True if an acquire would have to wait (asyncio's locked(): no free
 * permit, or tasks queued); false for NULL. */
ASYNC_API bool async_semaphore_locked(const async_semaphore *sem);

/* ---- Condition ----------------------------------------------------------- */

/* A condition variable bound to a lock (asyncio.Condition). */
typedef struct async_condition async_condition;

/* A predicate for async_condition_wait_for: true when the wait is over. */
typedef bool (*async_predicate)(void *arg);

/*
 * Creates a condition using `lock`, or a lock of its own when lock is NULL.
 * A lock passed in stays the caller's and must outlive the condition.
 * Returns 0, ASYNC_EINVAL (out NULL) or ASYNC_ENOMEM.
 */
ASYNC_API int async_condition_new(async_condition **out, async_lock *lock);

/* Frees the condition (and its own lock).  Returns 0 (also for NULL) or
 * ASYNC_EBUSY (tasks are waiting, on it or on its own lock). */
ASYNC_API int async_condition_free(async_condition *cond);

/* The lock the condition is bound to: acquire it before waiting or
 * notifying, release it after (NULL for NULL). */
ASYNC_API async_lock *async_condition_lock(const async_condition *cond);

/*
 * With the lock held: releases it, waits for a notify, and reacquires the
 * lock before returning -- always, even when the wait was cancelled or timed
 * out (as asyncio does), so the caller holds the lock whatever the result.
 * Returns 0 (notified), ASYNC_EINVAL, ASYNC_ENOTTASK, ASYNC_ENOTHELD (the
 * lock is not held: nothing happens), ASYNC_ECANCELED or ASYNC_ETIMEDOUT.
 * A waiter that was notified but gives up passes the notification on, so
 * no notify is lost (another waiter may then wake spuriously, which the
 * condition-variable protocol allows: re-check the state after a wake).
 *
 * Difference from asyncio: a waiter notified before it was cancelled
 * returns 0 (holding the lock), and the cancellation hits its next
 * suspension point, also when the cancellation arrives while it waits to
 * retake the lock (asyncio raises CancelledError once it holds the lock
 * again, and passes the notification on).  The notification came first;
 * the caller re-checks its state and goes on as after any wake.
 */
ASYNC_API int async_condition_wait(async_condition *cond);
ASYNC_API int async_condition_wait_until(async_condition *cond,
                                         uint64_t deadline);

/*
 * With the lock held: waits until pred(arg) is true, checking it first and
 * after every wake (the lock is held during each check).  Returns 0 once
 * pred is true, or the errors of async_condition_wait (ASYNC_EINVAL also
 * for a NULL pred); the lock is held on return in every case but
 * ASYNC_EINVAL / ASYNC_ENOTTASK / ASYNC_ENOTHELD.
 *
 * Difference from asyncio: the lock is required even when pred is already
 * true (ASYNC_ENOTHELD, and pred is not called); asyncio's wait_for returns
 * the predicate's value without the lock and raises RuntimeError only when
 * it would have to wait.  The predicate reads state the lock protects, so
 * calling it unlocked is a race that asyncio merely does not detect; one
 * rule for both cases also keeps the error path testable.
 */
ASYNC_API int async_condition_wait_for(async_condition *cond,
                                       async_predicate pred, void *arg);
ASYNC_API int async_condition_wait_for_until(async_condition *cond,
                                             async_predicate pred, void *arg,
                                             uint64_t deadline);

/* With the lock held: wakes up to n waiters (in FIFO order) / all waiters.
 * Returns the number woken, ASYNC_EINVAL or ASYNC_ENOTHELD. */
ASYNC_API int async_condition_notify(async_condition *cond, size_t n);
ASYNC_API int async_condition_notify_all(async_condition *cond);

/* ---- Barrier ------------------------------------------------------------- */

/*
 * A rendezvous of `parties` tasks (asyncio.Barrier), reusable cycle after
 * cycle, with asyncio's states: *filling* (tasks arrive and wait),
 * *draining* (the cycle was released and its tasks are leaving),
 * *resetting* (a reset hit a cycle with tasks inside) and *broken*
 * (aborted).  A task that calls wait while the barrier drains or resets
 * waits until the last task of the old cycle has left, then joins the next
 * cycle, so cycles never mix.
 */
typedef struct async_barrier async_barrier;

/* Creates a barrier for `parties` tasks.  Returns 0, ASYNC_EINVAL (out
 * NULL, parties 0 or above INT_MAX) or ASYNC_ENOMEM. */
ASYNC_API int async_barrier_new(async_barrier **out, unsigned parties);

/* Frees it.  Returns 0 (also for NULL) or ASYNC_EBUSY (tasks waiting). */
ASYNC_API int async_barrier_free(async_barrier *b);

/*
 * Waits until `parties` tasks are waiting, then releases them all (first
 * waiting for a drain or reset in progress to finish, see above).  Returns
 * the caller's arrival index in its cycle (0 for the first, parties - 1
 * for the one that completed it), ASYNC_EINVAL, ASYNC_ENOTTASK,
 * ASYNC_EBROKEN (the barrier is broken, or was aborted or reset while the
 * caller was inside: waiting, or released but not yet resumed),
 * ASYNC_ECANCELED or ASYNC_ETIMEDOUT.  A waiter that gives up before the cycle completes
 * withdraws: the barrier then waits for another party (asyncio does the
 * same on cancellation; it does not break the barrier).
 *
 * Difference from asyncio: a task cancelled after its cycle was released
 * (but before it resumed) returns its index, and the cancellation hits its
 * next suspension point (cancellation is level-triggered); asyncio raises
 * CancelledError from wait.  The release came first and the cycle did
 * complete with the task in it, so the index is the truthful answer.
 */
ASYNC_API int async_barrier_wait(async_barrier *b);
ASYNC_API int async_barrier_wait_until(async_barrier *b, uint64_t deadline);

/* Breaks the barrier: the tasks inside (waiting, or released and not yet
 * resumed) and every later wait fail with ASYNC_EBROKEN until a reset.
 * Any code may call it.  Returns 0 or ASYNC_EINVAL. */
ASYNC_API int async_barrier_abort(async_barrier *b);

/* Returns the barrier to the filling state, unbroken.  Tasks inside it
 * (waiting, or released and not yet resumed) get ASYNC_EBROKEN, and until
 * the last of them has left, new waits wait (asyncio's resetting state).
 * Any code may call it.  Returns 0 or ASYNC_EINVAL. */
ASYNC_API int async_barrier_reset(async_barrier *b);

/* The number of parties, the number waiting in the filling cycle (0 while
 * the barrier drains, resets or is broken, as asyncio's n_waiting), and
 * whether the barrier is broken (0 / 0 / false for NULL). */
ASYNC_API unsigned async_barrier_parties(const async_barrier *b);
ASYNC_API unsigned async_barrier_n_waiting(const async_barrier *b);
ASYNC_API bool async_barrier_broken(const async_barrier *b);

#ifdef __cplusplus
}
#endif

#endif
