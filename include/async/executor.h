/*
 * The executor: run blocking functions on a bounded pool of threads and get
 * a future (asyncio's loop.run_in_executor and asyncio.to_thread), plus
 * name resolution that never blocks the loop (async_getaddrinfo).
 *
 * Each loop has its own pool.  The pool object is created on first use
 * (async_loop_set_executor_threads or the first job); its threads start
 * lazily, one more whenever a job is queued and no idle thread can take it,
 * up to the pool's size.  Default size: min(32, online CPUs + 4), asyncio's
 * choice, since the work sent here is mostly blocking I/O rather than CPU.
 * Pool threads run with every signal blocked, so process signals are never
 * delivered to them (see async/signal.h).
 *
 * A job is an async_fn run on a pool thread: it must not call any libasync
 * function that needs a loop or a task (no await, no spawn); it returns 0
 * with an optional *result, or a negative error.  Its outcome completes the
 * job's future on the loop thread.
 *
 * Cancellation: cancelling the future of a job still queued removes the job
 * from the queue; it never runs and the future is cancelled at once.  A job
 * already running cannot be interrupted: async_future_cancel returns 0 but
 * the future stays pending until the job returns, then completes cancelled
 * and the outcome is discarded (use async_run_in_executor_ex to free a
 * result that would otherwise be lost).  So a task awaiting the future
 * (and async_to_thread) never resumes while the job still uses its
 * argument: the argument is borrowed, and freeing it after the call must
 * be safe.  asyncio departure: asyncio cancels the wrapping future at once
 * and the thread runs on; in C that turns "free the argument after the
 * call" into a use-after-free.
 *
 * Shutdown: async_loop_close (and so the end of async_run) cancels every
 * queued job, waits for running jobs to finish (their outcomes still
 * complete their futures), joins every pool thread and frees the pool.  A
 * job that never returns therefore blocks loop close.
 *
 * Everything here is called on the loop's thread.
 */
#ifndef ASYNC_EXECUTOR_H
#define ASYNC_EXECUTOR_H

#include <stddef.h>

#include <async/error.h>
#include <async/loop.h>
#include <async/task.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest pool size async_loop_set_executor_threads accepts. */
#define ASYNC_EXECUTOR_MAX_THREADS 1024u

/*
 * Sets the number of threads of loop's pool (NULL: the running loop).  Only
 * before the pool ran its first job.  Returns 0, ASYNC_EINVAL (n == 0 or n
 * > ASYNC_EXECUTOR_MAX_THREADS), ASYNC_ENOLOOP (NULL loop and none
 * running), ASYNC_ECLOSED, ASYNC_EBUSY (the pool already took a job: size
 * unchanged) or ASYNC_ENOMEM.
 */
ASYNC_API int async_loop_set_executor_threads(async_loop *loop, unsigned n);

/*
 * Called once, on the loop thread, when a job's outcome was not handed to
 * its future: the future was cancelled (or completed by someone else)
 * before the job finished, or the job was removed from the queue and never
 * ran.  rc and result are the job's outcome (rc == ASYNC_ECANCELED and
 * result == NULL for a job that never ran).  Lets the submitter free arg
 * and result, which would otherwise be lost.
 */
typedef void (*async_job_discard_fn)(void *arg, int rc, void *result);

/*
 * Queues fn(arg, &result) to run on a pool thread of `loop` (NULL: the
 * running loop) and gives a future for its outcome in *out (one reference;
 * release it with async_future_unref).  The future gets fn's result (fn
 * returned 0) or its error (fn returned < 0).  Cancelling the future
 * removes a job that has not started.  Returns 0, ASYNC_EINVAL (fn or out
 * NULL), ASYNC_ENOLOOP, ASYNC_ECLOSED, ASYNC_ENOMEM, or a negated errno
 * from pthread_create (e.g. -EAGAIN) when the pool has no thread and
 * cannot start one; on error nothing was queued and *out is untouched.
 * arg and the result stay owned by the caller; a result produced after the
 * future was cancelled is dropped without being freed.
 */
ASYNC_API int async_run_in_executor(async_loop *loop, async_fn fn, void *arg,
                                    async_future **out);

/*
 * As async_run_in_executor, plus `discard` (may be NULL): called as
 * described at async_job_discard_fn when the job's outcome is not
 * delivered, so arg and result can be freed.  When the outcome is
 * delivered (the future got it), the caller owns arg and result as usual.
 */
ASYNC_API int async_run_in_executor_ex(async_loop *loop, async_fn fn,
                                       void *arg, async_job_discard_fn discard,
                                       async_future **out);

/*
 * Fire and forget: queues fn(arg, &result) on a pool thread of `loop`
 * (NULL: the running loop) with no future to await.  When the job has
 * returned, dispose(arg, rc, result) (if not NULL) is called once on the
 * loop thread with its outcome, so it can free arg and result; a job still
 * queued when the loop closes never runs and dispose gets rc ==
 * ASYNC_ECANCELED and result == NULL.  (asyncio has no counterpart: a
 * discarded run_in_executor future lets Python's garbage collector free
 * arg and result.)  Returns 0, ASYNC_EINVAL (fn NULL), ASYNC_ENOLOOP,
 * ASYNC_ECLOSED, ASYNC_ENOMEM or a negated pthread_create errno; on error
 * nothing was queued and dispose is not called (arg stays the caller's).
 */
ASYNC_API int async_run_in_executor_detached(async_loop *loop, async_fn fn,
                                             void *arg,
                                             async_job_discard_fn dispose);

/*
 * asyncio.to_thread, inside a task: runs fn(arg, &r) on the running loop's
 * pool and waits for it.  Returns fn's outcome (0 with *result = r if
 * result is not NULL, or fn's error), the errors of async_run_in_executor,
 * ASYNC_ENOTTASK outside a task, ASYNC_ECANCELED if the task is cancelled
 * while waiting (a job not yet started is then removed and never runs; a
 * running one is waited for, its result dropped: the call never returns
 * before the job has finished with arg), or ASYNC_ETIMEDOUT when a
 * deadline scope expires (same handling).
 */
ASYNC_API int async_to_thread(async_fn fn, void *arg, void **result);

struct addrinfo;

/*
 * getaddrinfo(3) on the running loop's pool, inside a task: the loop keeps
 * running while the lookup blocks a pool thread.  host, service and hints
 * as for getaddrinfo (hints may be NULL; only its ai_flags, ai_family,
 * ai_socktype and ai_protocol are used); they are copied, so they need
 * only live for the call.  On success returns 0 and *res gets a list the
 * caller frees with freeaddrinfo().  Errors: ASYNC_EINVAL (res NULL, or
 * host and service both NULL), ASYNC_ENOTTASK, ASYNC_ENOMEM, the errors
 * of async_run_in_executor, ASYNC_ECANCELED / ASYNC_ETIMEDOUT (the task
 * was cancelled / a deadline scope expired: a lookup already started ends
 * on its thread and the library frees its result), or the lookup's failure:
 * ASYNC_EAI_NONAME, ASYNC_EAI_AGAIN, ASYNC_EAI_FAIL, ASYNC_EAI_FAMILY,
 * ASYNC_EAI_SERVICE, ASYNC_EAI_SOCKTYPE, ASYNC_EAI_BADFLAGS,
 * ASYNC_EAI_NODATA, ASYNC_ENOMEM (EAI_MEMORY), a negated errno
 * (EAI_SYSTEM) or ASYNC_EAI_OTHER.  *res is untouched on error.
 */
ASYNC_API int async_getaddrinfo(const char *host, const char *service,
                                const struct addrinfo *hints,
                                struct addrinfo **res);

#ifdef __cplusplus
}
#endif

#endif
