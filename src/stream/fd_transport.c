/*
 * The plain fd transport: the transport contract (transport.h) on the
 * public fd I/O layer (async/io.h).  Reads and waiting writes are
 * async_read_deadline / async_write_deadline, which try the system call
 * first and wait for readiness only on EAGAIN.  try_write makes one
 * non-blocking send itself, because async_write may yield (the I/O
 * fairness budget) and writer.write() must never suspend.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <async/io.h>
#include <async/net.h>

#include "stream/transport.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* platforms without it set SO_NOSIGPIPE per socket */
#endif

typedef struct fd_transport {
    int fd;                              /* the fd, -1 once closed */
    void (*on_close)(void *arg, int fd); /* releases fd, or NULL: close it */
    void *on_close_arg;                  /* for on_close */
} fd_transport;

static ssize_t fdt_read(void *ctx, void *buf, size_t n, uint64_t deadline)
{
    fd_transport *t = ctx;
    if (t->fd < 0)
        return ASYNC_EBADF;
    return async_read_deadline(t->fd, buf, n, deadline);
}

static ssize_t fdt_write(void *ctx, const void *buf, size_t n,
                         uint64_t deadline)
{
    fd_transport *t = ctx;
    if (t->fd < 0)
        return ASYNC_EBADF;
    return async_write_deadline(t->fd, buf, n, deadline);
}

/* One non-blocking attempt: send(MSG_NOSIGNAL) on sockets, write() on
 * anything else (ENOTSOCK), as async_write does. */
static ssize_t fdt_try_write(void *ctx, const void *buf, size_t n)
{
    fd_transport *t = ctx;
    if (t->fd < 0)
        return ASYNC_EBADF;
    ssize_t k;
    do
        k = send(t->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (k < 0 && errno == EINTR);
    if (k < 0 && errno == ENOTSOCK) {
        do
            k = write(t->fd, buf, n);
        while (k < 0 && errno == EINTR);
    }
    if (k >= 0)
        return k;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return ASYNC_EAGAIN;
    return -errno;
}

static void fdt_close(void *ctx, bool abort);

/* Sockets get shutdown(SHUT_WR); a pipe's write end is closed, which is
 * the only way to give its reader end of file. */
static int fdt_shutdown_write(void *ctx, uint64_t deadline)
{
    (void)deadline;
    fd_transport *t = ctx;
    if (t->fd < 0)
        return ASYNC_EBADF;
    if (shutdown(t->fd, SHUT_WR) == 0)
        return 0;
    if (errno != ENOTSOCK)
        return errno == ENOTCONN ? 0 : -errno;
    fdt_close(ctx, false);
    return 0;
}

static void fdt_close(void *ctx, bool abort)
{
    fd_transport *t = ctx;
    if (t->fd < 0)
        return;
    int fd = t->fd;
    t->fd = -1;
    if (abort) {
        /* SO_LINGER 0: the peer sees a reset and the unsent data goes,
         * as asyncio's abort() on a socket. */
        struct linger lg = {1, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (t->on_close)
        t->on_close(t->on_close_arg, fd);
    else
        async_close(fd);
}

static void fdt_free(void *ctx)
{
    fdt_close(ctx, true);
    free(ctx);
}

static int fdt_local_addr(void *ctx, async_addr *out)
{
    fd_transport *t = ctx;
    return t->fd < 0 ? ASYNC_EBADF : async_sock_local_addr(t->fd, out);
}

static int fdt_peer_addr(void *ctx, async_addr *out)
{
    fd_transport *t = ctx;
    return t->fd < 0 ? ASYNC_EBADF : async_sock_peer_addr(t->fd, out);
}

static int fdt_fd(void *ctx)
{
    return ((fd_transport *)ctx)->fd;
}

static const async__transport_ops fd_ops = {
    .name = "fd",
    .read = fdt_read,
    .write = fdt_write,
    .try_write = fdt_try_write,
    .shutdown_write = fdt_shutdown_write,
    .close = fdt_close,
    .free = fdt_free,
    .local_addr = fdt_local_addr,
    .peer_addr = fdt_peer_addr,
    .fd = fdt_fd,
};

int async__fd_transport_new(int fd, void (*on_close)(void *arg, int fd),
                            void *arg, async__transport *out)
{
    if (fd < 0 || !out)
        return ASYNC_EINVAL;
    fd_transport *t = malloc(sizeof(*t));
    if (!t)
        return ASYNC_ENOMEM;
    t->fd = fd;
    t->on_close = on_close;
    t->on_close_arg = arg;
    out->ops = &fd_ops;
    out->ctx = t;
    return 0;
}
