/*
 * The snippets of docs/guide-networking.md, as one program that runs them:
 * a TCP echo server and a client talking over loopback, a read with a
 * timeout, a UDP round trip, and asyncio's stream echo server and client.  Exits 0 when every snippet behaved.
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

/* ---- guide: streams ---------------------------------------------------------- */

static int handle_echo(async_reader *reader, async_writer *writer, void *arg)
{
    (void)arg;
    char data[100];
    ssize_t n = async_reader_read(reader, data, sizeof(data),
                                  ASYNC_NO_DEADLINE);
    if (n < 0)
        return (int)n;
    async_addr addr;
    char peer[ASYNC_ADDR_STRLEN] = "?";
    if (async_writer_peer_addr(writer, &addr) == 0)
        async_addr_format(&addr, peer, sizeof(peer));
    printf("Received %.*s from %s\n", (int)n, data, peer);
    printf("Send: %.*s\n", (int)n, data);
    int rc = async_writer_write(writer, data, (size_t)n);
    if (rc == 0)
        rc = async_writer_drain(writer, ASYNC_NO_DEADLINE);
    printf("Close the connection\n");
    async_writer_close(writer);
    return rc;
}

static int tcp_echo_client(const char *where, const char *message)
{
    async_reader *reader;
    async_writer *writer;
    int rc = async_open_connection(where, NULL, &reader, &writer);
    if (rc)
        return rc;
    printf("Send: %s\n", message);
    rc = async_writer_write(writer, message, strlen(message));
    if (rc == 0)
        rc = async_writer_drain(writer, ASYNC_NO_DEADLINE);
    char data[100];
    ssize_t n = rc ? rc : async_reader_read(reader, data, sizeof(data),
                                            ASYNC_NO_DEADLINE);
    if (n > 0)
        printf("Received: %.*s\n", (int)n, data);
    printf("Close the connection\n");
    async_writer_close(writer);
    async_writer_wait_closed(writer, ASYNC_NO_DEADLINE);
    async_reader_free(reader);
    async_writer_free(writer);
    return n < 0 ? (int)n : 0;
}

static int streams_demo(void)
{
    async_server *server;
    int rc = async_start_server("127.0.0.1:0", handle_echo, NULL, NULL,
                                &server);
    if (rc)
        return rc;
    async_addr addr;
    char where[ASYNC_ADDR_STRLEN];
    async_server_addr(server, &addr);
    async_addr_format(&addr, where, sizeof(where));
    printf("Serving on %s\n", where);

    rc = tcp_echo_client(where, "Hello World!");

    async_server_close(server);
    async_server_wait_closed(server, ASYNC_NO_DEADLINE);
    async_server_free(server);
    return rc;
}

/* A line protocol: each line comes back upper-cased, until "quit". */
static int handle_lines(async_reader *reader, async_writer *writer, void *arg)
{
    (void)arg;
    for (;;) {
        const char *line;
        size_t len;
        int rc = async_reader_readline(reader, &line, &len,
                                       async_deadline_in(30 * ASYNC_SEC));
        if (rc == ASYNC_ELIMIT)
            continue;          /* longer than the limit: dropped */
        if (rc < 0)
            return rc;         /* ASYNC_ETIMEDOUT: idle for 30 s */
        if (len == 0 || strncmp(line, "quit", 4) == 0)
            return 0;          /* end of file, or the client is done */
        char up[256];
        size_t n = len < sizeof(up) ? len : sizeof(up);
        for (size_t i = 0; i < n; i++)
            up[i] = (char)(line[i] >= 'a' && line[i] <= 'z' ? line[i] - 32
                                                            : line[i]);
        if ((rc = async_writer_write(writer, up, n)) ||
            (rc = async_writer_drain(writer, ASYNC_NO_DEADLINE)))
            return rc;
    }
}

/* Runs handle_lines behind a server and checks one exchange. */
static int lines_demo(void)
{
    async_server *server;
    int rc = async_start_server("127.0.0.1:0", handle_lines, NULL, NULL,
                                &server);
    if (rc)
        return rc;
    async_addr addr;
    char where[ASYNC_ADDR_STRLEN];
    async_server_addr(server, &addr);
    async_addr_format(&addr, where, sizeof(where));
    async_reader *r = NULL;
    async_writer *w = NULL;
    rc = async_open_connection(where, NULL, &r, &w);
    const char *line;
    size_t len = 0;
    if (rc == 0)
        rc = async_writer_write(w, "hello\nquit\n", 11);
    if (rc == 0)
        rc = async_reader_readline(r, &line, &len, ASYNC_NO_DEADLINE);
    if (rc == 0 && (len != 6 || memcmp(line, "HELLO\n", 6) != 0))
        rc = ASYNC_EFAILED;
    if (w) {
        async_reader_free(r);
        async_writer_free(w);
    }
    async_server_close(server);
    async_server_wait_closed(server, ASYNC_NO_DEADLINE);
    async_server_free(server);
    return rc;
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
    if (rc == 0)
        rc = streams_demo();
    if (rc == 0)
        rc = lines_demo();
    if (rc < 0)
        fprintf(stderr, "guide_net: %s\n", async_strerror(rc));
    return rc;
}

int main(void)
{
    return async_run(main_task, NULL, NULL) == 0 ? 0 : 1;
}
