/*
 * The transport contract: what a stream (src/stream/stream.c) needs from
 * the thing that moves its bytes.  The plain fd transport
 * (src/stream/fd_transport.c) implements it on async/io.h; TLS implements
 * it on top of another transport (usually an fd one).
 *
 * A transport is a pair (ops, ctx).  The stream calls the ops on its
 * loop's thread and follows these rules, which a transport may rely on:
 *   - at most one read and at most one write/shutdown_write are in
 *     progress at a time, possibly concurrently with each other (from two
 *     different tasks: the reader's and the stream's flush task);
 *   - close(ctx, false) is called at most once, from a task, when no write
 *     is in progress (a read may be: close must make it return);
 *   - close(ctx, true) may be called at any time from any code on the
 *     loop's thread, also while read, write or close(ctx, false) is
 *     suspended, and more than once;
 *   - free(ctx) is called exactly once, last, when no op is in progress.
 *
 * Every op that may suspend must be called from a task; it returns
 * ASYNC_ECANCELED when the task is cancelled and ASYNC_ETIMEDOUT when the
 * deadline (absolute loop time, ASYNC_NO_DEADLINE for none) or a deadline
 * scope passes.
 */
#ifndef ASYNC_STREAM_TRANSPORT_H
#define ASYNC_STREAM_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <async/net.h>

typedef struct async__transport_ops {
    /* For messages: "fd", "tls". */
    const char *name;

    /*
     * Reads up to n (>= 1) bytes of payload into buf, suspending until at
     * least one is available.  Returns the count (>= 1), 0 at end of file
     * (for TLS: the peer's close_notify, or a clean TCP EOF if the
     * transport accepts that), or a negative code.  Nothing may be lost:
     * when it returns an error (ECANCELED, ETIMEDOUT included) it has
     * consumed no payload the caller did not get; payload decoded but not
     * yet returned is kept for the next call.  After close(ctx, ...) it
     * returns ASYNC_EBADF (or 0).
     */
    ssize_t (*read)(void *ctx, void *buf, size_t n, uint64_t deadline);

    /*
     * Sends up to n (>= 1) bytes of payload from buf, suspending until it
     * can take at least one.  Returns the count taken (>= 1; fewer than n
     * is fine, the stream calls again), or a negative code (EPIPE,
     * ECONNRESET, ...; ECANCELED and ETIMEDOUT only when it took nothing).
     * Bytes counted as taken must reach the peer unless the connection
     * fails or is aborted; a transport that must buffer them (TLS records
     * the socket did not accept) flushes them itself before a later write,
     * shutdown_write or a graceful close returns.  buf stays valid and
     * unchanged only for the duration of the call.
     */
    ssize_t (*write)(void *ctx, const void *buf, size_t n, uint64_t deadline);

    /*
     * Optional (NULL: every write goes through write() in the stream's
     * flush task).  Takes what it can of buf without suspending, from any
     * code on the loop's thread, also in a cancelled task: the count
     * (>= 1), ASYNC_EAGAIN when it cannot take a byte now, or an error as
     * write().  The same loss rule as write().
     */
    ssize_t (*try_write)(void *ctx, const void *buf, size_t n);

    /*
     * Optional (NULL: write_eof is ASYNC_ENOTSUP).  After everything
     * written so far, ends the sending direction (TCP FIN; TLS cannot do
     * this and leaves it NULL).  May suspend.  Returns 0 or an error.
     */
    int (*shutdown_write)(void *ctx, uint64_t deadline);

    /*
     * Closes the connection.  abort == false: graceful, from a task, may
     * suspend to say goodbye (TLS close_notify; bounded by the
     * transport's own timeout), then releases the OS resources.
     * abort == true: never suspends; releases the OS resources now and
     * makes every op in progress return promptly with an error.  After
     * it, only close(ctx, true) and free(ctx) are called.
     */
    void (*close)(void *ctx, bool abort);

    /* Frees ctx (closing first with abort if close was never called). */
    void (*free)(void *ctx);

    /* Optional: the socket's local / peer address (0 or an error);
     * NULL gives ASYNC_ENOTSUP. */
    int (*local_addr)(void *ctx, async_addr *out);
    int (*peer_addr)(void *ctx, async_addr *out);

    /* Optional: the fd underneath, or -1 (closed, or none). */
    int (*fd)(void *ctx);
} async__transport_ops;

/* A transport: its ops and their context. */
typedef struct async__transport {
    const async__transport_ops *ops; /* the contract above */
    void *ctx;                       /* passed to every op */
} async__transport;

/*
 * The plain fd transport over async/io.h.  Takes ownership of fd (closed
 * with async_close) unless on_close is not NULL: then closing calls
 * on_close(arg, fd) instead, which must release fd (a process's pipe end
 * is closed through its handle).  Returns 0, ASYNC_EINVAL or
 * ASYNC_ENOMEM (fd untouched on error).
 */
int async__fd_transport_new(int fd, void (*on_close)(void *arg, int fd),
                            void *arg, async__transport *out);

#endif
