/*
 * async_run: asyncio.run (asyncio's runners.py), on top of the loop and
 * the tasks.
 *
 * Ctrl-C follows asyncio.Runner: while main runs, and only when async_run
 * is called on the process's main thread with SIGINT at its default
 * disposition (a program that set its own handler, or ignores SIGINT, keeps
 * it), the first SIGINT cancels the main task instead of killing the
 * process, so its cancellation and cleanup code runs; a second SIGINT while
 * main is still running terminates the process as an unhandled Ctrl-C
 * does.  The default disposition is back as soon as main is done, before
 * the leftover tasks are cancelled (asyncio restores it at the same point).
 *
 * The handler is a plain sigaction handler, not a loop signal handler
 * (async/signal.h): that one watches a pipe, and a loop with any fd watched
 * polls on every iteration and gives up its direct task switch, which made
 * a yield 50 times slower.  This one only raises a flag the iteration
 * checks anyway (async__loop_interrupt); the loop then cancels main
 * between two callbacks.  The second SIGINT is handled in the handler
 * itself, so it ends the process even when a task never yields.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#elif defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
#include <pthread_np.h>
#else
#include <pthread.h>
#endif

#include "core/internal.h"

/* The run that owns SIGINT (at most one: only the main thread's async_run
 * takes it, and async_run does not nest). */
static async_loop *_Atomic sigint_loop;  /* NULL: act as SIG_DFL */
static atomic_uint sigint_count;         /* SIGINTs while main ran */
static atomic_int sigint_active;         /* handlers running right now */

static bool on_main_thread(void)
{
#if defined(__linux__)
    return syscall(SYS_gettid) == getpid();
#else
    return pthread_main_np() == 1;
#endif
}

/* Back to the default disposition. */
static void sigint_default(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

static void on_sigint(int signo)
{
    int saved = errno;
    atomic_fetch_add(&sigint_active, 1);
    async_loop *loop = atomic_load(&sigint_loop);
    if (loop && atomic_fetch_add(&sigint_count, 1) == 0) {
        async__loop_interrupt(loop);
    } else {
        /* The second one (or one that came after the run let go): Ctrl-C
         * as if we had never been here.  SIGINT is blocked while this
         * handler runs, so the raised one is delivered, with the default
         * action, as soon as it returns. */
        sigint_default();
        raise(signo);
    }
    atomic_fetch_sub(&sigint_active, 1);
    errno = saved;
}

/* On the loop, between callbacks, after the first SIGINT. */
static void on_interrupt(async_loop *loop, void *arg)
{
    (void)loop;
    async_task *main_task = arg;
    if (!async_future_done(async_task_future(main_task)))
        async_task_cancel(main_task);
}

static bool sigint_is_ours(void)
{
    struct sigaction cur;
    return sigaction(SIGINT, NULL, &cur) == 0 &&
           !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == on_sigint;
}

/* Takes over SIGINT for main's run when asyncio would; returns whether it
 * did. */
static bool sigint_take(async_loop *loop, async_task *main_task)
{
    struct sigaction cur;
    if (!on_main_thread() || sigaction(SIGINT, NULL, &cur) != 0 ||
        (cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL)
        return false;
    async__loop_set_interrupt(loop, on_interrupt, main_task);
    atomic_store(&sigint_count, 0);
    atomic_store(&sigint_loop, loop);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART; /* the rest of the program never sees EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0) {
        atomic_store(&sigint_loop, NULL);
        async__loop_set_interrupt(loop, NULL, NULL);
        return false;
    }
    return true;
}

/* Main is done: the default disposition again, unless the program put its
 * own handler in meanwhile (asyncio checks the same), and no handler still
 * holds the loop. */
static void sigint_release(async_loop *loop)
{
    if (sigint_is_ours())
        sigint_default();
    atomic_store(&sigint_loop, NULL);
    while (atomic_load(&sigint_active) > 0)
        sched_yield();
    async__loop_set_interrupt(loop, NULL, NULL);
}

int async_run(async_fn main_fn, void *arg, void **result)
{
    if (!main_fn)
        return ASYNC_EINVAL;
    if (async_get_running_loop())
        return ASYNC_EOTHERLOOP;
    async_loop *loop;
    int rc = async_loop_new(&loop);
    if (rc)
        return rc;
    async_task *main_task;
    async_task_opts opts = {.name = "main"};
    rc = async_loop_spawn(loop, &main_task, main_fn, arg, &opts);
    if (rc == 0) {
        bool sigint = sigint_take(loop, main_task);
        rc = async_loop_run_future(loop, async_task_future(main_task), result);
        bool interrupted = false;
        if (sigint) {
            interrupted = atomic_load(&sigint_count) > 0;
            sigint_release(loop);
        }
        /* asyncio raises KeyboardInterrupt when main ended cancelled after
         * a Ctrl-C; main that handled the cancel and returned keeps its
         * outcome. */
        if (rc == ASYNC_ECANCELED && interrupted)
            rc = ASYNC_EINTR;
        async__loop_drain_tasks(loop);
        async_task_unref(main_task);
    }
    async_loop_free(loop);
    /* A loop signal handler for SIGINT that main added and never removed
     * was removed when the loop closed, and put ours back: undo that. */
    if (sigint_is_ours())
        sigint_default();
    return rc;
}
