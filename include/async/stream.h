/*
 * Streams: asyncio's StreamReader and StreamWriter, in C.
 *
 * A connection is one stream with two handles: an async_reader (buffered
 * reads: read, readexactly, readline, readuntil, read-to-EOF) and an
 * async_writer (buffered writes: write, drain, write_eof, close,
 * wait_closed, abort).  Under them sits a transport: a plain fd (socket,
 * pipe, Unix socket) or TLS (async/tls.h), which can be swapped on a live
 * stream (STARTTLS).
 *
 * Ownership: every call that hands out a reader or writer gives one
 * reference to each; release them with async_reader_free() and
 * async_writer_free().  The stream's memory goes when both handles are
 * released and its background flush (below) has finished.  Releasing an
 * open writer closes it gracefully (what is buffered is still sent);
 * releasing the reader of a stream that has no writer (a pipe) closes the
 * transport.  Do not release a handle while a call on it is in progress
 * in another task.
 *
 * Threads: a stream belongs to the loop it was created on and is used from
 * that loop's thread only.
 *
 * Reading (asyncio's StreamReader): every read call takes an absolute
 * deadline (async/io.h: ASYNC_NO_DEADLINE, async_deadline_in()) and
 * honours the task's deadline scopes; it returns ASYNC_ETIMEDOUT or
 * ASYNC_ECANCELED (level-triggered, as every suspension point) without
 * losing a byte: whatever arrived stays buffered for the next call.  One
 * task reads at a time: a second task calling a read while one waits gets
 * ASYNC_EBUSY (asyncio raises RuntimeError).  A transport error
 * (ASYNC_ECONNRESET, ...) is returned once the buffered bytes before it
 * have been read, and by every read after.
 *
 * The limit (default 64 KiB, async_stream_opts.limit) bounds readline and
 * readuntil, as asyncio's limit= does: a separator not found within
 * `limit` bytes gives ASYNC_ELIMIT (asyncio's LimitOverrunError / the
 * ValueError of readline).
 *
 * Writing (asyncio's StreamWriter): async_writer_write() never suspends
 * and never drops data: it tries the transport at once and buffers what it
 * could not take; a background task of the stream sends the buffer as the
 * peer accepts it.  async_writer_drain() suspends while the buffered amount
 * is above the high-water mark, until it falls to the low-water mark
 * (asyncio's defaults: 64 KiB and 16 KiB), so a program that drains after
 * its writes holds at most about high-water + one write in memory however
 * slowly the peer reads.
 */
#ifndef ASYNC_STREAM_H
#define ASYNC_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <async/error.h>
#include <async/io.h>
#include <async/net.h>
#include <async/process.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct async_reader async_reader;
typedef struct async_writer async_writer;

/* asyncio's defaults: limit=2**16; high water 64 KiB, low water high/4. */
#define ASYNC_STREAM_LIMIT_DEFAULT (64u * 1024u)
#define ASYNC_STREAM_HIGH_WATER_DEFAULT (64u * 1024u)

/* Stream options; zero-initialise and set what you need. */
typedef struct async_stream_opts {
    size_t limit;      /* readline/readuntil bound; 0 = 64 KiB */
    size_t high_water; /* drain suspends above this; 0 = 64 KiB */
    size_t low_water;  /* ...until the buffer is down to this; 0 = high/4;
                          must be <= high_water */
} async_stream_opts;

/*
 * Wraps an fd (socket, pipe, Unix socket, in non-blocking mode or not: it
 * is made non-blocking) into a stream.  r and w receive the handles; pass
 * NULL for a half you do not want (a pipe's read end needs no writer).  At
 * least one must be non-NULL.  On success the stream owns fd and closes it
 * (with async_close) when the stream closes.  Must be called on the loop's
 * thread while the loop runs (in a task or a callback).
 * Returns 0, ASYNC_EINVAL (fd < 0, both NULL, low_water > high_water),
 * ASYNC_ENOLOOP, ASYNC_ENOMEM or async_set_nonblocking's error; on error
 * fd is left open and still the caller's.
 */
ASYNC_API int async_stream_open_fd(int fd, const async_stream_opts *opts,
                                   async_reader **r, async_writer **w);

/* ---- reading ----------------------------------------------------------------- */

/*
 * read(n): returns up to n bytes in buf (at least 1), waiting for data if
 * none is buffered; 0 at end of file (and for n == 0).  Errors: the
 * transport's (ASYNC_ECONNRESET, ...), ASYNC_ETIMEDOUT, ASYNC_ECANCELED,
 * ASYNC_EBUSY (another task is reading), ASYNC_ENOTTASK, ASYNC_EINVAL.
 */
ASYNC_API ssize_t async_reader_read(async_reader *r, void *buf, size_t n,
                                    uint64_t deadline);

/*
 * read(-1): everything up to end of file, in a new NUL-terminated malloc'd
 * buffer (*out, the caller frees it; *len bytes, not counting the NUL).
 * Not bounded by the limit.  On error (as async_reader_read, plus
 * ASYNC_ENOMEM) *out is NULL and whatever arrived stays in the reader.
 */
ASYNC_API int async_reader_read_all(async_reader *r, char **out, size_t *len,
                                    uint64_t deadline);

/*
 * readexactly(n): fills buf with exactly n bytes.  Returns 0, or
 * ASYNC_EINCOMPLETE when end of file comes first: the *got bytes that did
 * arrive are in buf and consumed (asyncio's IncompleteReadError.partial).
 * On any other error (as async_reader_read) nothing is consumed and *got
 * is 0.  got may be NULL.  The buffer may grow to n bytes whatever the
 * limit, as in asyncio.
 */
ASYNC_API int async_reader_readexactly(async_reader *r, void *buf, size_t n,
                                       size_t *got, uint64_t deadline);

/*
 * readuntil(sep): the bytes up to and including the first occurrence of
 * sep (seplen >= 1 bytes; it may arrive split over several reads).  On
 * success *data points at them inside the reader's buffer, valid until the
 * next call on this reader or its release, and *len is their count.
 * Errors:
 *   ASYNC_EINCOMPLETE  end of file before sep: *data and *len hold all
 *                      that was left (consumed; asyncio's
 *                      IncompleteReadError.partial)
 *   ASYNC_ELIMIT       sep not found within the limit, or found beyond it:
 *                      nothing is consumed (asyncio's LimitOverrunError)
 *   as async_reader_read (nothing consumed; *len is 0)
 */
ASYNC_API int async_reader_readuntil(async_reader *r, const void *sep,
                                     size_t seplen, const char **data,
                                     size_t *len, uint64_t deadline);

/*
 * readline(): readuntil("\n"), except that at end of file the last line
 * without a newline is returned as a success (an empty one, *len == 0,
 * once the stream is exhausted), and that a line longer than the limit is
 * discarded (up to and including its newline if it arrived, else all that
 * is buffered) before ASYNC_ELIMIT is returned, as asyncio's readline does.
 */
ASYNC_API int async_reader_readline(async_reader *r, const char **data,
                                    size_t *len, uint64_t deadline);

/* at_eof(): true when end of file was seen and nothing is left buffered. */
ASYNC_API bool async_reader_at_eof(const async_reader *r);

/* Bytes buffered and not yet read (0 for NULL). */
ASYNC_API size_t async_reader_buffered(const async_reader *r);

/* Releases the reader handle (see ownership above).  NULL is ignored. */
ASYNC_API void async_reader_free(async_reader *r);

/* ---- writing ------------------------------------------------------------------ */

/*
 * write(data): queues n bytes for sending; never suspends (callable from
 * a callback too).  Returns 0, ASYNC_EINVAL (NULL w, or buf NULL with
 * n > 0), ASYNC_ESHUTDOWN (after write_eof, close or abort), the error
 * that ended the connection (ASYNC_EPIPE, ASYNC_ECONNRESET, ...), or
 * ASYNC_ENOMEM; after an error nothing of buf was queued.
 * asyncio's write() on a lost connection drops the data silently and only
 * drain() raises; here the error comes back at once, since C callers check
 * every return code.
 */
ASYNC_API int async_writer_write(async_writer *w, const void *buf, size_t n);

/* Bytes queued and not yet taken by the transport (get_write_buffer_size). */
ASYNC_API size_t async_writer_buffered(const async_writer *w);

/*
 * drain(): returns at once unless the buffer went above the high-water
 * mark; then waits until it is down to the low-water mark.  Returns 0, the
 * error that ended the connection, ASYNC_ETIMEDOUT, ASYNC_ECANCELED (the
 * queued data stays queued), ASYNC_ENOTTASK or ASYNC_EINVAL.
 */
ASYNC_API int async_writer_drain(async_writer *w, uint64_t deadline);

/* Sets the high- and low-water marks (set_write_buffer_limits; 0 =
 * default as in async_stream_opts).  Returns 0 or ASYNC_EINVAL (low >
 * high). */
ASYNC_API int async_writer_set_water(async_writer *w, size_t high, size_t low);

/*
 * write_eof(): once everything queued has been sent, shuts down the
 * sending side (the peer reads end of file; reading goes on).  Never
 * suspends.  Returns 0, ASYNC_ESHUTDOWN (closing or eof already written),
 * ASYNC_ENOTSUP (the transport cannot half-close: can_write_eof() false)
 * or the connection's error.
 */
ASYNC_API int async_writer_write_eof(async_writer *w);
ASYNC_API bool async_writer_can_write_eof(const async_writer *w);

/*
 * close(): stops writing; what is buffered is still sent, then the
 * transport is closed (the reader then sees end of file).  Never suspends;
 * a second call does nothing.  Returns 0 or ASYNC_EINVAL.
 */
ASYNC_API int async_writer_close(async_writer *w);

/* is_closing(): true once close(), abort() or a connection error. */
ASYNC_API bool async_writer_is_closing(const async_writer *w);

/*
 * wait_closed(): waits until the transport is closed (after close(): once
 * the buffer is flushed).  Returns 0, the error that ended the connection
 * (the buffered data could not all be sent), ASYNC_ETIMEDOUT,
 * ASYNC_ECANCELED, ASYNC_ENOTTASK or ASYNC_EINVAL.
 */
ASYNC_API int async_writer_wait_closed(async_writer *w, uint64_t deadline);

/* abort(): closes the transport now, dropping what is buffered (a TCP
 * peer may see a reset).  Tasks reading see end of file; a task in
 * drain() gets ASYNC_ESHUTDOWN.  Never suspends. */
ASYNC_API void async_writer_abort(async_writer *w);

/* get_extra_info('peername' / 'sockname'): 0, ASYNC_EINVAL, ASYNC_ENOTSUP
 * (not a socket), or getpeername/getsockname's error. */
ASYNC_API int async_writer_peer_addr(const async_writer *w, async_addr *out);
ASYNC_API int async_writer_local_addr(const async_writer *w, async_addr *out);

/* The transport's fd (for socket options), or -1 once closed. */
ASYNC_API int async_writer_fd(const async_writer *w);

/* Releases the writer handle; an open writer is closed first, as by
 * async_writer_close (its buffer is still sent).  NULL is ignored. */
ASYNC_API void async_writer_free(async_writer *w);

/* ---- connections ------------------------------------------------------------ */

/* TLS settings (async/tls.h); streams only pass them on. */
struct async_tls_config;

/* open_connection options; zero-initialise and set what you need. */
typedef struct async_connect_opts {
    /* Bound on name resolution + connecting (+ the TLS handshake), ns;
     * 0 = none. */
    int64_t timeout;
    /* Numeric local address to bind before connecting ("10.0.0.2:0",
     * asyncio's local_addr); NULL = the system's choice. */
    const char *local_addr;
    /* Happy Eyeballs: ns between the start of successive attempts when a
     * name has several addresses; 0 = 250 ms (RFC 8305, asyncio's
     * happy_eyeballs_delay=0.25).  asyncio tries addresses one by one
     * unless asked; libasync races them by default, as the RFC says. */
    int64_t happy_eyeballs_delay;
    async_stream_opts stream; /* limit and water marks */
    /* TLS (async/tls.h); NULL = plain TCP.  Without TLS in the build a
     * non-NULL value gives ASYNC_ENOTSUP. */
    const struct async_tls_config *tls;
    /* TLS: the name to send (SNI) and verify; NULL = the host part of the
     * address string. */
    const char *server_hostname;
} async_connect_opts;

/*
 * asyncio.open_connection: connects to `addr` ("host:port", "[v6]:port",
 * "unix:/path"; names are resolved on the thread pool) and returns a
 * reader and a writer (one reference each).  When the name resolves to
 * several addresses, they are raced with Happy Eyeballs (RFC 8305): the
 * families alternate, a new attempt starts every happy_eyeballs_delay or
 * as soon as the previous one fails, the first to connect wins and the
 * others are cancelled; the error of the last failed attempt is returned
 * when none connects.  TCP sockets get TCP_NODELAY.  Must be called from
 * a task.
 * Returns 0, ASYNC_EINVAL (NULL argument, negative timeout, bad local
 * address), ASYNC_ENOTTASK, a resolution error (async/net.h),
 * ASYNC_ECONNREFUSED, ASYNC_ETIMEDOUT, -ENETUNREACH, ASYNC_ENOENT (Unix
 * path), ASYNC_ECANCELED, ASYNC_ENOMEM, ASYNC_ENOTSUP (TLS asked for in a
 * build without it) or a TLS error; on error nothing is left open and
 * *r, *w are NULL or untouched.
 */
ASYNC_API int async_open_connection(const char *addr,
                                    const async_connect_opts *opts,
                                    async_reader **r, async_writer **w);

/* The same for addresses already resolved (n from 1 to ASYNC_ADDR_MAX),
 * raced in the order Happy Eyeballs gives them (families interleaved). */
ASYNC_API int async_open_connection_addrs(const async_addr *addrs, size_t n,
                                          const async_connect_opts *opts,
                                          async_reader **r, async_writer **w);

/* ---- servers ----------------------------------------------------------------- */

typedef struct async_server async_server;

/*
 * A connection handler (asyncio's client_connected_cb): runs in a task of
 * its own per connection.  r and w belong to the server: do not free
 * them; the server closes the writer (gracefully: what is queued is still
 * sent) and releases both when the handler returns.  asyncio leaves the
 * transport open after a normal return until it is garbage-collected; C
 * has no collector, so the server closes it.  A negative return (other
 * than ASYNC_ECANCELED) is reported through the loop's exception handler
 * ("unhandled error in connection handler"); the server and the other
 * connections carry on.
 */
typedef int (*async_conn_handler)(async_reader *r, async_writer *w, void *arg);

/* start_server options; zero-initialise and set what you need. */
typedef struct async_server_opts {
    int backlog;          /* listen backlog; 0 = SOMAXCONN */
    bool reuse_port;      /* SO_REUSEPORT: several servers, one port */
    /* Most live connections; 0 = no limit.  At the limit the server stops
     * accepting until one ends (new ones wait in the backlog). */
    size_t max_conns;
    size_t stack_size;    /* handler task stack; 0 = the default */
    async_stream_opts stream; /* each connection's limit and water marks */
    /* TLS (async/tls.h); NULL = plain.  Without TLS in the build a
     * non-NULL value makes every handshake fail with ASYNC_ENOTSUP. */
    const struct async_tls_config *tls;
    /* TLS handshake bound, ns; 0 = 60 s (asyncio's default). */
    int64_t tls_handshake_timeout;
} async_server_opts;

/*
 * asyncio.start_server: listens on `addr` (as async_tcp_listen: "ip:port",
 * "[v6]:port", a name, "unix:/path"; port 0 picks one, see
 * async_server_addr) and serves at once: each accepted connection gets a
 * task running handler(reader, writer, arg).  Must be called on the loop's
 * thread while it runs (a task or a callback).  *out receives the server;
 * release it with async_server_free() after async_server_wait_closed().
 * Returns 0, ASYNC_EINVAL (NULL argument, negative backlog, bad water
 * marks), ASYNC_ENOLOOP, the errors of async_tcp_listen
 * (ASYNC_EADDRINUSE, ...) or ASYNC_ENOMEM.  Out of file descriptors the
 * server stays up: the pending connection is accepted and closed at once.
 */
ASYNC_API int async_start_server(const char *addr, async_conn_handler handler,
                                 void *arg, const async_server_opts *opts,
                                 async_server **out);

/*
 * serve_forever(): waits until the server is closed and returns 0 (or the
 * error that stopped accepting).  If the waiting task is cancelled, closes
 * the server, waits for wait_closed() and returns ASYNC_ECANCELED, as
 * asyncio does.  (asyncio's serve_forever raises CancelledError when
 * another task closes the server; here that is a plain return of 0.)
 */
ASYNC_API int async_server_serve_forever(async_server *srv);

/* close(): stops accepting and closes the listening socket; live
 * connections go on.  Never suspends; a second call does nothing.
 * 0 or ASYNC_EINVAL. */
ASYNC_API int async_server_close(async_server *srv);

/* close_clients() / abort_clients() (asyncio 3.13): closes (flushing) /
 * aborts every live connection's writer; their handlers then read end of
 * file.  0 or ASYNC_EINVAL. */
ASYNC_API int async_server_close_clients(async_server *srv);
ASYNC_API int async_server_abort_clients(async_server *srv);

/* wait_closed(): waits until the server is closed and every connection is
 * gone: its handler has returned and what it wrote has been sent and the
 * socket closed (as asyncio's waits for the transports), so a program may
 * end right after it.  0, ASYNC_ETIMEDOUT, ASYNC_ECANCELED, ASYNC_ENOTTASK
 * or ASYNC_EINVAL. */
ASYNC_API int async_server_wait_closed(async_server *srv, uint64_t deadline);

/* is_serving(): true until close(). */
ASYNC_API bool async_server_is_serving(const async_server *srv);

/* Live connections (handlers not yet returned). */
ASYNC_API size_t async_server_connections(const async_server *srv);

/* The listening address (with the port the system picked). */
ASYNC_API int async_server_addr(const async_server *srv, async_addr *out);

/* Frees a closed server whose handlers have all returned (NULL: 0).
 * ASYNC_EBUSY (nothing freed) otherwise: close and wait_closed first. */
ASYNC_API int async_server_free(async_server *srv);

/* ---- subprocess pipes -------------------------------------------------------- */

/*
 * asyncio's Process.stdin / .stdout / .stderr: streams over the pipes of a
 * child started with async_process_spawn (the ones given ASYNC_PROCESS_PIPE).
 * Each non-NULL pointer receives a handle (release them with
 * async_writer_free / async_reader_free): `in` a writer for the child's
 * stdin (closing it gives the child end of file), `out` and `err` readers.
 * The pipes stay owned by the process handle and are closed through it
 * (async_process_close_fd) when their stream closes; release the streams
 * before async_process_free().  Writes to a child that exited raise
 * SIGPIPE unless the program ignores it (see async/io.h), then give
 * ASYNC_EPIPE.  Must be called on the loop's thread while it runs.
 * Returns 0, ASYNC_EINVAL (p NULL, all three NULL), ASYNC_EBADF (a
 * requested stream is not a pipe or was closed: nothing is made) or
 * ASYNC_ENOMEM (then the pipes wrapped so far were closed).
 */
ASYNC_API int async_process_streams(async_process *p, async_writer **in,
                                    async_reader **out, async_reader **err);

/*
 * Process.communicate(input) with a timeout (subprocess.Popen's
 * communicate(input, timeout)), on a child already spawned: writes input
 * (input_len bytes) to its stdin and closes it, reads stdout and stderr to
 * end of file at the same time, then waits for the exit.  Pipes are used
 * where the child has them: stdin is closed even with no input; res->out /
 * res->err stay NULL for streams that are not pipes.  A child that stops
 * reading its stdin is not an error (the rest is dropped, as in asyncio).
 * Must be called from a task.
 * Returns 0 with *res filled (free it with async_process_result_free), or
 * an error with *res zeroed: ASYNC_EINVAL (p or res NULL, input NULL with
 * input_len > 0, input for a child whose stdin is not a pipe),
 * ASYNC_ENOTTASK, ASYNC_ETIMEDOUT (`timeout` ns passed, negative: none),
 * ASYNC_ECANCELED, ASYNC_ENOMEM or a pipe error.  After a time-out or
 * cancellation the child is left running (Popen's TimeoutExpired; kill and
 * wait for it, or free the handle) and the output read so far is dropped,
 * as it is when asyncio's communicate() is cancelled; the pipes are
 * closed by then.
 */
ASYNC_API int async_process_communicate(async_process *p, const void *input,
                                        size_t input_len, int64_t timeout,
                                        async_process_result *res);

/* ---- a server on several threads ----------------------------------------------- */

typedef struct async_server_group async_server_group;

/*
 * Serves `addr` on `threads` threads, each running its own loop
 * (async_run) with its own SO_REUSEPORT listener, so the kernel spreads
 * the connections (a Unix path is one listener shared by all loops).
 * handler runs as with async_start_server, on the loop of the thread that
 * accepted the connection, so it must be thread-safe with respect to arg.
 * opts as async_start_server (reuse_port is implied).  Returns once every
 * loop is serving: 0 with *out set, or ASYNC_EINVAL (NULL argument,
 * threads 0 or above 1024), the errors of async_tcp_listen, a negated
 * pthread_create error, or ASYNC_EFAILED (a loop could not start); then
 * nothing is left running.  Callable from any thread.
 */
ASYNC_API int async_server_group_start(const char *addr, unsigned threads,
                                       async_conn_handler handler, void *arg,
                                       const async_server_opts *opts,
                                       async_server_group **out);

/* close / close_clients / abort_clients on every loop (from any thread;
 * the work happens on each loop soon after).  0 or ASYNC_EINVAL. */
ASYNC_API int async_server_group_close(async_server_group *g);
ASYNC_API int async_server_group_close_clients(async_server_group *g);
ASYNC_API int async_server_group_abort_clients(async_server_group *g);

/*
 * Waits until every loop has closed its server and every handler has
 * returned.  From a task (of any loop but the group's own): parks the
 * task; one task at a time (else ASYNC_EBUSY); ASYNC_ETIMEDOUT,
 * ASYNC_ECANCELED.  From a thread running no loop: blocks it (deadline
 * must be ASYNC_NO_DEADLINE, else ASYNC_EINVAL).  From loop code outside
 * a task: ASYNC_ENOTTASK.  0 when done.
 */
ASYNC_API int async_server_group_wait_closed(async_server_group *g,
                                            uint64_t deadline);

/* The listening address (with the port the system picked). */
ASYNC_API int async_server_group_addr(const async_server_group *g,
                                      async_addr *out);

/* Joins the threads and frees the group: after close (wait_closed
 * first, or this blocks until the loops end).  ASYNC_EBUSY if the group
 * was never closed and still runs; 0 (also for NULL). */
ASYNC_API int async_server_group_free(async_server_group *g);

#ifdef __cplusplus
}
#endif

#endif
