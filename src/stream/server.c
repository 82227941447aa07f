/*
 * start_server: one accept task per server, one task per connection
 * running the user's handler over a reader and a writer.
 *
 * Every accepted connection is owned by a server_conn from the moment it
 * is accepted, and the server_conn is released by the done callback of
 * the handler's task, which runs whether the body returned, failed, or
 * never ran at all (a task cancelled before its first step): so a
 * connection cannot leak, and wait_closed() counts exactly the live ones.
 *
 * Out of file descriptors (EMFILE/ENFILE): the server keeps one spare fd;
 * it closes it, accepts the pending connection, closes that at once and
 * reopens the spare, so the client gets a prompt close instead of hanging
 * and the listener (readable while a connection waits) does not wake the
 * loop for nothing; if even that fails the acceptor sleeps 10 ms.  The
 * server and its live connections carry on (examples/echo_server.c does
 * the same).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream/server.h"
#include "stream/stream_impl.h"

#define EMFILE_BACKOFF (10 * ASYNC_MSEC)
#define TLS_HANDSHAKE_DEFAULT (60 * ASYNC_SEC) /* asyncio's */

/* One live connection. */
struct server_conn {
    async_server *srv;    /* its server */
    async_reader *r;      /* the handler's reader */
    async_writer *w;      /* the handler's writer */
    async_task *task;     /* the handler's task (our reference) */
    bool tls_failed;      /* the TLS handshake failed: nothing to report */
    server_conn *prev;    /* in srv->conns */
    server_conn *next;    /* in srv->conns */
};

static bool server_idle(const async_server *srv)
{
    return srv->closing && srv->acceptor_done && srv->nconns == 0;
}

static void check_idle(async_server *srv)
{
    if (server_idle(srv) && srv->idle_ev)
        async_event_set(srv->idle_ev);
}

/* ---- connections ----------------------------------------------------------- */

static int conn_main(void *arg, void **result)
{
    (void)result;
    server_conn *c = arg;
    async_server *srv = c->srv;
    if (srv->opts.tls) {
        int64_t limit = srv->opts.tls_handshake_timeout > 0
                            ? srv->opts.tls_handshake_timeout
                            : TLS_HANDSHAKE_DEFAULT;
        uint64_t deadline = async_deadline_in(limit);
        int rc = async__stream_tls_server(async__stream_of_reader(c->r),
                                          srv->opts.tls, deadline);
        if (rc) {
            c->tls_failed = true;
            async_writer_abort(c->w);
            return rc;
        }
    }
    int rc = srv->handler(c->r, c->w, srv->arg);
    /* The connection is gone for wait_closed once what the handler wrote
     * has been sent and the socket closed (asyncio's wait_closed waits for
     * the transports), so the flush happens here, in the task the server
     * counts, not in a flush task nobody waits for: a program that
     * returns after wait_closed would cancel that one with its last
     * bytes.  A cancelled handler's task gets ECANCELED here at once and
     * conn_done closes the writer instead. */
    async_writer_close(c->w);
    async_writer_wait_closed(c->w, ASYNC_NO_DEADLINE);
    return rc;
}

static void report(async_server *srv, server_conn *c, int rc)
{
    async_exception_context ctx = {
        .message = "unhandled error in connection handler",
        .error = rc,
        .task = c->task,
    };
    async_loop_call_exception_handler(srv->loop, &ctx);
}

/* The handler's task is done (or was cancelled before it ran): report a
 * failure, close the connection, forget it. */
static void conn_done(async_future *f, void *arg)
{
    server_conn *c = arg;
    async_server *srv = c->srv;
    int rc = async_future_result(f, NULL);
    if (rc < 0 && rc != ASYNC_ECANCELED && !c->tls_failed)
        report(srv, c, rc);
    async_reader_free(c->r);
    async_writer_free(c->w); /* closes it, flushing what is queued */
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    if (srv->room)
        async_event_set(srv->room);
    check_idle(srv);
    async_task_unref(c->task);
    free(c);
}

static int conn_new(async_server *srv, int fd, server_conn **out)
{
    server_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return ASYNC_ENOMEM;
    async__transport t;
    int rc = async__fd_transport_new(fd, NULL, NULL, &t);
    if (rc == 0 && (rc = async__stream_new(t, &srv->opts.stream, &c->r,
                                           &c->w)) != 0)
        free(t.ctx); /* fd is still ours to close */
    if (rc) {
        free(c);
        return rc;
    }
    c->srv = srv;
    *out = c;
    return 0;
}

int async__server_conn_start(async_server *srv, int fd, async_task **task)
{
    server_conn *c;
    int rc = conn_new(srv, fd, &c);
    if (rc) {
        async_close(fd);
        return rc;
    }
    async_task_opts topts = {.stack_size = srv->opts.stack_size};
    rc = async_loop_spawn(srv->loop, &c->task, conn_main, c, &topts);
    if (rc == 0 && (rc = async_future_add_done_callback(
                        async_task_future(c->task), conn_done, c)) != 0) {
        async_task_cancel(c->task); /* never runs its body */
        async_task_unref(c->task);
    }
    if (rc) {
        async_writer_abort(c->w);
        async_reader_free(c->r);
        async_writer_free(c->w);
        free(c);
        return rc;
    }
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    if (task)
        *task = async_task_ref(c->task);
    return 0;
}

/* ---- accepting ------------------------------------------------------------------ */

/* The EMFILE strategy described at the top of the file. */
static int accept_overflow(async_server *srv)
{
    if (srv->spare >= 0) {
        close(srv->spare);
        srv->spare = -1;
        int fd = async_accept(srv->lfd, NULL, NULL);
        if (fd >= 0)
            async_close(fd);
        srv->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            return 0;
        if (fd == ASYNC_ECANCELED || fd == ASYNC_EBADF)
            return fd;
    }
    return async_sleep(EMFILE_BACKOFF);
}

static bool out_of_fds(int err)
{
    return err == ASYNC_EMFILE || err == ASYNC_ENFILE || err == ASYNC_ENOMEM ||
           err == -ENOBUFS;
}

/* Waits while the server is at its connection limit. */
static int wait_room(async_server *srv)
{
    while (!srv->closing && srv->opts.max_conns &&
           srv->nconns >= srv->opts.max_conns) {
        async_event_clear(srv->room);
        int rc = async_event_wait(srv->room);
        if (rc)
            return rc;
    }
    return 0;
}

static int acceptor_main(void *arg, void **result)
{
    (void)result;
    async_server *srv = arg;
    int rc = 0;
    while (!srv->closing && rc == 0) {
        if ((rc = wait_room(srv)) || srv->closing)
            break;
        int fd = async_accept(srv->lfd, NULL, NULL);
        if (out_of_fds(fd))
            rc = accept_overflow(srv);
        else if (fd < 0)
            rc = fd;
        else
            async__server_conn_start(srv, fd, NULL);
    }
    if (!srv->closing)
        srv->err = rc;
    return 0;
}

/* The accept task is done, also if it never ran. */
static void acceptor_done(async_future *f, void *arg)
{
    (void)f;
    async_server *srv = arg;
    srv->acceptor_done = true;
    if (!srv->closing) /* it stopped on its own (cancelled, or failed) */
        async_server_close(srv);
    check_idle(srv);
}

/* ---- the server ------------------------------------------------------------------- */

static int events_new(async_server *srv)
{
    int rc = async_event_new(&srv->room);
    if (rc == 0)
        rc = async_event_new(&srv->closed_ev);
    if (rc == 0)
        rc = async_event_new(&srv->idle_ev);
    return rc;
}

static void server_release(async_server *srv)
{
    if (srv->lfd >= 0)
        async_close(srv->lfd);
    if (srv->spare >= 0)
        close(srv->spare);
    async_event_free(srv->room);
    async_event_free(srv->closed_ev);
    async_event_free(srv->idle_ev);
    free(srv);
}

static int acceptor_start(async_server *srv)
{
    async_task *t;
    async_task_opts topts = {.name = "server-accept"};
    int rc = async_loop_spawn(srv->loop, &t, acceptor_main, srv, &topts);
    if (rc)
        return rc;
    rc = async_future_add_done_callback(async_task_future(t), acceptor_done,
                                        srv);
    if (rc)
        async_task_cancel(t); /* never runs its body */
    async_task_unref(t);
    return rc;
}

int async__server_start_fd(int lfd, async_conn_handler handler, void *arg,
                           const async_server_opts *opts, async_server **out)
{
    async_loop *loop = async_get_running_loop();
    async_server *srv = calloc(1, sizeof(*srv));
    if (!srv || !loop) {
        free(srv);
        async_close(lfd);
        return srv ? ASYNC_ENOLOOP : ASYNC_ENOMEM;
    }
    srv->loop = loop;
    srv->lfd = lfd;
    srv->handler = handler;
    srv->arg = arg;
    if (opts)
        srv->opts = *opts;
    srv->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int rc = events_new(srv);
    if (rc == 0)
        rc = async_sock_local_addr(lfd, &srv->addr);
    if (rc == 0)
        rc = acceptor_start(srv);
    if (rc) {
        server_release(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

static int check_opts(const async_server_opts *o)
{
    if (!o)
        return 0;
    size_t high = o->stream.high_water ? o->stream.high_water
                                       : ASYNC_STREAM_HIGH_WATER_DEFAULT;
    if (o->backlog < 0 || o->stream.low_water > high)
        return ASYNC_EINVAL;
    return 0;
}

int async_start_server(const char *addr, async_conn_handler handler,
                       void *arg, const async_server_opts *opts,
                       async_server **out)
{
    if (!addr || !handler || !out)
        return ASYNC_EINVAL;
    int rc = check_opts(opts);
    if (rc)
        return rc;
    if (!async_get_running_loop())
        return ASYNC_ENOLOOP;
    int backlog = opts && opts->backlog ? opts->backlog : -1;
    unsigned flags = opts && opts->reuse_port ? ASYNC_LISTEN_REUSEPORT : 0;
    int lfd = async_tcp_listen(addr, backlog, flags);
    if (lfd < 0)
        return lfd;
    return async__server_start_fd(lfd, handler, arg, opts, out);
}

int async_server_close(async_server *srv)
{
    if (!srv)
        return ASYNC_EINVAL;
    if (srv->closing)
        return 0;
    srv->closing = true;
    if (srv->lfd >= 0)
        async_close(srv->lfd); /* wakes the acceptor with ASYNC_EBADF */
    srv->lfd = -1;
    async_event_set(srv->room);
    async_event_set(srv->closed_ev);
    check_idle(srv);
    return 0;
}

static int for_each_client(async_server *srv, bool abort)
{
    if (!srv)
        return ASYNC_EINVAL;
    for (server_conn *c = srv->conns; c; c = c->next) {
        if (abort)
            async_writer_abort(c->w);
        else
            async_writer_close(c->w);
    }
    return 0;
}

int async_server_close_clients(async_server *srv)
{
    return for_each_client(srv, false);
}

int async_server_abort_clients(async_server *srv)
{
    return for_each_client(srv, true);
}

int async_server_wait_closed(async_server *srv, uint64_t deadline)
{
    if (!srv)
        return ASYNC_EINVAL;
    while (!server_idle(srv)) {
        async_event_clear(srv->idle_ev);
        int rc = async_event_wait_until(srv->idle_ev, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

int async_server_serve_forever(async_server *srv)
{
    if (!srv)
        return ASYNC_EINVAL;
    int rc = async_event_wait(srv->closed_ev);
    if (rc == ASYNC_ECANCELED) {
        /* asyncio: close the server and wait for it, then re-raise. */
        async_server_close(srv);
        async_shield_enter();
        async_server_wait_closed(srv, ASYNC_NO_DEADLINE);
        async_shield_leave();
        return rc;
    }
    return rc ? rc : srv->err;
}

bool async_server_is_serving(const async_server *srv)
{
    return srv && !srv->closing;
}

size_t async_server_connections(const async_server *srv)
{
    return srv ? srv->nconns : 0;
}

int async_server_addr(const async_server *srv, async_addr *out)
{
    if (!srv || !out)
        return ASYNC_EINVAL;
    *out = srv->addr;
    return 0;
}

int async_server_free(async_server *srv)
{
    if (!srv)
        return 0;
    if (!server_idle(srv))
        return ASYNC_EBUSY;
    server_release(srv);
    return 0;
}
