/*
 * The stream object: creation over a transport, handles and their
 * release, transport replacement.  Reading is in reader.c, writing and
 * closing in writer.c.  See docs/design-stream.md.
 */
#include <stdlib.h>
#include <string.h>

#include "stream/stream.h"
#include "stream/stream_impl.h"

int async__stream_new(async__transport t, const async_stream_opts *opts,
                      async_reader **r, async_writer **w)
{
    if (!t.ops || (!r && !w))
        return ASYNC_EINVAL;
    async_stream_opts o = opts ? *opts : (async_stream_opts){0};
    size_t high = o.high_water ? o.high_water : ASYNC_STREAM_HIGH_WATER_DEFAULT;
    size_t low = o.low_water ? o.low_water : high / 4;
    if (low > high)
        return ASYNC_EINVAL;
    async_loop *loop = async_get_running_loop();
    if (!loop)
        return ASYNC_ENOLOOP;
    async__stream *s = calloc(1, sizeof(*s));
    if (!s)
        return ASYNC_ENOMEM;
    s->reader.s = s;
    s->writer.s = s;
    s->loop = loop;
    s->t = t;
    s->tstate = ASYNC__T_OPEN;
    s->limit = o.limit ? o.limit : ASYNC_STREAM_LIMIT_DEFAULT;
    s->high = high;
    s->low = low;
    s->has_writer = w != NULL;
    if (r) {
        s->refs++;
        *r = &s->reader;
    }
    if (w) {
        s->refs++;
        *w = &s->writer;
    }
    return 0;
}

int async_stream_open_fd(int fd, const async_stream_opts *opts,
                         async_reader **r, async_writer **w)
{
    if (fd < 0 || (!r && !w))
        return ASYNC_EINVAL;
    if (!async_get_running_loop())
        return ASYNC_ENOLOOP;
    int rc = async_set_nonblocking(fd);
    if (rc)
        return rc;
    async__transport t;
    if ((rc = async__fd_transport_new(fd, NULL, NULL, &t)))
        return rc;
    if ((rc = async__stream_new(t, opts, r, w))) {
        free(t.ctx); /* nothing was opened: just the context */
        return rc;
    }
    return 0;
}

/* Marks the transport closed and wakes wait_closed. */
void async__stream_closed(async__stream *s)
{
    s->tstate = ASYNC__T_CLOSED;
    if (s->closed_ev)
        async_event_set(s->closed_ev);
}

/* Closes the transport at once (abort) unless it is closed already. */
void async__stream_close_now(async__stream *s)
{
    if (s->tstate == ASYNC__T_CLOSED)
        return;
    s->t.ops->close(s->t.ctx, true);
    async__stream_closed(s);
}

void async__stream_unref(async__stream *s)
{
    if (--s->refs > 0)
        return;
    s->t.ops->free(s->t.ctx);
    async_event_free(s->resumed);
    async_event_free(s->closed_ev);
    async_event_free(s->idle_ev);
    free(s->rbuf);
    free(s->pbuf);
    free(s->fbuf);
    free(s);
}

void async_reader_free(async_reader *r)
{
    if (!r)
        return;
    async__stream *s = r->s;
    /* A stream without a writer (a pipe's read end) has no other way to
     * be closed. */
    if (!s->has_writer)
        async__stream_close_now(s);
    async__stream_unref(s);
}

int async__stream_replace_transport(async__stream *s, async__transport nt,
                                    async__transport *old, char **unread,
                                    size_t *unread_len)
{
    if (!s || !nt.ops || !old || !unread || !unread_len)
        return ASYNC_EINVAL;
    if (s->reading || s->flushing || async__writer_queued(s) ||
        s->closing || s->eof_req || s->tstate != ASYNC__T_OPEN)
        return ASYNC_EBUSY;
    size_t n = s->rend - s->rstart;
    char *copy = NULL;
    if (n) {
        if (!(copy = malloc(n)))
            return ASYNC_ENOMEM;
        memcpy(copy, s->rbuf + s->rstart, n);
    }
    s->rstart = s->rend = 0;
    *old = s->t;
    s->t = nt;
    *unread = copy;
    *unread_len = n;
    return 0;
}

int async__stream_tls_client(async__stream *s,
                             const struct async_tls_config *cfg,
                             const char *server_hostname, uint64_t deadline)
{
#if ASYNC_HAVE_TLS
    return async__tls_wrap_client(s, cfg, server_hostname, deadline);
#else
    (void)s, (void)cfg, (void)server_hostname, (void)deadline;
    return ASYNC_ENOTSUP;
#endif
}

int async__stream_tls_server(async__stream *s,
                             const struct async_tls_config *cfg,
                             uint64_t deadline)
{
#if ASYNC_HAVE_TLS
    return async__tls_wrap_server(s, cfg, deadline);
#else
    (void)s, (void)cfg, (void)deadline;
    return ASYNC_ENOTSUP;
#endif
}
