/*
 * TLS under streams: a transport (src/stream/transport.h) whose bytes are
 * a TLS session's plaintext, and whose ciphertext goes through the
 * stream's previous transport (the "lower" one, usually an fd).  The
 * stream layer installs it for open_connection / start_server with a TLS
 * option and for start_tls (async__tls_wrap_client / _server, declared in
 * src/stream/stream.h); the session engine is session.c.
 */
#include <stdlib.h>

#include "stream/stream.h"
#include "tls/tls_internal.h"

/* asyncio's ssl_shutdown_timeout: how long a graceful close may spend
 * sending close_notify. */
#define SHUTDOWN_TIMEOUT (30 * ASYNC_SEC)

typedef struct tls_transport {
    async_tls *tls;          /* the session; its io ctx is this struct */
    async__transport lower;  /* carries the ciphertext; owned */
    bool closed;             /* close() was called */
} tls_transport;

/* ---- the session's io: the lower transport ---------------------------------- */

static ssize_t lower_read(void *ctx, void *buf, size_t len, uint64_t deadline)
{
    tls_transport *tt = ctx;
    return tt->lower.ops->read(tt->lower.ctx, buf, len, deadline);
}

static ssize_t lower_write(void *ctx, const void *buf, size_t len,
                           uint64_t deadline)
{
    tls_transport *tt = ctx;
    return tt->lower.ops->write(tt->lower.ctx, buf, len, deadline);
}

static const async__tls_io lower_io = {lower_read, lower_write};

/* ---- the transport contract ------------------------------------------------- */

static ssize_t tt_read(void *ctx, void *buf, size_t n, uint64_t deadline)
{
    tls_transport *tt = ctx;
    if (tt->closed)
        return ASYNC_EBADF;
    return async_tls_read(tt->tls, buf, n, deadline);
}

/* Takes what the session accepted even when the flush after it failed:
 * those bytes are queued in the session and go out with the next write,
 * write_eof or close, as the contract asks. */
static ssize_t tt_write(void *ctx, const void *buf, size_t n, uint64_t deadline)
{
    tls_transport *tt = ctx;
    if (tt->closed)
        return ASYNC_EBADF;
    size_t done = 0;
    ssize_t rc = async_tls_write(tt->tls, buf, n, deadline, &done);
    return rc < 0 && done > 0 ? (ssize_t)done : rc;
}

/* TLS 1.3 half-close: close_notify, reading goes on. */
static int tt_shutdown_write(void *ctx, uint64_t deadline)
{
    tls_transport *tt = ctx;
    if (tt->closed)
        return ASYNC_EBADF;
    return async_tls_write_eof(tt->tls, deadline);
}

/* Graceful: close_notify (bounded), then the lower transport's own close.
 * The peer's close_notify is not awaited (Go's crypto/tls does the same;
 * asyncio waits up to ssl_shutdown_timeout). */
static void tt_close(void *ctx, bool abort)
{
    tls_transport *tt = ctx;
    if (!abort && !tt->closed)
        async_tls_write_eof(tt->tls, async_deadline_in(SHUTDOWN_TIMEOUT));
    tt->closed = true;
    tt->lower.ops->close(tt->lower.ctx, abort);
}

static void tt_free(void *ctx)
{
    tls_transport *tt = ctx;
    async_tls_free(tt->tls);
    tt->lower.ops->free(tt->lower.ctx);
    free(tt);
}

static int tt_local_addr(void *ctx, async_addr *out)
{
    tls_transport *tt = ctx;
    if (!tt->lower.ops->local_addr)
        return ASYNC_ENOTSUP;
    return tt->lower.ops->local_addr(tt->lower.ctx, out);
}

static int tt_peer_addr(void *ctx, async_addr *out)
{
    tls_transport *tt = ctx;
    if (!tt->lower.ops->peer_addr)
        return ASYNC_ENOTSUP;
    return tt->lower.ops->peer_addr(tt->lower.ctx, out);
}

static int tt_fd(void *ctx)
{
    tls_transport *tt = ctx;
    return tt->lower.ops->fd ? tt->lower.ops->fd(tt->lower.ctx) : -1;
}

static const async__transport_ops tls_ops = {
    .name = "tls",
    .read = tt_read,
    .write = tt_write,
    .try_write = NULL,
    .shutdown_write = tt_shutdown_write,
    .close = tt_close,
    .free = tt_free,
    .local_addr = tt_local_addr,
    .peer_addr = tt_peer_addr,
    .fd = tt_fd,
};

/* ---- installing it ----------------------------------------------------------- */

/* Makes the session, swaps it in as s's transport (the old one becomes
 * its lower layer, with the bytes the reader had buffered fed to it first)
 * and runs the handshake.  On a handshake failure the stream keeps the
 * dead TLS transport: every read and write returns the error, and the
 * caller aborts it. */
static int wrap(async__stream *s, const struct async_tls_config *ccfg,
                const char *server_name, uint64_t deadline)
{
    /* The stream layer keeps configs const; a session only takes a
     * reference (an atomic counter) and never changes the settings. */
    async_tls_config *cfg = (async_tls_config *)ccfg;
    if (!s || !cfg)
        return ASYNC_EINVAL;
    tls_transport *tt = calloc(1, sizeof(*tt));
    if (!tt)
        return ASYNC_ENOMEM;
    int rc = async__tls_new_io(&tt->tls, cfg, &lower_io, tt, server_name);
    if (rc < 0) {
        free(tt);
        return rc;
    }
    char *unread = NULL;
    size_t unread_len = 0;
    async__transport nt = {&tls_ops, tt};
    rc = async__stream_replace_transport(s, nt, &tt->lower, &unread,
                                         &unread_len);
    if (rc < 0) {
        async_tls_free(tt->tls);
        free(tt);
        return rc;
    }
    /* Records are written whole and answered at once: Nagle's algorithm
     * would hold a record's tail back until the peer's (delayed) ACK.
     * asyncio and Go set TCP_NODELAY on every TCP connection; this does it
     * for the TLS ones (an error just means it is not TCP). */
    int fd = tt_fd(tt);
    if (fd >= 0)
        async_tcp_nodelay(fd, 1);
    rc = async__tls_feed(tt->tls, unread, unread_len);
    free(unread);
    if (rc < 0)
        return async__tls_fail(tt->tls, rc, "start_tls: more than 40 KiB "
                                            "buffered before the handshake");
    return async_tls_handshake(tt->tls, deadline);
}

int async__tls_wrap_client(async__stream *s, const struct async_tls_config *cfg,
                           const char *server_hostname, uint64_t deadline)
{
    if (cfg && cfg->role != ASYNC_TLS_CLIENT)
        return async__tls_fail(NULL, ASYNC_EINVAL,
                               "a client connection needs a client config");
    return wrap(s, cfg, server_hostname, deadline);
}

int async__tls_wrap_server(async__stream *s, const struct async_tls_config *cfg,
                           uint64_t deadline)
{
    if (cfg && cfg->role != ASYNC_TLS_SERVER)
        return async__tls_fail(NULL, ASYNC_EINVAL,
                               "a server needs a server config");
    return wrap(s, cfg, NULL, deadline);
}

/* ---- public: start_tls and the session of a stream ------------------------- */

int async_writer_start_tls(async_writer *w, async_tls_config *cfg,
                           const char *server_hostname, uint64_t deadline)
{
    if (!w || !cfg)
        return ASYNC_EINVAL;
    async__stream *s = async__stream_of_writer(w);
    if (cfg->role == ASYNC_TLS_SERVER)
        return async__tls_wrap_server(s, cfg, deadline);
    return async__tls_wrap_client(s, cfg, server_hostname, deadline);
}

async_tls *async_writer_tls(async_writer *w)
{
    if (!w)
        return NULL;
    async__stream *s = async__stream_of_writer(w);
    if (s->t.ops != &tls_ops)
        return NULL;
    return ((tls_transport *)s->t.ctx)->tls;
}
