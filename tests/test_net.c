/*
 * Sockets on loopback (async/net.h over async/io.h): echo integration with
 * 200 concurrent clients over IPv4, IPv6 and Unix sockets; peer reset in
 * the middle of a write; TCP half-close; connect refused and timed out;
 * accept under EMFILE (in a child process with a low RLIMIT_NOFILE); UDP;
 * "localhost" resolved on the thread pool; address parsing and
 * formatting; listener corner cases.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include "services/executor.h"
#include "helpers.h"
#include "core/internal.h"

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
    async_loop *loop;      /* loop under test */
    th_leaks leaks;        /* counters before the test */
    int lfd;               /* listener of the test's server, or -1 */
    async_addr addr;       /* where it listens */
    int rc[8];             /* return codes seen inside tasks */
    uint64_t n[8];         /* counts seen inside tasks */
    uint64_t t0, t1;       /* loop times */
    int active;            /* server connections still open */
} rec;

static rec R;

static int setup(void **state)
{
    (void)state;
    memset(&R, 0, sizeof(R));
    R.lfd = -1;
    th_leaks_begin(&R.leaks);
    assert_int_equal(async_loop_new(&R.loop), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_loop_free(R.loop), 0);
    if (R.lfd >= 0)
        close(R.lfd);
    th_leaks_end(&R.leaks);
    return 0;
}

/* Runs fn as a task on R.loop until it finishes; returns its outcome. */
static int run(async_fn fn, void *arg)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(R.loop, &t, fn, arg, NULL), 0);
    int rc = async_loop_run_until_complete(R.loop, t, NULL);
    async_task_unref(t);
    return rc;
}

/* Listens on `where` (port 0: any) and records the address in R. */
static void listen_on(const char *where, int backlog)
{
    R.lfd = async_tcp_listen(where, backlog, 0);
    assert_true(R.lfd >= 0);
    assert_int_equal(async_sock_local_addr(R.lfd, &R.addr), 0);
}

static void close_listener(void)
{
    async_close(R.lfd);
    R.lfd = -1;
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

/* ---- an echo server as tasks ---------------------------------------------------- */

static int echo_conn(void *arg, void **result)
{
    (void)result;
    int fd = (int)(intptr_t)arg;
    char buf[65536];
    ssize_t n;
    while ((n = async_read(fd, buf, sizeof(buf))) > 0)
        if (async_write_all(fd, buf, (size_t)n) < 0)
            break;
    async_close(fd);
    R.active--;
    return 0;
}

/* Accepts until the listener is closed (ASYNC_EBADF). */
static int echo_server(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (;;) {
        int fd = async_accept(R.lfd, NULL, NULL);
        if (fd < 0)
            return fd == ASYNC_EBADF ? 0 : fd;
        R.active++;
        if (async_spawn(NULL, echo_conn, (void *)(intptr_t)fd) < 0) {
            async_close(fd);
            R.active--;
        }
    }
}

/* Closes the listener and waits for the server's connections to end. */
static void echo_server_stop(async_task *server)
{
    close_listener();
    async_task_await(server, NULL);
    async_task_unref(server);
    while (R.active > 0)
        async_sleep(ASYNC_MSEC);
}

/* ---- echo integration ------------------------------------------------------------- */

#define CLIENTS 200
#define CHUNK 16384

/* Client i's byte at offset o: a hash, so a misplaced chunk shows. */
static unsigned char pattern(uint32_t seed, uint64_t o)
{
    uint32_t x = (uint32_t)o * 2654435761u ^ (uint32_t)(o >> 32) ^
                 seed * 0x9E3779B9u;
    x ^= x >> 15;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    return (unsigned char)x;
}

typedef struct client {
    uint32_t seed;   /* pattern seed */
    size_t size;     /* bytes to send and get back */
    int fd;          /* the connection */
    int rc;          /* outcome: 0 or the first error */
    size_t bad;      /* bytes that came back wrong */
} client;

static int client_writer(void *arg, void **result)
{
    (void)result;
    client *c = arg;
    unsigned char buf[CHUNK];
    for (size_t off = 0; off < c->size; off += CHUNK) {
        size_t n = c->size - off < CHUNK ? c->size - off : CHUNK;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(c->seed, off + i);
        ssize_t rc = async_write_all(c->fd, buf, n);
        if (rc < 0)
            return (int)rc;
    }
    return 0;
}

/* Reads the echo while the writer sends, checking every byte. */
static int client_read(client *c)
{
    unsigned char buf[CHUNK];
    size_t off = 0;
    while (off < c->size) {
        size_t want = c->size - off < CHUNK ? c->size - off : CHUNK;
        ssize_t n = async_read(c->fd, buf, want);
        if (n <= 0)
            return n == 0 ? ASYNC_ECONNRESET : (int)n;
        for (ssize_t i = 0; i < n; i++)
            c->bad += buf[i] != pattern(c->seed, off + (size_t)i);
        off += (size_t)n;
    }
    return 0;
}

static int client_main(void *arg, void **result)
{
    (void)result;
    client *c = arg;
    char where[ASYNC_ADDR_STRLEN];
    async_addr_format(&R.addr, where, sizeof(where));
    c->fd = async_tcp_connect(where, 10 * ASYNC_SEC);
    if (c->fd < 0)
        return c->rc = c->fd;
    async_task *w;
    c->rc = async_spawn(&w, client_writer, c);
    if (c->rc == 0) {
        c->rc = client_read(c);
        int wrc = async_task_await(w, NULL);
        if (c->rc == 0)
            c->rc = wrc;
        async_task_unref(w);
    }
    async_close(c->fd);
    return 0;
}

static int integration_main(void *arg, void **result)
{
    (void)result;
    client *cl = arg;
    async_task *server, *tasks[CLIENTS];
    async_spawn(&server, echo_server, NULL);
    for (int i = 0; i < CLIENTS; i++)
        async_spawn(&tasks[i], client_main, &cl[i]);
    for (int i = 0; i < CLIENTS; i++) {
        async_task_await(tasks[i], NULL);
        async_task_unref(tasks[i]);
    }
    echo_server_stop(server);
    return 0;
}

static void run_integration(const char *where)
{
    /* Valgrind runs the same traffic pattern with smaller payloads. */
    size_t max = RUNNING_ON_VALGRIND ? 65536 : 1u << 20;
    client *cl = calloc(CLIENTS, sizeof(*cl));
    srand(12345);
    for (int i = 0; i < CLIENTS; i++) {
        cl[i].seed = (uint32_t)i + 1;
        cl[i].size = 1 + (size_t)rand() % max;
    }
    cl[0].size = max; /* the largest size is always there */
    listen_on(where, -1);
    assert_int_equal(run(integration_main, cl), 0);
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(cl[i].rc, 0);
        assert_int_equal(cl[i].bad, 0);
    }
    free(cl);
}

static void test_echo_ipv4(void **state)
{
    (void)state;
    run_integration("127.0.0.1:0");
}

static void test_echo_ipv6(void **state)
{
    (void)state;
    if (!have_ipv6()) {
        printf("skipped: cannot bind [::1] (IPv6 loopback unavailable)\n");
        skip();
    }
    run_integration("[::1]:0");
}

static void test_echo_unix(void **state)
{
    (void)state;
    char where[64];
    snprintf(where, sizeof(where), "unix:/tmp/async-test-net-%d.sock",
             (int)getpid());
    run_integration(where);
    unlink(where + 5);
}

/* ---- peer reset in the middle of a write --------------------------------------------- */

/* Accepts one connection, waits for the first bytes, then resets it
 * (SO_LINGER 0 makes close send RST). */
static int reset_server(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int fd = async_accept(R.lfd, NULL, NULL);
    if (fd < 0)
        return fd;
    char c;
    async_read(fd, &c, 1);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    async_close(fd);
    return 0;
}

static int reset_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *server;
    async_spawn(&server, reset_server, NULL);
    int fd = async_tcp_connect_addr(&R.addr, async_deadline_in(5 * ASYNC_SEC));
    R.rc[0] = fd;
    if (fd < 0)
        return 0;
    size_t size = 64u << 20; /* far more than the socket buffers hold */
    char *buf = calloc(1, size);
    size_t done = 0;
    R.rc[1] = (int)async_write_all_deadline(fd, buf, size,
                                            async_deadline_in(10 * ASYNC_SEC),
                                            &done);
    R.n[0] = done;
    /* Reading after the reset reports it too (or EOF once consumed). */
    R.rc[2] = (int)async_read(fd, buf, 16);
    free(buf);
    async_close(fd);
    async_task_await(server, NULL);
    async_task_unref(server);
    return 0;
}

static void test_peer_reset(void **state)
{
    (void)state;
    struct sigaction dfl, old;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL; /* a SIGPIPE would kill the test */
    sigaction(SIGPIPE, &dfl, &old);
    listen_on("127.0.0.1:0", -1);
    int rc = run(reset_main, NULL);
    sigaction(SIGPIPE, &old, NULL);
    assert_int_equal(rc, 0);
    assert_true(R.rc[0] >= 0);
    assert_true(R.rc[1] == ASYNC_ECONNRESET || R.rc[1] == ASYNC_EPIPE);
    assert_true(R.n[0] > 0 && R.n[0] < (64u << 20));
    assert_true(R.rc[2] == ASYNC_ECONNRESET || R.rc[2] == 0 ||
                R.rc[2] == ASYNC_EPIPE);
}

/* ---- TCP half-close ------------------------------------------------------------------------ */

/* Reads to EOF, then answers after the peer's shutdown(SHUT_WR). */
static int half_server(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int fd = async_accept(R.lfd, NULL, NULL);
    if (fd < 0)
        return fd;
    char buf[16];
    R.rc[0] = (int)async_read_full(fd, buf, sizeof(buf), ASYNC_NO_DEADLINE,
                                   NULL);
    R.n[0] = memcmp(buf, "ping", 4) == 0;
    R.rc[1] = (int)async_write_all(fd, "pong", 4);
    async_close(fd);
    return 0;
}

static int half_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *server;
    async_spawn(&server, half_server, NULL);
    int fd = async_tcp_connect_addr(&R.addr, ASYNC_NO_DEADLINE);
    if (fd < 0)
        return fd;
    async_write_all(fd, "ping", 4);
    shutdown(fd, SHUT_WR);
    char buf[16];
    R.rc[2] = (int)async_read_full(fd, buf, sizeof(buf), ASYNC_NO_DEADLINE,
                                   NULL);
    R.n[1] = memcmp(buf, "pong", 4) == 0;
    R.rc[3] = (int)async_read(fd, buf, sizeof(buf));
    async_close(fd);
    async_task_await(server, NULL);
    async_task_unref(server);
    return 0;
}

static void test_half_close(void **state)
{
    (void)state;
    listen_on("127.0.0.1:0", -1);
    assert_int_equal(run(half_main, NULL), 0);
    assert_int_equal(R.rc[0], 4); /* EOF after "ping" */
    assert_true(R.n[0]);
    assert_int_equal(R.rc[1], 4); /* writing after the peer's EOF works */
    assert_int_equal(R.rc[2], 4);
    assert_true(R.n[1]);
    assert_int_equal(R.rc[3], 0);
}

/* ---- connect refused / timed out -------------------------------------------------------- */

static int refused_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    R.rc[0] = async_tcp_connect_addr(&R.addr, async_deadline_in(ASYNC_SEC));
    char where[ASYNC_ADDR_STRLEN];
    async_addr_format(&R.addr, where, sizeof(where));
    R.rc[1] = async_tcp_connect(where, ASYNC_SEC);
    R.rc[2] = async_tcp_connect("unix:/nonexistent/async-test.sock", -1);
    return 0;
}

static void test_connect_refused(void **state)
{
    (void)state;
    listen_on("127.0.0.1:0", -1);
    close(R.lfd); /* the port is now closed */
    R.lfd = -1;
    assert_int_equal(run(refused_main, NULL), 0);
#ifdef ASYNC_KQUEUE_EMULATED
    /* libkqueue reads (and so clears) SO_ERROR when it reports the failed
     * socket: the attempt is seen to fail, but not why (docs/kqueue.md). */
    printf("libkqueue: refused connect checked as ASYNC_ENOTCONN, not "
           "ASYNC_ECONNREFUSED (libkqueue consumes SO_ERROR)\n");
    assert_int_equal(R.rc[0], ASYNC_ENOTCONN);
    assert_int_equal(R.rc[1], ASYNC_ENOTCONN);
#else
    assert_int_equal(R.rc[0], ASYNC_ECONNREFUSED);
    assert_int_equal(R.rc[1], ASYNC_ECONNREFUSED);
#endif
    assert_int_equal(R.rc[2], ASYNC_ENOENT);
}

#define FILL_MAX 16

/*
 * A listener with backlog 0 that never accepts: once its accept queue is
 * full, Linux drops further SYNs, so a connect hangs in SYN_SENT (loopback
 * only, no routing tricks).  Fill the queue until a connect times out, then
 * check that a connect with a timeout ends with ASYNC_ETIMEDOUT.
 */
static int timeout_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int fds[FILL_MAX];
    int nfds = 0, rc = 0;
    while (nfds < FILL_MAX) {
        rc = async_tcp_connect_addr(&R.addr,
                                    async_deadline_in(100 * ASYNC_MSEC));
        if (rc < 0)
            break;
        fds[nfds++] = rc;
    }
    R.rc[0] = rc;
    R.n[0] = (uint64_t)nfds;
    char where[ASYNC_ADDR_STRLEN];
    async_addr_format(&R.addr, where, sizeof(where));
    R.t0 = async_loop_time(R.loop);
    R.rc[1] = async_tcp_connect(where, 200 * ASYNC_MSEC);
    R.t1 = async_loop_time(R.loop);
    for (int i = 0; i < nfds; i++)
        async_close(fds[i]);
    return 0;
}

static void test_connect_timeout(void **state)
{
    (void)state;
    listen_on("127.0.0.1:0", 0);
    assert_int_equal(run(timeout_main, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT); /* the queue did fill up */
    assert_true(R.n[0] >= 1 && R.n[0] < FILL_MAX);
    assert_int_equal(R.rc[1], ASYNC_ETIMEDOUT);
    assert_true(R.t1 - R.t0 >= 200 * ASYNC_MSEC);
}

/* ---- accept under EMFILE ---------------------------------------------------------------- */

/*
 * The server runs in a child process whose RLIMIT_NOFILE leaves room for
 * exactly EMFILE_ROOM more fds once its loop and accept loop are running
 * (measured then, because what a loop costs depends on the backend: two
 * fds with epoll, one with a native kqueue, several with libkqueue); the
 * parent is a plain blocking client without that limit.  The child's
 * accept loop backs off 5 ms on ASYNC_EMFILE, the strategy
 * examples/echo_server.c documents as the fallback.  The parent checks that connections beyond
 * the limit wait, existing ones keep being served, and the waiting ones
 * are served once fds are freed; the child reports how often accept hit
 * EMFILE, so a spinning acceptor would show.
 */
#define EMFILE_ROOM 6
#define EMFILE_BACKOFF (5 * ASYNC_MSEC)

typedef struct emfile_report {
    uint64_t emfile;     /* accept calls that returned ASYNC_EMFILE */
    uint64_t first_ns;   /* loop time of the first one */
    uint64_t last_ns;    /* loop time of the last one */
    uint64_t accepted;   /* connections accepted */
    int rc;              /* child outcome */
} emfile_report;

static emfile_report rep;
static int ctl_fd;

static int emfile_server(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_loop *loop = async_get_running_loop();
    for (;;) {
        int fd = async_accept(R.lfd, NULL, NULL);
        if (fd == ASYNC_EMFILE || fd == ASYNC_ENFILE) {
            uint64_t now = async_loop_time(loop);
            if (rep.emfile++ == 0)
                rep.first_ns = now;
            rep.last_ns = now;
            if (async_sleep(EMFILE_BACKOFF) < 0)
                return 0;
            continue;
        }
        if (fd < 0)
            return fd == ASYNC_EBADF ? 0 : fd;
        rep.accepted++;
        R.active++;
        if (async_spawn(NULL, echo_conn, (void *)(intptr_t)fd) < 0) {
            async_close(fd);
            R.active--;
        }
    }
}

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

/* The child's main task: limit the fds once the server waits in accept,
 * then serve until the parent closes the control pipe. */
static int emfile_child_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *server;
    int rc = async_spawn(&server, emfile_server, NULL);
    if (rc < 0)
        return rc;
    async_yield(); /* the server registers the listener */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = limit_with_room(EMFILE_ROOM);
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return ASYNC_EFAILED;
    char c;
    async_set_nonblocking(ctl_fd);
    rc = (int)async_read(ctl_fd, &c, 1); /* 0: the parent is done */
    close_listener();
    int src = async_task_await(server, NULL);
    async_task_unref(server);
    for (int i = 0; i < 2000 && R.active > 0; i++)
        async_sleep(ASYNC_MSEC);
    if (rc == 0 && src < 0)
        rc = src;
    return rc == 0 && R.active == 0 ? 0 : ASYNC_EFAILED;
}

static void emfile_child(int res_fd)
{
    rep.rc = async_run(emfile_child_main, NULL, NULL);
    ssize_t n = write(res_fd, &rep, sizeof(rep));
    _exit(n == (ssize_t)sizeof(rep) && rep.rc == 0 ? 0 : 4);
}

/* A blocking client connection with a receive timeout. */
static int blocking_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, &R.addr.u.sa, R.addr.len), 0);
    return fd;
}

/* Sends one byte; true if it comes back within ms milliseconds. */
static bool echoes(int fd, char c, int ms, bool send_it)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (send_it && send(fd, &c, 1, MSG_NOSIGNAL) != 1)
        return false;
    char got;
    return recv(fd, &got, 1, 0) == 1 && got == c;
}

static void test_accept_emfile(void **state)
{
    (void)state;
    if (RUNNING_ON_VALGRIND) {
        /* Valgrind emulates RLIMIT_NOFILE: the kernel accepts the
         * connection and Valgrind closes the new fd before reporting
         * EMFILE, so the pending connection this test watches is lost. */
        printf("skipped: valgrind emulates RLIMIT_NOFILE after accept\n");
        skip();
    }
    listen_on("127.0.0.1:0", -1);
    int ctl[2], res[2];
    assert_int_equal(pipe2(ctl, O_CLOEXEC), 0);
    assert_int_equal(pipe2(res, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ctl[1]);
        close(res[0]);
        ctl_fd = ctl[0];
        emfile_child(res[1]);
    }
    close(ctl[0]);
    close(res[1]);
    close(R.lfd); /* the child owns the listener now */
    R.lfd = -1;

    /* Connect until one is not served: the child is out of fds. */
    int served[EMFILE_ROOM * 2], waiting[3];
    int nserved = 0;
    for (;;) {
        int fd = blocking_connect();
        if (!echoes(fd, 'a', 300, true)) {
            waiting[0] = fd;
            break;
        }
        served[nserved++] = fd;
        assert_true(nserved < EMFILE_ROOM * 2);
    }
    assert_true(nserved >= 3);
    for (int i = 1; i < 3; i++) {
        waiting[i] = blocking_connect();
        assert_false(echoes(waiting[i], 'a', 100, true));
    }
    /* Existing connections are still served. */
    for (int i = 0; i < nserved; i++)
        assert_true(echoes(served[i], 'b', 2000, true));
    /* Free three fds in the child: the waiting connections get in. */
    for (int i = 0; i < 3; i++)
        close(served[i]);
    for (int i = 0; i < 3; i++)
        assert_true(echoes(waiting[i], 'a', 5000, false));
    for (int i = 3; i < nserved; i++)
        close(served[i]);
    for (int i = 0; i < 3; i++)
        close(waiting[i]);
    close(ctl[1]);

    emfile_report got;
    assert_int_equal(read(res[0], &got, sizeof(got)), (ssize_t)sizeof(got));
    close(res[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(got.accepted, (uint64_t)nserved + 3);
    assert_true(got.emfile >= 1);
    /* No spinning: about one attempt per back-off period. */
    uint64_t periods = (got.last_ns - got.first_ns) / EMFILE_BACKOFF;
    assert_true(got.emfile <= periods + 2);
}

/* ---- UDP ----------------------------------------------------------------------------------- */

static int udp_echo(void *arg, void **result)
{
    (void)result;
    int fd = (int)(intptr_t)arg;
    char buf[2048];
    async_addr from;
    ssize_t n = async_udp_recvfrom(fd, buf, sizeof(buf), &from,
                                   async_deadline_in(5 * ASYNC_SEC));
    if (n >= 0)
        n = async_udp_sendto(fd, buf, (size_t)n, &from, ASYNC_NO_DEADLINE);
    R.rc[2] = (int)n;
    return 0;
}

static int udp_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int s = async_udp_bind("127.0.0.1:0", 0);
    int c = async_udp_bind("127.0.0.1:0", 0);
    if (s < 0 || c < 0)
        return s < 0 ? s : c;
    async_addr saddr, from;
    async_sock_local_addr(s, &saddr);
    async_task *echo;
    async_spawn(&echo, udp_echo, (void *)(intptr_t)s);
    R.rc[0] = (int)async_udp_sendto(c, "datagram", 8, &saddr,
                                    ASYNC_NO_DEADLINE);
    char buf[64];
    R.rc[1] = (int)async_udp_recvfrom(c, buf, sizeof(buf), &from,
                                      async_deadline_in(5 * ASYNC_SEC));
    R.n[0] = memcmp(buf, "datagram", 8) == 0;
    R.n[1] = async_addr_port(&from) == async_addr_port(&saddr);
    async_task_await(echo, NULL);
    async_task_unref(echo);
    /* Nothing more comes: the deadline ends the wait. */
    R.t0 = async_loop_time(R.loop);
    R.rc[3] = (int)async_udp_recvfrom(c, buf, sizeof(buf), NULL,
                                      async_deadline_in(20 * ASYNC_MSEC));
    R.t1 = async_loop_time(R.loop);
    R.rc[4] = async_udp_bind("unix:/tmp/x", 0);
    async_close(s);
    async_close(c);
    return 0;
}

static void test_udp(void **state)
{
    (void)state;
    assert_int_equal(run(udp_main, NULL), 0);
    assert_int_equal(R.rc[0], 8);
    assert_int_equal(R.rc[1], 8);
    assert_true(R.n[0]);
    assert_true(R.n[1]);
    assert_int_equal(R.rc[2], 8);
    assert_int_equal(R.rc[3], ASYNC_ETIMEDOUT);
    assert_true(R.t1 - R.t0 >= 20 * ASYNC_MSEC);
    assert_int_equal(R.rc[4], ASYNC_EINVAL);
}

/* ---- "localhost" resolves on the thread pool ------------------------------------------------ */

static int localhost_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_addr addrs[ASYNC_ADDR_MAX];
    uint64_t j0 = async__executor_jobs_run(R.loop);
    R.rc[0] = async_addr_resolve("127.0.0.1:80", SOCK_STREAM, addrs,
                                 ASYNC_ADDR_MAX);
    uint64_t j1 = async__executor_jobs_run(R.loop);
    R.rc[1] = async_addr_resolve("localhost:80", SOCK_STREAM, addrs,
                                 ASYNC_ADDR_MAX);
    uint64_t j2 = async__executor_jobs_run(R.loop);
    R.n[0] = j1 - j0; /* numeric: no job */
    R.n[1] = j2 - j1; /* a name: one job on a pool thread */
    /* Connect by name: whichever of ::1 / 127.0.0.1 comes first, the
     * IPv4 listener is reached. */
    char where[32];
    snprintf(where, sizeof(where), "localhost:%d", async_addr_port(&R.addr));
    int fd = async_tcp_connect(where, 5 * ASYNC_SEC);
    R.rc[2] = fd;
    R.n[2] = async__executor_jobs_run(R.loop) - j2;
    if (fd >= 0)
        async_close(fd);
    R.rc[3] = async_addr_resolve("no-such-host.invalid:80", SOCK_STREAM,
                                 addrs, ASYNC_ADDR_MAX);
    return 0;
}

static void test_localhost_off_thread(void **state)
{
    (void)state;
    listen_on("127.0.0.1:0", -1);
    assert_int_equal(run(localhost_main, NULL), 0);
    assert_int_equal(R.rc[0], 1);
    assert_true(R.rc[1] >= 1);
    assert_int_equal(R.n[0], 0);
    assert_int_equal(R.n[1], 1);
    assert_true(R.rc[2] >= 0);
    assert_int_equal(R.n[2], 1);
    assert_true(R.rc[3] == ASYNC_EAI_NONAME || R.rc[3] == ASYNC_EAI_AGAIN ||
                R.rc[3] == ASYNC_EAI_NODATA);
    /* Outside any running loop a name resolves right here. */
    async_addr a;
    assert_true(async_addr_resolve("localhost:1", SOCK_DGRAM, &a, 1) == 1);
    assert_int_equal(async_addr_port(&a), 1);
}

/* ---- addresses ------------------------------------------------------------------------------- */

static void check_roundtrip(const char *in, const char *out)
{
    async_addr a;
    char buf[ASYNC_ADDR_STRLEN];
    assert_int_equal(async_addr_parse(in, &a), 0);
    assert_true(async_addr_format(&a, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, out);
}

static void test_addr_parse(void **state)
{
    (void)state;
    check_roundtrip("127.0.0.1:7000", "127.0.0.1:7000");
    check_roundtrip("[::1]:7000", "[::1]:7000");
    check_roundtrip("[::]:0", "[::]:0");
    check_roundtrip(":80", "0.0.0.0:80");
    check_roundtrip("*:65535", "0.0.0.0:65535");
    check_roundtrip("unix:/tmp/a.sock", "unix:/tmp/a.sock");
    async_addr a;
    memset(&a, 0x5a, sizeof(a));
    async_addr before = a;
    static const char *const bad[] = {
        "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1:7x", "::1:7000", "[::1]7000", "[::1", "[nothost]:1",
        "unix:", "bad host:1", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(async_addr_parse(bad[i], &a), ASYNC_EINVAL);
        assert_memory_equal(&a, &before, sizeof(a)); /* untouched */
    }
    char longpath[200] = "unix:/";
    memset(longpath + 6, 'x', sizeof(longpath) - 7);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(async_addr_parse(longpath, &a), ASYNC_EINVAL);
    assert_int_equal(async_addr_parse("localhost:1", &a), ASYNC_ENOENT);
    assert_int_equal(async_addr_parse(NULL, &a), ASYNC_EINVAL);
    assert_int_equal(async_addr_parse("1.2.3.4:5", NULL), ASYNC_EINVAL);
    /* Formatting into a short buffer. */
    char small[8];
    assert_int_equal(async_addr_parse("127.0.0.1:7000", &a), 0);
    assert_int_equal(async_addr_format(&a, small, sizeof(small)),
                     ASYNC_ENOSPC);
    assert_string_equal(small, "");
    assert_int_equal(async_addr_port(&a), 7000);
    assert_int_equal(async_addr_port(NULL), ASYNC_EINVAL);
    assert_int_equal(async_addr_resolve("1.2.3.4:5", SOCK_RAW, &a, 1),
                     ASYNC_EINVAL);
}

/* ---- listeners ----------------------------------------------------------------------------- */

static void test_listen_cases(void **state)
{
    (void)state;
    listen_on("127.0.0.1:0", -1);
    char where[ASYNC_ADDR_STRLEN];
    async_addr_format(&R.addr, where, sizeof(where));
    assert_int_equal(async_tcp_listen(where, -1, 0), ASYNC_EADDRINUSE);
    assert_int_equal(async_tcp_listen(where, -1, 0x80), ASYNC_EINVAL);
    /* Two SO_REUSEPORT listeners share a port. */
    int a = async_tcp_listen("127.0.0.1:0", -1, ASYNC_LISTEN_REUSEPORT);
    assert_true(a >= 0);
    async_addr aa;
    async_sock_local_addr(a, &aa);
    async_addr_format(&aa, where, sizeof(where));
    int b = async_tcp_listen(where, -1, ASYNC_LISTEN_REUSEPORT);
    assert_true(b >= 0);
    close(a);
    close(b);

    /* Unix: a stale socket file is replaced; a live one or a regular file
     * is not touched. */
    char path[64], spec[80];
    snprintf(path, sizeof(path), "/tmp/async-test-listen-%d", (int)getpid());
    snprintf(spec, sizeof(spec), "unix:%s", path);
    int u = async_tcp_listen(spec, -1, 0);
    assert_true(u >= 0);
    assert_int_equal(async_tcp_listen(spec, -1, 0), ASYNC_EADDRINUSE);
    close(u); /* leaves a stale socket file behind */
    u = async_tcp_listen(spec, -1, 0);
    assert_true(u >= 0);
    close(u);
    unlink(path);
    int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    close(f);
    assert_int_equal(async_tcp_listen(spec, -1, 0), ASYNC_EADDRINUSE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(path);

    /* Connecting needs a task. */
    assert_int_equal(async_tcp_connect("127.0.0.1:1", -1), ASYNC_ENOTTASK);
    assert_int_equal(async_tcp_listen(NULL, -1, 0), ASYNC_EINVAL);
}

/*
 * A plain close() of an fd the loop had registered, then the same number
 * handed out again by socket() or accept(): the new fd must still be
 * polled (the loop resets its record when the library creates an fd).
 */
/* Writes one byte to *(int *)arg after 5 ms: the reader is parked by then. */
static int write_later(void *arg, void **result)
{
    (void)result;
    int rc = async_sleep(5 * ASYNC_MSEC);
    if (rc == 0 && async_write_all(*(int *)arg, "x", 1) != 1)
        rc = ASYNC_EFAILED;
    return rc;
}

static int reuse_after_plain_close(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char b;
    int c1 = async_tcp_connect_addr(&R.addr, async_deadline_in(ASYNC_SEC));
    int s1 = c1 >= 0 ? async_accept(R.lfd, NULL, NULL) : c1;
    if (s1 < 0)
        return s1;
    /* Registers s1 for reading; nothing comes, so this times out. */
    R.rc[0] = async_wait_readable(s1, async_deadline_in(2 * ASYNC_MSEC));
    int old = s1;
    close(s1); /* behind the loop's back */
    /* socket() reuses the number. */
    int c2 = async_tcp_connect_addr(&R.addr, async_deadline_in(ASYNC_SEC));
    int s2 = c2 >= 0 ? async_accept(R.lfd, NULL, NULL) : c2;
    if (s2 < 0)
        return s2;
    R.rc[1] = c2 == old;
    async_task *w;
    if (async_spawn(&w, write_later, &s2) != 0)
        return ASYNC_EFAILED;
    R.rc[2] = (int)async_read_deadline(c2, &b, 1, async_deadline_in(2 * ASYNC_SEC));
    async_await(w, NULL);
    async_task_unref(w);
    /* Now accept() reuses a number: the client is queued first. */
    int c3 = async_tcp_connect_addr(&R.addr, async_deadline_in(ASYNC_SEC));
    if (c3 < 0)
        return c3;
    R.rc[3] = async_wait_readable(c2, async_deadline_in(2 * ASYNC_MSEC));
    old = c2;
    close(c2);
    int s3 = async_accept(R.lfd, NULL, NULL);
    if (s3 < 0)
        return s3;
    R.rc[4] = s3 == old;
    if (async_spawn(&w, write_later, &c3) != 0)
        return ASYNC_EFAILED;
    R.rc[5] = (int)async_read_deadline(s3, &b, 1, async_deadline_in(2 * ASYNC_SEC));
    async_await(w, NULL);
    async_task_unref(w);
    async_close(s3);
    async_close(c3);
    async_close(s2);
    async_close(c1);
    return 0;
}

static void test_fd_reuse_after_plain_close(void **state)
{
    (void)state;
    listen_on("127.0.0.1:0", 16);
    assert_int_equal(run(reuse_after_plain_close, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[1], 1); /* socket() reused the number */
    assert_int_equal(R.rc[2], 1); /* and the read was woken */
    assert_int_equal(R.rc[3], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[4], 1); /* accept() reused the number */
    assert_int_equal(R.rc[5], 1);
    close_listener();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_ipv4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_ipv6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_unix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_emfile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_udp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_localhost_off_thread, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_addr_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fd_reuse_after_plain_close, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
