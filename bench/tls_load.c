/*
 * tls_load: a TLS load generator for bench/run_tls.sh, the same for every
 * server it drives (libasync's stream_echo_server --tls, the Go
 * crypto/tls anchor, asyncio with ssl).  OpenSSL, blocking sockets, one
 * thread per connection (the load side runs on its own CPU; only the
 * server's CPU time is the measure).
 *
 *   tls_load --port P --mode echo --conns N --size BYTES
 *            --duration S --warmup S [--server-pid PID]
 *       each connection sends BYTES and reads them back, again and again;
 *       counts round trips.
 *   tls_load --port P --mode handshake --conns N ...
 *       each thread connects, does a full TLS 1.3 handshake (no session
 *       resumption), one 1-byte echo (so the server has finished its side)
 *       and closes; counts handshakes.
 *
 * Prints "ops=N secs=S ops_per_sec=X ops_per_cpu_sec=Y server_cpu=C": Y
 * divides by the server's user+system CPU time over the measured window
 * (/proc/PID/stat), 0 without --server-pid.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static int port;
static const char *mode = "echo";
static int conns = 10;
static size_t size = 16384;
static double duration = 3, warmup = 0.5;
static long server_pid;
static SSL_CTX *ctx;
static atomic_ulong ops;
static atomic_int failures;
static atomic_bool stop; /* set when the measurement is over */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The server's user + system CPU seconds, or 0. */
static double server_cpu(void)
{
    if (!server_pid)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", server_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                     &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static SSL *tls_connect(int fd)
{
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static int read_full(SSL *ssl, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        size_t n;
        if (!SSL_read_ex(ssl, buf + got, len - got, &n))
            return -1;
        got += n;
    }
    return 0;
}

static void *echo_thread(void *arg)
{
    (void)arg;
    int fd = tcp_connect();
    SSL *ssl = fd < 0 ? NULL : tls_connect(fd);
    if (!ssl) {
        atomic_fetch_add(&failures, 1);
        return NULL;
    }
    char *out = malloc(size), *in = malloc(size);
    memset(out, 'x', size);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        size_t w;
        if (!SSL_write_ex(ssl, out, size, &w) || w != size ||
            read_full(ssl, in, size) < 0) {
            atomic_fetch_add(&failures, 1);
            return NULL;
        }
        atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
    }
    return NULL;
}

static void *handshake_thread(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int fd = tcp_connect();
        SSL *ssl = fd < 0 ? NULL : tls_connect(fd);
        char c = 'h';
        size_t n;
        int ok = ssl && SSL_write_ex(ssl, &c, 1, &n) && read_full(ssl, &c, 1) == 0;
        if (ssl)
            SSL_free(ssl);
        if (fd >= 0)
            close(fd);
        if (!ok) {
            atomic_fetch_add(&failures, 1);
            usleep(10000);
            continue;
        }
        atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
    }
    return NULL;
}

static void parse(int argc, char **argv)
{
    static const struct option o[] = {
        {"port", 1, 0, 'p'}, {"mode", 1, 0, 'm'}, {"conns", 1, 0, 'c'},
        {"size", 1, 0, 's'}, {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'},
        {"server-pid", 1, 0, 'P'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        switch (c) {
        case 'p': port = atoi(optarg); break;
        case 'm': mode = optarg; break;
        case 'c': conns = atoi(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'P': server_pid = atol(optarg); break;
        default: exit(2);
        }
    }
    if (port <= 0 || conns <= 0 || size == 0 ||
        (strcmp(mode, "echo") && strcmp(mode, "handshake"))) {
        fprintf(stderr, "usage: tls_load --port P [--mode echo|handshake] "
                        "[--conns N] [--size B] [--duration S] [--warmup S] "
                        "[--server-pid PID]\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* load side: no cost */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    void *(*fn)(void *) = strcmp(mode, "echo") == 0 ? echo_thread : handshake_thread;
    for (int i = 0; i < conns; i++) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, 256 * 1024);
        if (pthread_create(&t, &at, fn, NULL) != 0) {
            fprintf(stderr, "tls_load: cannot start thread %d\n", i);
            return 1;
        }
        pthread_detach(t);
    }
    usleep((useconds_t)(warmup * 1e6));
    unsigned long o0 = atomic_load(&ops);
    double t0 = now(), c0 = server_cpu();
    usleep((useconds_t)(duration * 1e6));
    unsigned long o1 = atomic_load(&ops);
    double t1 = now(), c1 = server_cpu();
    atomic_store(&stop, true);
    double secs = t1 - t0, cpu = c1 - c0;
    unsigned long n = o1 - o0;
    printf("ops=%lu secs=%.3f ops_per_sec=%.0f ops_per_cpu_sec=%.0f "
           "server_cpu=%.3f failures=%d\n",
           n, secs, (double)n / secs, cpu > 0 ? (double)n / cpu : 0.0, cpu,
           atomic_load(&failures));
    fflush(stdout);
    _exit(atomic_load(&failures) && n == 0 ? 1 : 0);
}
