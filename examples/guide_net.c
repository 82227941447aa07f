/*
 * The snippets of docs/guide-networking.md, as one program that runs them:
 * a TCP echo server and a client talking over loopback, a read with a
 * timeout, and a UDP round trip.  Exits 0 when every snippet behaved.
 * (tests/check_snippets.py checks the guide's blocks against this file.)
 */
#include <async.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- guide: a TCP server ---------------------------------------------------- */

/* One connection: echo until the client closes its side. */
static int serve_conn(void *arg, void **result)
{
    (void)result;
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = async_read(fd, buf, sizeof(buf))) > 0)
        if (async_write_all(fd, buf, (size_t)n) < 0)
            break;
    async_close(fd);
    return 0;
}

/* The accept loop: one task per connection, until the listener is
 * closed (async_close wakes async_accept with ASYNC_EBADF). */
static int serve(void *arg, void **result)
{
    (void)result;
    int lfd = *(int *)arg;
    for (;;) {
        int fd = async_accept(lfd, NULL, NULL);
        if (fd == ASYNC_EMFILE || fd == ASYNC_ENFILE) {
            async_sleep(10 * ASYNC_MSEC); /* out of fds: back off, retry */
            continue;
        }
        if (fd < 0)
            return fd == ASYNC_EBADF ? 0 : fd;
        if (async_spawn(NULL, serve_conn, (void *)(intptr_t)fd) < 0)
            async_close(fd);
    }
}

/* ---- guide: a TCP client ---------------------------------------------------- */

/* Sends `question` to the echo server at `where` and reads the echo. */
static int ask(const char *where, const char *question, char *answer,
               size_t size)
{
    int fd = async_tcp_connect(where, 5 * ASYNC_SEC);
    if (fd < 0)
        return fd;
    size_t len = strlen(question) < size ? strlen(question) : size - 1;
    ssize_t n = async_write_all(fd, question, len);
    if (n >= 0)
        n = async_read_full(fd, answer, len, async_deadline_in(5 * ASYNC_SEC),
                            NULL);
    async_close(fd);
    if (n < 0)
        return (int)n;
    answer[n] = '\0';
    return 0;
}

/* ---- guide: putting them together ------------------------------------------- */

static int tcp_demo(void)
{
    int lfd = async_tcp_listen("127.0.0.1:0", -1, 0); /* port 0: any */
    if (lfd < 0)
        return lfd;
    async_addr addr;
    char where[ASYNC_ADDR_STRLEN];
    async_sock_local_addr(lfd, &addr);
    async_addr_format(&addr, where, sizeof(where)); /* "127.0.0.1:PORT" */

    async_task *server;
    int rc = async_spawn(&server, serve, &lfd);
    if (rc < 0) {
        async_close(lfd);
        return rc;
    }
    char answer[64];
    rc = ask(where, "hello, libasync", answer, sizeof(answer));
    if (rc == 0)
        printf("echoed: %s\n", answer);
    async_close(lfd); /* the accept loop ends */
    async_task_await(server, NULL);
    async_task_unref(server);
    return rc;
}

/* ---- guide: timeouts -------------------------------------------------------- */

/* Reads one line's worth, giving up after 100 ms of silence. */
static int read_with_timeout(int fd)
{
    char buf[128];
    ssize_t n = async_read_deadline(fd, buf, sizeof(buf),
                                    async_deadline_in(100 * ASYNC_MSEC));
    if (n == ASYNC_ETIMEDOUT)
        printf("no data within 100 ms\n");
    return n < 0 ? (int)n : 0;
}

static int timeout_demo(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
        return ASYNC_EFAILED;
    int rc = read_with_timeout(sv[0]); /* nobody writes */
    async_close(sv[0]);
    async_close(sv[1]);
    return rc == ASYNC_ETIMEDOUT ? 0 : ASYNC_EFAILED;
}

/* ---- guide: UDP ------------------------------------------------------------- */

static int udp_demo(void)
{
    int a = async_udp_bind("127.0.0.1:0", 0);
    int b = async_udp_bind("127.0.0.1:0", 0);
    async_addr to, from;
    char buf[64];
    ssize_t n = a < 0 ? a : b;
    if (a >= 0 && b >= 0 && (n = async_sock_local_addr(b, &to)) == 0)
        n = async_udp_sendto(a, "ping", 4, &to, ASYNC_NO_DEADLINE);
    if (n >= 0)
        n = async_udp_recvfrom(b, buf, sizeof(buf), &from,
                               async_deadline_in(ASYNC_SEC));
    if (n >= 0)
        printf("got %d bytes over UDP\n", (int)n);
    if (a >= 0)
        async_close(a);
    if (b >= 0)
        async_close(b);
    return n == 4 ? 0 : ASYNC_EFAILED;
}

static int main_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = tcp_demo();
    if (rc == 0)
        rc = timeout_demo();
    if (rc == 0)
        rc = udp_demo();
    if (rc < 0)
        fprintf(stderr, "guide_net: %s\n", async_strerror(rc));
    return rc;
}

int main(void)
{
    return async_run(main_task, NULL, NULL) == 0 ? 0 : 1;
}
