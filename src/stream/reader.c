/*
 * StreamReader: a buffer filled from the transport on demand.
 *
 * Nothing reads ahead: the transport is read only while a call needs more
 * bytes, so the buffer never holds more than the largest request (the
 * limit for readline/readuntil, n for readexactly, everything for
 * read_all) plus one transport read.  A call that fails or is cancelled
 * leaves every byte it pulled in the buffer for the next call.
 */
#include <stdlib.h>
#include <string.h>

#include "stream/stream.h"
#include "stream/stream_impl.h"

/* First buffer size, and the least free room a fill asks the transport
 * to fill. */
#define RBUF_INITIAL 16384
#define RBUF_MIN_ROOM 4096

/* Errors that end nothing: the next call may succeed. */
static bool transient(int err)
{
    return err == ASYNC_ECANCELED || err == ASYNC_ETIMEDOUT ||
           err == ASYNC_ENOTTASK || err == ASYNC_ENOMEM ||
           err == ASYNC_EBUSY;
}

/* Every read call starts here: one reader at a time, and the previous
 * call's data pointer is no longer promised, so the buffer may move. */
static int reader_enter(async_reader *r, async__stream **out)
{
    if (!r)
        return ASYNC_EINVAL;
    async__stream *s = r->s;
    if (s->reading)
        return ASYNC_EBUSY;
    if (s->rstart == s->rend)
        s->rstart = s->rend = 0;
    s->reading = true;
    *out = s;
    return 0;
}

static int reader_leave(async__stream *s, int rc)
{
    s->reading = false;
    return rc;
}

static size_t buffered(const async__stream *s)
{
    return s->rend - s->rstart;
}

/* Makes room for at least RBUF_MIN_ROOM more bytes, moving the buffered
 * bytes to the front or growing the buffer. */
static int make_room(async__stream *s)
{
    if (s->rcap - s->rend >= RBUF_MIN_ROOM)
        return 0;
    size_t n = buffered(s);
    if (s->rstart > 0 && s->rcap - n >= RBUF_MIN_ROOM) {
        memmove(s->rbuf, s->rbuf + s->rstart, n);
        s->rstart = 0;
        s->rend = n;
        return 0;
    }
    size_t cap = s->rcap ? s->rcap * 2 : RBUF_INITIAL;
    while (cap - n < RBUF_MIN_ROOM)
        cap *= 2;
    char *nb = malloc(cap);
    if (!nb)
        return ASYNC_ENOMEM;
    if (n)
        memcpy(nb, s->rbuf + s->rstart, n);
    free(s->rbuf);
    s->rbuf = nb;
    s->rcap = cap;
    s->rstart = 0;
    s->rend = n;
    return 0;
}

/* What a transport read's outcome means for the stream: > 0 bytes, 0 end
 * of file (also a read on a transport we closed), < 0 an error, kept if
 * it ends the stream. */
static ssize_t read_outcome(async__stream *s, ssize_t n)
{
    if (n > 0)
        return n;
    if (n == 0 || s->tstate != ASYNC__T_OPEN) {
        s->eof = true;
        return 0;
    }
    if (!transient((int)n))
        s->rerr = (int)n;
    return n;
}

/* Reads more from the transport into the buffer: > 0 bytes added, 0 at
 * end of file, or an error. */
static ssize_t fill(async__stream *s, uint64_t deadline)
{
    if (s->rerr)
        return s->rerr;
    if (s->eof || s->tstate == ASYNC__T_CLOSED) {
        s->eof = true;
        return 0;
    }
    int rc = make_room(s);
    if (rc)
        return rc;
    ssize_t n = s->t.ops->read(s->t.ctx, s->rbuf + s->rend, s->rcap - s->rend,
                               deadline);
    n = read_outcome(s, n);
    if (n > 0)
        s->rend += (size_t)n;
    return n;
}

/* Hands out n buffered bytes: returns where they start. */
static const char *consume(async__stream *s, size_t n)
{
    const char *p = s->rbuf + s->rstart;
    s->rstart += n;
    return p;
}

ssize_t async_reader_read(async_reader *r, void *buf, size_t n,
                          uint64_t deadline)
{
    async__stream *s;
    int rc = reader_enter(r, &s);
    if (rc)
        return rc;
    if ((!buf && n > 0) || n == 0)
        return reader_leave(s, n ? ASYNC_EINVAL : 0);
    if (buffered(s) == 0 && !s->rerr && !s->eof &&
        s->tstate == ASYNC__T_OPEN && n >= RBUF_MIN_ROOM) {
        /* Nothing buffered and a big enough request: straight into the
         * caller's buffer, no copy. */
        ssize_t k = s->t.ops->read(s->t.ctx, buf, n, deadline);
        k = read_outcome(s, k);
        s->reading = false;
        return k;
    }
    while (buffered(s) == 0) {
        ssize_t k = fill(s, deadline);
        if (k <= 0)
            return reader_leave(s, (int)k);
    }
    size_t take = buffered(s) < n ? buffered(s) : n;
    memcpy(buf, consume(s, take), take);
    s->reading = false;
    return (ssize_t)take;
}

int async_reader_read_all(async_reader *r, char **out, size_t *len,
                          uint64_t deadline)
{
    if (!out || !len)
        return ASYNC_EINVAL;
    *out = NULL;
    *len = 0;
    async__stream *s;
    int rc = reader_enter(r, &s);
    if (rc)
        return rc;
    ssize_t k;
    while ((k = fill(s, deadline)) > 0)
        ;
    if (k < 0)
        return reader_leave(s, (int)k);
    size_t n = buffered(s);
    char *copy = malloc(n + 1);
    if (!copy)
        return reader_leave(s, ASYNC_ENOMEM);
    memcpy(copy, consume(s, n), n);
    copy[n] = '\0';
    *out = copy;
    *len = n;
    return reader_leave(s, 0);
}

int async_reader_readexactly(async_reader *r, void *buf, size_t n,
                             size_t *got, uint64_t deadline)
{
    if (got)
        *got = 0;
    if (!buf && n > 0)
        return ASYNC_EINVAL;
    async__stream *s;
    int rc = reader_enter(r, &s);
    if (rc)
        return rc;
    while (buffered(s) < n) {
        ssize_t k = fill(s, deadline);
        if (k < 0)
            return reader_leave(s, (int)k);
        if (k == 0) {
            size_t part = buffered(s);
            if (part)
                memcpy(buf, consume(s, part), part);
            if (got)
                *got = part;
            return reader_leave(s, ASYNC_EINCOMPLETE);
        }
    }
    if (n)
        memcpy(buf, consume(s, n), n);
    if (got)
        *got = n;
    return reader_leave(s, 0);
}

/*
 * Finds sep in the buffer, reading more as needed, as asyncio's readuntil
 * does.  0: found, *end is the count up to and including it.
 * ASYNC_ELIMIT: found beyond the limit (*sep_at is its index) or not found
 * within it (*sep_at is SIZE_MAX).  ASYNC_EINCOMPLETE: end of file first.
 * Nothing is consumed here.
 */
static int find_sep(async__stream *s, const char *sep, size_t seplen,
                    uint64_t deadline, size_t *end, size_t *sep_at)
{
    size_t offset = 0; /* where the search resumes: earlier positions
                          cannot start a match */
    *sep_at = SIZE_MAX;
    for (;;) {
        size_t n = buffered(s);
        if (n >= seplen) {
            const char *base = s->rbuf + s->rstart;
            const char *p = memmem(base + offset, n - offset, sep, seplen);
            if (p) {
                size_t at = (size_t)(p - base);
                if (at > s->limit) {
                    *sep_at = at;
                    return ASYNC_ELIMIT;
                }
                *end = at + seplen;
                return 0;
            }
            offset = n + 1 - seplen;
            if (offset > s->limit)
                return ASYNC_ELIMIT;
        }
        ssize_t k = fill(s, deadline);
        if (k == 0)
            return ASYNC_EINCOMPLETE;
        if (k < 0)
            return (int)k;
    }
}

/* The shared body of readuntil and readline. */
static int read_until(async_reader *r, const void *sep, size_t seplen,
                      bool line, const char **data, size_t *len,
                      uint64_t deadline)
{
    if (!data || !len)
        return ASYNC_EINVAL;
    *data = NULL;
    *len = 0;
    if (!sep || seplen == 0)
        return ASYNC_EINVAL;
    async__stream *s;
    int rc = reader_enter(r, &s);
    if (rc)
        return rc;
    size_t end = 0, sep_at;
    rc = find_sep(s, sep, seplen, deadline, &end, &sep_at);
    if (rc == 0) {
        *len = end;
        *data = consume(s, end);
    } else if (rc == ASYNC_EINCOMPLETE) {
        *len = buffered(s);
        *data = consume(s, *len);
        if (line)
            rc = 0;
    } else if (rc == ASYNC_ELIMIT && line) {
        /* readline drops the overlong line: through its separator when it
         * arrived, else everything buffered. */
        consume(s, sep_at != SIZE_MAX ? sep_at + seplen : buffered(s));
    }
    return reader_leave(s, rc);
}

int async_reader_readuntil(async_reader *r, const void *sep, size_t seplen,
                           const char **data, size_t *len, uint64_t deadline)
{
    return read_until(r, sep, seplen, false, data, len, deadline);
}

int async_reader_readline(async_reader *r, const char **data, size_t *len,
                          uint64_t deadline)
{
    return read_until(r, "\n", 1, true, data, len, deadline);
}

bool async_reader_at_eof(const async_reader *r)
{
    return r && r->s->eof && r->s->rstart == r->s->rend;
}

size_t async_reader_buffered(const async_reader *r)
{
    return r ? buffered(r->s) : 0;
}
