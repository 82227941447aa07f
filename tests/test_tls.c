/*
 * TLS sessions (async/tls.h) over loopback sockets.  The certificates are
 * made at test time with the openssl command line in a temporary
 * directory: a CA, a server certificate for localhost / 127.0.0.1, a
 * client certificate, a second ("rogue") CA with a client certificate of
 * its own, and a self-signed server certificate nobody trusts.
 *
 * Covered: 200 concurrent TLS echo clients with every byte checked; an
 * untrusted certificate and a wrong host name fail with ASYNC_ECERT and a
 * message saying why; a silent peer hits the handshake timeout (both
 * sides); client certificates required / optional / accepted / rejected;
 * STARTTLS over a connection that spoke plaintext first, and back
 * (unwrap); close_notify both ways and an abrupt close; ALPN; TLS 1.2;
 * a read interrupted by its deadline loses nothing; config errors; TLS
 * streams: start_server / open_connection with a TLS option (ALPN, a wrong
 * name refused) and start_tls on a live stream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* ---- certificates ----------------------------------------------------------- */

static char dir[64];          /* the temporary directory with the files */
static char path_buf[16][128];
static int path_next;

/* dir/name, in a rotating set of buffers (enough for one call's args). */
static const char *P(const char *name)
{
    char *p = path_buf[path_next++ % 16];
    snprintf(p, sizeof(path_buf[0]), "%s/%s", dir, name);
    return p;
}

/* Runs a shell command in dir; returns its exit status. */
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    int n = snprintf(cmd, sizeof(cmd), "cd '%s' && (", dir);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
    va_end(ap);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, ") >openssl.log 2>&1");
    return system(cmd);
}

/* A P-256 key and a certificate for `cn` signed by ca (or self-signed when
 * ca is NULL), with the extensions in ext (openssl x509 -extfile form). */
static int make_cert(const char *name, const char *cn, const char *ca,
                     const char *ext)
{
    if (sh("printf '%%s\\n' '%s' > %s.ext", ext, name))
        return -1;
    if (sh("openssl ecparam -name prime256v1 -genkey -noout -out %s.key.tmp && "
           "openssl pkey -in %s.key.tmp -out %s.key && "
           "openssl req -new -key %s.key -subj '/O=libasync test/CN=%s' -out %s.csr",
           name, name, name, name, cn, name))
        return -1;
    if (!ca)
        return sh("openssl x509 -req -in %s.csr -signkey %s.key -days 2 "
                  "-extfile %s.ext -out %s.pem", name, name, name, name);
    return sh("openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key "
              "-CAcreateserial -days 2 -extfile %s.ext -out %s.pem",
              name, ca, ca, name, name);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/async-test-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    const char *ca_ext = "basicConstraints=critical,CA:TRUE\n"
                         "keyUsage=critical,keyCertSign,cRLSign";
    const char *server_ext = "basicConstraints=CA:FALSE\n"
                             "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                             "extendedKeyUsage=serverAuth";
    const char *client_ext = "basicConstraints=CA:FALSE\n"
                             "extendedKeyUsage=clientAuth";
    if (make_cert("ca", "libasync test CA", NULL, ca_ext) ||
        make_cert("server", "localhost", "ca", server_ext) ||
        make_cert("client", "client1", "ca", client_ext) ||
        make_cert("rogue", "rogue CA", NULL, ca_ext) ||
        make_cert("rogueclient", "client1", "rogue", client_ext) ||
        make_cert("selfsigned", "localhost", NULL, server_ext)) {
        fprintf(stderr, "test_tls: openssl failed, see %s/openssl.log\n", dir);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- per test ----------------------------------------------------------------- */

/* What the tasks of one test saw; asserted after the loop returns. */
typedef struct rec {
    async_loop *loop;          /* loop under test */
    th_leaks leaks;            /* counters before the test */
    int lfd;                   /* the test server's listener, or -1 */
    async_addr addr;           /* where it listens */
    async_tls_config *scfg;    /* server config */
    async_tls_config *ccfg;    /* client config */
    int rc[8];                 /* return codes seen inside tasks */
    int64_t n[8];              /* counts seen inside tasks */
    char msg[4][ASYNC_TLS_ERRLEN]; /* error messages seen inside tasks */
    char text[4][128];         /* other strings seen inside tasks */
    int active;                /* server connections still open */
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
    async_tls_config_unref(R.scfg);
    async_tls_config_unref(R.ccfg);
    th_leaks_end(&R.leaks);
    return 0;
}

static int run(async_fn fn, void *arg)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(R.loop, &t, fn, arg, NULL), 0);
    int rc = async_loop_run_until_complete(R.loop, t, NULL);
    async_task_unref(t);
    return rc;
}

static void listen_local(void)
{
    R.lfd = async_tcp_listen("127.0.0.1:0", -1, 0);
    assert_true(R.lfd >= 0);
    assert_int_equal(async_sock_local_addr(R.lfd, &R.addr), 0);
}

/* A server config with `cert` (server / selfsigned) and client-cert mode. */
static async_tls_config *server_config(const char *cert, int verify)
{
    async_tls_config *cfg;
    char c[64], k[64];
    snprintf(c, sizeof(c), "%s.pem", cert);
    snprintf(k, sizeof(k), "%s.key", cert);
    assert_int_equal(async_tls_config_new(&cfg, ASYNC_TLS_SERVER), 0);
    assert_int_equal(async_tls_config_load_cert(cfg, P(c), P(k)), 0);
    if (verify != ASYNC_TLS_VERIFY_NONE) {
        assert_int_equal(async_tls_config_load_ca(cfg, P("ca.pem")), 0);
        assert_int_equal(async_tls_config_set_verify(cfg, verify), 0);
    }
    return cfg;
}

/* A client config trusting the test CA, offering `cert` if not NULL. */
static async_tls_config *client_config(const char *cert)
{
    async_tls_config *cfg;
    assert_int_equal(async_tls_config_new(&cfg, ASYNC_TLS_CLIENT), 0);
    assert_int_equal(async_tls_config_load_ca(cfg, P("ca.pem")), 0);
    if (cert) {
        char c[64], k[64];
        snprintf(c, sizeof(c), "%s.pem", cert);
        snprintf(k, sizeof(k), "%s.key", cert);
        assert_int_equal(async_tls_config_load_cert(cfg, P(c), P(k)), 0);
    }
    return cfg;
}

/* Connects to the test server and starts a client session for `name`
 * (handshake not run).  Returns the fd or a negative code. */
static int client_open(async_tls **t, const char *name)
{
    int fd = async_tcp_connect_addr(&R.addr, async_deadline_in(10 * ASYNC_SEC));
    if (fd < 0)
        return fd;
    int rc = async_tls_new(t, R.ccfg, fd, name);
    if (rc < 0) {
        async_close(fd);
        return rc;
    }
    return fd;
}

static void client_close(async_tls *t, int fd)
{
    async_tls_free(t);
    async_close(fd);
}

/* ---- the echo server (tasks) ---------------------------------------------------- */

/* Echoes until end of stream, then closes cleanly; records its outcome in
 * R.rc[1] / R.msg[1] when it is the only connection. */
static int echo_conn(void *arg, void **result)
{
    (void)result;
    int fd = (int)(intptr_t)arg;
    async_tls *t;
    int rc = async_tls_new(&t, R.scfg, fd, NULL);
    if (rc == 0) {
        rc = async_tls_handshake(t, ASYNC_NO_DEADLINE);
        if (rc < 0)
            snprintf(R.msg[1], sizeof(R.msg[1]), "%s", async_tls_error(t));
        else
            async_tls_peer_subject(t, R.text[1], sizeof(R.text[1]));
        char buf[16384];
        ssize_t n = 0;
        while (rc == 0 && (n = async_tls_read(t, buf, sizeof(buf),
                                              ASYNC_NO_DEADLINE)) > 0)
            rc = (int)async_tls_write(t, buf, (size_t)n, ASYNC_NO_DEADLINE,
                                      NULL) < 0;
        if (rc == 0 && n < 0)
            rc = (int)n;
        if (rc == 0)
            rc = async_tls_write_eof(t, async_deadline_in(5 * ASYNC_SEC));
        async_tls_free(t);
    }
    R.rc[1] = rc;
    async_close(fd);
    R.active--;
    return 0;
}

/* Accepts until the listener is closed. */
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

static void echo_server_stop(async_task *server)
{
    async_close(R.lfd);
    R.lfd = -1;
    async_task_await(server, NULL);
    async_task_unref(server);
    while (R.active > 0)
        async_sleep(ASYNC_MSEC);
}

/* ---- 200 concurrent clients ---------------------------------------------------- */

#define CLIENTS 200
#define CHUNK 16384

static unsigned char pattern(uint32_t seed, uint64_t o)
{
    uint32_t x = (uint32_t)o * 2654435761u ^ seed * 0x9E3779B9u;
    x ^= x >> 15;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    return (unsigned char)x;
}

typedef struct client {
    uint32_t seed;     /* pattern seed */
    size_t size;       /* bytes to send and get back */
    async_tls *t;      /* the session */
    int rc;            /* 0 or the first error */
    size_t bad;        /* bytes that came back wrong */
    bool clean;        /* the server's close_notify arrived */
} client;

/* Sends the pattern in uneven pieces, then close_notify. */
static int client_writer(void *arg, void **result)
{
    (void)result;
    client *c = arg;
    unsigned char buf[CHUNK + 1000];
    size_t piece = 1000 + c->seed * 37 % (sizeof(buf) - 1000);
    for (size_t off = 0; off < c->size; off += piece) {
        size_t n = c->size - off < piece ? c->size - off : piece;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(c->seed, off + i);
        ssize_t rc = async_tls_write(c->t, buf, n, ASYNC_NO_DEADLINE, NULL);
        if (rc < 0)
            return (int)rc;
    }
    return async_tls_write_eof(c->t, ASYNC_NO_DEADLINE);
}

/* Reads the echo while the writer sends, checking every byte, then the
 * server's close_notify. */
static int client_read(client *c)
{
    unsigned char buf[CHUNK];
    size_t off = 0;
    for (;;) {
        ssize_t n = async_tls_read(c->t, buf, sizeof(buf), ASYNC_NO_DEADLINE);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            c->bad += off + (size_t)i >= c->size ||
                      buf[i] != pattern(c->seed, off + (size_t)i);
        off += (size_t)n;
    }
    c->clean = async_tls_close_notify_received(c->t);
    return off == c->size ? 0 : ASYNC_ECONNRESET;
}

static int client_main(void *arg, void **result)
{
    (void)result;
    client *c = arg;
    int fd = client_open(&c->t, "localhost");
    if (fd < 0)
        return c->rc = fd;
    c->rc = async_tls_handshake(c->t, ASYNC_NO_DEADLINE);
    async_task *w;
    if (c->rc == 0)
        c->rc = async_spawn(&w, client_writer, c);
    if (c->rc == 0) {
        c->rc = client_read(c);
        int wrc = async_task_await(w, NULL);
        if (c->rc == 0)
            c->rc = wrc;
        async_task_unref(w);
    }
    client_close(c->t, fd);
    return 0;
}

static int many_main(void *arg, void **result)
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

static void test_echo_200_clients(void **state)
{
    (void)state;
    size_t max = RUNNING_ON_VALGRIND ? 16384 : 256 * 1024;
    client *cl = calloc(CLIENTS, sizeof(*cl));
    srand(4321);
    for (int i = 0; i < CLIENTS; i++) {
        cl[i].seed = (uint32_t)i + 1;
        cl[i].size = 1 + (size_t)rand() % max;
    }
    cl[0].size = max;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    listen_local();
    assert_int_equal(run(many_main, cl), 0);
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(cl[i].rc, 0);
        assert_int_equal(cl[i].bad, 0);
        assert_true(cl[i].clean);
    }
    free(cl);
}

/* ---- one client against the echo server ------------------------------------------ */

/* The client of most tests: handshake as R.text[0] names the server, then
 * (when it worked) a round trip of "ping" and a clean shutdown.  Records the
 * handshake code in R.rc[0], its message in R.msg[0], the round trip's
 * outcome in R.rc[2] and the ALPN / version in R.text[2] / R.text[3]. */
static int one_client(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *server;
    async_spawn(&server, echo_server, NULL);
    async_tls *t;
    int fd = client_open(&t, R.text[0][0] ? R.text[0] : NULL);
    R.rc[0] = fd < 0 ? fd : async_tls_handshake(t, ASYNC_NO_DEADLINE);
    if (fd >= 0 && R.rc[0] < 0) {
        snprintf(R.msg[0], sizeof(R.msg[0]), "%s", async_tls_error(t));
        snprintf(R.msg[2], sizeof(R.msg[2]), "%s", async_tls_last_error());
    }
    if (fd >= 0 && R.rc[0] == 0) {
        const char *alpn = async_tls_alpn(t);
        snprintf(R.text[2], sizeof(R.text[2]), "%s", alpn ? alpn : "(none)");
        snprintf(R.text[3], sizeof(R.text[3]), "%s", async_tls_version(t));
        char buf[8] = {0};
        ssize_t n = async_tls_write(t, "ping", 4, ASYNC_NO_DEADLINE, NULL);
        if (n == 4)
            n = async_tls_read(t, buf, sizeof(buf), ASYNC_NO_DEADLINE);
        R.rc[2] = n < 0 ? (int)n : memcmp(buf, "ping", 4) != 0;
        if (n < 0)
            snprintf(R.msg[3], sizeof(R.msg[3]), "%s", async_tls_error(t));
        else
            R.rc[3] = async_tls_shutdown(t, async_deadline_in(5 * ASYNC_SEC));
    }
    if (fd >= 0)
        client_close(t, fd);
    echo_server_stop(server);
    return 0;
}

static void run_one_client(const char *name)
{
    snprintf(R.text[0], sizeof(R.text[0]), "%s", name ? name : "");
    listen_local();
    assert_int_equal(run(one_client, NULL), 0);
}

static void test_verified_by_name_and_ip(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    run_one_client("localhost");
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[3], 0);      /* both close_notify seen */
    assert_int_equal(R.rc[1], 0);
    assert_string_equal(R.text[3], "TLSv1.3");
    assert_string_equal(R.text[2], "(none)");
    R.lfd = -1;
    run_one_client("127.0.0.1");      /* checked against the IP SAN */
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[2], 0);
}

static void test_untrusted_certificate(void **state)
{
    (void)state;
    R.scfg = server_config("selfsigned", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    run_one_client("localhost");
    assert_int_equal(R.rc[0], ASYNC_ECERT);
    assert_non_null(strstr(R.msg[0], "certificate verify failed: "));
    assert_non_null(strstr(R.msg[0], "self-signed certificate"));
    assert_string_equal(R.msg[2], R.msg[0]);   /* async_tls_last_error */
    /* The server hears the client's alert. */
    assert_int_equal(R.rc[1], ASYNC_ETLS);
    assert_non_null(strstr(R.msg[1], "handshake failed: "));
    assert_non_null(strstr(R.msg[1], "alert"));
}

static void test_wrong_hostname(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    run_one_client("wrong.example");
    assert_int_equal(R.rc[0], ASYNC_ECERT);
    assert_non_null(strstr(R.msg[0], "hostname mismatch"));
    assert_non_null(strstr(R.msg[0], "wrong.example"));
    R.lfd = -1;
    run_one_client("127.0.0.2");
    assert_int_equal(R.rc[0], ASYNC_ECERT);
    assert_non_null(strstr(R.msg[0], "IP address mismatch"));
}

static void test_verify_none_accepts_anything(void **state)
{
    (void)state;
    R.scfg = server_config("selfsigned", ASYNC_TLS_VERIFY_NONE);
    assert_int_equal(async_tls_config_new(&R.ccfg, ASYNC_TLS_CLIENT), 0);
    assert_int_equal(async_tls_config_set_verify(R.ccfg, ASYNC_TLS_VERIFY_NONE), 0);
    run_one_client(NULL);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[2], 0);
}

static void test_alpn_and_tls12(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    assert_int_equal(async_tls_config_set_alpn(R.scfg, "x-other,http/1.1"), 0);
    assert_int_equal(async_tls_config_set_alpn(R.ccfg, "h2,http/1.1"), 0);
    assert_int_equal(async_tls_config_set_versions(R.ccfg, ASYNC_TLS_1_2,
                                                   ASYNC_TLS_1_2), 0);
    run_one_client("localhost");
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[3], 0);
    assert_string_equal(R.text[2], "http/1.1");
    assert_string_equal(R.text[3], "TLSv1.2");
}

/* ---- client certificates ------------------------------------------------------- */

static void test_client_cert_accepted(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_REQUIRED);
    R.ccfg = client_config("client");
    run_one_client("localhost");
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[1], 0);
    assert_non_null(strstr(R.text[1], "CN=client1"));
}

static void test_client_cert_missing(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_REQUIRED);
    R.ccfg = client_config(NULL);
    run_one_client("localhost");
    /* TLS 1.3: the client's handshake ends before the server decides. */
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[2], ASYNC_ETLS);
    assert_non_null(strstr(R.msg[3], "certificate required"));
    assert_int_equal(R.rc[1], ASYNC_ECERT);
    assert_non_null(strstr(R.msg[1], "peer did not return a certificate"));
}

static void test_client_cert_untrusted(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_REQUIRED);
    R.ccfg = client_config("rogueclient");
    run_one_client("localhost");
    assert_int_equal(R.rc[2], ASYNC_ETLS);
    assert_non_null(strstr(R.msg[3], "unknown ca"));
    assert_int_equal(R.rc[1], ASYNC_ECERT);
    assert_non_null(strstr(R.msg[1], "certificate verify failed: "));
}

static void test_client_cert_optional(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_OPTIONAL);
    R.ccfg = client_config(NULL);
    run_one_client("localhost");
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[1], 0);
    assert_string_equal(R.text[1], ""); /* no subject: none was sent */
}

/* ---- handshake timeout -------------------------------------------------------- */

/* Accepts one connection and neither reads nor writes until told. */
static int silent_server(void *arg, void **result)
{
    (void)result;
    async_event *quit = arg;
    int fd = async_accept(R.lfd, NULL, NULL);
    if (fd < 0)
        return fd;
    async_event_wait(quit);
    async_close(fd);
    return 0;
}

static int silent_server_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_event *quit;
    async_event_new(&quit);
    async_task *server;
    async_spawn(&server, silent_server, quit);
    async_tls *t;
    int fd = client_open(&t, "localhost");
    uint64_t t0 = async_loop_time(R.loop);
    R.rc[0] = fd < 0 ? fd : async_tls_handshake(t, ASYNC_NO_DEADLINE);
    R.n[0] = (int64_t)(async_loop_time(R.loop) - t0);
    if (fd >= 0) {
        snprintf(R.msg[0], sizeof(R.msg[0]), "%s", async_tls_error(t));
        /* A dead session keeps answering with the same code. */
        char c;
        R.rc[1] = (int)async_tls_read(t, &c, 1, ASYNC_NO_DEADLINE);
        client_close(t, fd);
    }
    async_event_set(quit);
    async_task_await(server, NULL);
    async_task_unref(server);
    async_event_free(quit);
    return 0;
}

/* Connects and sends nothing; the server's handshake must give up. */
static int silent_client_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int cfd = async_tcp_connect_addr(&R.addr, async_deadline_in(5 * ASYNC_SEC));
    int fd = async_accept(R.lfd, NULL, NULL);
    async_tls *t;
    R.rc[0] = cfd < 0 ? cfd : fd < 0 ? fd : async_tls_new(&t, R.scfg, fd, NULL);
    if (R.rc[0] == 0) {
        uint64_t t0 = async_loop_time(R.loop);
        R.rc[0] = async_tls_handshake(t, ASYNC_NO_DEADLINE);
        R.n[0] = (int64_t)(async_loop_time(R.loop) - t0);
        snprintf(R.msg[0], sizeof(R.msg[0]), "%s", async_tls_error(t));
        async_tls_free(t);
    }
    if (fd >= 0)
        async_close(fd);
    if (cfd >= 0)
        async_close(cfd);
    return 0;
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    assert_int_equal(async_tls_config_set_handshake_timeout(R.scfg,
                                                            150 * ASYNC_MSEC), 0);
    R.ccfg = client_config(NULL);
    assert_int_equal(async_tls_config_set_handshake_timeout(R.ccfg,
                                                            100 * ASYNC_MSEC), 0);
    listen_local();
    assert_int_equal(run(silent_server_main, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_true(R.n[0] >= 100 * ASYNC_MSEC);
    assert_string_equal(R.msg[0], "handshake timed out");
    assert_int_equal(R.rc[1], ASYNC_ETIMEDOUT);
    memset(R.rc, 0, sizeof(R.rc));
    assert_int_equal(run(silent_client_main, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_true(R.n[0] >= 150 * ASYNC_MSEC);
}

/* ---- STARTTLS, close_notify, interrupted reads ------------------------------------ */

/* Reads one line byte by byte (nothing beyond it), into buf. */
static int read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = async_read(fd, buf + n, 1);
        if (r <= 0)
            return r == 0 ? ASYNC_ECONNRESET : (int)r;
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = '\0';
    return (int)n;
}

/* Plaintext "STARTTLS" / "OK", TLS echo of one message, unwrap, then
 * plaintext "BYE" again. */
static int starttls_server(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int fd = async_accept(R.lfd, NULL, NULL);
    if (fd < 0)
        return R.rc[1] = fd;
    char line[64];
    async_tls *t = NULL;
    int rc = read_line(fd, line, sizeof(line));
    if (rc > 0)
        rc = strcmp(line, "STARTTLS\r\n") ? ASYNC_EINVAL : 0;
    if (rc == 0)
        rc = (int)async_write_all(fd, "OK\r\n", 4);
    if (rc >= 0)
        rc = async_tls_new(&t, R.scfg, fd, NULL);
    if (rc == 0)
        rc = async_tls_handshake(t, ASYNC_NO_DEADLINE);
    char buf[64];
    ssize_t n = rc < 0 ? rc : async_tls_read(t, buf, sizeof(buf), ASYNC_NO_DEADLINE);
    if (n > 0)
        n = async_tls_write(t, buf, (size_t)n, ASYNC_NO_DEADLINE, NULL);
    if (n > 0)
        n = async_tls_shutdown(t, async_deadline_in(5 * ASYNC_SEC));
    if (n == 0)
        n = async_write_all(fd, "BYE\r\n", 5);
    R.rc[1] = n < 0 ? (int)n : 0;
    async_tls_free(t);
    async_close(fd);
    return 0;
}

static int starttls_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *server;
    async_spawn(&server, starttls_server, NULL);
    int fd = async_tcp_connect_addr(&R.addr, async_deadline_in(5 * ASYNC_SEC));
    char line[64] = {0};
    async_tls *t = NULL;
    int rc = fd < 0 ? fd : (int)async_write_all(fd, "STARTTLS\r\n", 10);
    if (rc >= 0)
        rc = read_line(fd, line, sizeof(line));
    if (rc >= 0)
        rc = strcmp(line, "OK\r\n") ? ASYNC_EINVAL : 0;
    if (rc == 0)
        rc = async_tls_new(&t, R.ccfg, fd, "localhost");
    if (rc == 0)
        rc = async_tls_handshake(t, ASYNC_NO_DEADLINE);
    char buf[64] = {0};
    ssize_t n = rc < 0 ? rc : async_tls_write(t, "secret", 6, ASYNC_NO_DEADLINE, NULL);
    if (n > 0)
        n = async_tls_read(t, buf, sizeof(buf), ASYNC_NO_DEADLINE);
    if (n > 0)
        snprintf(R.text[0], sizeof(R.text[0]), "%.*s", (int)n, buf);
    /* The server unwraps first; our read sees its close_notify. */
    if (n > 0)
        n = async_tls_shutdown(t, async_deadline_in(5 * ASYNC_SEC));
    if (n == 0)
        n = read_line(fd, line, sizeof(line));
    if (n > 0)
        snprintf(R.text[1], sizeof(R.text[1]), "%s", line);
    R.rc[0] = n < 0 ? (int)n : 0;
    async_tls_free(t);
    if (fd >= 0)
        async_close(fd);
    async_task_await(server, NULL);
    async_task_unref(server);
    return 0;
}

static void test_starttls_and_unwrap(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    listen_local();
    assert_int_equal(run(starttls_main, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_string_equal(R.text[0], "secret");
    assert_string_equal(R.text[1], "BYE\r\n");
}

/* The server accepts, handshakes, then (per arg) closes cleanly after the
 * client's close_notify, or drops the TCP connection without close_notify. */
static int closing_server(void *arg, void **result)
{
    (void)result;
    bool abrupt = arg != NULL;
    int fd = async_accept(R.lfd, NULL, NULL);
    if (fd < 0)
        return R.rc[1] = fd;
    async_tls *t;
    int rc = async_tls_new(&t, R.scfg, fd, NULL);
    if (rc == 0)
        rc = async_tls_handshake(t, ASYNC_NO_DEADLINE);
    if (rc == 0 && !abrupt) {
        char buf[16];
        /* Data first, then end of stream by close_notify. */
        ssize_t n = async_tls_read(t, buf, sizeof(buf), ASYNC_NO_DEADLINE);
        R.n[1] = n;
        n = async_tls_read(t, buf, sizeof(buf), ASYNC_NO_DEADLINE);
        R.n[2] = n;
        R.n[3] = async_tls_close_notify_received(t);
        /* Half-closed: this side can still write (TLS 1.3). */
        if (n == 0)
            rc = (int)async_tls_write(t, "late", 4, ASYNC_NO_DEADLINE, NULL);
        if (rc >= 0)
            rc = async_tls_shutdown(t, async_deadline_in(5 * ASYNC_SEC));
    }
    R.rc[1] = rc;
    async_tls_free(t);
    async_close(fd);
    return 0;
}

static int closing_main(void *arg, void **result)
{
    (void)result;
    async_task *server;
    async_spawn(&server, closing_server, arg);
    async_tls *t;
    int fd = client_open(&t, "localhost");
    int rc = fd < 0 ? fd : async_tls_handshake(t, ASYNC_NO_DEADLINE);
    if (rc == 0 && !arg) {
        rc = (int)async_tls_write(t, "data", 4, ASYNC_NO_DEADLINE, NULL);
        if (rc == 4)
            rc = async_tls_write_eof(t, ASYNC_NO_DEADLINE);
        R.rc[2] = (int)async_tls_write(t, "x", 1, ASYNC_NO_DEADLINE, NULL);
    }
    char buf[16] = {0};
    ssize_t n = rc < 0 ? rc : async_tls_read(t, buf, sizeof(buf), ASYNC_NO_DEADLINE);
    R.n[0] = n;
    if (n > 0)
        snprintf(R.text[0], sizeof(R.text[0]), "%.*s", (int)n, buf);
    if (n > 0)
        n = async_tls_read(t, buf, sizeof(buf), ASYNC_NO_DEADLINE);
    R.n[4] = n;
    R.n[5] = fd >= 0 && async_tls_close_notify_received(t);
    R.rc[3] = fd < 0 ? fd : async_tls_shutdown(t, async_deadline_in(5 * ASYNC_SEC));
    R.rc[0] = rc;
    if (fd >= 0)
        client_close(t, fd);
    async_task_await(server, NULL);
    async_task_unref(server);
    return 0;
}

static void test_close_notify(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    listen_local();
    assert_int_equal(run(closing_main, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[2], ASYNC_EPIPE);   /* write after write_eof */
    assert_int_equal(R.n[1], 4);              /* server got the data */
    assert_int_equal(R.n[2], 0);              /* then end of stream */
    assert_int_equal(R.n[3], 1);              /* by close_notify */
    assert_string_equal(R.text[0], "late");   /* half-close: reply came */
    assert_int_equal(R.n[4], 0);
    assert_int_equal(R.n[5], 1);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[1], 0);
}

static void test_abrupt_close(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    listen_local();
    assert_int_equal(run(closing_main, (void *)1), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.n[0], 0);           /* end of stream, as asyncio */
    assert_int_equal(R.n[5], 0);           /* but no close_notify */
    assert_int_equal(R.rc[3], ASYNC_ECONNRESET);
}

/* A read that times out keeps the session usable and loses nothing. */
static int interrupted_server(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int fd = async_accept(R.lfd, NULL, NULL);
    if (fd < 0)
        return R.rc[1] = fd;
    async_tls *t;
    int rc = async_tls_new(&t, R.scfg, fd, NULL);
    if (rc == 0)
        rc = async_tls_handshake(t, ASYNC_NO_DEADLINE);
    if (rc == 0)
        async_sleep(50 * ASYNC_MSEC);
    if (rc == 0)
        rc = (int)async_tls_write(t, "after", 5, ASYNC_NO_DEADLINE, NULL);
    if (rc >= 0)
        rc = async_tls_write_eof(t, ASYNC_NO_DEADLINE);
    R.rc[1] = rc;
    async_tls_free(t);
    async_close(fd);
    return 0;
}

static int interrupted_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *server;
    async_spawn(&server, interrupted_server, NULL);
    async_tls *t;
    int fd = client_open(&t, "localhost");
    int rc = fd < 0 ? fd : async_tls_handshake(t, ASYNC_NO_DEADLINE);
    char buf[16] = {0};
    if (rc == 0) {
        R.rc[2] = (int)async_tls_read(t, buf, sizeof(buf),
                                      async_deadline_in(5 * ASYNC_MSEC));
        R.rc[3] = (int)async_tls_read(t, buf, 0, ASYNC_NO_DEADLINE);
        ssize_t n = async_tls_read(t, buf, sizeof(buf), ASYNC_NO_DEADLINE);
        if (n > 0)
            snprintf(R.text[0], sizeof(R.text[0]), "%.*s", (int)n, buf);
        rc = n < 0 ? (int)n : 0;
    }
    R.rc[0] = rc;
    if (fd >= 0)
        client_close(t, fd);
    async_task_await(server, NULL);
    async_task_unref(server);
    return 0;
}

static void test_read_deadline_loses_nothing(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    listen_local();
    assert_int_equal(run(interrupted_main, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[2], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[3], 0);
    assert_string_equal(R.text[0], "after");
    assert_int_equal(R.rc[1], 0);
}

/* ---- streams: start_server / open_connection with TLS, start_tls -------------- */

/* Echoes lines; a "STARTTLS\n" line is answered "OK\n" and upgrades the
 * stream (when arg is not NULL: plain server).  Records in R.rc[4] the
 * handler's first failure. */
static int stream_echo_handler(async_reader *r, async_writer *w, void *arg)
{
    for (;;) {
        const char *line;
        size_t len;
        int rc = async_reader_readline(r, &line, &len, ASYNC_NO_DEADLINE);
        if (rc < 0 || len == 0) {
            if (rc < 0)
                R.rc[4] = rc;
            return 0;
        }
        if (arg && len == 9 && memcmp(line, "STARTTLS\n", 9) == 0) {
            async_writer_write(w, "OK\n", 3);
            rc = async_writer_drain(w, ASYNC_NO_DEADLINE);
            if (rc == 0)
                rc = async_writer_start_tls(w, R.scfg, NULL, ASYNC_NO_DEADLINE);
            if (rc < 0)
                return R.rc[4] = rc;
            continue;
        }
        async_writer_write(w, line, len);
        rc = async_writer_drain(w, ASYNC_NO_DEADLINE);
        if (rc < 0)
            return R.rc[4] = rc;
    }
}

/* One line's round trip on a client stream: 0 when it came back. */
static int stream_round_trip(async_reader *r, async_writer *w, const char *msg)
{
    async_writer_write(w, msg, strlen(msg));
    int rc = async_writer_drain(w, ASYNC_NO_DEADLINE);
    const char *line;
    size_t len;
    if (rc == 0)
        rc = async_reader_readline(r, &line, &len, ASYNC_NO_DEADLINE);
    if (rc == 0 && (len != strlen(msg) || memcmp(line, msg, len) != 0))
        rc = ASYNC_EINVAL;
    return rc;
}

static int stream_tls_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_server *srv;
    async_server_opts so = {0};
    so.tls = R.scfg;
    R.rc[0] = async_start_server("127.0.0.1:0", stream_echo_handler, NULL,
                                 &so, &srv);
    if (R.rc[0] < 0)
        return 0;
    async_addr a;
    char where[ASYNC_ADDR_STRLEN];
    async_server_addr(srv, &a);
    snprintf(where, sizeof(where), "localhost:%d", async_addr_port(&a));
    async_connect_opts co = {0};
    co.tls = R.ccfg;
    co.timeout = 10 * ASYNC_SEC;
    async_reader *r;
    async_writer *w;
    /* The name comes from the address string. */
    R.rc[1] = async_open_connection(where, &co, &r, &w);
    if (R.rc[1] == 0) {
        R.rc[2] = stream_round_trip(r, w, "hello over tls\n");
        async_tls *t = async_writer_tls(w);
        const char *alpn = t ? async_tls_alpn(t) : NULL;
        snprintf(R.text[0], sizeof(R.text[0]), "%s", alpn ? alpn : "(none)");
        R.rc[3] = async_writer_close(w);
        if (R.rc[3] == 0)
            R.rc[3] = async_writer_wait_closed(w, async_deadline_in(5 * ASYNC_SEC));
        async_reader_free(r);
        async_writer_free(w);
    }
    /* A wrong name: a clear error, nothing left open. */
    co.server_hostname = "wrong.example";
    R.rc[5] = async_open_connection(where, &co, &r, &w);
    snprintf(R.msg[0], sizeof(R.msg[0]), "%s", async_tls_last_error());
    async_server_close(srv);
    async_server_close_clients(srv);
    async_server_wait_closed(srv, async_deadline_in(10 * ASYNC_SEC));
    async_server_free(srv);
    return 0;
}

static void test_stream_server_and_client(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    assert_int_equal(async_tls_config_set_alpn(R.scfg, "echo/1"), 0);
    assert_int_equal(async_tls_config_set_alpn(R.ccfg, "echo/1"), 0);
    assert_int_equal(run(stream_tls_main, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[3], 0);
    assert_string_equal(R.text[0], "echo/1");
    assert_int_equal(R.rc[5], ASYNC_ECERT);
    assert_non_null(strstr(R.msg[0], "hostname mismatch"));
}

static int stream_starttls_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_server *srv;
    R.rc[0] = async_start_server("127.0.0.1:0", stream_echo_handler, &R, NULL,
                                 &srv);
    if (R.rc[0] < 0)
        return 0;
    async_addr a;
    char where[ASYNC_ADDR_STRLEN];
    async_server_addr(srv, &a);
    async_addr_format(&a, where, sizeof(where));
    async_reader *r;
    async_writer *w;
    R.rc[1] = async_open_connection(where, NULL, &r, &w);
    if (R.rc[1] == 0) {
        R.rc[2] = stream_round_trip(r, w, "plain\n");
        const char *line;
        size_t len;
        async_writer_write(w, "STARTTLS\n", 9);
        int rc = async_reader_readline(r, &line, &len, ASYNC_NO_DEADLINE);
        if (rc == 0)
            rc = len == 3 && memcmp(line, "OK\n", 3) == 0 ? 0 : ASYNC_EINVAL;
        if (rc == 0)
            rc = async_writer_start_tls(w, R.ccfg, "localhost",
                                        ASYNC_NO_DEADLINE);
        if (rc == 0)
            rc = stream_round_trip(r, w, "secret\n");
        if (rc == 0)
            rc = async_writer_tls(w) ? 0 : ASYNC_EINVAL;
        R.rc[3] = rc;
        async_writer_close(w);
        async_writer_wait_closed(w, async_deadline_in(5 * ASYNC_SEC));
        async_reader_free(r);
        async_writer_free(w);
    }
    async_server_close(srv);
    async_server_wait_closed(srv, async_deadline_in(10 * ASYNC_SEC));
    async_server_free(srv);
    return 0;
}

static void test_stream_start_tls(void **state)
{
    (void)state;
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    assert_int_equal(run(stream_starttls_main, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[4], 0);
}

/* ---- bad input --------------------------------------------------------------- */

static int not_in_task_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_tls *t;
    int fd = client_open(&t, "localhost");
    R.rc[0] = fd < 0 ? fd : async_tls_read(t, R.text[0], 1, ASYNC_NO_DEADLINE);
    R.rc[1] = fd < 0 ? fd : (int)async_tls_write(t, "x", 1, ASYNC_NO_DEADLINE, NULL);
    R.rc[2] = fd < 0 ? fd : async_tls_write_eof(t, ASYNC_NO_DEADLINE);
    if (fd >= 0)
        client_close(t, fd);
    return 0;
}

static void test_bad_input(void **state)
{
    (void)state;
    async_tls_config *cfg;
    async_tls *t;
    assert_int_equal(async_tls_config_new(NULL, ASYNC_TLS_CLIENT), ASYNC_EINVAL);
    assert_int_equal(async_tls_config_new(&cfg, 7), ASYNC_EINVAL);

    assert_int_equal(async_tls_config_new(&cfg, ASYNC_TLS_SERVER), 0);
    assert_int_equal(async_tls_config_load_cert(cfg, P("missing.pem"),
                                                P("server.key")), ASYNC_ETLS);
    assert_non_null(strstr(async_tls_last_error(), "missing.pem"));
    assert_int_equal(async_tls_config_load_cert(cfg, P("server.pem"),
                                                P("client.key")), ASYNC_ETLS);
    assert_non_null(strstr(async_tls_last_error(), "mismatch"));
    assert_int_equal(async_tls_config_load_ca(cfg, P("server.key")), ASYNC_ETLS);
    assert_int_equal(async_tls_config_set_alpn(cfg, "h2,,x"), ASYNC_EINVAL);
    assert_int_equal(async_tls_config_set_versions(cfg, ASYNC_TLS_1_3,
                                                   ASYNC_TLS_1_2), ASYNC_EINVAL);
    assert_int_equal(async_tls_config_set_versions(cfg, 0x0301, 0), ASYNC_EINVAL);
    /* A server without a certificate cannot make sessions. */
    assert_int_equal(async_tls_new(&t, cfg, 0, NULL), ASYNC_EINVAL);
    assert_non_null(strstr(async_tls_last_error(), "no certificate"));
    assert_int_equal(async_tls_config_load_cert(cfg, P("server.pem"),
                                                P("server.key")), 0);
    assert_int_equal(async_tls_new(&t, cfg, 0, "name"), ASYNC_EINVAL);
    assert_int_equal(async_tls_new(&t, cfg, -1, NULL), ASYNC_EINVAL);
    assert_int_equal(async_tls_new(&t, cfg, 0, NULL), 0);
    /* In use: frozen. */
    assert_int_equal(async_tls_config_set_verify(cfg, ASYNC_TLS_VERIFY_REQUIRED),
                     ASYNC_EBUSY);
    assert_int_equal(async_tls_handshake(t, ASYNC_NO_DEADLINE), ASYNC_ENOTTASK);
    assert_null(async_tls_version(t));
    async_tls_free(t);
    async_tls_config_unref(cfg);

    assert_int_equal(async_tls_config_new(&cfg, ASYNC_TLS_CLIENT), 0);
    assert_int_equal(async_tls_config_set_verify(cfg, ASYNC_TLS_VERIFY_OPTIONAL),
                     ASYNC_EINVAL);
    assert_int_equal(async_tls_new(&t, cfg, 0, NULL), ASYNC_EINVAL);
    assert_non_null(strstr(async_tls_last_error(), "server's name"));
    async_tls_config_unref(cfg);

    /* I/O before the handshake. */
    R.scfg = server_config("server", ASYNC_TLS_VERIFY_NONE);
    R.ccfg = client_config(NULL);
    listen_local();
    assert_int_equal(run(not_in_task_main, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_ENOTCONN);
    assert_int_equal(R.rc[1], ASYNC_ENOTCONN);
    assert_int_equal(R.rc[2], ASYNC_ENOTCONN);
    assert_string_equal(async_strerror(ASYNC_ECERT),
                        "TLS certificate verification failed");
    assert_string_equal(async_err_name(ASYNC_ETLS), "ETLS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_200_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verified_by_name_and_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_hostname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_none_accepts_anything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alpn_and_tls12, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cert_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cert_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cert_untrusted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cert_optional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls_and_unwrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abrupt_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_deadline_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_server_and_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_start_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
