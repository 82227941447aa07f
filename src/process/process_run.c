/*
 * async_process_run: subprocess.run with capture_output, input and timeout.
 *
 * The child's stdin, stdout and stderr are served at the same time, so a
 * child that fills one pipe while we wait on another cannot deadlock us:
 * the calling task drains stdout, and one helper task each feeds stdin and
 * drains stderr.  All three honour the same deadline.  When anything fails
 * (time-out, cancellation, an I/O error) the helpers are cancelled and
 * awaited, and async_process_free kills and reaps the child.
 *
 * The pipe I/O is written here on the fd-readiness primitive rather than
 * with async_write(): writes must not raise SIGPIPE when the child stops
 * reading, and the library may not change the process's signal
 * disposition, so each write blocks SIGPIPE in this thread for its
 * duration and consumes the one it raised.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "process/process.h"

/* First read buffer; it doubles as output arrives. */
#define PUMP_INITIAL 4096

/* One stream being fed or drained. */
typedef struct pump {
    async_process *p;   /* the child */
    int which;          /* 0, 1 or 2 */
    uint64_t deadline;  /* loop time at which the run gives up */
    const char *in;     /* stdin: bytes to send */
    size_t in_len;      /* stdin: how many */
    char *buf;          /* stdout/stderr: what arrived (malloc'd) */
    size_t len;         /* bytes in buf */
    size_t cap;         /* size of buf */
} pump;

/* ---- SIGPIPE-free write ------------------------------------------------------ */

/* write(2) that turns a vanished reader into -EPIPE without a signal: the
 * SIGPIPE raised for this thread is blocked and then taken off the pending
 * set, unless one was already pending from elsewhere. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n;
    while ((n = write(fd, buf, len)) < 0 && errno == EINTR)
        ;
    ssize_t rc = n < 0 ? -errno : n;
    if (rc == -EPIPE && !was_pending) {
        int sig;
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE))
            (void)sigwait(&pipe_set, &sig);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* ---- pumps ---------------------------------------------------------------------- */

static int pump_wait(pump *pp, unsigned ev)
{
    async_loop *loop = async__task_current()->fut.loop;
    return async__loop_fd_wait(loop, async_process_fd(pp->p, pp->which), ev,
                               pp->deadline);
}

/* Feeds the input, then closes stdin so the child sees end-of-file.  A
 * child that closed its stdin early just misses the rest (-EPIPE is not an
 * error, as in asyncio's communicate). */
static int pump_in(pump *pp)
{
    int rc = 0;
    size_t off = 0;
    while (off < pp->in_len) {
        ssize_t n = write_nosigpipe(async_process_fd(pp->p, 0),
                                    pp->in + off, pp->in_len - off);
        if (n == -EPIPE)
            break;
        if (n == -EAGAIN || n == -EWOULDBLOCK)
            rc = pump_wait(pp, ASYNC__EV_WRITE);
        else if (n < 0)
            rc = (int)n;
        else
            off += (size_t)n;
        if (rc)
            return rc;
    }
    return async_process_close_fd(pp->p, 0);
}

static int pump_grow(pump *pp)
{
    if (pp->cap - pp->len > 1)
        return 0;
    size_t cap = pp->cap ? pp->cap * 2 : PUMP_INITIAL;
    char *b = realloc(pp->buf, cap);
    if (!b)
        return ASYNC_ENOMEM;
    pp->buf = b;
    pp->cap = cap;
    return 0;
}

/* Reads until end-of-file; buf stays NUL-terminated. */
static int pump_out(pump *pp)
{
    int fd = async_process_fd(pp->p, pp->which);
    for (;;) {
        int rc = pump_grow(pp);
        if (rc)
            return rc;
        ssize_t n = read(fd, pp->buf + pp->len, pp->cap - pp->len - 1);
        if (n > 0)
            pp->len += (size_t)n;
        pp->buf[pp->len] = '\0';
        if (n == 0)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        if (n < 0 && (rc = pump_wait(pp, ASYNC__EV_READ)))
            return rc;
    }
}

static int pump_task(void *arg, void **result)
{
    (void)result;
    pump *pp = arg;
    return pp->which == 0 ? pump_in(pp) : pump_out(pp);
}

/* ---- the run ------------------------------------------------------------------------ */

/* Waits for the helpers; after a failure (ours or theirs) cancels the rest.
 * The final awaits are shielded so that even a cancelled run never returns
 * while a helper still uses the pipes. */
static int helpers_join(async_task **ts, size_t n, int rc)
{
    for (size_t i = 0; i < n && !rc; i++)
        rc = async_task_await(ts[i], NULL);
    if (rc)
        for (size_t i = 0; i < n; i++)
            (void)async_task_cancel(ts[i]);
    async_shield_enter();
    for (size_t i = 0; i < n; i++) {
        (void)async_task_await(ts[i], NULL);
        async_task_unref(ts[i]);
    }
    async_shield_leave();
    return rc;
}

static int helpers_start(pump *pumps, async_task **ts, size_t *n)
{
    *n = 0;
    for (int w = 0; w < 3; w += 2) {
        if (async_process_fd(pumps[w].p, w) < 0)
            continue;
        int rc = async_spawn(&ts[*n], pump_task, &pumps[w]);
        if (rc)
            return rc;
        (*n)++;
    }
    return 0;
}

/* The stdio modes a run uses, whatever opts asked for (see process.h). */
static async_process_opts run_opts(const async_process_opts *opts,
                                   const void *input)
{
    async_process_opts o = *opts;
    o.stdin_mode = input ? ASYNC_PROCESS_PIPE : ASYNC_PROCESS_DEVNULL;
    o.stdout_mode = ASYNC_PROCESS_PIPE;
    if (o.stderr_mode != ASYNC_PROCESS_STDOUT &&
        o.stderr_mode != ASYNC_PROCESS_DEVNULL)
        o.stderr_mode = ASYNC_PROCESS_PIPE;
    return o;
}

static int run_pipes(async_process *p, pump *pumps, async_process_result *res)
{
    async_task *ts[2];
    size_t n;
    int rc = helpers_start(pumps, ts, &n);
    if (!rc)
        rc = pump_out(&pumps[1]);
    rc = helpers_join(ts, n, rc);
    if (!rc)
        rc = async__process_wait_until(p, pumps[1].deadline, &res->status);
    return rc;
}

int async_process_run(const async_process_opts *opts, const void *input,
                      size_t input_len, int64_t timeout,
                      async_process_result *res)
{
    if (!res || !opts || (!input && input_len))
        return ASYNC_EINVAL;
    memset(res, 0, sizeof(*res));
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    async_process_opts o = run_opts(opts, input);
    o.loop = t->fut.loop;
    async_process *p;
    int rc = async_process_spawn(&o, &p);
    if (rc)
        return rc;
    uint64_t deadline = timeout < 0 ? ASYNC__FOREVER
                        : async__loop_now(o.loop) + (uint64_t)timeout;
    pump pumps[3];
    for (int i = 0; i < 3; i++)
        pumps[i] = (pump){.p = p, .which = i, .deadline = deadline};
    pumps[0].in = input;
    pumps[0].in_len = input_len;
    rc = run_pipes(p, pumps, res);
    async_process_free(p);
    if (rc) {
        free(pumps[1].buf);
        free(pumps[2].buf);
        memset(res, 0, sizeof(*res));
        return rc;
    }
    res->out = pumps[1].buf;
    res->out_len = pumps[1].len;
    res->err = pumps[2].buf;
    res->err_len = pumps[2].len;
    return 0;
}

void async_process_result_free(async_process_result *res)
{
    if (!res)
        return;
    free(res->out);
    free(res->err);
    memset(res, 0, sizeof(*res));
}
