/*
 * Signals, delivered to the loop instead of interrupting whatever runs:
 * tasks wait for them (async_signal_wait, or a watcher that keeps signals
 * arriving between two waits), and callbacks run on the loop for them
 * (asyncio's loop.add_signal_handler).
 *
 * How: while a loop watches a signal, the library installs a process-wide
 * handler for it that only records the signal and wakes the loop through a
 * pipe; the loop then hands the signal to its watchers and handlers.  When
 * the last watcher and handler of a signal go, the signal's previous
 * disposition (sigaction) is restored exactly.
 *
 * Rules:
 * - Signals are process-wide, so one loop at a time may watch a given
 *   signal; another loop asking for it gets ASYNC_EBUSY until the first
 *   one lets it go.  Different loops may watch different signals.
 * - Do not install your own sigaction for a signal a loop watches.
 * - A signal that arrives while watched is never lost (its handler may run
 *   on any thread that has it unblocked), but like the kernel, the library
 *   may merge several deliveries of one signal that arrive close together;
 *   count nothing on the number of deliveries.
 * - SIGKILL and SIGSTOP cannot be watched, nor the fault signals SIGSEGV,
 *   SIGBUS, SIGFPE and SIGILL (the library uses SIGSEGV to report stack
 *   overflows): ASYNC_EINVAL.
 * - Everything here is called on the loop's thread.
 */
#ifndef ASYNC_SIGNAL_H
#define ASYNC_SIGNAL_H

#include <stddef.h>
#include <stdint.h>

#include <async/error.h>
#include <async/loop.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct async_signal_watcher async_signal_watcher;

/*
 * Starts watching `n` signals (1 <= n <= 32; duplicates are fine) on `loop`
 * (NULL: the running loop).  From now on each delivery is queued in the
 * watcher until async_signal_watcher_wait takes it, so nothing is lost
 * between two waits.  Several watchers may watch the same signal on one
 * loop; each gets every delivery.  *out gets the watcher; free it with
 * async_signal_watcher_free.  Returns 0, ASYNC_EINVAL (NULL signals or
 * out, n out of range, a signal that cannot be watched), ASYNC_ENOLOOP,
 * ASYNC_ECLOSED, ASYNC_EBUSY (another loop watches one of the signals),
 * ASYNC_ENOMEM, or a negated errno (pipe or sigaction failure); on error
 * nothing changed.
 */
ASYNC_API int async_signal_watcher_new(async_loop *loop, const int *signals,
                                       size_t n, async_signal_watcher **out);

/*
 * Inside a task of the watcher's loop: takes one queued signal (the lowest
 * number first) or waits for one until loop time `deadline` (UINT64_MAX:
 * no deadline).  Stores it in *signo (if not NULL) and returns 0.  Returns
 * ASYNC_EINVAL (NULL w), ASYNC_ENOTTASK, ASYNC_EWRONGLOOP (a task of
 * another loop), ASYNC_ETIMEDOUT (deadline passed or deadline scope
 * expired), ASYNC_ECANCELED, or ASYNC_ECLOSED (the loop was closed).
 * Several tasks may wait on one watcher; each delivery wakes one of them.
 */
ASYNC_API int async_signal_watcher_wait(async_signal_watcher *w,
                                        uint64_t deadline, int *signo);

/*
 * Stops watching and frees w; signals still queued in it are dropped.
 * Tasks waiting on it get ASYNC_ECLOSED.  When no watcher or handler of a
 * signal is left on the loop, its previous disposition is restored.  Also
 * valid after the loop was closed (then it only frees).  NULL is ignored.
 */
ASYNC_API void async_signal_watcher_free(async_signal_watcher *w);

/*
 * One-shot wait, inside a task: watches the n signals on the running loop,
 * waits for one of them until `deadline` (UINT64_MAX: none), stores it in
 * *signo (if not NULL), stops watching.  A signal that arrives before the
 * call or after it returns is not seen (use a watcher for that).  Errors
 * of async_signal_watcher_new and async_signal_watcher_wait.
 */
ASYNC_API int async_signal_wait(const int *signals, size_t n,
                                uint64_t deadline, int *signo);

/*
 * A signal handler callback: runs on the loop thread, as an ordinary loop
 * callback, once per signal received.  A negative return goes to the
 * loop's exception handler.
 */
typedef int (*async_signal_fn)(int signo, void *arg);

/*
 * asyncio's loop.add_signal_handler: calls cb(signo, arg) on `loop` for
 * each delivery of signo, until removed or the loop is closed.  Replaces
 * the callback if signo already has one on this loop.  Returns 0,
 * ASYNC_EINVAL (NULL loop or cb, a signal that cannot be watched),
 * ASYNC_ECLOSED, ASYNC_EBUSY (another loop watches signo), ASYNC_ENOMEM or
 * a negated errno (pipe or sigaction failure); on error nothing changed.
 */
ASYNC_API int async_loop_add_signal_handler(async_loop *loop, int signo,
                                            async_signal_fn cb, void *arg);

/*
 * Removes signo's callback from loop (restoring the signal's previous
 * disposition if nothing else on the loop watches it).  Returns 0,
 * ASYNC_EINVAL (NULL loop, bad signo) or ASYNC_ENOENT (no callback set).
 */
ASYNC_API int async_loop_remove_signal_handler(async_loop *loop, int signo);

#ifdef __cplusplus
}
#endif

#endif
