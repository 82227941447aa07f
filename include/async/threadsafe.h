/*
 * Futures across threads and loops: asyncio.run_coroutine_threadsafe,
 * concurrent.futures.Future and asyncio.wrap_future, in C.
 *
 * An async_tsfuture is a thread-safe future (concurrent.futures.Future):
 * any thread may complete, cancel, query or wait on it, and a task of any
 * loop may await it.  It is what run_coroutine_threadsafe returns, and a
 * plain hand-off slot between threads and loops (async_tsfuture_new).
 *
 * Loop futures (async_future) stay single-threaded: a task awaiting a
 * future of another loop gets ASYNC_EWRONGLOOP at once, without touching
 * that future (asyncio raises "attached to a different loop").  To await
 * across loops, hand a tsfuture over instead.
 *
 * Multi-core pattern: one loop per thread (each runs async_run or
 * run_forever); work goes to another loop with
 * async_run_coroutine_threadsafe and comes back through the tsfuture,
 * which the sending task awaits without blocking its own loop.  Unlike
 * asyncio, whose GIL makes threads useless for CPU-bound Python code (it
 * needs processes), these loops run truly in parallel: see
 * examples/multicore.c.  Data handed over is shared memory: the tsfuture's
 * completion orders the writes before it with the reads after it.
 *
 * Ownership: async_tsfuture_new and async_run_coroutine_threadsafe give one
 * reference; async_tsfuture_ref/unref are atomic and may be called from
 * any thread.  Results are plain pointers: who owns what they point to is
 * up to the program.  Unlike loop futures, an error nobody retrieved is not
 * reported (concurrent.futures does not log either).
 */
#ifndef ASYNC_THREADSAFE_H
#define ASYNC_THREADSAFE_H

#include <stdbool.h>
#include <stdint.h>

#include <async/error.h>
#include <async/loop.h>
#include <async/task.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct async_tsfuture async_tsfuture;

/* A pending thread-safe future.  Returns 0, ASYNC_EINVAL (NULL out) or
 * ASYNC_ENOMEM. */
ASYNC_API int async_tsfuture_new(async_tsfuture **out);

ASYNC_API async_tsfuture *async_tsfuture_ref(async_tsfuture *f);
/* Drops a reference (any thread); NULL is ignored. */
ASYNC_API void async_tsfuture_unref(async_tsfuture *f);

/*
 * Completes f from any thread: wakes plain threads blocked in
 * async_tsfuture_wait and tasks (of any loop) awaiting it.  Return 0,
 * ASYNC_EINVAL (NULL f, error >= 0) or ASYNC_EDONE (already done).
 */
ASYNC_API int async_tsfuture_set_result(async_tsfuture *f, void *result);
ASYNC_API int async_tsfuture_set_error(async_tsfuture *f, int error);

/*
 * Cancels f from any thread (concurrent.futures.Future.cancel): f is
 * cancelled at once and its waiters wake with ASYNC_ECANCELED.  For a
 * future of run_coroutine_threadsafe the task is also asked to cancel, on
 * its own loop (a request: it finishes in its own time, and its outcome is
 * then ignored), as asyncio does.  Returns 0, ASYNC_EINVAL, ASYNC_EDONE
 * (already done: nothing changes) or ASYNC_ENOMEM (nothing changes).
 */
ASYNC_API int async_tsfuture_cancel(async_tsfuture *f);

ASYNC_API bool async_tsfuture_done(async_tsfuture *f);
ASYNC_API bool async_tsfuture_cancelled(async_tsfuture *f);

/* The outcome of a done f: 0 with *result (if result is not NULL), its
 * error, ASYNC_ECANCELED, ASYNC_EPENDING (not done) or ASYNC_EINVAL. */
ASYNC_API int async_tsfuture_result(async_tsfuture *f, void **result);

/*
 * Blocks the calling thread until f is done or `timeout` ns pass (negative:
 * for ever), then returns the outcome as async_tsfuture_result
 * (concurrent.futures.Future.result(timeout)).  On time-out returns
 * ASYNC_ETIMEDOUT and f is left alone.  Also ASYNC_EINVAL, and
 * ASYNC_ERUNNING when called on a thread whose loop is running (it would
 * block that loop: await the future with async_tsfuture_await instead).
 */
ASYNC_API int async_tsfuture_wait(async_tsfuture *f, int64_t timeout,
                                  void **result);

/*
 * `await asyncio.wrap_future(f)` in a task of any loop: suspends the task
 * until f is done and returns its outcome.  If the awaiting task is
 * cancelled, returns ASYNC_ECANCELED and cancels f, as asyncio's chained
 * future does.  Also ASYNC_EINVAL, ASYNC_ENOTTASK, ASYNC_ENOMEM, and
 * ASYNC_ETIMEDOUT from a deadline scope (f is then left alone).
 */
ASYNC_API int async_tsfuture_await(async_tsfuture *f, void **result);

/*
 * asyncio.wrap_future(f, loop=loop): a loop future of `loop` completed
 * with f's outcome once f is done (through the loop's threadsafe queue).
 * Call it on the thread that runs `loop`.  *out gets a reference.
 * Difference from asyncio: cancelling the wrapper does not cancel f
 * (async_tsfuture_await does); cancel f with async_tsfuture_cancel.  A
 * wrapper still pending when its loop closes stays pending.  Returns 0,
 * ASYNC_EINVAL, ASYNC_ECLOSED or ASYNC_ENOMEM.
 */
ASYNC_API int async_tsfuture_wrap(async_tsfuture *f, async_loop *loop,
                                  async_future **out);

/*
 * asyncio.run_coroutine_threadsafe(fn(arg), loop): from any thread, spawns
 * a task of fn(arg) on `loop` (in the loop's next iteration) and gives a
 * tsfuture that completes with the task's outcome.  Cancelling the
 * tsfuture cancels the task on its loop.  If the loop closes before the
 * task finishes, the tsfuture completes with ASYNC_ECLOSED, so no waiter
 * hangs.  If the spawn fails on the loop, the tsfuture gets that error.
 * Returns 0, ASYNC_EINVAL (NULL loop, fn or out), ASYNC_ECLOSED or
 * ASYNC_ENOMEM; on error nothing was scheduled.  The loop must not be
 * freed while other threads may still call this (as call_soon_threadsafe).
 */
ASYNC_API int async_run_coroutine_threadsafe(async_loop *loop, async_fn fn,
                                             void *arg, async_tsfuture **out);

#ifdef __cplusplus
}
#endif

#endif
