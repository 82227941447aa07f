/*
 * Non-blocking I/O on file descriptors, from inside a task.
 *
 * Every call here is optimistic: it tries the system call first and parks
 * the calling task only when the kernel says EAGAIN, until the fd is ready,
 * a deadline passes (ASYNC_ETIMEDOUT), the task is cancelled
 * (ASYNC_ECANCELED, level-triggered: every later call returns it too until
 * the task returns) or the fd is closed with async_close() by another task
 * (ASYNC_EBADF).  A call made in a cancelled task returns ASYNC_ECANCELED
 * without doing anything, even when data is ready, so a read-write loop
 * always notices the cancellation.  EINTR is retried internally.
 *
 * The fd must be in non-blocking mode (async_set_nonblocking(); sockets made
 * by async/net.h and async_accept() already are), or a call may block the
 * whole loop.  Ownership of an fd never moves into the library: the caller
 * closes it, with async_close() if any task ever waited on it, so the loop
 * forgets it before the number can be reused.
 *
 * Deadlines are absolute times on the loop clock (async_loop_time()); pass
 * ASYNC_NO_DEADLINE to wait without one, or async_deadline_in(timeout) to
 * turn a relative timeout into a deadline.
 *
 * SIGPIPE: writes to sockets use send(MSG_NOSIGNAL) (SO_NOSIGPIPE where the
 * platform has it), so a peer that went away gives ASYNC_EPIPE or
 * ASYNC_ECONNRESET, never a signal.  Writes to pipes and other non-socket
 * fds use write(), which raises SIGPIPE when the reader is gone; the
 * library never changes the process's signal state on its own, so a
 * program that writes to pipes should ignore SIGPIPE itself
 * (signal(SIGPIPE, SIG_IGN)) and will then see ASYNC_EPIPE.
 *
 * All functions must be called from a task (else ASYNC_ENOTTASK), except
 * async_close(), async_set_nonblocking() and async_deadline_in().
 */
#ifndef ASYNC_IO_H
#define ASYNC_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <async/error.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "Wait without a deadline", for every *_deadline call. */
#define ASYNC_NO_DEADLINE UINT64_MAX

/*
 * The deadline `timeout` nanoseconds from now on the running loop's clock
 * (the monotonic clock when no loop runs in this thread).  A negative
 * timeout means "no deadline" and gives ASYNC_NO_DEADLINE.
 */
ASYNC_API uint64_t async_deadline_in(int64_t timeout);

/* Puts fd in non-blocking mode.  Returns 0 or a negated errno (ASYNC_EBADF). */
ASYNC_API int async_set_nonblocking(int fd);

/*
 * Waits until fd is readable (or at EOF / in error) / writable (or in
 * error), without reading or writing.  Returns 0 when ready, ASYNC_EBADF
 * (fd < 0, or closed by async_close() while waiting), ASYNC_EPERM (an fd
 * that cannot be polled, such as a regular file), ASYNC_ETIMEDOUT,
 * ASYNC_ECANCELED, ASYNC_ENOTTASK or ASYNC_ENOMEM.
 */
ASYNC_API int async_wait_readable(int fd, uint64_t deadline);
ASYNC_API int async_wait_writable(int fd, uint64_t deadline);

/*
 * Reads up to len bytes into buf: returns the count (at least 1), 0 at end
 * of file (the peer shut down its side), or a negative code: the read's
 * negated errno (ASYNC_ECONNRESET, ...), ASYNC_EINVAL (buf NULL with len >
 * 0), or a wait error (see async_wait_readable).  len == 0 returns 0 at
 * once.  The caller owns buf.
 */
ASYNC_API ssize_t async_read(int fd, void *buf, size_t len);
ASYNC_API ssize_t async_read_deadline(int fd, void *buf, size_t len,
                                      uint64_t deadline);

/*
 * Reads exactly len bytes unless end of file comes first: returns len, or
 * fewer at end of file, or a negative code as async_read.  When an error
 * ends the read after some bytes arrived, *done (if not NULL) says how many
 * bytes of buf are valid; on success it equals the return value.
 */
ASYNC_API ssize_t async_read_full(int fd, void *buf, size_t len,
                                  uint64_t deadline, size_t *done);

/*
 * Writes up to len bytes from buf with one successful system call: returns
 * the count (at least 1 when len > 0; possibly less than len), or a
 * negative code: ASYNC_EPIPE / ASYNC_ECONNRESET (peer gone), another
 * negated errno, ASYNC_EINVAL (buf NULL with len > 0), or a wait error
 * (see async_wait_writable).  len == 0 returns 0 at once.
 */
ASYNC_API ssize_t async_write(int fd, const void *buf, size_t len);
ASYNC_API ssize_t async_write_deadline(int fd, const void *buf, size_t len,
                                       uint64_t deadline);

/*
 * Writes all len bytes, waiting as often as needed: returns len, or a
 * negative code as async_write.  When an error ends the write part-way,
 * *done (if not NULL) says how many bytes the kernel took; on success it
 * is len.
 */
ASYNC_API ssize_t async_write_all(int fd, const void *buf, size_t len);
ASYNC_API ssize_t async_write_all_deadline(int fd, const void *buf,
                                           size_t len, uint64_t deadline,
                                           size_t *done);

/*
 * Accepts a connection on the listening socket lfd and returns the new fd,
 * non-blocking and close-on-exec (the caller owns it).  If addr is not
 * NULL the peer address is stored there and *addrlen updated, as accept(2).
 * Errors: ASYNC_EMFILE / ASYNC_ENFILE (out of fds: the pending connection
 * stays queued, and this call returns at once rather than spinning; see
 * docs/design-io.md for recovery), other negated errnos of accept(2)
 * (ASYNC_EINVAL for an fd that is not listening), or a wait error.
 * Connections the peer aborted before they were accepted are skipped.
 */
ASYNC_API int async_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen);
ASYNC_API int async_accept_deadline(int lfd, struct sockaddr *addr,
                                    socklen_t *addrlen, uint64_t deadline);

/*
 * Connects the non-blocking socket fd to addr and waits until the
 * connection is established: returns 0, or the connection's negated errno
 * (ASYNC_ECONNREFUSED, -ENETUNREACH, ...), ASYNC_EINVAL (addr NULL), or a
 * wait error; ASYNC_ETIMEDOUT when the deadline passes first (the socket
 * is then half-way through a connection attempt: close it).  A Unix socket
 * whose listener's backlog is full is retried every few milliseconds until
 * the deadline.
 */
ASYNC_API int async_connect(int fd, const struct sockaddr *addr,
                            socklen_t addrlen);
ASYNC_API int async_connect_deadline(int fd, const struct sockaddr *addr,
                                     socklen_t addrlen, uint64_t deadline);

/*
 * Closes fd safely with respect to the running loop: every task waiting on
 * fd is woken with ASYNC_EBADF, the loop's backend forgets the fd, and only
 * then is it closed, so no stale registration survives into a reused fd
 * number.  Callable from any code on the loop's thread (inside a task or
 * not); with no running loop in this thread it just closes.  Returns 0,
 * ASYNC_EBADF (fd < 0 or not open), or close(2)'s negated errno (the fd is
 * released either way).  EINTR counts as success: Linux has released the
 * fd by then, and closing again could close someone else's.
 */
ASYNC_API int async_close(int fd);

#ifdef __cplusplus
}
#endif

#endif
