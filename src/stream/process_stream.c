/*
 * Subprocess pipes as streams (asyncio's Process.stdin / stdout / stderr)
 * and communicate() on an already-spawned process, built on them.
 *
 * The pipe ends stay owned by the process handle: a stream over one is an
 * fd transport whose close goes through async_process_close_fd, so the
 * handle never closes a number twice and the child sees end of file on
 * its stdin when the writer closes.
 */
#include <stdlib.h>
#include <string.h>

#include "stream/stream.h"

/* Closes the pipe end `which` through the handle. */
typedef struct pipe_end {
    async_process *p; /* the handle owning the fd */
    int which;        /* 0, 1 or 2 */
} pipe_end;

static void pipe_close(void *arg, int fd)
{
    (void)fd;
    pipe_end *pe = arg;
    async_process_close_fd(pe->p, pe->which);
    free(pe);
}

/* A stream over the handle's pipe `which`: a writer for stdin, a reader
 * for stdout and stderr. */
static int pipe_stream(async_process *p, int which, async_reader **r,
                       async_writer **w)
{
    int fd = async_process_fd(p, which);
    if (fd < 0)
        return ASYNC_EBADF;
    pipe_end *pe = malloc(sizeof(*pe));
    if (!pe)
        return ASYNC_ENOMEM;
    pe->p = p;
    pe->which = which;
    async__transport t;
    int rc = async__fd_transport_new(fd, pipe_close, pe, &t);
    if (rc) {
        free(pe);
        return rc;
    }
    rc = async__stream_new(t, NULL, r, w);
    if (rc) {
        free(t.ctx); /* nothing closed: the handle keeps its fd */
        free(pe);
    }
    return rc;
}

int async_process_streams(async_process *p, async_writer **in,
                          async_reader **out, async_reader **err)
{
    if (!p || (!in && !out && !err))
        return ASYNC_EINVAL;
    if ((in && async_process_fd(p, ASYNC_PROCESS_STDIN_FD) < 0) ||
        (out && async_process_fd(p, ASYNC_PROCESS_STDOUT_FD) < 0) ||
        (err && async_process_fd(p, ASYNC_PROCESS_STDERR_FD) < 0))
        return ASYNC_EBADF;
    async_writer *w = NULL;
    async_reader *r1 = NULL, *r2 = NULL;
    int rc = 0;
    if (in)
        rc = pipe_stream(p, ASYNC_PROCESS_STDIN_FD, NULL, &w);
    if (rc == 0 && out)
        rc = pipe_stream(p, ASYNC_PROCESS_STDOUT_FD, &r1, NULL);
    if (rc == 0 && err)
        rc = pipe_stream(p, ASYNC_PROCESS_STDERR_FD, &r2, NULL);
    if (rc) {
        /* Out of memory: what was wrapped is released (closing those
         * pipes, as the header says). */
        async_writer_free(w);
        async_reader_free(r1);
        async_reader_free(r2);
        return rc;
    }
    if (in)
        *in = w;
    if (out)
        *out = r1;
    if (err)
        *err = r2;
    return 0;
}

/* ---- communicate ------------------------------------------------------------ */

/* One pipe being drained into memory. */
typedef struct sink {
    async_reader *r; /* the pipe's reader */
    char *buf;       /* what arrived (malloc'd by read_all) */
    size_t len;      /* its length */
    int rc;          /* read_all's outcome */
} sink;

static int sink_main(void *arg, void **result)
{
    (void)result;
    sink *s = arg;
    s->rc = async_reader_read_all(s->r, &s->buf, &s->len, ASYNC_NO_DEADLINE);
    return 0;
}

/* Queues stdin's bytes and closes it; the flush task sends them while
 * stdout and stderr are read, so a child that writes before it has read
 * all its input cannot deadlock us. */
static void feed_start(async_writer *w, const void *input, size_t len)
{
    if (len)
        async_writer_write(w, input, len);
    async_writer_close(w);
}

/* A child that stopped reading is not an error (asyncio ignores
 * BrokenPipeError and ConnectionResetError here). */
static int feed_end(async_writer *w)
{
    int rc = async_writer_wait_closed(w, ASYNC_NO_DEADLINE);
    return rc == ASYNC_EPIPE || rc == ASYNC_ECONNRESET ? 0 : rc;
}

typedef struct comm {
    async_process *p;     /* the child */
    const void *input;    /* bytes for stdin */
    size_t input_len;     /* their count */
    async_writer *in;     /* stdin, or NULL */
    sink out;             /* stdout (r NULL: not a pipe) */
    sink err;             /* stderr (r NULL: not a pipe) */
    int status;           /* exit status */
} comm;

/* The body under the deadline scope: stderr in a helper task, stdin and
 * stdout here, then the exit. */
static int communicate(comm *c)
{
    async_task *t = NULL;
    int rc = 0;
    if (c->err.r && (rc = async_spawn(&t, sink_main, &c->err)))
        return rc;
    if (c->in)
        feed_start(c->in, c->input, c->input_len);
    if (c->out.r) {
        sink_main(&c->out, NULL);
        rc = c->out.rc;
    }
    if (t) {
        if (rc)
            async_task_cancel(t);
        async_shield_enter(); /* the helper must finish before we return */
        async_task_await(t, NULL);
        async_shield_leave();
        async_task_unref(t);
        if (rc == 0)
            rc = c->err.rc;
    }
    if (rc == 0 && c->in)
        rc = feed_end(c->in);
    if (rc == 0)
        rc = async_process_wait(c->p, -1, &c->status);
    return rc;
}

int async_process_communicate(async_process *p, const void *input,
                              size_t input_len, int64_t timeout,
                              async_process_result *res)
{
    if (res)
        memset(res, 0, sizeof(*res));
    if (!p || !res || (!input && input_len > 0))
        return ASYNC_EINVAL;
    if (input_len > 0 && async_process_fd(p, ASYNC_PROCESS_STDIN_FD) < 0)
        return ASYNC_EINVAL;
    if (!async_current_task())
        return ASYNC_ENOTTASK;
    comm c = {.p = p, .input = input, .input_len = input_len};
    bool in = async_process_fd(p, ASYNC_PROCESS_STDIN_FD) >= 0;
    bool out = async_process_fd(p, ASYNC_PROCESS_STDOUT_FD) >= 0;
    bool err = async_process_fd(p, ASYNC_PROCESS_STDERR_FD) >= 0;
    int rc = 0;
    if (in || out || err)
        rc = async_process_streams(p, in ? &c.in : NULL, out ? &c.out.r : NULL,
                                   err ? &c.err.r : NULL);
    bool scoped = rc == 0 && timeout >= 0;
    if (scoped)
        rc = async_deadline_push(async_deadline_in(timeout));
    if (rc == 0)
        rc = communicate(&c);
    if (scoped)
        async_deadline_pop();
    async_writer_free(c.in);
    async_reader_free(c.out.r);
    async_reader_free(c.err.r);
    if (rc) {
        free(c.out.buf);
        free(c.err.buf);
        return rc;
    }
    res->out = c.out.buf;
    res->out_len = c.out.len;
    res->err = c.err.buf;
    res->err_len = c.err.len;
    res->status = c.status;
    return 0;
}
