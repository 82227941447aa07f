/*
 * async_run: asyncio.run (asyncio's runners.py), on top of the loop, the
 * tasks and the signal service.
 *
 * Ctrl-C follows asyncio.Runner: while main runs, and only when async_run
 * is called on the process's main thread with SIGINT at its default
 * disposition (a program that set its own handler, or ignores SIGINT, keeps
 * it), the first SIGINT cancels the main task instead of killing the
 * process, so its cancellation and cleanup code runs; a second SIGINT while
 * main is still running terminates the process as an unhandled Ctrl-C
 * does.  The handler is a loop signal handler (async/signal.h), so the
 * previous disposition is restored exactly when main is done, before the
 * leftover tasks are cancelled (asyncio restores it at the same point).
 */
#include <signal.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#elif defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
#include <pthread_np.h>
#endif

#include "core/internal.h"

typedef struct runner {
    async_loop *loop;
    async_task *main;     /* the task running main_fn */
    unsigned interrupts;  /* SIGINTs received while main ran */
} runner;

static bool on_main_thread(void)
{
#if defined(__linux__)
    return syscall(SYS_gettid) == getpid();
#else
    return pthread_main_np() == 1;
#endif
}

static int on_sigint(int signo, void *arg)
{
    runner *r = arg;
    if (++r->interrupts == 1 && !async_future_done(async_task_future(r->main))) {
        async_task_cancel(r->main);
        return 0;
    }
    /* The second one: Ctrl-C as if we had never been here.  Removing the
     * handler restores the default disposition; the re-raised signal then
     * terminates the process. */
    async_loop_remove_signal_handler(r->loop, signo);
    raise(signo);
    return 0;
}

/* Takes over SIGINT for main's run when asyncio would; returns whether it
 * did. */
static bool sigint_take(runner *r)
{
    struct sigaction cur;
    if (!on_main_thread() || sigaction(SIGINT, NULL, &cur) != 0 ||
        (cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL)
        return false;
    return async_loop_add_signal_handler(r->loop, SIGINT, on_sigint, r) == 0;
}

int async_run(async_fn main_fn, void *arg, void **result)
{
    if (!main_fn)
        return ASYNC_EINVAL;
    if (async_get_running_loop())
        return ASYNC_EOTHERLOOP;
    runner r = {0};
    int rc = async_loop_new(&r.loop);
    if (rc)
        return rc;
    async_task_opts opts = {.name = "main"};
    rc = async_loop_spawn(r.loop, &r.main, main_fn, arg, &opts);
    if (rc == 0) {
        bool sigint = sigint_take(&r);
        rc = async_loop_run_future(r.loop, async_task_future(r.main), result);
        if (sigint)
            async_loop_remove_signal_handler(r.loop, SIGINT);
        /* asyncio raises KeyboardInterrupt when main ended cancelled after
         * a Ctrl-C; main that handled the cancel and returned keeps its
         * outcome. */
        if (rc == ASYNC_ECANCELED && r.interrupts > 0)
            rc = ASYNC_EINTR;
        async__loop_drain_tasks(r.loop);
        async_task_unref(r.main);
    }
    async_loop_free(r.loop);
    return rc;
}
