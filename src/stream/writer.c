/*
 * StreamWriter: write() tries the transport at once and queues the rest;
 * a flush task, spawned only while something is queued (or a write_eof or
 * close is pending), hands the queue to the transport and then exits.
 *
 * The queue is two buffers.  write() appends to pbuf; the flush task sends
 * fbuf and, when it is empty, swaps the two.  A transport write that is
 * suspended holds a pointer into fbuf, so fbuf is never reallocated or
 * freed while the task runs; only pbuf grows.
 *
 * Flow control is asyncio's: above the high-water mark the writer is
 * "paused" and drain() waits; once the flush task brings the queue down to
 * the low-water mark it resumes them.
 */
#include <stdlib.h>
#include <string.h>

#include "stream/stream.h"
#include "stream/stream_impl.h"

/* An event made on first need (most streams never wait for anything). */
static int event_get(async_event **slot, bool set)
{
    if (*slot)
        return 0;
    int rc = async_event_new(slot);
    if (rc == 0 && set)
        async_event_set(*slot);
    return rc;
}

static void event_set(async_event *ev, bool set)
{
    if (!ev)
        return;
    if (set)
        async_event_set(ev);
    else
        async_event_clear(ev);
}

static void set_paused(async__stream *s, bool paused)
{
    s->paused = paused;
    event_set(s->resumed, !paused);
}

/* Drops whatever is queued (the flush task's fbuf stays allocated: a
 * suspended transport write may still point into it). */
static void drop_queue(async__stream *s)
{
    s->foff = s->flen;
    s->plen = 0;
    set_paused(s, false);
}

/* The connection failed while writing: keep the error, drop the queue,
 * close the transport.  The reader gets the error after its buffered
 * bytes. */
static void writer_fail(async__stream *s, int err)
{
    if (!s->werr)
        s->werr = err;
    if (!s->rerr && !s->eof)
        s->rerr = err;
    s->closing = true;
    drop_queue(s);
    async__stream_close_now(s);
}

/* Appends to pbuf, growing it. */
static int queue_append(async__stream *s, const char *buf, size_t n)
{
    if (s->pcap - s->plen < n) {
        size_t cap = s->pcap ? s->pcap : 4096;
        while (cap - s->plen < n)
            cap *= 2;
        char *nb = realloc(s->pbuf, cap);
        if (!nb)
            return ASYNC_ENOMEM;
        s->pbuf = nb;
        s->pcap = cap;
    }
    memcpy(s->pbuf + s->plen, buf, n);
    s->plen += n;
    return 0;
}

/* Moves pbuf into fbuf (both empty-able: fbuf is done). */
static void queue_swap(async__stream *s)
{
    char *b = s->fbuf;
    size_t cap = s->fcap;
    s->fbuf = s->pbuf;
    s->fcap = s->pcap;
    s->flen = s->plen;
    s->foff = 0;
    s->pbuf = b;
    s->pcap = cap;
    s->plen = 0;
}

/* Sends the queue; 0 once it is empty, or the transport's error. */
static int flush_queue(async__stream *s)
{
    while (!s->aborted) {
        if (s->foff == s->flen) {
            if (s->plen == 0)
                return 0;
            queue_swap(s);
        }
        ssize_t n = s->t.ops->write(s->t.ctx, s->fbuf + s->foff,
                                    s->flen - s->foff, ASYNC_NO_DEADLINE);
        if (s->aborted)
            break;
        if (n < 0)
            return (int)n;
        s->foff += (size_t)n;
        if (s->paused && async__writer_queued(s) <= s->low)
            set_paused(s, false);
    }
    return ASYNC_ESHUTDOWN;
}

/* What is left after the queue: the half-close, then the close. */
static void flush_finish(async__stream *s)
{
    if (s->eof_req && !s->eof_done && s->tstate == ASYNC__T_OPEN) {
        s->eof_done = true;
        int rc = s->t.ops->shutdown_write(s->t.ctx, ASYNC_NO_DEADLINE);
        if (rc < 0 && !s->aborted)
            writer_fail(s, rc);
    }
    if (s->closing && s->tstate == ASYNC__T_OPEN) {
        s->tstate = ASYNC__T_CLOSING;
        s->t.ops->close(s->t.ctx, false);
        async__stream_closed(s);
    }
}

/* The flush task's body. */
static int flush_main(void *arg, void **result)
{
    (void)result;
    async__stream *s = arg;
    int rc = flush_queue(s);
    if (rc < 0 && !s->aborted)
        writer_fail(s, rc);
    else if (!s->aborted)
        flush_finish(s);
    s->flushing = false;
    s->flush_fut = NULL;
    event_set(s->idle_ev, true);
    return 0;
}

/* The flush task is done: drop its reference.  If it was cancelled before
 * its first step its body never ran, and the queue can no longer go out. */
static void flush_done(async_future *f, void *arg)
{
    async__stream *s = arg;
    if (s->flush_fut == f) {
        s->flushing = false;
        s->flush_fut = NULL;
        writer_fail(s, ASYNC_ECANCELED);
        event_set(s->idle_ev, true);
    }
    async__stream_unref(s);
}

/* Starts the flush task unless it runs. */
static int flush_start(async__stream *s)
{
    if (s->flushing)
        return 0;
    async_task *t;
    int rc = async_loop_spawn(s->loop, &t, flush_main, s, NULL);
    if (rc)
        return rc;
    async_future *f = async_task_future(t);
    rc = async_future_add_done_callback(f, flush_done, s);
    if (rc) {
        /* The body, cancelled before its first step, never runs. */
        async_task_cancel(t);
        async_task_unref(t);
        return rc;
    }
    async_task_unref(t);
    s->refs++;
    s->flushing = true;
    s->flush_fut = f;
    event_set(s->idle_ev, false);
    return 0;
}

static int writer_check(const async_writer *w)
{
    if (!w)
        return ASYNC_EINVAL;
    const async__stream *s = w->s;
    if (s->werr)
        return s->werr;
    if (s->closing || s->eof_req)
        return ASYNC_ESHUTDOWN;
    return 0;
}

int async_writer_write(async_writer *w, const void *buf, size_t n)
{
    int rc = writer_check(w);
    if (rc)
        return rc;
    if (!buf && n > 0)
        return ASYNC_EINVAL;
    if (n == 0)
        return 0;
    async__stream *s = w->s;
    size_t sent = 0;
    if (!s->flushing && async__writer_queued(s) == 0 && s->t.ops->try_write) {
        ssize_t k = s->t.ops->try_write(s->t.ctx, buf, n);
        if ((size_t)k == n)
            return 0;
        if (k < 0 && k != ASYNC_EAGAIN) {
            writer_fail(s, (int)k);
            return (int)k;
        }
        if (k > 0)
            sent = (size_t)k;
    }
    rc = queue_append(s, (const char *)buf + sent, n - sent);
    if (rc == 0 && (rc = flush_start(s)) != 0)
        s->plen -= n - sent;
    if (rc) {
        if (sent) /* part of buf went out: the stream is broken now */
            writer_fail(s, rc);
        return rc;
    }
    if (!s->paused && async__writer_queued(s) > s->high)
        set_paused(s, true);
    return 0;
}

size_t async_writer_buffered(const async_writer *w)
{
    return w ? async__writer_queued(w->s) : 0;
}

int async_writer_drain(async_writer *w, uint64_t deadline)
{
    if (!w)
        return ASYNC_EINVAL;
    async__stream *s = w->s;
    while (s->paused && !s->werr && !s->aborted) {
        int rc = event_get(&s->resumed, false);
        if (rc == 0)
            rc = async_event_wait_until(s->resumed, deadline);
        if (rc)
            return rc;
    }
    if (s->werr)
        return s->werr;
    return s->aborted ? ASYNC_ESHUTDOWN : 0;
}

int async_writer_set_water(async_writer *w, size_t high, size_t low)
{
    if (!w)
        return ASYNC_EINVAL;
    high = high ? high : ASYNC_STREAM_HIGH_WATER_DEFAULT;
    low = low ? low : high / 4;
    if (low > high)
        return ASYNC_EINVAL;
    async__stream *s = w->s;
    s->high = high;
    s->low = low;
    size_t q = async__writer_queued(s);
    if (!s->paused && q > high)
        set_paused(s, true);
    else if (s->paused && q <= low)
        set_paused(s, false);
    return 0;
}

bool async_writer_can_write_eof(const async_writer *w)
{
    return w && w->s->t.ops->shutdown_write != NULL;
}

int async_writer_write_eof(async_writer *w)
{
    int rc = writer_check(w);
    if (rc)
        return rc;
    if (!async_writer_can_write_eof(w))
        return ASYNC_ENOTSUP;
    w->s->eof_req = true;
    rc = flush_start(w->s);
    if (rc)
        w->s->eof_req = false;
    return rc;
}

int async_writer_close(async_writer *w)
{
    if (!w)
        return ASYNC_EINVAL;
    async__stream *s = w->s;
    if (s->closing)
        return 0;
    s->closing = true;
    if (flush_start(s) != 0) {
        /* No task to flush with (out of memory, or the loop is closing):
         * the queue cannot go out. */
        s->aborted = true;
        drop_queue(s);
        async__stream_close_now(s);
    }
    return 0;
}

bool async_writer_is_closing(const async_writer *w)
{
    return w && (w->s->closing || w->s->tstate != ASYNC__T_OPEN);
}

int async_writer_wait_closed(async_writer *w, uint64_t deadline)
{
    if (!w)
        return ASYNC_EINVAL;
    async__stream *s = w->s;
    while (s->tstate != ASYNC__T_CLOSED) {
        int rc = event_get(&s->closed_ev, false);
        if (rc == 0)
            rc = async_event_wait_until(s->closed_ev, deadline);
        if (rc)
            return rc;
    }
    return s->werr;
}

void async_writer_abort(async_writer *w)
{
    if (!w)
        return;
    async__stream *s = w->s;
    s->closing = true;
    s->aborted = true;
    drop_queue(s);
    async__stream_close_now(s);
}

int async__stream_flush(async__stream *s, uint64_t deadline)
{
    while (s->flushing) {
        int rc = event_get(&s->idle_ev, !s->flushing);
        if (rc == 0)
            rc = async_event_wait_until(s->idle_ev, deadline);
        if (rc)
            return rc;
    }
    return s->werr;
}

static int addr_query(const async_writer *w, async_addr *out, bool peer)
{
    if (!w || !out)
        return ASYNC_EINVAL;
    const async__transport *t = &w->s->t;
    int (*fn)(void *, async_addr *) = peer ? t->ops->peer_addr
                                           : t->ops->local_addr;
    if (!fn)
        return ASYNC_ENOTSUP;
    return fn(t->ctx, out);
}

int async_writer_peer_addr(const async_writer *w, async_addr *out)
{
    return addr_query(w, out, true);
}

int async_writer_local_addr(const async_writer *w, async_addr *out)
{
    return addr_query(w, out, false);
}

int async_writer_fd(const async_writer *w)
{
    if (!w || !w->s->t.ops->fd || w->s->tstate == ASYNC__T_CLOSED)
        return -1;
    return w->s->t.ops->fd(w->s->t.ctx);
}

void async_writer_free(async_writer *w)
{
    if (!w)
        return;
    async__stream *s = w->s;
    async_writer_close(w);
    async__stream_unref(s);
}
