/*
 * stream_echo_server: the echo server of asyncio's streams documentation,
 * on libasync streams: start_server, a handler per connection doing
 * read + write + drain.
 *
 *   stream_echo_server [--host H] [--port P] [--threads N] [--tls CERT KEY]
 *
 * With --tls the connections speak TLS with the PEM certificate chain CERT
 * and private key KEY (needs a libasync built with OpenSSL); try it with
 * `openssl s_client -connect 127.0.0.1:7000`.
 * With --threads N the server runs on N loops, one per thread, each with
 * its own SO_REUSEPORT listener (async_server_group).  SIGINT / SIGTERM:
 * stop accepting, give open connections 5 s to finish, then abort them.
 * examples/echo_server.c is the same service on raw fds.
 */
#include <async.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRACE (5 * ASYNC_SEC)
#define IO_BUF 65536

typedef struct options {
    const char *host;  /* --host */
    unsigned port;     /* --port (0: any free port) */
    unsigned threads;  /* --threads */
    const char *cert;  /* --tls CERT (NULL: plain TCP) */
    const char *key;   /* --tls ... KEY */
} options;

static options opt = {"127.0.0.1", 7000, 1, NULL, NULL};

#if ASYNC_HAVE_TLS
static async_tls_config *tls; /* the server's TLS settings, or NULL */
#endif

/* Echoes until end of file; a peer that resets is a normal end. */
static int echo(async_reader *r, async_writer *w, void *arg)
{
    (void)arg;
    char buf[IO_BUF];
    for (;;) {
        ssize_t n = async_reader_read(r, buf, sizeof(buf), ASYNC_NO_DEADLINE);
        if (n <= 0)
            return n == ASYNC_ECONNRESET ? 0 : (int)n;
        int rc = async_writer_write(w, buf, (size_t)n);
        if (rc == 0)
            rc = async_writer_drain(w, ASYNC_NO_DEADLINE);
        if (rc)
            return rc == ASYNC_ECONNRESET || rc == ASYNC_EPIPE ? 0 : rc;
    }
}

/* The server's options: TLS when --tls was given. */
static void server_opts(async_server_opts *o)
{
    memset(o, 0, sizeof(*o));
#if ASYNC_HAVE_TLS
    o->tls = tls;
#endif
}

/* Loads --tls CERT KEY; 0, or 1 after saying why not. */
static int tls_setup(void)
{
    if (!opt.cert)
        return 0;
#if ASYNC_HAVE_TLS
    int rc = async_tls_config_new(&tls, ASYNC_TLS_SERVER);
    if (rc == 0)
        rc = async_tls_config_load_cert(tls, opt.cert, opt.key);
    if (rc == 0)
        return 0;
    fprintf(stderr, "stream_echo_server: --tls: %s\n", async_tls_last_error());
    async_tls_config_unref(tls);
    tls = NULL;
#else
    fprintf(stderr, "stream_echo_server: --tls: this libasync was built "
                    "without TLS (meson -Dtls, needs OpenSSL)\n");
#endif
    return 1;
}

/* "host:port" for the listener: IPv6 literals get brackets. */
static void listen_string(char *buf, size_t size)
{
    if (strncmp(opt.host, "unix:", 5) == 0)
        snprintf(buf, size, "%s", opt.host);
    else if (strchr(opt.host, ':') && opt.host[0] != '[')
        snprintf(buf, size, "[%s]:%u", opt.host, opt.port);
    else
        snprintf(buf, size, "%s:%u", opt.host, opt.port);
}

static void say_listening(const async_addr *a)
{
    char name[ASYNC_ADDR_STRLEN];
    if (async_addr_format(a, name, sizeof(name)) > 0)
        printf("stream_echo_server: listening on %s (%u thread%s%s)\n", name,
               opt.threads, opt.threads > 1 ? "s" : "",
               opt.cert ? ", TLS" : "");
    fflush(stdout);
}

static int wait_signal(void)
{
    static const int sigs[] = {SIGINT, SIGTERM};
    int signo;
    int rc = async_signal_wait(sigs, 2, ASYNC_NO_DEADLINE, &signo);
    if (rc == 0)
        fprintf(stderr, "stream_echo_server: %s, closing\n", strsignal(signo));
    return rc;
}

/* One loop, on this thread. */
static int serve_one(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char where[300];
    listen_string(where, sizeof(where));
    async_server_opts o;
    server_opts(&o);
    async_server *srv;
    int rc = async_start_server(where, echo, NULL, &o, &srv);
    if (rc) {
        fprintf(stderr, "stream_echo_server: cannot listen on %s: %s\n",
                where, async_strerror(rc));
        return rc;
    }
    async_addr a;
    async_server_addr(srv, &a);
    say_listening(&a);
    rc = wait_signal();
    async_server_close(srv);
    if (async_server_wait_closed(srv, async_deadline_in(GRACE)) != 0) {
        async_server_abort_clients(srv);
        async_server_wait_closed(srv, ASYNC_NO_DEADLINE);
    }
    async_server_free(srv);
    return rc;
}

/* N loops on N threads; this thread waits for the signal. */
static int serve_many(void *arg, void **result)
{
    (void)result;
    async_server_group *g = arg;
    int rc = wait_signal();
    async_server_group_close(g);
    if (async_server_group_wait_closed(g, async_deadline_in(GRACE)) != 0) {
        async_server_group_abort_clients(g);
        async_server_group_wait_closed(g, ASYNC_NO_DEADLINE);
    }
    return rc;
}

static int run_group(void)
{
    char where[300];
    listen_string(where, sizeof(where));
    async_server_opts o;
    server_opts(&o);
    async_server_group *g;
    int rc = async_server_group_start(where, opt.threads, echo, NULL, &o, &g);
    if (rc) {
        fprintf(stderr, "stream_echo_server: cannot listen on %s: %s\n",
                where, async_strerror(rc));
        return rc;
    }
    async_addr a;
    async_server_group_addr(g, &a);
    say_listening(&a);
    rc = async_run(serve_many, g, NULL);
    async_server_group_free(g);
    return rc;
}

/* A whole-string decimal in [min, max], or -1. */
static long parse_num(const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    return v;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: stream_echo_server [options]\n"
            "  --host H       address to listen on (default 127.0.0.1;\n"
            "                 names, IPv6 like ::1, unix:/path work)\n"
            "  --port P       TCP port, 0 for any free one (default 7000)\n"
            "  --threads N    loops, one per thread (default 1)\n"
            "  --tls CERT KEY serve TLS with this PEM certificate chain and\n"
            "                 private key\n"
            "  --help         this text\n");
}

/* Parses argv into opt; returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"tls", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            opt.host = optarg;
            break;
        case 'p':
            if ((v = parse_num(optarg, 0, 65535)) < 0)
                goto bad;
            opt.port = (unsigned)v;
            break;
        case 't':
            if ((v = parse_num(optarg, 1, 64)) < 0)
                goto bad;
            opt.threads = (unsigned)v;
            break;
        case 's':
            if (optind >= argc)
                goto bad;
            opt.cert = optarg;
            opt.key = argv[optind++];
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            goto bad;
        }
    }
    if (optind == argc)
        return -1;
bad:
    fprintf(stderr, "try 'stream_echo_server --help'\n");
    return 2;
}

int main(int argc, char **argv)
{
    int rc = parse_args(argc, argv);
    if (rc >= 0)
        return rc;
    signal(SIGPIPE, SIG_IGN); /* stdout may be a closed pipe */
    if (tls_setup() != 0)
        return 1;
    if (opt.threads == 1)
        rc = async_run(serve_one, NULL, NULL);
    else
        rc = run_group();
#if ASYNC_HAVE_TLS
    async_tls_config_unref(tls);
#endif
    return rc == 0 ? 0 : 1;
}
