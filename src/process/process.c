/*
 * Child process handles: waiting for the exit without blocking the loop,
 * reaping, killing, and the rule that no zombie outlives its handle.
 *
 * The exit is turned into readiness of one descriptor, the "exit fd", that
 * tasks wait on with async__loop_fd_wait like any other fd:
 * - a pidfd (Linux 5.3+), which becomes readable when the child exits;
 * - elsewhere (or when pidfd_open says ENOSYS) the read end of a pipe whose
 *   write end a helper thread closes once waitid(WNOWAIT) saw the exit.
 * Either way the child is reaped only here, on the loop's thread, with
 * waitpid(pid, WNOHANG); until then it is at worst a zombie, so its pid
 * cannot be recycled and kill() never hits a stranger.  No SIGCHLD handler
 * is involved: it would be process-wide state shared with the user and the
 * signal service, and waitpid(-1) would steal other code's children.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/internal.h"
#include "process/process.h"

/* Whether pidfd_open works here: unknown until the first spawn tries. */
enum { PIDFD_UNKNOWN, PIDFD_YES, PIDFD_NO };
static atomic_int pidfd_state = PIDFD_UNKNOWN;
static atomic_bool force_thread;

/* The watcher thread's stack: it only calls waitid and close. */
#define WATCH_STACK (64 * 1024)

struct async_process {
    async_loop *loop;        /* owning loop; NULL once it closed */
    async__close_hook hook;  /* clears `loop` when the loop closes */
    pid_t pid;               /* the child */
    int fds[3];              /* parent's pipe ends for 0/1/2, or -1 */
    int exit_fd;             /* readable once the child has exited */
    bool threaded;           /* exit_fd is a pipe closed by `thread` */
    pthread_t thread;        /* the waitid(WNOWAIT) helper, if threaded */
    int thread_wfd;          /* the pipe end the helper closes */
    bool reaped;             /* waitpid collected the child */
    int status;              /* returncode once reaped, or -ECHILD */
};

void async__process_force_thread_watch(bool on)
{
    atomic_store(&force_thread, on);
}

bool async__process_uses_thread(const async_process *p)
{
    return p->threaded;
}

/* ---- exit watchers ---------------------------------------------------------- */

/* A pidfd for pid; -1 when the kernel has no pidfd_open (the caller then
 * falls back to the thread); or a negated errno. */
static int pidfd_open_checked(pid_t pid)
{
#ifdef SYS_pidfd_open
    if (atomic_load(&force_thread) || atomic_load(&pidfd_state) == PIDFD_NO)
        return -1;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        atomic_store(&pidfd_state, PIDFD_YES);
        return fd;
    }
    if (errno != ENOSYS && errno != EPERM)
        return -errno;
    atomic_store(&pidfd_state, PIDFD_NO);
#else
    (void)pid;
#endif
    return -1;
}

static void *watch_main(void *arg)
{
    async_process *p = arg;
    siginfo_t si;
    /* WNOWAIT: leave the zombie for the loop thread to reap, so the pid
     * stays ours while the handle may still kill() it. */
    while (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT) < 0 &&
           errno == EINTR)
        ;
    close(p->thread_wfd);
    return NULL;
}

/* The helper runs with every signal blocked, so process-directed signals
 * go to the program's own threads, never to it. */
static int watch_thread_start(async_process *p)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    p->exit_fd = fds[0];
    p->thread_wfd = fds[1];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    (void)pthread_attr_setstacksize(&attr, WATCH_STACK);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&p->thread, &attr, watch_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc) {
        close(fds[0]);
        close(fds[1]);
        p->exit_fd = -1;
        return -rc;
    }
    p->threaded = true;
    return 0;
}

static int watch_start(async_process *p)
{
    int fd = pidfd_open_checked(p->pid);
    if (fd >= 0) {
        p->exit_fd = fd;
        return 0;
    }
    return fd == -1 ? watch_thread_start(p) : fd;
}

/* ---- reaping ------------------------------------------------------------------ */

static int returncode(int wstatus)
{
    if (WIFSIGNALED(wstatus))
        return -WTERMSIG(wstatus);
    return WEXITSTATUS(wstatus);
}

/* One non-blocking attempt; returns 0 (reaped or not yet) or an error. */
static int try_reap(async_process *p)
{
    int ws;
    pid_t r;
    while ((r = waitpid(p->pid, &ws, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r == p->pid) {
        p->reaped = true;
        p->status = returncode(ws);
    } else if (r < 0) {
        /* Someone else reaped it: never touch that pid again. */
        p->reaped = true;
        p->status = -errno;
    }
    return p->reaped && p->status == -ECHILD ? -ECHILD : 0;
}

static void reap_blocking(async_process *p)
{
    int ws;
    pid_t r;
    while ((r = waitpid(p->pid, &ws, 0)) < 0 && errno == EINTR)
        ;
    p->reaped = true;
    p->status = r == p->pid ? returncode(ws) : -ECHILD;
}

static int wait_check(async_process *p)
{
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (!p->loop)
        return ASYNC_ECLOSED;
    if (t->fut.loop != p->loop)
        return ASYNC_EWRONGLOOP;
    return 0;
}

int async__process_wait_until(async_process *p, uint64_t deadline,
                              int *status)
{
    int rc = 0;
    if (!p->reaped)
        rc = wait_check(p);
    while (!rc && !p->reaped) {
        rc = try_reap(p);
        if (!rc && !p->reaped)
            rc = async__loop_fd_wait_on(p->loop, p->exit_fd, ASYNC__EV_READ,
                                        deadline, ASYNC_WAIT_PROCESS, p);
    }
    if (rc)
        return rc;
    if (p->status == -ECHILD)
        return -ECHILD;
    if (status)
        *status = p->status;
    return 0;
}

int async_process_wait(async_process *p, int64_t timeout, int *status)
{
    if (!p)
        return ASYNC_EINVAL;
    uint64_t deadline = ASYNC__FOREVER;
    if (timeout >= 0 && p->loop)
        deadline = async__loop_now(p->loop) + (uint64_t)timeout;
    return async__process_wait_until(p, deadline, status);
}

/* ---- the handle ---------------------------------------------------------------- */

static void loop_closing(async_loop *loop, async__close_hook *h)
{
    (void)loop;
    async_process *p = async__container_of(h, async_process, hook);
    p->loop = NULL;
}

static int spawn_check(const async_process_opts *o, async_process **out)
{
    if (!o || !out || !o->argv || !o->argv[0] || !o->argv[0][0])
        return ASYNC_EINVAL;
    if ((unsigned)o->stdin_mode > ASYNC_PROCESS_DEVNULL ||
        (unsigned)o->stdout_mode > ASYNC_PROCESS_DEVNULL ||
        (unsigned)o->stderr_mode > ASYNC_PROCESS_STDOUT)
        return ASYNC_EINVAL;
    async_loop *loop = o->loop ? o->loop : async_get_running_loop();
    if (!loop)
        return ASYNC_ENOLOOP;
    return async_loop_is_closed(loop) ? ASYNC_ECLOSED : 0;
}

/* Undoes a spawn whose watcher could not start. */
static void spawn_abort(async_process *p)
{
    kill(p->pid, SIGKILL);
    reap_blocking(p);
    for (int i = 0; i < 3; i++)
        if (p->fds[i] >= 0)
            close(p->fds[i]);
    free(p);
}

int async_process_spawn(const async_process_opts *opts, async_process **out)
{
    int rc = spawn_check(opts, out);
    if (rc)
        return rc;
    async_process *p = calloc(1, sizeof(*p));
    if (!p)
        return ASYNC_ENOMEM;
    p->loop = opts->loop ? opts->loop : async_get_running_loop();
    p->exit_fd = -1;
    p->thread_wfd = -1;
    rc = async__spawn(opts, &p->pid, p->fds);
    if (rc) {
        free(p);
        return rc;
    }
    rc = watch_start(p);
    if (rc) {
        spawn_abort(p);
        return rc;
    }
    p->hook.fn = loop_closing;
    async__loop_add_close_hook(p->loop, &p->hook);
    *out = p;
    return 0;
}

pid_t async_process_pid(const async_process *p)
{
    return p ? p->pid : -1;
}

int async_process_fd(const async_process *p, int which)
{
    if (!p || which < 0 || which > 2)
        return -1;
    return p->fds[which];
}

/* Forgets fd on the loop (waking its waiters with ASYNC_EBADF) before
 * closing it, so a recycled number never meets stale registrations. */
static void release_fd(async_process *p, int *fd)
{
    if (*fd < 0)
        return;
    if (p->loop)
        async__loop_fd_forget(p->loop, *fd, ASYNC_EBADF);
    close(*fd);
    *fd = -1;
}

int async_process_close_fd(async_process *p, int which)
{
    if (!p || which < 0 || which > 2)
        return ASYNC_EINVAL;
    if (p->fds[which] < 0)
        return ASYNC_EBADF;
    release_fd(p, &p->fds[which]);
    return 0;
}

int async_process_kill(async_process *p, int sig)
{
    if (!p || sig < 0 || sig >= NSIG)
        return ASYNC_EINVAL;
    if (p->reaped)
        return 0;
    return kill(p->pid, sig) < 0 ? -errno : 0;
}

bool async_process_done(const async_process *p)
{
    return p && p->reaped;
}

int async_process_status(const async_process *p, int *status)
{
    if (!p || !status)
        return ASYNC_EINVAL;
    if (!p->reaped)
        return ASYNC_EPENDING;
    if (p->status == -ECHILD)
        return -ECHILD;
    *status = p->status;
    return 0;
}

void async_process_free(async_process *p)
{
    if (!p)
        return;
    if (!p->reaped) {
        kill(p->pid, SIGKILL);
        reap_blocking(p);
    }
    if (p->threaded)
        pthread_join(p->thread, NULL);
    release_fd(p, &p->exit_fd);
    for (int i = 0; i < 3; i++)
        release_fd(p, &p->fds[i]);
    if (p->loop)
        async__loop_remove_close_hook(p->loop, &p->hook);
    free(p);
}
