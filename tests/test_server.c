/*
 * start_server and open_connection on loopback: a line echo server with
 * many concurrent clients, every byte checked; server close with live
 * clients, close_clients and abort_clients; a failing handler reported
 * through the exception handler while the server goes on; a handler task
 * cancelled before its first step does not leak its connection; the
 * connection limit; Happy Eyeballs preferring the address that answers
 * (a refused one, a silent one: a listener whose backlog is full); a
 * connect timeout; Unix sockets; local_addr; a server on three threads
 * with one close and wait_closed; out of file descriptors (a child process
 * with a low RLIMIT_NOFILE) the server stays up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "stream/server.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* What the tasks of one test saw; asserted after the loop returns. */
typedef struct rec {
    async_loop *loop;    /* loop under test */
    th_leaks leaks;      /* counters before the test */
    async_server *srv;   /* the test's server */
    char where[ASYNC_ADDR_STRLEN]; /* its address as a string */
    int rc[16];          /* return codes seen inside tasks */
    size_t n[16];        /* counts seen inside tasks */
    int handler_runs;    /* handlers started */
    int handler_fail;    /* connection number whose handler fails, or -1 */
    int reported;        /* exception handler calls */
    int reported_err;    /* the last reported error */
    int clients_ok;      /* clients that saw every echo */
} rec;

static rec R;

static int setup(void **state)
{
    (void)state;
    memset(&R, 0, sizeof(R));
    R.handler_fail = -1;
    th_leaks_begin(&R.leaks);
    assert_int_equal(async_loop_new(&R.loop), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_loop_free(R.loop), 0);
    th_leaks_end(&R.leaks);
    return 0;
}

static int settle(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 4; i++)
        async_sleep(0);
    return 0;
}

static int run(async_fn fn, void *arg)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(R.loop, &t, fn, arg, NULL), 0);
    int rc = async_loop_run_until_complete(R.loop, t, NULL);
    async_task_unref(t);
    assert_int_equal(async_loop_spawn(R.loop, &t, settle, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(R.loop, t, NULL), 0);
    async_task_unref(t);
    return rc;
}

static bool have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                             .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* ---- the line echo server ----------------------------------------------------- */

static void on_exception(async_loop *loop, const async_exception_context *ctx,
                         void *arg)
{
    (void)loop;
    (void)arg;
    R.reported++;
    R.reported_err = ctx->error;
}

/* Echoes lines until end of file; the handler_fail'th connection fails. */
static int echo_handler(async_reader *r, async_writer *w, void *arg)
{
    (void)arg;
    int me = R.handler_runs++;
    if (me == R.handler_fail)
        return -EPROTO;
    for (;;) {
        const char *line;
        size_t len;
        int rc = async_reader_readline(r, &line, &len, ASYNC_NO_DEADLINE);
        if (rc < 0)
            return rc == ASYNC_ECONNRESET ? 0 : rc;
        if (len == 0)
            return 0;
        if ((rc = async_writer_write(w, line, len)) ||
            (rc = async_writer_drain(w, ASYNC_NO_DEADLINE)))
            return rc;
    }
}

static int start(const char *addr, const async_server_opts *o)
{
    async_loop_set_exception_handler(async_get_running_loop(), on_exception,
                                     NULL);
    int rc = async_start_server(addr, echo_handler, NULL, o, &R.srv);
    if (rc)
        return rc;
    async_addr a;
    async_server_addr(R.srv, &a);
    async_addr_format(&a, R.where, sizeof(R.where));
    return 0;
}

static int stop(void)
{
    async_server_close(R.srv);
    int rc = async_server_wait_closed(R.srv, async_deadline_in(5 * ASYNC_SEC));
    if (rc == 0)
        rc = async_server_free(R.srv);
    R.srv = NULL;
    return rc;
}

#define LINES 20

/* One client: LINES lines of varying size, each echo checked. */
static int client(void *arg, void **result)
{
    (void)result;
    int id = (int)(intptr_t)arg;
    async_reader *r;
    async_writer *w;
    int rc = async_open_connection(R.where, NULL, &r, &w);
    if (rc)
        return rc;
    bool ok = true;
    char msg[4096];
    for (int i = 0; i < LINES && ok; i++) {
        size_t len = (size_t)((id * 131 + i * 977) % 4000) + 1;
        for (size_t k = 0; k < len; k++)
            msg[k] = (char)('a' + (id + i + k) % 26);
        msg[len] = '\n';
        rc = async_writer_write(w, msg, len + 1);
        const char *echo;
        size_t elen;
        if (rc == 0)
            rc = async_reader_readline(r, &echo, &elen, ASYNC_NO_DEADLINE);
        ok = rc == 0 && elen == len + 1 && memcmp(echo, msg, len + 1) == 0;
    }
    async_writer_close(w);
    int crc = async_writer_wait_closed(w, ASYNC_NO_DEADLINE);
    async_reader_free(r);
    async_writer_free(w);
    if (ok && crc == 0)
        R.clients_ok++;
    return rc ? rc : crc;
}

#define CLIENTS 100

static int echo_main(void *arg, void **result)
{
    (void)result;
    if ((R.rc[0] = start((const char *)arg, NULL)))
        return 0;
    async_task *t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        async_spawn(&t[i], client, (void *)(intptr_t)i);
    for (int i = 0; i < CLIENTS; i++) {
        async_task_await(t[i], NULL);
        async_task_unref(t[i]);
    }
    R.n[0] = async_server_connections(R.srv);
    R.rc[1] = stop();
    return 0;
}

static void test_echo_tcp(void **state)
{
    (void)state;
    assert_int_equal(run(echo_main, "127.0.0.1:0"), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.clients_ok, CLIENTS);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.handler_runs, CLIENTS);
    assert_int_equal(R.reported, 0);
}

static void test_echo_unix(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof(path), "unix:/tmp/test_server.%d.sock",
             (int)getpid());
    assert_int_equal(run(echo_main, path), 0);
    unlink(path + 5);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.clients_ok, CLIENTS);
    assert_int_equal(R.rc[1], 0);
}

/* ---- close with live clients -------------------------------------------------------- */

/* Sends "ping\n" and returns 0 if "ping\n" comes back. */
static int ping(async_reader *r, async_writer *w)
{
    int rc = async_writer_write(w, "ping\n", 5);
    const char *d;
    size_t len;
    if (rc == 0)
        rc = async_reader_readline(r, &d, &len, async_deadline_in(5 * ASYNC_SEC));
    if (rc == 0 && (len != 5 || memcmp(d, "ping\n", 5) != 0))
        rc = ASYNC_EFAILED;
    return rc;
}

static int close_main(void *arg, void **result)
{
    (void)result;
    bool abort = arg != NULL;
    if ((R.rc[15] = start("127.0.0.1:0", NULL)))
        return 0;
    async_reader *r[3];
    async_writer *w[3];
    for (int i = 0; i < 3; i++)
        R.rc[i] = async_open_connection(R.where, NULL, &r[i], &w[i]);
    for (int i = 0; i < 3; i++)
        R.rc[3 + i] = ping(r[i], w[i]);
    /* close(): no more accepting, the live connections go on. */
    async_server_close(R.srv);
    R.rc[6] = async_server_is_serving(R.srv);
    async_reader *r2;
    async_writer *w2;
    R.rc[7] = async_open_connection(R.where, NULL, &r2, &w2);
    R.rc[8] = ping(r[0], w[0]);
    R.rc[9] = async_server_wait_closed(R.srv,
                                       async_deadline_in(20 * ASYNC_MSEC));
    R.n[0] = async_server_connections(R.srv);
    /* close_clients / abort_clients end the handlers. */
    if (abort)
        async_server_abort_clients(R.srv);
    else
        async_server_close_clients(R.srv);
    R.rc[10] = async_server_wait_closed(R.srv,
                                        async_deadline_in(5 * ASYNC_SEC));
    const char *d;
    size_t len;
    R.rc[11] = async_reader_readline(r[1], &d, &len, ASYNC_NO_DEADLINE);
    R.n[1] = len;
    R.rc[12] = async_server_free(R.srv);
    for (int i = 0; i < 3; i++) {
        async_reader_free(r[i]);
        async_writer_free(w[i]);
    }
    return 0;
}

static void check_close(bool abort)
{
    assert_int_equal(run(close_main, abort ? "abort" : NULL), 0);
    assert_int_equal(R.rc[15], 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(R.rc[i], 0);
    assert_int_equal(R.rc[6], 0);
    assert_int_equal(R.rc[7], ASYNC_ECONNREFUSED);
    assert_int_equal(R.rc[8], 0);
    assert_int_equal(R.rc[9], ASYNC_ETIMEDOUT);
    assert_int_equal(R.n[0], 3);
    assert_int_equal(R.rc[10], 0);
    /* The client sees end of file (or a reset, after an abort). */
    if (abort)
        assert_true(R.rc[11] == 0 || R.rc[11] == ASYNC_ECONNRESET);
    else
        assert_int_equal(R.rc[11], 0);
    if (R.rc[11] == 0)
        assert_int_equal(R.n[1], 0);
    assert_int_equal(R.rc[12], 0);
    assert_int_equal(R.reported, 0);
}

static void test_close_clients(void **state)
{
    (void)state;
    check_close(false);
}

static void test_abort_clients(void **state)
{
    (void)state;
    check_close(true);
}

/* ---- a failing handler ------------------------------------------------------------------ */

static int failing_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    R.handler_fail = 1;
    if ((R.rc[15] = start("127.0.0.1:0", NULL)))
        return 0;
    async_reader *r[3];
    async_writer *w[3];
    for (int i = 0; i < 3; i++) {
        R.rc[i] = async_open_connection(R.where, NULL, &r[i], &w[i]);
        if (R.rc[i] == 0)
            R.rc[3 + i] = ping(r[i], w[i]);
        /* One at a time, so connection 1 is the failing one. */
        async_sleep(ASYNC_MSEC);
    }
    R.rc[6] = async_server_is_serving(R.srv);
    for (int i = 0; i < 3; i++) {
        async_reader_free(r[i]);
        async_writer_free(w[i]);
    }
    R.rc[7] = stop();
    return 0;
}

static void test_failing_handler(void **state)
{
    (void)state;
    assert_int_equal(run(failing_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(R.rc[i], 0);
    assert_int_equal(R.rc[3], 0);
    /* The failed connection was closed: its ping reads end of file. */
    assert_true(R.rc[4] == ASYNC_EFAILED || R.rc[4] == ASYNC_ECONNRESET ||
                R.rc[4] == ASYNC_EPIPE);
    assert_int_equal(R.rc[5], 0);
    assert_int_equal(R.rc[6], 1);
    assert_int_equal(R.rc[7], 0);
    assert_int_equal(R.reported, 1);
    assert_int_equal(R.reported_err, -EPROTO);
}

/* ---- wait_closed covers the handler's last bytes ------------------------------ */

#define BLAST (4u << 20)

/* Queues 4 MiB, far more than the socket buffers take, and returns at
 * once: the server sends the rest after the handler is done. */
static int blast_handler(async_reader *r, async_writer *w, void *arg)
{
    (void)r;
    (void)arg;
    char *buf = malloc(BLAST);
    if (!buf)
        return ASYNC_ENOMEM;
    for (size_t i = 0; i < BLAST; i++)
        buf[i] = (char)(i * 7);
    int rc = async_writer_write(w, buf, BLAST);
    free(buf);
    R.handler_runs++;
    return rc;
}

typedef struct slow_client {
    struct sockaddr_storage addr; /* the server's */
    socklen_t addrlen;
    pthread_t th;                 /* the reading thread */
    bool started;                 /* th was created */
    size_t got;                   /* bytes received, all checked */
    bool eof;                     /* the server closed after them */
} slow_client;

/* A plain blocking client on its own thread: starts reading only 100 ms
 * after connecting, reads to end of file (at most 10 s idle). */
static void *slow_reader(void *arg)
{
    slow_client *sc = arg;
    int fd = socket(sc->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sc->addr, sc->addrlen) == 0) {
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
        char buf[65536];
        ssize_t n;
        bool intact = true;
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
            for (ssize_t i = 0; i < n; i++)
                intact = intact && buf[i] == (char)((sc->got + (size_t)i) * 7);
            sc->got += (size_t)n;
        }
        sc->eof = n == 0 && intact;
    }
    close(fd);
    return NULL;
}

static int flush_main(void *arg, void **result)
{
    (void)result;
    slow_client *sc = arg;
    R.rc[15] = async_start_server("127.0.0.1:0", blast_handler, NULL, NULL,
                                  &R.srv);
    if (R.rc[15])
        return 0;
    async_addr a;
    async_server_addr(R.srv, &a);
    memcpy(&sc->addr, &a.u.ss, sizeof(a.u.ss));
    sc->addrlen = a.len;
    if ((R.rc[0] = pthread_create(&sc->th, NULL, slow_reader, sc)) != 0)
        return 0;
    sc->started = true;
    while (R.handler_runs == 0)
        async_sleep(ASYNC_MSEC);
    /* The handler has returned with most of its 4 MiB still queued. */
    R.rc[1] = stop();
    return 0;
}

/* asyncio's Server.wait_closed waits until the connections' transports are
 * closed, so what a handler wrote before it returned is sent by then: the
 * program may end right after it.  The loop does not run again after
 * flush_main: the reader gets everything only if wait_closed waited for
 * it. */
static void test_wait_closed_covers_last_bytes(void **state)
{
    (void)state;
    slow_client sc = {0};
    assert_int_equal(run(flush_main, &sc), 0);
    if (sc.started)
        pthread_join(sc.th, NULL);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.handler_runs, 1);
    assert_int_equal(sc.got, BLAST);
    assert_true(sc.eof);
    assert_int_equal(R.reported, 0);
}

/* ---- a handler cancelled before its first step ------------------------------------------ */

static int cancelled_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if ((R.rc[15] = start("127.0.0.1:0", NULL)))
        return 0;
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv);
    async_task *t;
    R.rc[0] = async__server_conn_start(R.srv, sv[0], &t);
    R.n[0] = async_server_connections(R.srv);
    async_task_cancel(t);
    async_task_unref(t);
    R.rc[1] = async_server_close(R.srv);
    R.rc[2] = async_server_wait_closed(R.srv, async_deadline_in(5 * ASYNC_SEC));
    /* The server closed its end: the other one reads end of file. */
    char c;
    R.rc[3] = (int)async_read(sv[1], &c, 1);
    async_close(sv[1]);
    R.rc[4] = async_server_free(R.srv);
    return 0;
}

static void test_cancelled_before_start(void **state)
{
    (void)state;
    assert_int_equal(run(cancelled_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.n[0], 1);
    assert_int_equal(R.handler_runs, 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[4], 0);
    assert_int_equal(R.reported, 0);
}

/* ---- the connection limit ------------------------------------------------------------------ */

static int limit_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_server_opts o = {.max_conns = 1};
    if ((R.rc[15] = start("127.0.0.1:0", &o)))
        return 0;
    async_reader *r[2];
    async_writer *w[2];
    R.rc[0] = async_open_connection(R.where, NULL, &r[0], &w[0]);
    R.rc[1] = ping(r[0], w[0]);
    /* The second connects (the backlog) but is not served yet. */
    R.rc[2] = async_open_connection(R.where, NULL, &r[1], &w[1]);
    async_writer_write(w[1], "ping\n", 5);
    const char *d;
    size_t len;
    R.rc[3] = async_reader_readline(r[1], &d, &len,
                                    async_deadline_in(50 * ASYNC_MSEC));
    R.n[0] = async_server_connections(R.srv);
    /* Once the first ends, the second is served. */
    async_writer_close(w[0]);
    R.rc[4] = async_reader_readline(r[1], &d, &len,
                                    async_deadline_in(5 * ASYNC_SEC));
    R.n[1] = len;
    for (int i = 0; i < 2; i++) {
        async_reader_free(r[i]);
        async_writer_free(w[i]);
    }
    R.rc[5] = stop();
    return 0;
}

static void test_connection_limit(void **state)
{
    (void)state;
    assert_int_equal(run(limit_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[3], ASYNC_ETIMEDOUT);
    assert_int_equal(R.n[0], 1);
    assert_int_equal(R.rc[4], 0);
    assert_int_equal(R.n[1], 5);
    assert_int_equal(R.rc[5], 0);
}

/* ---- Happy Eyeballs ------------------------------------------------------------------------ */

/*
 * A loopback address that never answers: a listener with backlog 0 whose
 * accept queue is already full (one connection nobody accepts), so the
 * kernel drops further SYNs and a connect just waits.
 */
typedef struct silent {
    int lfd;          /* the listener */
    int filler;       /* the connection filling its queue */
    async_addr addr;  /* its address */
} silent;

static int silent_open(silent *s)
{
    s->lfd = async_tcp_listen("127.0.0.1:0", 0, 0);
    if (s->lfd < 0)
        return s->lfd;
    async_sock_local_addr(s->lfd, &s->addr);
    s->filler = async_tcp_connect_addr(&s->addr, async_deadline_in(ASYNC_SEC));
    return s->filler < 0 ? s->filler : 0;
}

static void silent_close(silent *s)
{
    if (s->filler >= 0)
        async_close(s->filler);
    async_close(s->lfd);
}

/* A loopback address that refuses: a port that was just free. */
static int refused_addr(const char *host, async_addr *out)
{
    int fd = async_tcp_listen(host, -1, 0);
    if (fd < 0)
        return fd;
    async_sock_local_addr(fd, out);
    async_close(fd);
    return 0;
}

static int peer_port(async_writer *w)
{
    async_addr a;
    return async_writer_peer_addr(w, &a) == 0 ? async_addr_port(&a) : -1;
}

static int he_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    bool v6 = have_ipv6();
    if ((R.rc[15] = start(v6 ? "[::1]:0" : "127.0.0.1:0", NULL)))
        return 0;
    async_addr good;
    async_server_addr(R.srv, &good);
    silent s;
    if ((R.rc[14] = silent_open(&s)))
        return 0;
    async_addr refused;
    refused_addr("127.0.0.1:0", &refused);
    async_loop *loop = async_get_running_loop();
    async_reader *r;
    async_writer *w;

    /* Silent first: the answering address wins once the 250 ms stagger
     * starts it; the silent attempt is cancelled. */
    async_addr a1[2] = {s.addr, good};
    uint64_t t0 = async_loop_time(loop);
    R.rc[0] = async_open_connection_addrs(a1, 2, NULL, &r, &w);
    R.n[0] = async_loop_time(loop) - t0;
    if (R.rc[0] == 0) {
        R.rc[1] = peer_port(w) == async_addr_port(&good);
        R.rc[2] = ping(r, w);
        async_reader_free(r);
        async_writer_free(w);
    }
    /* Refused first: the next starts at once, no 250 ms wait needed. */
    async_addr a2[2] = {refused, good};
    R.rc[3] = async_open_connection_addrs(a2, 2, NULL, &r, &w);
    if (R.rc[3] == 0) {
        R.rc[4] = peer_port(w) == async_addr_port(&good);
        async_reader_free(r);
        async_writer_free(w);
    }
    /* Nothing answers: the last error. */
    async_addr a3[2] = {refused, refused};
    R.rc[5] = async_open_connection_addrs(a3, 2, NULL, &r, &w);
    /* A silent address alone hits the timeout. */
    async_connect_opts o = {.timeout = 100 * ASYNC_MSEC};
    t0 = async_loop_time(loop);
    R.rc[6] = async_open_connection_addrs(&s.addr, 1, &o, &r, &w);
    R.n[6] = async_loop_time(loop) - t0;
    /* The same with a shorter stagger, both silent: the timeout again. */
    async_addr a4[2] = {s.addr, s.addr};
    o.happy_eyeballs_delay = 10 * ASYNC_MSEC;
    R.rc[7] = async_open_connection_addrs(a4, 2, &o, &r, &w);
    silent_close(&s);
    R.rc[8] = stop();
    return 0;
}

static void test_happy_eyeballs(void **state)
{
    (void)state;
    assert_int_equal(run(he_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[14], 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 1);
    assert_int_equal(R.rc[2], 0);
    assert_true(R.n[0] >= 250 * ASYNC_MSEC);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[4], 1);
    assert_int_equal(R.rc[5], ASYNC_ECONNREFUSED);
    assert_int_equal(R.rc[6], ASYNC_ETIMEDOUT);
    assert_true(R.n[6] >= 100 * ASYNC_MSEC);
    assert_int_equal(R.rc[7], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[8], 0);
}

/* ---- options ---------------------------------------------------------------------------------- */

static int opts_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if ((R.rc[15] = start("127.0.0.1:0", NULL)))
        return 0;
    async_reader *r;
    async_writer *w;
    async_connect_opts o = {.local_addr = "127.0.0.1:0"};
    R.rc[0] = async_open_connection(R.where, &o, &r, &w);
    if (R.rc[0] == 0) {
        async_addr la;
        R.rc[1] = async_writer_local_addr(w, &la);
        R.rc[2] = la.u.sa.sa_family == AF_INET &&
                  la.u.in.sin_addr.s_addr == htonl(INADDR_LOOPBACK);
        R.rc[3] = ping(r, w);
        async_reader_free(r);
        async_writer_free(w);
    }
    async_connect_opts bad = {.local_addr = "not-an-address"};
    R.rc[4] = async_open_connection(R.where, &bad, &r, &w);
    R.rc[5] = async_open_connection(NULL, NULL, &r, &w);
#if !ASYNC_HAVE_TLS
    /* Any non-NULL TLS setting: this build has no TLS. */
    async_connect_opts tls = {.tls = (const struct async_tls_config *)&o};
    R.rc[6] = async_open_connection(R.where, &tls, &r, &w);
#endif
    R.rc[7] = async_start_server("127.0.0.1:0", NULL, NULL, NULL, &R.srv);
    R.rc[8] = stop();
    return 0;
}

static void test_options(void **state)
{
    (void)state;
    assert_int_equal(run(opts_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], 1);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[4], ASYNC_EINVAL);
    assert_int_equal(R.rc[5], ASYNC_EINVAL);
#if !ASYNC_HAVE_TLS
    assert_int_equal(R.rc[6], ASYNC_ENOTSUP);
#endif
    assert_int_equal(R.rc[7], ASYNC_EINVAL);
    assert_int_equal(R.rc[8], 0);
}

/* ---- a server on several threads ------------------------------------------------------------ */

static atomic_int group_handled; /* handlers run, over all threads */

static int group_handler(async_reader *r, async_writer *w, void *arg)
{
    (void)arg;
    atomic_fetch_add(&group_handled, 1);
    for (;;) {
        const char *line;
        size_t len;
        int rc = async_reader_readline(r, &line, &len, ASYNC_NO_DEADLINE);
        if (rc < 0 || len == 0)
            return 0;
        if (async_writer_write(w, line, len) ||
            async_writer_drain(w, ASYNC_NO_DEADLINE))
            return 0;
    }
}

#define GROUP_CLIENTS 40

static int group_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_server_group *g;
    if ((R.rc[15] = async_server_group_start("127.0.0.1:0", 3, group_handler,
                                             NULL, NULL, &g)))
        return 0;
    async_addr a;
    async_server_group_addr(g, &a);
    async_addr_format(&a, R.where, sizeof(R.where));
    async_task *t[GROUP_CLIENTS];
    for (int i = 0; i < GROUP_CLIENTS; i++)
        async_spawn(&t[i], client, (void *)(intptr_t)i);
    for (int i = 0; i < GROUP_CLIENTS; i++) {
        async_task_await(t[i], NULL);
        async_task_unref(t[i]);
    }
    /* A live client while the group closes: close_clients ends it. */
    async_reader *r;
    async_writer *w;
    R.rc[0] = async_open_connection(R.where, NULL, &r, &w);
    R.rc[1] = ping(r, w);
    R.rc[2] = async_server_group_close(g);
    R.rc[3] = async_server_group_wait_closed(g,
                                             async_deadline_in(20 * ASYNC_MSEC));
    R.rc[4] = async_server_group_close_clients(g);
    R.rc[5] = async_server_group_wait_closed(g,
                                             async_deadline_in(10 * ASYNC_SEC));
    const char *d;
    size_t len;
    R.rc[6] = async_reader_readline(r, &d, &len, ASYNC_NO_DEADLINE);
    R.n[6] = len;
    async_reader_free(r);
    async_writer_free(w);
    R.rc[7] = async_server_group_free(g);
    return 0;
}

static void test_server_group(void **state)
{
    (void)state;
    atomic_store(&group_handled, 0);
    assert_int_equal(run(group_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.clients_ok, GROUP_CLIENTS);
    assert_int_equal(atomic_load(&group_handled), GROUP_CLIENTS + 1);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[3], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[4], 0);
    assert_int_equal(R.rc[5], 0);
    assert_int_equal(R.rc[6], 0);
    assert_int_equal(R.n[6], 0);
    assert_int_equal(R.rc[7], 0);
}

/* ---- out of file descriptors ------------------------------------------------------------------ */

/*
 * The server runs in a child process whose RLIMIT_NOFILE leaves EMFILE_ROOM
 * free fds once it serves; the parent is a plain blocking client.  Beyond
 * the limit a connection is accepted and closed at once (the spare fd), so
 * the client sees end of file promptly instead of hanging; the served
 * connections go on, and once fds are free new connections are served.
 */
#define EMFILE_ROOM 4

static int byte_echo(async_reader *r, async_writer *w, void *arg)
{
    (void)arg;
    char buf[256];
    ssize_t n;
    while ((n = async_reader_read(r, buf, sizeof(buf), ASYNC_NO_DEADLINE)) > 0)
        if (async_writer_write(w, buf, (size_t)n) ||
            async_writer_drain(w, ASYNC_NO_DEADLINE))
            break;
    return 0;
}

static int emfile_lfd, emfile_ctl;

/* The fd limit that leaves exactly `room` numbers free below it. */
static rlim_t limit_with_room(int room)
{
    for (int lim = 1;; lim++) {
        int used = 0;
        for (int fd = 0; fd < lim; fd++)
            used += fcntl(fd, F_GETFD) != -1;
        if (lim - used == room)
            return (rlim_t)lim;
    }
}

static int emfile_child_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_server *srv;
    int rc = async__server_start_fd(emfile_lfd, byte_echo, NULL, NULL, &srv);
    if (rc)
        return rc;
    async_set_nonblocking(emfile_ctl);
    async_yield(); /* the acceptor registers the listener */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = limit_with_room(EMFILE_ROOM);
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return ASYNC_EFAILED;
    char c;
    rc = (int)async_read(emfile_ctl, &c, 1); /* 0: the parent is done */
    bool serving = async_server_is_serving(srv);
    async_server_close(srv);
    async_server_abort_clients(srv);
    int wrc = async_server_wait_closed(srv, async_deadline_in(5 * ASYNC_SEC));
    async_server_free(srv);
    return rc == 0 && wrc == 0 && serving ? 0 : ASYNC_EFAILED;
}

/* 1: byte c came back; 0: end of file or reset; -1: nothing within ms. */
static int echo_byte(int fd, char c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1)
        return 0;
    char got;
    ssize_t n = recv(fd, &got, 1, 0);
    if (n == 1)
        return got == c;
    return n == 0 || errno == ECONNRESET ? 0 : -1;
}

static int client_fd(const async_addr *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, &a->u.sa, a->len) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void test_emfile(void **state)
{
    (void)state;
    if (RUNNING_ON_VALGRIND) {
        /* Valgrind emulates RLIMIT_NOFILE and closes accepted fds
         * itself, so the child's view of EMFILE is not the kernel's. */
        skip();
    }
    emfile_lfd = async_tcp_listen("127.0.0.1:0", -1, 0);
    assert_true(emfile_lfd >= 0);
    async_addr a;
    assert_int_equal(async_sock_local_addr(emfile_lfd, &a), 0);
    int ctl[2];
    assert_int_equal(pipe2(ctl, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ctl[1]);
        emfile_ctl = ctl[0];
        _exit(async_run(emfile_child_main, NULL, NULL) == 0 ? 0 : 3);
    }
    close(ctl[0]);
    close(emfile_lfd);
    /* Connect until one is closed at once: the child is out of fds. */
    int served[EMFILE_ROOM * 2 + 1];
    int nserved = 0, rejected = -1;
    while (nserved < EMFILE_ROOM * 2) {
        int fd = client_fd(&a);
        assert_true(fd >= 0);
        int got = echo_byte(fd, 'a', 5000);
        if (got != 1) {
            rejected = got;
            close(fd);
            break;
        }
        served[nserved++] = fd;
    }
    assert_int_equal(rejected, 0); /* closed promptly, not left hanging */
    /* About EMFILE_ROOM (the loop may have released an fd of its own
     * since the limit was set). */
    assert_true(nserved >= 1 && nserved <= EMFILE_ROOM + 2);
    /* The served connections go on. */
    for (int i = 0; i < nserved; i++)
        assert_int_equal(echo_byte(served[i], 'b', 5000), 1);
    /* Free one: the next connection is served again. */
    close(served[--nserved]);
    int again = -1;
    for (int tries = 0; tries < 100 && again != 1; tries++) {
        int fd = client_fd(&a);
        assert_true(fd >= 0);
        again = echo_byte(fd, 'c', 5000);
        if (again == 1)
            served[nserved++] = fd;
        else
            close(fd);
        if (again != 1)
            usleep(10000); /* the child has not seen the close yet */
    }
    assert_int_equal(again, 1);
    for (int i = 0; i < nserved; i++)
        close(served[i]);
    close(ctl[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_unix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_handler, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_closed_covers_last_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_before_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connection_limit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_happy_eyeballs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emfile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
