/*
 * The libuv anchor for bench/run_echo.sh: a libuv echo server written the
 * fast way.  Per connection one 64 KiB read buffer (no malloc per read);
 * echo with uv_try_write first, and only what the kernel did not take goes
 * through uv_write (copied, with reading stopped until it completes, so
 * the peer gets back-pressure just as with the other servers).
 *
 *   uv_echo_server [--port P]     (0: any free port; prints it)
 *
 * Runs until killed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BUF 65536

typedef struct conn {
    uv_tcp_t tcp;        /* the connection (first: handle <-> conn) */
    uv_write_t req;      /* the one outstanding uv_write, if any */
    char *pending;       /* its copied bytes, or NULL */
    char buf[BUF];       /* read buffer */
} conn;

static uv_loop_t *loop;

static void on_close(uv_handle_t *h)
{
    conn *c = (conn *)h;
    free(c->pending);
    free(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    conn *c = (conn *)h;
    *buf = uv_buf_init(c->buf, BUF);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
    conn *c = req->data;
    free(c->pending);
    c->pending = NULL;
    if (status < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = (conn *)s;
    if (n < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (n == 0)
        return;
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)n);
    int w = uv_try_write(s, &out, 1);
    if (w == n)
        return;
    if (w < 0 && w != UV_EAGAIN) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    size_t done = w > 0 ? (size_t)w : 0;
    c->pending = malloc((size_t)n - done);
    memcpy(c->pending, buf->base + done, (size_t)n - done);
    out = uv_buf_init(c->pending, (unsigned)((size_t)n - done));
    c->req.data = c;
    uv_read_stop(s);
    uv_write(&c->req, s, &out, 1, on_write);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    conn *c = malloc(sizeof(*c));
    c->pending = NULL;
    uv_tcp_init(loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    int port = 0;
    if (argc == 3 && strcmp(argv[1], "--port") == 0)
        port = atoi(argv[2]);
    loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, SOMAXCONN, on_connection);
    if (rc) {
        fprintf(stderr, "uv_echo_server: %s\n", uv_strerror(rc));
        return 1;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&server, (struct sockaddr *)&ss, &len);
    printf("uv_echo_server: listening on 127.0.0.1:%d\n",
           ntohs(((struct sockaddr_in *)&ss)->sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
