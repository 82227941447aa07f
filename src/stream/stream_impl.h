/*
 * What the files of src/stream/ share among themselves (not for the
 * layers above: they use stream.h).
 */
#ifndef ASYNC_STREAM_IMPL_H
#define ASYNC_STREAM_IMPL_H

#include "stream/stream.h"

/* Drops one reference; the last frees the transport and the buffers. */
void async__stream_unref(async__stream *s);

/* Sets tstate to CLOSED and wakes wait_closed. */
void async__stream_closed(async__stream *s);

/* Aborts the transport unless it is closed already. */
void async__stream_close_now(async__stream *s);

/* Bytes queued in the writer and not yet taken by the transport. */
static inline size_t async__writer_queued(const async__stream *s)
{
    return s->flen - s->foff + s->plen;
}

#endif
