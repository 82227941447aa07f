/*
 * Waiting on many futures and tasks: asyncio.wait, asyncio.as_completed,
 * the task-array forms of gather / wait_any / wait_for, and gather of n
 * calls of one coroutine function.
 *
 * Every function here must run inside a task, on the loop that owns the
 * futures (a future of another loop is ASYNC_EWRONGLOOP, like asyncio's
 * "attached to a different loop"; to wait across loops use the thread-safe
 * futures of async/threadsafe.h).  Time-outs are nanoseconds, as
 * async_wait_for takes them: ASYNC_NO_TIMEOUT waits for ever (asyncio's
 * timeout=None) and a time-out <= 0 is already over (asyncio: a negative
 * delay means "now"), so the call returns after one iteration with what is
 * done by then.
 *
 * The _tasks variants take an array of async_task * and behave exactly as
 * their future forms on the tasks' futures: no conversion loop needed.
 */
#ifndef ASYNC_WAIT_H
#define ASYNC_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <async/error.h>
#include <async/loop.h>
#include <async/task.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* asyncio.wait's return_when. */
typedef enum async_return_when {
    ASYNC_FIRST_COMPLETED = 1, /* any future done (result, error, cancelled) */
    ASYNC_FIRST_EXCEPTION = 2, /* any future failed (an error, not a cancel),
                                * else all done */
    ASYNC_ALL_COMPLETED = 3,   /* every future done */
} async_return_when;

/*
 * asyncio.wait(fs, timeout, return_when): waits until `return_when` holds
 * or `timeout` ns pass (ASYNC_NO_TIMEOUT: never), then sets done[i] (if done
 * is not NULL) to whether futs[i] is done, and returns how many are.  On
 * time-out it returns normally (the count may be 0): nothing is cancelled
 * and no error is raised, as in asyncio; the caller reads the outcomes of
 * the done ones with async_future_result and may wait again for the rest.
 * Errors: ASYNC_EINVAL (n == 0 as in asyncio, NULL futs or a NULL entry,
 * a bad return_when, n > INT_MAX), ASYNC_ENOTTASK, ASYNC_EDEADLK (the task
 * waits on itself), ASYNC_EWRONGLOOP, ASYNC_ENOMEM, ASYNC_ECANCELED (the
 * waiting task was cancelled; the futures are left alone, done[] is not
 * written).  A future listed twice counts twice.
 */
ASYNC_API int async_wait(async_future *const *futs, size_t n, int64_t timeout,
                         async_return_when return_when, bool *done);
ASYNC_API int async_wait_tasks(async_task *const *tasks, size_t n,
                               int64_t timeout, async_return_when return_when,
                               bool *done);

/* async_gather, async_wait_any and async_wait_for (async/task.h) on tasks:
 * same behaviour, same errors. */
ASYNC_API int async_gather_tasks(async_task *const *tasks, size_t n,
                                 unsigned flags, void **results, int *errors);
ASYNC_API int async_wait_any_tasks(async_task *const *tasks, size_t n,
                                   int64_t timeout, size_t *index);
ASYNC_API int async_wait_for_task(async_task *task, int64_t timeout,
                                  void **result);

/*
 * asyncio.gather(fn(args[0]), ..., fn(args[n-1])) in one call: spawns n
 * tasks of fn on the running loop, gathers them with `flags` as
 * async_gather does (results[] and errors[] in argument order), and
 * releases them.  n == 0 returns 0.
 * Difference from asyncio: no child outlives the call.  asyncio's gather
 * leaves the other children running after the first failure; here they are
 * cancelled and waited for before the call returns (their errors[] slot
 * says ASYNC_ECANCELED, or their own outcome if they finished first),
 * because the caller cannot reach them afterwards and args[] may live on
 * the caller's stack.  If spawning task k fails, the k tasks already
 * spawned are cancelled and waited for, and the spawn error is returned.
 * Errors: those of async_gather and async_spawn (ASYNC_EINVAL for NULL fn,
 * or NULL args with n > 0).
 */
ASYNC_API int async_gather_calls(async_fn fn, void *const *args, size_t n,
                                 unsigned flags, void **results, int *errors);

/* ---- as_completed ------------------------------------------------------ */

typedef struct async_as_completed async_as_completed;

/*
 * asyncio.as_completed(fs, timeout): an iterator that hands back the
 * indices of futs[] in the order the futures complete.  The overall
 * deadline is `timeout` ns from now (ASYNC_NO_TIMEOUT: none).  It takes a
 * reference to every future until async_as_completed_free().  May be
 * called outside a task; all futures must belong to one loop.  n == 0 is
 * allowed (the iterator is empty at once, as in asyncio).  Returns 0,
 * ASYNC_EINVAL (NULL out, NULL futs with n > 0, a NULL entry),
 * ASYNC_EWRONGLOOP (futures of different loops), ASYNC_ECLOSED or
 * ASYNC_ENOMEM; on error *out is untouched.
 */
ASYNC_API int async_as_completed_new(async_as_completed **out,
                                     async_future *const *futs, size_t n,
                                     int64_t timeout);
ASYNC_API int async_as_completed_new_tasks(async_as_completed **out,
                                           async_task *const *tasks, size_t n,
                                           int64_t timeout);

/*
 * The next completed future: returns 1 and stores its index in *index
 * (then read it with async_future_result(futs[*index], ...)), or 0 once
 * every index has been handed out.  A suspension point: it parks the task
 * until a future completes, and even when one is ready it returns
 * ASYNC_ECANCELED if the task is being cancelled (the ready index is kept
 * for the next call).  Once the deadline has passed with futures still
 * pending it returns ASYNC_ETIMEDOUT, on this call and every later one
 * (asyncio raises TimeoutError from each remaining step); futures done
 * before that are still handed out first.  Nothing is cancelled by a
 * time-out.  Also ASYNC_EINVAL (NULL it or index), ASYNC_ENOTTASK,
 * ASYNC_EWRONGLOOP (a task of another loop), ASYNC_EBUSY (another task is
 * parked in this iterator).
 */
ASYNC_API int async_as_completed_next(async_as_completed *it, size_t *index);

/* Releases the iterator and its references; NULL is ignored.  Free it in a
 * task or callback of its loop, or after the loop closed. */
ASYNC_API void async_as_completed_free(async_as_completed *it);

#ifdef __cplusplus
}
#endif

#endif
