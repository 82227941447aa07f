/*
 * Non-blocking fd I/O for tasks: the syscall first, a readiness wait only
 * on EAGAIN.  See docs/design-io.md.
 *
 * The waits go through async__loop_fd_wait, which registers the fd with the
 * backend on first use and leaves it registered, so a read loop that hits
 * EAGAIN on every message costs one epoll_ctl per connection, not one per
 * wait.  Nothing here keeps per-fd state of its own: the loop's table is the
 * only record, and async_close() is the one place that clears it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <async/io.h>

#include "core/internal.h"
#include "io/io_internal.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* platforms without it use SO_NOSIGPIPE per socket */
#endif

/* Unix-socket connect retry interval while the listener's backlog is full. */
#define CONNECT_RETRY_NS (2 * ASYNC_MSEC)

/* ---- deadlines and the calling task ------------------------------------- */

uint64_t async_deadline_in(int64_t timeout)
{
    if (timeout < 0)
        return ASYNC_NO_DEADLINE;
    async_loop *loop = async_get_running_loop();
    uint64_t now;
    if (loop) {
        now = async__loop_now(loop);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    uint64_t d = now + (uint64_t)timeout;
    return d < now ? ASYNC_NO_DEADLINE : d;
}

_Thread_local async__io_tls async__io_tls_state ASYNC__TLS_IE;

static bool would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

int async_set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (fl & O_NONBLOCK)
        return 0;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* ---- readiness waits ------------------------------------------------------- */

static int wait_ready(int fd, unsigned ev, uint64_t deadline)
{
    async_task *t;
    int rc = async__io_enter(&t);
    if (rc)
        return rc;
    if (fd < 0)
        return ASYNC_EBADF;
    return async__io_wait(t, fd, ev, deadline);
}

int async_wait_readable(int fd, uint64_t deadline)
{
    return wait_ready(fd, ASYNC__EV_READ, deadline);
}

int async_wait_writable(int fd, uint64_t deadline)
{
    return wait_ready(fd, ASYNC__EV_WRITE, deadline);
}

/* ---- read ------------------------------------------------------------------- */

static int check_buf(int fd, const void *buf, size_t len)
{
    if (fd < 0)
        return ASYNC_EBADF;
    if (!buf && len > 0)
        return ASYNC_EINVAL;
    return 0;
}

ssize_t async_read_deadline(int fd, void *buf, size_t len, uint64_t deadline)
{
    async_task *t;
    int rc = async__io_enter(&t);
    if (rc || (rc = check_buf(fd, buf, len)))
        return rc;
    if (len == 0)
        return 0;
    /* See the drained hint in io_internal.h.  An fd that cannot be polled
     * (a regular file at EOF) answers ASYNC_EPERM: just read it.  The hint
     * only defers the system call, never skips it: a wait that times out
     * (a deadline already past: "take what is there") still reads once,
     * as io.h promises, and data waiting in the buffer is returned. */
    if (async__io_drained_take(t, fd)) {
        rc = async__io_wait(t, fd, ASYNC__EV_READ, deadline);
        if (rc && rc != ASYNC_EPERM && rc != ASYNC_ETIMEDOUT)
            return rc;
    }
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n > 0 && (size_t)n < len)
            async__io_drained_set(t, fd);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (!would_block(errno))
            return -errno;
        if ((rc = async__io_wait(t, fd, ASYNC__EV_READ, deadline)))
            return rc;
    }
}

ssize_t async_read(int fd, void *buf, size_t len)
{
    return async_read_deadline(fd, buf, len, ASYNC_NO_DEADLINE);
}

ssize_t async_read_full(int fd, void *buf, size_t len, uint64_t deadline,
                        size_t *done)
{
    size_t got = 0;
    ssize_t rc = 0;
    if (done)
        *done = 0;
    while (got < len) {
        rc = async_read_deadline(fd, (char *)buf + got, len - got, deadline);
        if (rc <= 0)
            break;
        got += (size_t)rc;
    }
    if (done)
        *done = got;
    if (rc < 0)
        return rc;
    return (ssize_t)got;
}

/* ---- write ------------------------------------------------------------------ */

/*
 * One write attempt.  send(MSG_NOSIGNAL) keeps SIGPIPE away on sockets;
 * anything else (pipes, ttys) answers ENOTSOCK and gets a plain write().
 * Trying send first costs pipes one failed system call per write, which
 * buys a per-fd type cache that could go stale when fd numbers are reused.
 */
static ssize_t write_once(int fd, const void *buf, size_t len)
{
    ssize_t n;
    do
        n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n >= 0 || errno != ENOTSOCK)
        return n;
    do
        n = write(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t async_write_deadline(int fd, const void *buf, size_t len,
                             uint64_t deadline)
{
    async_task *t;
    int rc = async__io_enter(&t);
    if (rc || (rc = check_buf(fd, buf, len)))
        return rc;
    if (len == 0)
        return 0;
    for (;;) {
        ssize_t n = write_once(fd, buf, len);
        if (n >= 0)
            return n;
        if (!would_block(errno))
            return -errno;
        if ((rc = async__io_wait(t, fd, ASYNC__EV_WRITE, deadline)))
            return rc;
    }
}

ssize_t async_write(int fd, const void *buf, size_t len)
{
    return async_write_deadline(fd, buf, len, ASYNC_NO_DEADLINE);
}

ssize_t async_write_all_deadline(int fd, const void *buf, size_t len,
                                 uint64_t deadline, size_t *done)
{
    size_t put = 0;
    ssize_t rc = 0;
    if (done)
        *done = 0;
    do {
        rc = async_write_deadline(fd, (const char *)buf + put, len - put,
                                  deadline);
        if (rc < 0)
            break;
        put += (size_t)rc;
    } while (put < len);
    if (done)
        *done = put;
    if (rc < 0)
        return rc;
    return (ssize_t)put;
}

ssize_t async_write_all(int fd, const void *buf, size_t len)
{
    return async_write_all_deadline(fd, buf, len, ASYNC_NO_DEADLINE, NULL);
}

/* ---- accept and connect ------------------------------------------------------ */

/* Gives an fd the flags every socket of the library has. */
static int sock_setup(int fd, bool set_flags)
{
    if (set_flags) {
        int rc = async_set_nonblocking(fd);
        if (rc)
            return rc;
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
            return -errno;
    }
#ifdef SO_NOSIGPIPE
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
    return 0;
}

/* One accept attempt: the new fd or -1 with errno. */
static int accept_once(int lfd, struct sockaddr *addr, socklen_t *addrlen)
{
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    int fd = accept4(lfd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    bool set_flags = false;
#else
    int fd = accept(lfd, addr, addrlen);
    bool set_flags = true;
#endif
    if (fd < 0)
        return -1;
    int rc = sock_setup(fd, set_flags);
    if (rc) {
        close(fd);
        errno = -rc;
        return -1;
    }
    return fd;
}

/* accept(2) errors that concern one aborted connection, not the listener:
 * skip it and try the next one, as accept(2) itself recommends. */
static bool accept_transient(int err)
{
    return err == EINTR || err == ECONNABORTED || err == EPROTO ||
           err == EPERM;
}

int async_accept_deadline(int lfd, struct sockaddr *addr, socklen_t *addrlen,
                          uint64_t deadline)
{
    async_task *t;
    int rc = async__io_enter(&t);
    if (rc)
        return rc;
    if (lfd < 0)
        return ASYNC_EBADF;
    if (addr && !addrlen)
        return ASYNC_EINVAL;
    for (;;) {
        int fd = accept_once(lfd, addr, addrlen);
        if (fd >= 0) {
            async__loop_fd_opened(t->fut.loop, fd);
            return fd;
        }
        if (accept_transient(errno))
            continue;
        if (!would_block(errno))
            return -errno;
        if ((rc = async__io_wait(t, lfd, ASYNC__EV_READ, deadline)))
            return rc;
    }
}

int async_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen)
{
    return async_accept_deadline(lfd, addr, addrlen, ASYNC_NO_DEADLINE);
}

/*
 * The outcome of a connection attempt that was in progress.
 *
 * libkqueue (ASYNC_KQUEUE_EMULATED) reads SO_ERROR itself when epoll
 * reports EPOLLERR, to fill in the event's fflags, and reading it clears
 * it; a native kqueue copies so_error into the event without clearing it.
 * So under libkqueue a refused connect leaves SO_ERROR at 0 by the time we
 * look, and getpeername() is the only way to tell a failed attempt from a
 * connected socket; the reason is lost (docs/kqueue.md), so it is
 * reported as ASYNC_ENOTCONN rather than as a success.
 */
static int connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
#ifdef ASYNC_KQUEUE_EMULATED
    if (err == 0) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0)
            return -errno;
    }
#endif
    return -err;
}

/*
 * EINPROGRESS (and EINTR/EALREADY, where the attempt carries on in the
 * kernel) wait for writability and then read SO_ERROR.  A Unix socket
 * answers EAGAIN when the listener's backlog is full; that attempt is not
 * in progress and the socket is not pollable for it, so it is retried
 * after a short sleep instead.
 */
int async_connect_deadline(int fd, const struct sockaddr *addr,
                           socklen_t addrlen, uint64_t deadline)
{
    async_task *t;
    int rc = async__io_enter(&t);
    if (rc)
        return rc;
    if (fd < 0)
        return ASYNC_EBADF;
    if (!addr)
        return ASYNC_EINVAL;
    (void)sock_setup(fd, false);
    for (;;) {
        if (connect(fd, addr, addrlen) == 0 || errno == EISCONN)
            return 0;
        int err = errno;
        if (err == EINPROGRESS || err == EINTR || err == EALREADY) {
            if ((rc = async__io_wait(t, fd, ASYNC__EV_WRITE, deadline)))
                return rc;
            return connect_result(fd);
        }
        if (!would_block(err))
            return -err;
        uint64_t now = async__loop_now(t->fut.loop);
        uint64_t wake = now + CONNECT_RETRY_NS;
        if (deadline <= now)
            return ASYNC_ETIMEDOUT;
        rc = async_sleep_until(wake < deadline ? wake : deadline);
        if (rc)
            return rc;
    }
}

int async_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    return async_connect_deadline(fd, addr, addrlen, ASYNC_NO_DEADLINE);
}

/* ---- close -------------------------------------------------------------------- */

int async_close(int fd)
{
    if (fd < 0)
        return ASYNC_EBADF;
    async_loop *loop = async_get_running_loop();
    if (loop)
        async__loop_fd_forget(loop, fd, ASYNC_EBADF);
    async__io_drained_forget(fd);
    if (close(fd) < 0 && errno != EINTR)
        return -errno;
    return 0;
}
