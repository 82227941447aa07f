/*
 * The stream object behind async_reader / async_writer, and what the
 * layers built on streams (servers, TLS) may use of it.  See
 * docs/design-stream.md.
 */
#ifndef ASYNC_STREAM_INTERNAL_H
#define ASYNC_STREAM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <async.h>
#include <async/stream.h>

#include "stream/transport.h"

typedef struct async__stream async__stream;

/* The handles are views of one stream. */
struct async_reader {
    async__stream *s; /* the stream this reads */
};
struct async_writer {
    async__stream *s; /* the stream this writes */
};

/* Where the transport is in its life. */
typedef enum async__tstate {
    ASYNC__T_OPEN,    /* usable */
    ASYNC__T_CLOSING, /* graceful close suspended in the flush task */
    ASYNC__T_CLOSED,  /* closed; only free is left */
} async__tstate;

struct async__stream {
    async_reader reader;    /* the reader handle (points back here) */
    async_writer writer;    /* the writer handle (points back here) */
    async_loop *loop;       /* the loop it lives on */
    async__transport t;     /* what moves the bytes */
    async__tstate tstate;   /* transport state */
    unsigned refs;          /* handles given out + flush tasks alive */
    bool has_writer;        /* created with a writer half */

    /* reader: bytes rbuf[rstart, rend) are buffered, rbuf has rcap */
    char *rbuf;             /* read buffer (malloc'd lazily) */
    size_t rstart;          /* first unread byte */
    size_t rend;            /* end of buffered bytes */
    size_t rcap;            /* size of rbuf */
    size_t limit;           /* readline/readuntil bound */
    bool eof;               /* the transport reported end of file */
    bool reading;           /* a read call is in progress */
    int rerr;               /* sticky read error, or 0 */

    /* writer: queued bytes are fbuf[foff, flen) then pbuf[0, plen) */
    char *pbuf;             /* appended to by write() */
    size_t plen;            /* bytes in pbuf */
    size_t pcap;            /* size of pbuf */
    char *fbuf;             /* being sent by the flush task (not moved
                               while a transport write may hold it) */
    size_t foff;            /* bytes of fbuf already sent */
    size_t flen;            /* bytes in fbuf */
    size_t fcap;            /* size of fbuf */
    size_t high;            /* drain suspends above this */
    size_t low;             /* ...until the buffer is down to this */
    bool paused;            /* above high water, not yet down to low */
    int werr;               /* sticky write error, or 0 */
    bool eof_req;           /* write_eof() called */
    bool eof_done;          /* shutdown_write issued */
    bool closing;           /* close() or abort() called, or failed */
    bool aborted;           /* abort(): buffers dropped */
    bool flushing;          /* a flush task is running its body */
    async_future *flush_fut;/* that task's future (no reference) */
    async_event *resumed;   /* lazily made; set when not paused */
    async_event *closed_ev; /* lazily made; set once tstate is CLOSED */
    async_event *idle_ev;   /* lazily made; set when no flush task runs */
};

/* The stream under a handle. */
static inline async__stream *async__stream_of_reader(async_reader *r)
{
    return r->s;
}
static inline async__stream *async__stream_of_writer(async_writer *w)
{
    return w->s;
}

/*
 * Makes a stream over transport t on the running loop; on success it owns
 * t.  r / w as async_stream_open_fd.  Returns 0, ASYNC_EINVAL,
 * ASYNC_ENOLOOP or ASYNC_ENOMEM (t untouched).
 */
int async__stream_new(async__transport t, const async_stream_opts *opts,
                      async_reader **r, async_writer **w);

/* Waits until everything queued was taken by the transport and no flush
 * task runs.  0, the connection's error, or a wait error. */
int async__stream_flush(async__stream *s, uint64_t deadline);

/*
 * Swaps the transport of a live stream (start_tls).  Requires an idle
 * stream: nothing queued, no flush task, no read in progress, not closing
 * (else ASYNC_EBUSY, nothing changed).  The old transport goes to *old
 * (the caller owns it now, typically as the new transport's lower layer).
 * Bytes the reader had buffered but not handed out were read from the old
 * transport and belong to the new one: they are moved to *unread (malloc'd,
 * the caller frees it; NULL with *unread_len 0 when there were none), and
 * the new transport must consume them before reading from *old.
 * Returns 0, ASYNC_EBUSY, ASYNC_EINVAL or ASYNC_ENOMEM.
 */
int async__stream_replace_transport(async__stream *s, async__transport nt,
                                    async__transport *old, char **unread,
                                    size_t *unread_len);

/*
 * The TLS slot.  With TLS in the build (ASYNC_HAVE_TLS), these call the
 * TLS layer's async__tls_wrap_client / async__tls_wrap_server, which
 * handshake over s's current transport and install the TLS transport
 * (async__stream_replace_transport), all before `deadline`; without it
 * they return ASYNC_ENOTSUP.  On error the stream is left for the caller
 * to abort.  `server_hostname` may be NULL (no SNI, no name check).
 */
int async__stream_tls_client(async__stream *s,
                             const struct async_tls_config *cfg,
                             const char *server_hostname, uint64_t deadline);
int async__stream_tls_server(async__stream *s,
                             const struct async_tls_config *cfg,
                             uint64_t deadline);
#if ASYNC_HAVE_TLS
int async__tls_wrap_client(async__stream *s,
                           const struct async_tls_config *cfg,
                           const char *server_hostname, uint64_t deadline);
int async__tls_wrap_server(async__stream *s,
                           const struct async_tls_config *cfg,
                           uint64_t deadline);
#endif

#endif
