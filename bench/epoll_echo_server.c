/*
 * The hand-written anchor for bench/run_echo.sh: a single-threaded,
 * level-triggered epoll echo server, the way one writes it in C without a
 * library.  Per connection: one 64 KiB buffer; read, then write what was
 * read; a short write parks the rest and waits for EPOLLOUT (reads pause
 * meanwhile, which is also how the peer gets back-pressure).
 *
 *   epoll_echo_server [--port P]     (0: any free port; prints it)
 *
 * Runs until killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536
#define MAX_EVENTS 256

typedef struct conn {
    int fd;          /* the connection */
    size_t off;      /* start of unsent bytes in buf */
    size_t len;      /* end of unsent bytes in buf */
    char buf[BUF];   /* what was read and not yet echoed */
} conn;

static int ep;

static void conn_close(conn *c)
{
    close(c->fd); /* also removes it from the epoll set */
    free(c);
}

static void set_events(conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what is pending; returns -1 if the connection must go. */
static int flush(conn *c)
{
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off,
                         MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->off += (size_t)n;
    }
    c->off = c->len = 0;
    return 0;
}

/* One readiness event: echo everything that can be read now. */
static void on_event(conn *c, uint32_t events)
{
    if (c->len > 0) { /* waiting for EPOLLOUT */
        if (flush(c) < 0)
            return conn_close(c);
        if (c->len > 0)
            return;
        set_events(c, EPOLLIN);
        if (!(events & EPOLLIN))
            return;
    }
    ssize_t n = read(c->fd, c->buf, BUF);
    if (n == 0 || (n < 0 && errno != EAGAIN))
        return conn_close(c);
    if (n < 0)
        return;
    c->len = (size_t)n;
    if (flush(c) < 0)
        return conn_close(c);
    if (c->len > 0)
        set_events(c, EPOLLOUT);
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn *c = malloc(sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->off = c->len = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(fd, SOMAXCONN) < 0) {
        perror("epoll_echo_server: listen");
        exit(1);
    }
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    printf("epoll_echo_server: listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

int main(int argc, char **argv)
{
    int port = 0;
    if (argc == 3 && strcmp(argv[1], "--port") == 0)
        port = atoi(argv[2]);
    int lfd = listen_on(port);
    ep = epoll_create1(EPOLL_CLOEXEC);
    static int lcookie;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &lcookie};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == &lcookie)
                on_accept(lfd);
            else
                on_event(events[i].data.ptr, events[i].events);
        }
    }
}
