/*
 * Futures and tasks: asyncio's Future, Task, sleep, gather, wait_for and
 * asyncio.run, in C.
 *
 * Ownership rule (the only one): every call that hands you a future or a
 * task handle (async_future_new, async_spawn, ...) gives you one reference.
 * Release it with async_future_unref() / async_task_unref() when you no
 * longer need the handle; async_*_ref() takes another.  The loop keeps its
 * own reference to a task until the task finishes, so releasing your
 * reference right after spawning ("detaching") is fine.  A handle is freed
 * when its last reference goes; a program that releases every reference it
 * was given leaks nothing.  Passing NULL as `out` to a spawn call detaches
 * the task at once.
 *
 * Coroutine functions have the type async_fn: they return 0 or a negative
 * error, and may store a result in *result.  Suspension points (await,
 * sleep, yield, every I/O wait) return ASYNC_ECANCELED once the task has
 * been cancelled, every time, until the function returns: return that code
 * to complete the task as cancelled.
 */
#ifndef ASYNC_TASK_H
#define ASYNC_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <async/error.h>
#include <async/loop.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A coroutine body: return 0 (with an optional *result) or an error. */
typedef int (*async_fn)(void *arg, void **result);

/* A done callback: runs on the loop, after the future is done. */
typedef void (*async_done_fn)(async_future *future, void *arg);

/* ---- futures ------------------------------------------------------------ */

/* Creates a pending future on `loop`.  Returns 0, ASYNC_EINVAL,
 * ASYNC_ECLOSED or ASYNC_ENOMEM. */
ASYNC_API int async_future_new(async_loop *loop, async_future **out);

ASYNC_API async_future *async_future_ref(async_future *f);
/* Drops a reference; NULL is ignored. */
ASYNC_API void async_future_unref(async_future *f);

/*
 * Complete a pending future with a result / an error / as cancelled.  Done
 * callbacks and awaiters are scheduled on the loop, never run inline.
 * set_result and set_error return 0, ASYNC_EINVAL (NULL, or error >= 0),
 * ASYNC_EDONE (already done: nothing changes), ASYNC_ECLOSED (the loop is
 * closed: nothing changes, as asyncio's "Event loop is closed"; asyncio
 * only refuses when the future has done callbacks, libasync always) or
 * ASYNC_EPERM for a task's own future (async_task_future(t)): only the
 * task's body completes it (asyncio raises RuntimeError).
 * cancel returns 0 if it cancelled the future, ASYNC_EDONE if it was
 * already done (a failed future then counts as retrieved, as asyncio's
 * cancel() silences the "never retrieved" report), ASYNC_ECLOSED (loop
 * closed).  On a task's future, cancel is async_task_cancel (a request, as
 * Task.cancel()).  In debug mode (async/debug.h) all three, and
 * add_done_callback and async_task_cancel, return ASYNC_EWRONGTHREAD when
 * called from another thread while the loop runs, changing nothing.
 * A future may defer its cancellation: the future of a
 * running executor job stays pending until the job returns (see
 * async/executor.h).
 */
ASYNC_API int async_future_set_result(async_future *f, void *result);
ASYNC_API int async_future_set_error(async_future *f, int error);
ASYNC_API int async_future_cancel(async_future *f);

ASYNC_API bool async_future_done(const async_future *f);
ASYNC_API bool async_future_cancelled(const async_future *f);

/*
 * The outcome of a done future: 0 with *result set (result may be NULL),
 * its error, ASYNC_ECANCELED, or ASYNC_EPENDING if not done.  Counts as
 * retrieving the error.
 */
ASYNC_API int async_future_result(async_future *f, void **result);

/* The loop the future belongs to. */
ASYNC_API async_loop *async_future_loop(const async_future *f);

/*
 * Adds a done callback (called once, scheduled through the loop; if the
 * future is already done it is scheduled now).  Returns 0, ASYNC_EINVAL,
 * ASYNC_ECLOSED or ASYNC_ENOMEM.  remove_done_callback removes every
 * registration of (fn, arg) still pending and returns how many, or
 * ASYNC_EINVAL.
 */
ASYNC_API int async_future_add_done_callback(async_future *f, async_done_fn fn,
                                             void *arg);
ASYNC_API int async_future_remove_done_callback(async_future *f,
                                                async_done_fn fn, void *arg);

/*
 * Suspends the current task until f is done and returns its outcome as
 * async_future_result().  Any number of tasks may await the same future.
 * Also ASYNC_EINVAL (NULL), ASYNC_ENOTTASK outside a task, ASYNC_EDEADLK
 * when a task awaits itself, ASYNC_EWRONGLOOP, and:
 * - ASYNC_ECANCELED when the awaiting task is cancelled while waiting.  As
 *   in asyncio (Task.cancel cancels the future it waits on) the cancel goes
 *   down the await chain: f is cancelled too (a task f gets a cancel
 *   request), and the await returns once f is done, whatever f's outcome.
 *   asyncio departure: if f swallows the cancel and returns a value,
 *   asyncio's await returns that value and the awaiting task is not
 *   cancelled; libasync's cancellation is level-triggered, so the await
 *   returns ASYNC_ECANCELED.  A task already cancelled before the await
 *   returns ASYNC_ECANCELED at once and leaves f alone.  Inside a shield
 *   scope nothing of this happens.  Use async_shield() to await without
 *   passing a cancel on.
 * - ASYNC_ETIMEDOUT when a deadline scope expires: f is cancelled and
 *   waited for the same way (asyncio.timeout cancels the task, which
 *   cancels what it awaits).
 */
ASYNC_API int async_future_await(async_future *f, void **result);

/* ---- tasks --------------------------------------------------------------- */

/* Options for a spawn; zero-initialise and set what you need. */
typedef struct async_task_opts {
    size_t stack_size; /* usable stack bytes; 0 = default (256 KiB) */
    const char *name;  /* copied; NULL = "Task-N" */
} async_task_opts;

/*
 * Creates a task running fn(arg) on the running loop (asyncio.create_task)
 * or on `loop` (loop.create_task); it starts on a later loop iteration.
 * *out (if not NULL) receives a reference.  Returns 0, ASYNC_EINVAL (NULL
 * fn, bad stack size), ASYNC_ENOLOOP (async_spawn outside a running loop),
 * ASYNC_ECLOSED or ASYNC_ENOMEM; on error nothing was scheduled.
 */
ASYNC_API int async_spawn(async_task **out, async_fn fn, void *arg);
ASYNC_API int async_spawn_opts(async_task **out, async_fn fn, void *arg,
                               const async_task_opts *opts);
ASYNC_API int async_loop_spawn(async_loop *loop, async_task **out,
                               async_fn fn, void *arg,
                               const async_task_opts *opts);

ASYNC_API async_task *async_task_ref(async_task *t);
/* Drops a reference; NULL is ignored.  If the task failed and nobody ever
 * retrieved its error, the loop's exception handler hears of it once
 * ("Task exception was never retrieved") when the task is freed. */
ASYNC_API void async_task_unref(async_task *t);

/* The task's future (same lifetime as the task; no new reference). */
ASYNC_API async_future *async_task_future(async_task *t);

/* The task running now, or NULL outside any task. */
ASYNC_API async_task *async_current_task(void);

/* The task's name ("Task-1" unless one was given); valid while t lives. */
ASYNC_API const char *async_task_name(const async_task *t);
/* Renames a task (the string is copied). 0, ASYNC_EINVAL or ASYNC_ENOMEM. */
ASYNC_API int async_task_set_name(async_task *t, const char *name);

/*
 * Requests cancellation: the task's current or next suspension point
 * returns ASYNC_ECANCELED, and so does every later one until the task
 * returns (asyncio departure: asyncio throws CancelledError once and the
 * coroutine may swallow it; here cancellation is level-triggered, so a C
 * loop that checks its return codes always exits).  A task waiting in
 * async_future_await passes the cancel down to the awaited future or task
 * (asyncio's _fut_waiter) and wakes when that one is done.  A task
 * cancelled before it started never runs its function.  A request that no
 * suspension point delivered before the function returned 0 still ends the
 * task cancelled (asyncio's _must_cancel): a task that cancels itself and
 * returns 12 is cancelled.  Each call counts one request (see
 * async_task_cancelling / async_task_uncancel).  Returns 0, ASYNC_EINVAL,
 * ASYNC_EDONE for a finished task (a failed task's error then counts as
 * retrieved, as in asyncio), or ASYNC_EWRONGTHREAD in debug mode when
 * called from another thread while the loop runs (nothing changes).
 */
ASYNC_API int async_task_cancel(async_task *t);

/*
 * asyncio's Task.cancelling(): the number of cancellation requests not
 * undone by async_task_uncancel (0: not cancelling), or ASYNC_EINVAL for
 * NULL.  As in asyncio the count stays readable after the task finished.
 */
ASYNC_API int async_task_cancelling(const async_task *t);

/*
 * Undoes one cancellation request (asyncio's Task.uncancel), for code that
 * cancelled a task on purpose and has handled it (task groups do this).
 * Each async_task_cancel() on a pending task counts one request; when the
 * count drops to 0 the task is no longer cancelling and its suspension
 * points stop returning ASYNC_ECANCELED.  Returns the requests left, or
 * ASYNC_EINVAL (NULL).
 */
ASYNC_API int async_task_uncancel(async_task *t);

ASYNC_API int async_task_await(async_task *t, void **result);

/* ---- suspension points inside a task ------------------------------------ */

/* Lets every other ready task and callback run once.  0, ASYNC_ENOTTASK,
 * ASYNC_ECANCELED or ASYNC_ETIMEDOUT (deadline scope). */
ASYNC_API int async_yield(void);

/* Sleeps `delay` ns / until loop time `deadline`.  A delay <= 0 (or a
 * deadline already past) is one loop iteration, as asyncio.sleep(0) and
 * asyncio.sleep(-1).  0, ASYNC_ENOTTASK, ASYNC_ECANCELED, or
 * ASYNC_ETIMEDOUT when a deadline scope ends first. */
ASYNC_API int async_sleep(int64_t delay);
ASYNC_API int async_sleep_until(uint64_t deadline);

/*
 * Shield scope: between async_shield_enter() and async_shield_leave() the
 * current task's suspension points ignore a cancellation request, so cleanup
 * code can await; the request stays pending and the first suspension point
 * after the scope returns ASYNC_ECANCELED.  Scopes nest.  Both return 0,
 * ASYNC_ENOTTASK, or (leave without enter) ASYNC_EINVAL.
 */
ASYNC_API int async_shield_enter(void);
ASYNC_API int async_shield_leave(void);

/*
 * asyncio.shield(f): awaits f like async_future_await, but a cancellation
 * of the awaiting task is not passed on: the await returns ASYNC_ECANCELED
 * at once and f keeps running (keep a reference to it to see its outcome;
 * an error it ends with later counts as retrieved, as in asyncio).  A
 * deadline scope expiring returns ASYNC_ETIMEDOUT the same way.  If f
 * itself is cancelled the result is ASYNC_ECANCELED, as in asyncio.  Use
 * async_task_future(t) for a task.  Errors as async_future_await.  The
 * shield *scope* (async_shield_enter/leave) is the other tool: it protects
 * the current task's own cleanup code instead of an awaitable.
 */
ASYNC_API int async_shield(async_future *f, void **result);

/*
 * Deadline scope (asyncio.timeout): until the matching pop, any suspension
 * point of the current task that is still waiting at loop time `deadline`
 * returns ASYNC_ETIMEDOUT (and keeps doing so until the pop).  Scopes nest;
 * the earliest deadline wins.  Returns 0, ASYNC_ENOTTASK, ASYNC_EINVAL (pop
 * without push) or ASYNC_ENOMEM (more than 16 nested scopes).
 */
ASYNC_API int async_deadline_push(uint64_t deadline);
ASYNC_API int async_deadline_pop(void);

/* async_wait_for's "no time-out" (asyncio's timeout=None). */
#define ASYNC_NO_TIMEOUT INT64_MAX

/*
 * asyncio.wait_for (CPython 3.12 semantics): awaits f for at most `timeout`
 * ns.  On time-out it cancels f (a task gets a cancel request, a future is
 * cancelled), waits for it to finish, and returns ASYNC_ETIMEDOUT;
 * otherwise f's outcome.  Details, as asyncio's:
 * - timeout <= 0 times out at once unless f is already done;
 *   ASYNC_NO_TIMEOUT waits as async_future_await does;
 * - if f finished in the same loop iteration the timeout fired, f's
 *   outcome wins;
 * - if f survives the cancel with a result, that result is returned (0);
 *   if cancelling makes f fail with another error, that error is returned
 *   instead of ASYNC_ETIMEDOUT;
 * - if the calling task is cancelled, f is cancelled and waited for, and
 *   the call returns ASYNC_ECANCELED (or f's other error).
 * Errors of async_future_await.
 */
ASYNC_API int async_wait_for(async_future *f, int64_t timeout, void **result);

/* ---- combinators -------------------------------------------------------- */

/* gather flag: wait for every child and report each outcome in errors[]
 * (asyncio's return_exceptions=True). */
#define ASYNC_GATHER_ALL 1u

/*
 * asyncio.gather: awaits n futures (use async_task_future for tasks).
 * results[i] (if results is not NULL) gets the result of futs[i], in
 * argument order.  errors (if not NULL) gets each child's outcome code (0,
 * its error, ASYNC_ECANCELED, or ASYNC_EPENDING for a child still running
 * when gather returned early).
 * Default: returns 0 when all succeeded, or the first error as soon as one
 * child fails (the others keep running; an error they end with later
 * counts as retrieved, as asyncio's gather retrieves every child's
 * exception, so no "never retrieved" report).  With ASYNC_GATHER_ALL it waits for
 * every child and returns 0; the errors are in errors[].  If the awaiting
 * task is cancelled, gather cancels every unfinished child, waits for them
 * and returns ASYNC_ECANCELED.  n == 0 returns 0 at once.  Also
 * ASYNC_EINVAL (NULL futs with n > 0, a NULL child), ASYNC_ENOTTASK.
 */
ASYNC_API int async_gather(async_future *const *futs, size_t n, unsigned flags,
                           void **results, int *errors);

/*
 * asyncio.wait(..., return_when=FIRST_COMPLETED) for one winner: waits until
 * one of the n futures is done and stores its index in *index; the others
 * are left running.  `timeout` as in async_wait_for (ASYNC_NO_TIMEOUT
 * waits for ever, <= 0 times out at once unless one is done); on time-out returns
 * ASYNC_ETIMEDOUT and leaves *index alone.  Also ASYNC_EINVAL,
 * ASYNC_ENOTTASK, ASYNC_ECANCELED.
 */
ASYNC_API int async_wait_any(async_future *const *futs, size_t n,
                             int64_t timeout, size_t *index);

/*
 * asyncio.run: creates a loop, runs main(arg) as a task until it finishes,
 * cancels every task still alive and runs the loop until they are done,
 * shuts the executor down, closes and frees the loop.
 * Ctrl-C, as asyncio.run: when called on the main thread with SIGINT at its
 * default disposition, the first SIGINT while main runs cancels main (its
 * cleanup code runs, and the leftover tasks are cancelled as usual); a
 * second SIGINT before main is done terminates the process as an unhandled
 * Ctrl-C does (asyncio raises KeyboardInterrupt in whatever runs), even if
 * a task never yields.  The default disposition is back as soon as main is
 * done.  A program with its own SIGINT handler (or SIG_IGN) keeps it, and
 * so does one that installs its own while main runs.  The handler costs
 * nothing until a SIGINT comes (no fd is watched for it).
 * Returns main's outcome (0 with *result, its error, or ASYNC_ECANCELED),
 * ASYNC_EINTR when main ended cancelled after a Ctrl-C (asyncio raises
 * KeyboardInterrupt; main that handled the cancel keeps its outcome),
 * ASYNC_EINVAL (NULL main), ASYNC_EOTHERLOOP (called from a running loop),
 * the loop's creation error, or a failed poll's error (see
 * async_loop_run_forever; the tasks left are then freed without being run
 * to their end).
 */
ASYNC_API int async_run(async_fn main, void *arg, void **result);

/* ---- awaiting tasks and futures alike ---------------------------------- */

/* Returns f itself: the async_future branch of async_as_future(). */
static inline async_future *async_future_self(async_future *f)
{
    return f;
}

/*
 * async_as_future(task_or_future): the future of a task, or the future.
 * async_await(task_or_future, &result): the await expression.
 * async_loop_run_until_complete(loop, task_or_future, &result):
 * loop.run_until_complete.
 * In C these are _Generic macros; in C++ (which has no _Generic) they are
 * overloaded inline functions with the same names and arguments.
 */
#ifndef __cplusplus
#define async_as_future(x)                                                    \
    _Generic((x), async_task *: async_task_future,                            \
             async_future *: async_future_self)(x)

#define async_await(x, result)                                                \
    _Generic((x), async_task *: async_task_await,                             \
             async_future *: async_future_await)((x), (result))

#define async_loop_run_until_complete(loop, x, result)                        \
    async_loop_run_future((loop), async_as_future(x), (result))
#endif

#ifdef __cplusplus
} /* extern "C": the overloads below are C++ functions */

inline async_future *async_as_future(async_task *t)
{
    return async_task_future(t);
}

inline async_future *async_as_future(async_future *f)
{
    return f;
}

inline int async_await(async_task *t, void **result)
{
    return async_task_await(t, result);
}

inline int async_await(async_future *f, void **result)
{
    return async_future_await(f, result);
}

inline int async_loop_run_until_complete(async_loop *loop, async_task *t,
                                         void **result)
{
    return async_loop_run_future(loop, async_task_future(t), result);
}

inline int async_loop_run_until_complete(async_loop *loop, async_future *f,
                                         void **result)
{
    return async_loop_run_future(loop, f, result);
}
#endif

#endif
