/*
 * echo_client: talks to echo_server.
 *
 *   echo_client [--host H] [--port P]
 *       interactive: sends each line of stdin, prints what comes back
 *   echo_client [--host H] [--port P] --conns N --size BYTES --duration SEC
 *       load: N connections, each sending BYTES-byte messages ping-pong
 *       style for SEC seconds; every echoed byte is checked; prints round
 *       trips per second and latency percentiles.  Exit status 1 if any
 *       byte differs or a connection fails.
 *
 * stdin is read on the loop's thread pool (async_to_thread), so the loop
 * never blocks on the terminal and stdin's file flags are left alone.
 */
#include <async.h>
#include <async/net.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Above this size a message is written by a helper task while the
 * connection reads, so neither side's socket buffers can fill up and
 * deadlock the ping-pong. */
#define SEQUENTIAL_MAX (64 * 1024)

typedef struct options {
    const char *host;   /* --host */
    unsigned port;      /* --port */
    long conns;         /* --conns (0: interactive mode) */
    long size;          /* --size */
    double duration;    /* --duration, seconds */
} options;

static options opt = {"127.0.0.1", 7000, 0, 64, 3.0};

/* Every latency sample of the run, in ns (the client is single-threaded). */
typedef struct samples {
    uint64_t *v;     /* the samples */
    size_t n;        /* how many */
    size_t cap;      /* room in v */
} samples;

/* Results of the load run. */
typedef struct load_stats {
    samples lat;          /* round-trip latencies */
    uint64_t trips;       /* verified round trips */
    uint64_t bytes;       /* verified bytes received */
    unsigned failed;      /* connections that ended with an error */
    unsigned mismatched;  /* connections that saw a wrong byte */
    int first_error;      /* the first connection error */
} load_stats;

static load_stats stats;

/* One load connection. */
typedef struct load_conn {
    unsigned id;         /* index, seeds the payload */
    uint64_t end;        /* loop time at which to stop */
    int fd;              /* the connection */
    unsigned char *out;  /* payload sent */
    unsigned char *in;   /* echo received */
} load_conn;

/* ---- helpers ---------------------------------------------------------------- */

static void address(char *buf, size_t size)
{
    if (strncmp(opt.host, "unix:", 5) == 0)
        snprintf(buf, size, "%s", opt.host);
    else if (strchr(opt.host, ':') && opt.host[0] != '[')
        snprintf(buf, size, "[%s]:%u", opt.host, opt.port);
    else
        snprintf(buf, size, "%s:%u", opt.host, opt.port);
}

static void sample_add(samples *s, uint64_t v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 65536;
        uint64_t *nv = realloc(s->v, cap * sizeof(*nv));
        if (!nv)
            return; /* keep counting round trips; lose this sample */
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (0 < p <= 100) of sorted samples, in ns. */
static uint64_t percentile(const samples *s, double p)
{
    if (s->n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)s->n + 0.5);
    if (i > 0)
        i--;
    if (i >= s->n)
        i = s->n - 1;
    return s->v[i];
}

/* A payload nobody could echo back by accident: xorshift bytes per conn. */
static void fill_payload(unsigned char *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

/* ---- load mode --------------------------------------------------------------- */

/* Writes one message (the helper task for large messages). */
static int write_msg(void *arg, void **result)
{
    (void)result;
    load_conn *c = arg;
    ssize_t n = async_write_all(c->fd, c->out, (size_t)opt.size);
    return n < 0 ? (int)n : 0;
}

/* One round trip: send the message, read it back in full. */
static int round_trip(load_conn *c)
{
    size_t size = (size_t)opt.size;
    async_task *writer = NULL;
    ssize_t n;
    if (size <= SEQUENTIAL_MAX) {
        n = async_write_all(c->fd, c->out, size);
        if (n < 0)
            return (int)n;
    } else if ((n = async_spawn(&writer, write_msg, c)) < 0) {
        return (int)n;
    }
    n = async_read_full(c->fd, c->in, size, ASYNC_NO_DEADLINE, NULL);
    int wrc = 0;
    if (writer) {
        if (n < 0)
            async_task_cancel(writer);
        wrc = async_task_await(writer, NULL);
        async_task_unref(writer);
    }
    if (n < 0)
        return (int)n;
    if ((size_t)n < size)
        return ASYNC_ECONNRESET; /* the server closed mid-message */
    return wrc;
}

static int load_loop(load_conn *c)
{
    async_loop *loop = async_get_running_loop();
    for (;;) {
        uint64_t t0 = async_loop_time(loop);
        if (t0 >= c->end)
            return 0;
        int rc = round_trip(c);
        if (rc < 0)
            return rc;
        if (memcmp(c->in, c->out, (size_t)opt.size) != 0) {
            stats.mismatched++;
            return ASYNC_EFAILED;
        }
        sample_add(&stats.lat, async_loop_time(loop) - t0);
        stats.trips++;
        stats.bytes += (uint64_t)opt.size;
    }
}

static int load_conn_main(void *arg, void **result)
{
    (void)result;
    load_conn *c = arg;
    char where[300];
    address(where, sizeof(where));
    c->out = malloc((size_t)opt.size);
    c->in = malloc((size_t)opt.size);
    int rc = ASYNC_ENOMEM;
    if (c->out && c->in) {
        fill_payload(c->out, (size_t)opt.size, c->id);
        c->fd = rc = async_tcp_connect(where, 5 * ASYNC_SEC);
    }
    if (rc >= 0) {
        rc = load_loop(c);
        async_close(c->fd);
    }
    if (rc < 0) {
        if (stats.failed++ == 0)
            stats.first_error = rc;
    }
    free(c->out);
    free(c->in);
    return 0;
}

static void print_load(double secs)
{
    samples *s = &stats.lat;
    qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
    printf("echo_client: %ld connections x %ld bytes for %.1f s\n",
           opt.conns, opt.size, secs);
    printf("  round trips: %" PRIu64 " (%.0f per second), %.1f MB/s each way\n",
           stats.trips, (double)stats.trips / secs,
           (double)stats.bytes / secs / 1e6);
    printf("  latency: p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n",
           (double)percentile(s, 50) / 1e3, (double)percentile(s, 90) / 1e3,
           (double)percentile(s, 99) / 1e3, (double)percentile(s, 100) / 1e3);
    printf("  verified: %s; failed connections: %u\n",
           stats.mismatched ? "MISMATCH" : "every byte", stats.failed);
    if (stats.failed)
        printf("  first error: %s\n", async_strerror(stats.first_error));
}

static int load_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    size_t n = (size_t)opt.conns;
    load_conn *conns = calloc(n, sizeof(*conns));
    async_task **tasks = calloc(n, sizeof(*tasks));
    if (!conns || !tasks) {
        free(conns);
        free(tasks);
        return ASYNC_ENOMEM;
    }
    async_loop *loop = async_get_running_loop();
    uint64_t start = async_loop_time(loop);
    uint64_t end = start + (uint64_t)(opt.duration * 1e9);
    int rc = 0;
    size_t started = 0;
    for (; started < n && rc == 0; started++) {
        conns[started] = (load_conn){.id = (unsigned)started, .end = end};
        rc = async_spawn(&tasks[started], load_conn_main, &conns[started]);
    }
    if (rc < 0)
        started--;
    for (size_t i = 0; i < started; i++) {
        async_task_await(tasks[i], NULL);
        async_task_unref(tasks[i]);
    }
    print_load((double)(async_loop_time(loop) - start) / 1e9);
    free(conns);
    free(tasks);
    if (rc < 0)
        return rc;
    return stats.failed || stats.mismatched ? ASYNC_EFAILED : 0;
}

/* ---- interactive mode --------------------------------------------------------- */

/* One line of stdin, read by a pool thread. */
typedef struct line {
    char *buf;     /* getline's buffer */
    size_t cap;    /* its size */
    ssize_t len;   /* the line's length, or -1 at end of input */
} line;

/* Runs on a pool thread: blocking stdio is fine there. */
static int read_line_job(void *arg, void **result)
{
    (void)result;
    line *l = arg;
    l->len = getline(&l->buf, &l->cap, stdin);
    return 0;
}

/* Sends one line and prints its echo. */
static int echo_line(int fd, const line *l, char **echo, size_t *cap)
{
    size_t len = (size_t)l->len;
    if (len > *cap) {
        char *nb = realloc(*echo, len);
        if (!nb)
            return ASYNC_ENOMEM;
        *echo = nb;
        *cap = len;
    }
    ssize_t n = async_write_all(fd, l->buf, len);
    if (n >= 0)
        n = async_read_full(fd, *echo, len, ASYNC_NO_DEADLINE, NULL);
    if (n < 0)
        return (int)n;
    fwrite(*echo, 1, (size_t)n, stdout);
    fflush(stdout);
    return (size_t)n < len ? ASYNC_ECONNRESET : 0;
}

static int interactive_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char where[300];
    address(where, sizeof(where));
    int fd = async_tcp_connect(where, 5 * ASYNC_SEC);
    if (fd < 0) {
        fprintf(stderr, "echo_client: cannot connect to %s: %s\n", where,
                async_strerror(fd));
        return fd;
    }
    line l = {NULL, 0, 0};
    char *echo = NULL;
    size_t cap = 0;
    int rc;
    while ((rc = async_to_thread(read_line_job, &l, NULL)) == 0 && l.len > 0)
        if ((rc = echo_line(fd, &l, &echo, &cap)) < 0)
            break;
    if (rc < 0)
        fprintf(stderr, "echo_client: %s\n", async_strerror(rc));
    async_close(fd);
    free(l.buf);
    free(echo);
    return rc;
}

/* ---- command line ------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: echo_client [--host H] [--port P]\n"
            "         send stdin line by line, print the echoes\n"
            "       echo_client [--host H] [--port P] --conns N --size BYTES\n"
            "                   --duration SECONDS\n"
            "         load test: N ping-pong connections, every byte checked\n"
            "  --host H         server address (default 127.0.0.1; names, ::1,\n"
            "                   unix:/path work)\n"
            "  --port P         server port (default 7000)\n"
            "  --conns N        connections (load mode; default 1 there)\n"
            "  --size BYTES     message size (load mode; default 64)\n"
            "  --duration SEC   how long (load mode; default 3)\n"
            "  --help           this text\n");
}

static int bad_value(const char *name, const char *value)
{
    fprintf(stderr, "echo_client: invalid value '%s' for --%s\n", value, name);
    fprintf(stderr, "try 'echo_client --help'\n");
    return 2;
}

static long parse_num(const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    return v;
}

/* Applies one option; returns -1 to go on, or an exit code. */
static int apply_option(int c, bool *load)
{
    long v;
    char *end;
    switch (c) {
    case 'H':
        opt.host = optarg;
        return -1;
    case 'p':
        if ((v = parse_num(optarg, 1, 65535)) < 0)
            return bad_value("port", optarg);
        opt.port = (unsigned)v;
        return -1;
    case 'c':
        if ((opt.conns = parse_num(optarg, 1, 100000)) < 0)
            return bad_value("conns", optarg);
        *load = true;
        return -1;
    case 's':
        if ((opt.size = parse_num(optarg, 1, 64L << 20)) < 0)
            return bad_value("size", optarg);
        *load = true;
        return -1;
    case 'd':
        errno = 0;
        opt.duration = strtod(optarg, &end);
        if (errno || end == optarg || *end || !(opt.duration > 0) ||
            opt.duration > 86400)
            return bad_value("duration", optarg);
        *load = true;
        return -1;
    case 'h':
        usage(stdout);
        return 0;
    default:
        fprintf(stderr, "try 'echo_client --help'\n");
        return 2;
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"conns", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},
        {"duration", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool load = false;
    int c, rc;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        if ((rc = apply_option(c, &load)) >= 0)
            return rc;
    if (optind < argc) {
        fprintf(stderr, "echo_client: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    /* stdout may be a pipe whose reader quits first. */
    signal(SIGPIPE, SIG_IGN);
    if (load && opt.conns == 0)
        opt.conns = 1;
    rc = async_run(load ? load_main : interactive_main, NULL, NULL);
    free(stats.lat.v);
    return rc < 0 ? 1 : 0;
}
