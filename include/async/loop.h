/*
 * The event loop: asyncio's AbstractEventLoop in C.
 *
 * A loop belongs to the thread that runs it.  Everything here must be called
 * from that thread, except async_loop_call_soon_threadsafe(), which any
 * thread may call.  Times are nanoseconds on the monotonic clock
 * (async_loop_time()); delays are signed so that a negative one can be
 * rejected.
 *
 * Lifetime: async_loop_new() gives you the loop; async_loop_close() releases
 * everything it owns (it stays valid for is_closed()); async_loop_free()
 * closes it if needed and frees the handle itself.
 */
#ifndef ASYNC_LOOP_H
#define ASYNC_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <async/error.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Time units, for delays and deadlines in nanoseconds. */
#define ASYNC_NSEC INT64_C(1)
#define ASYNC_USEC INT64_C(1000)
#define ASYNC_MSEC INT64_C(1000000)
#define ASYNC_SEC INT64_C(1000000000)

typedef struct async_loop async_loop;
typedef struct async_handle async_handle;
typedef struct async_future async_future;
typedef struct async_task async_task;

/*
 * A loop callback (call_soon, call_later, readers, writers).  Return 0; a
 * negative return is an error that nobody else can see, so the loop hands
 * it to the exception handler ("callback failed") and carries on.
 */
typedef int (*async_callback)(void *arg);

/* ---- creating, running, stopping, closing ---------------------------- */

/*
 * Creates a loop.  Returns 0 and stores it in *out, ASYNC_EINVAL (out NULL),
 * ASYNC_ENOMEM, or a negated errno from the poll backend (e.g. -EMFILE); on
 * error *out is untouched and nothing is leaked.
 */
ASYNC_API int async_loop_new(async_loop **out);

/*
 * Runs the loop until async_loop_stop().  Returns 0 after a stop,
 * ASYNC_EINVAL (NULL loop), ASYNC_ECLOSED ("event loop is closed"),
 * ASYNC_ERUNNING (this loop is already running: nested run) or
 * ASYNC_EOTHERLOOP (another loop runs in this thread); after an error the
 * loop's state is unchanged.  A stop() requested before the call makes it
 * run exactly one iteration (I/O polled without blocking).  If polling the
 * backend fails (epoll_wait / kevent error other than EINTR), the failure
 * is passed to the exception handler and the negated errno returned (e.g.
 * -EINVAL, -ENOMEM); the loop stays usable, and a later run polls again.
 * asyncio lets the OSError of select() escape run_forever, likewise.
 */
ASYNC_API int async_loop_run_forever(async_loop *loop);

/*
 * Runs the loop until `future` is done, then returns the future's outcome:
 * 0 with its result in *result (if result is not NULL), its error, or
 * ASYNC_ECANCELED.  Also returns the errors of run_forever,
 * ASYNC_EWRONGLOOP (future of another loop), or ASYNC_ESTOPPED ("loop
 * stopped before the future completed") when async_loop_stop() ended the
 * run first.  The caller keeps its reference to the future.  Pass a task
 * through the async_loop_run_until_complete() macro in async/task.h.
 */
ASYNC_API int async_loop_run_future(async_loop *loop, async_future *future,
                                    void **result);

/*
 * Asks a running loop to stop: callbacks already scheduled for the current
 * iteration still run, then run_forever returns.  Before run_forever it
 * makes the next run do a single iteration.  Returns 0, ASYNC_EINVAL.
 */
ASYNC_API int async_loop_stop(async_loop *loop);

/* True while run_forever / run_until_complete is executing (false for NULL). */
ASYNC_API bool async_loop_is_running(const async_loop *loop);

/* True once async_loop_close() succeeded (true for NULL). */
ASYNC_API bool async_loop_is_closed(const async_loop *loop);

/*
 * Closes the loop: drops pending callbacks and timers (their handles become
 * cancelled), cancels and frees tasks that never finished, closes the poll
 * backend and its wakeup fd, shuts the executor down, and releases every
 * stack.  Returns 0, ASYNC_EINVAL (NULL) or ASYNC_ECLOSERUNNING ("cannot
 * close a running loop").  Closing a closed loop is a no-op returning 0.
 */
ASYNC_API int async_loop_close(async_loop *loop);

/*
 * Closes the loop (as above) and frees the handle.  Returns 0,
 * ASYNC_ECLOSERUNNING (nothing is freed), or 0 for NULL.  If the loop is
 * this thread's default loop the default is reset to NULL.
 */
ASYNC_API int async_loop_free(async_loop *loop);

/* The loop's clock: monotonic nanoseconds (0 for NULL). */
ASYNC_API uint64_t async_loop_time(const async_loop *loop);

/* ---- the running loop and the default loop ---------------------------- */

/* The loop running in this thread, or NULL outside any running loop
 * (asyncio.get_running_loop, without the exception). */
ASYNC_API async_loop *async_get_running_loop(void);

/*
 * asyncio.get_event_loop: the running loop, else this thread's default loop
 * (set with async_set_event_loop).  Returns 0, ASYNC_EINVAL (out NULL) or
 * ASYNC_ENOLOOP when there is neither; *out is set only on success.
 */
ASYNC_API int async_get_event_loop(async_loop **out);

/* Sets this thread's default loop (NULL clears it).  The caller keeps
 * ownership.  Returns 0, or ASYNC_ECLOSED for a closed loop. */
ASYNC_API int async_set_event_loop(async_loop *loop);

/* ---- callbacks and timers ---------------------------------------------- */

/*
 * Schedules cb(arg) to run once, in FIFO order with other call_soon
 * callbacks.  If `handle` is not NULL it receives a reference to a handle
 * that can cancel the call; release it with async_handle_unref().  Returns
 * 0, ASYNC_EINVAL (NULL loop or cb), ASYNC_ECLOSED or ASYNC_ENOMEM; on
 * error nothing is scheduled and *handle is untouched.
 */
ASYNC_API int async_loop_call_soon(async_loop *loop, async_callback cb,
                                   void *arg, async_handle **handle);

/*
 * Schedules cb(arg) after `delay` nanoseconds (call_later) or at loop time
 * `when` (call_at).  A timer never fires early; equal deadlines fire in the
 * order they were scheduled.  A negative delay (or a `when` already
 * past) runs the callback at the next iteration, as in asyncio.  Errors as
 * call_soon.
 */
ASYNC_API int async_loop_call_later(async_loop *loop, int64_t delay,
                                    async_callback cb, void *arg,
                                    async_handle **handle);
ASYNC_API int async_loop_call_at(async_loop *loop, uint64_t when,
                                 async_callback cb, void *arg,
                                 async_handle **handle);

/*
 * Schedules cb(arg) from any thread and wakes the loop if it is blocked
 * polling.  Called on the thread running the loop (from a callback or a
 * task), it keeps FIFO order with call_soon.  From other threads the
 * callbacks run in the order the calls were accepted, after what was
 * already ready when the loop takes them (at the start of an iteration);
 * the same holds for calls made on the loop's thread while it is not
 * running.  Returns 0, ASYNC_EINVAL, ASYNC_ECLOSED or ASYNC_ENOMEM; no
 * handle (asyncio returns one).  The loop must not be freed while other
 * threads may still call this.
 */
ASYNC_API int async_loop_call_soon_threadsafe(async_loop *loop,
                                              async_callback cb, void *arg);

/* Cancels a scheduled callback; a no-op once it ran or was cancelled.
 * Returns 0 or ASYNC_EINVAL (NULL). */
ASYNC_API int async_handle_cancel(async_handle *handle);

/* True once the handle was cancelled (by the user or by loop close). */
ASYNC_API bool async_handle_cancelled(const async_handle *handle);

/* The deadline of a call_later/call_at handle (0 for call_soon handles). */
ASYNC_API uint64_t async_handle_when(const async_handle *handle);

/* Releases the reference given by call_soon/call_later/call_at.  Releasing
 * does not cancel the call.  NULL is ignored. */
ASYNC_API void async_handle_unref(async_handle *handle);

/* ---- fd watchers (add_reader / add_writer) ---------------------------- */

/*
 * Calls cb(arg) each loop iteration in which fd is readable (reader) or
 * writable (writer), until removed.  The fd stays owned by the caller;
 * remove the watcher before closing the fd.  Returns 0, ASYNC_EINVAL (NULL
 * loop or cb), ASYNC_EBADF (fd < 0 or not open), ASYNC_EEXIST (a reader /
 * writer is already set on fd), ASYNC_EPERM (an fd that cannot be polled,
 * such as a regular file), ASYNC_ECLOSED or ASYNC_ENOMEM.
 */
ASYNC_API int async_loop_add_reader(async_loop *loop, int fd,
                                    async_callback cb, void *arg);
ASYNC_API int async_loop_add_writer(async_loop *loop, int fd,
                                    async_callback cb, void *arg);

/* Removes the reader / writer of fd.  Returns 0, ASYNC_EINVAL, or
 * ASYNC_ENOENT when none was set. */
ASYNC_API int async_loop_remove_reader(async_loop *loop, int fd);
ASYNC_API int async_loop_remove_writer(async_loop *loop, int fd);

/* ---- errors that would otherwise be lost ------------------------------ */

typedef struct async_exception_context {
    const char *message; /* what happened, e.g. "Task exception was never retrieved" */
    int error;           /* the error code involved */
    async_task *task;    /* the task concerned, or NULL */
    async_future *future;/* the future concerned, or NULL */
} async_exception_context;

typedef void (*async_exception_handler)(async_loop *loop,
                                        const async_exception_context *ctx,
                                        void *arg);

/* Installs the loop's exception handler (NULL restores the default, which
 * prints one line to stderr).  Returns 0 or ASYNC_EINVAL. */
ASYNC_API int async_loop_set_exception_handler(async_loop *loop,
                                               async_exception_handler fn,
                                               void *arg);

/* The default handler: one line on stderr with message, error and task name. */
ASYNC_API void async_loop_default_exception_handler(
    async_loop *loop, const async_exception_context *ctx);

/* Hands ctx to the loop's handler (or the default). */
ASYNC_API void async_loop_call_exception_handler(
    async_loop *loop, const async_exception_context *ctx);

#ifdef __cplusplus
}
#endif

#endif
