/*
 * echo_server: a TCP echo server, one coroutine per connection.
 *
 *   echo_server [--host H] [--port P] [--threads N] [--max-conns N]
 *               [--idle-timeout SECONDS]
 *
 * Each of the N threads runs its own loop with its own SO_REUSEPORT
 * listener, so the kernel spreads connections over the loops and no state
 * is shared but a few atomic counters.  The main thread runs a small loop
 * of its own that waits for SIGINT / SIGTERM: the first one closes the
 * listeners and gives open connections a grace period (the idle timeout,
 * or 5 s) to finish; a second one, or the end of the grace period, cancels
 * what is left.  Then the totals are printed.
 *
 * Out of file descriptors (EMFILE/ENFILE): async_accept() returns the error
 * at once.  Each loop keeps one spare fd (/dev/null) for that moment: it
 * closes the spare, accepts the pending connection, closes that at once
 * and reopens the spare.  The client gets a prompt close instead of
 * hanging in the accept queue, and the listener, which stays readable
 * while a connection waits, does not keep waking the loop for nothing.
 * If even that fails, the acceptor sleeps a few milliseconds, so it never
 * spins; existing connections are served throughout.
 */
#include <async.h>
#include <async/net.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 64
#define DEFAULT_GRACE_SEC 5
#define EMFILE_BACKOFF (10 * ASYNC_MSEC)
#define IO_BUF 65536

typedef struct options {
    const char *host;     /* --host */
    unsigned port;        /* --port (0: any free port) */
    unsigned threads;     /* --threads */
    long max_conns;       /* --max-conns (0: unlimited) */
    long idle_sec;        /* --idle-timeout (0: none) */
} options;

/* What one loop thread counted (only that thread writes them, so they need
 * no atomics and sit in the worker, away from other threads' cache lines). */
typedef struct counts {
    uint64_t conns;     /* connections served */
    uint64_t rejected;  /* accepted and closed at once (limits) */
    uint64_t bytes;     /* bytes echoed */
    uint64_t trips;     /* reads echoed back (round trips) */
} counts;

typedef struct worker worker;

/* One connection's task state. */
typedef struct conn {
    worker *w;              /* owning loop thread */
    int fd;                 /* the connection */
    async_task *task;       /* its task (the worker's reference) */
    struct conn *prev;      /* in w->conns */
    struct conn *next;      /* in w->conns */
} conn;

/* One loop thread. */
struct worker {
    pthread_t thread;        /* the thread running the loop */
    int lfd;                 /* its listener */
    int spare;               /* reserve fd for the EMFILE trick, or -1 */
    const options *opt;      /* command line */
    counts n;                /* this loop's counters */
    pthread_mutex_t lock;    /* guards loop (read by the main thread) */
    async_loop *loop;        /* the running loop, NULL once it ends */
    async_task *acceptor;    /* the accept loop task */
    conn *conns;             /* open connections (loop thread only) */
    async_future *drained;   /* set when the last connection ends */
    bool closing;            /* shutdown started: no new connections */
    int exit_rc;             /* worker outcome, 0 or an error */
    bool started;            /* thread created (to be joined) */
};

static options opt = {"127.0.0.1", 7000, 1, 0, 0};
/* Open connections over all loops, for --max-conns. */
static atomic_long active;
static worker workers[MAX_THREADS];
static atomic_uint workers_alive;
static atomic_bool start_failed; /* a thread did not start: shut down */

/* ---- one connection --------------------------------------------------------- */

static void conn_unlink(conn *c)
{
    worker *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (!w->conns && w->drained)
        async_future_set_result(w->drained, NULL);
}

/* Echoes until EOF, an error, the idle timeout or cancellation. */
static int conn_main(void *arg, void **result)
{
    (void)result;
    conn *c = arg;
    worker *w = c->w;
    char buf[IO_BUF];
    int64_t idle = w->opt->idle_sec * ASYNC_SEC;
    for (;;) {
        ssize_t n = async_read_deadline(c->fd, buf, sizeof(buf),
                                        async_deadline_in(idle ? idle : -1));
        if (n <= 0)
            break;
        if (async_write_all(c->fd, buf, (size_t)n) < 0)
            break;
        w->n.bytes += (uint64_t)n;
        w->n.trips++;
    }
    return 0;
}

/* Runs once the connection's task is done, also when it was cancelled
 * before it ever started (its body then never runs). */
static void conn_done(async_future *f, void *arg)
{
    (void)f;
    conn *c = arg;
    async_close(c->fd);
    atomic_fetch_sub(&active, 1);
    conn_unlink(c);
    async_task_unref(c->task);
    free(c);
}

static void conn_start(worker *w, int fd)
{
    conn *c = calloc(1, sizeof(*c));
    async_task_opts topts = {.stack_size = 128 * 1024};
    if (!c || async_spawn_opts(&c->task, conn_main, c, &topts) < 0) {
        free(c);
        async_close(fd);
        return;
    }
    c->w = w;
    c->fd = fd;
    if (async_future_add_done_callback(async_task_future(c->task), conn_done,
                                       c) < 0) {
        /* Cannot happen on a running loop short of ENOMEM; the body then
         * sees a cancelled task and the fd is closed here. */
        async_task_cancel(c->task);
        async_task_unref(c->task);
        async_close(fd);
        free(c);
        return;
    }
    async_tcp_nodelay(fd, 1);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    atomic_fetch_add(&active, 1);
    w->n.conns++;
}

/* ---- accepting ------------------------------------------------------------------ */

/* The EMFILE strategy described at the top of the file. */
static int accept_overflow(worker *w)
{
    if (w->spare >= 0) {
        close(w->spare);
        int fd = async_accept(w->lfd, NULL, NULL);
        if (fd >= 0) {
            async_close(fd);
            w->n.rejected++;
        }
        w->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 || fd == ASYNC_ECANCELED)
            return fd < 0 ? fd : 0;
    }
    return async_sleep(EMFILE_BACKOFF);
}

/* Accepts until cancelled (shutdown) or the listener fails. */
static int accept_loop(worker *w)
{
    for (;;) {
        int fd = async_accept(w->lfd, NULL, NULL);
        if (fd == ASYNC_EMFILE || fd == ASYNC_ENFILE || fd == ASYNC_ENOMEM ||
            fd == -ENOBUFS) {
            fd = accept_overflow(w);
            if (fd < 0)
                return fd;
            continue;
        }
        if (fd < 0)
            return fd;
        long max = w->opt->max_conns;
        if (max > 0 && atomic_load(&active) >= max) {
            async_close(fd);
            w->n.rejected++;
            continue;
        }
        conn_start(w, fd);
    }
}

/* Waits until no connection is open or `deadline` passes (ASYNC_ETIMEDOUT). */
static int wait_conns(worker *w, uint64_t deadline)
{
    if (!w->conns)
        return 0;
    int rc = async_future_new(async_get_running_loop(), &w->drained);
    if (rc < 0)
        return rc;
    rc = async_deadline_push(deadline);
    if (rc == 0) {
        rc = async_future_await(w->drained, NULL);
        async_deadline_pop();
    }
    async_future_unref(w->drained);
    w->drained = NULL;
    return rc;
}

static void cancel_conns(worker *w)
{
    for (conn *c = w->conns; c; c = c->next)
        async_task_cancel(c->task);
}

/* The worker loop's main task: accept until the listener is closed by a
 * shutdown request, then let connections finish within the grace period. */
static int signal_task(void *arg, void **result);

static int worker_main(void *arg, void **result)
{
    (void)result;
    worker *w = arg;
    pthread_mutex_lock(&w->lock);
    w->loop = async_get_running_loop();
    pthread_mutex_unlock(&w->lock);
    if (w->opt->threads == 1) {
        int src = async_spawn(NULL, signal_task, w);
        if (src < 0)
            return src;
    }
    w->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int rc = accept_loop(w);
    if (!w->closing) {
        fprintf(stderr, "echo_server: accept failed: %s\n",
                async_strerror(rc));
        w->exit_rc = rc;
    }
    if (w->lfd >= 0)
        async_close(w->lfd);
    w->lfd = -1;
    long grace = w->opt->idle_sec ? w->opt->idle_sec : DEFAULT_GRACE_SEC;
    if (wait_conns(w, async_deadline_in(grace * ASYNC_SEC)) != 0) {
        cancel_conns(w);
        wait_conns(w, ASYNC_NO_DEADLINE);
    }
    if (w->spare >= 0)
        close(w->spare);
    pthread_mutex_lock(&w->lock);
    w->loop = NULL;
    pthread_mutex_unlock(&w->lock);
    return 0;
}

/* ---- shutdown requests, posted from the main thread --------------------------- */

/* First signal: closing the listener wakes the acceptor with ASYNC_EBADF. */
static int worker_shutdown(void *arg)
{
    worker *w = arg;
    if (w->closing)
        return 0;
    w->closing = true;
    if (w->lfd >= 0) {
        async_close(w->lfd);
        w->lfd = -1;
    }
    return 0;
}

/* Second signal: connections are cancelled instead of waited for. */
static int worker_force(void *arg)
{
    worker_shutdown(arg);
    cancel_conns(arg);
    return 0;
}

static void post_all(async_callback cb)
{
    for (unsigned i = 0; i < opt.threads; i++) {
        worker *w = &workers[i];
        pthread_mutex_lock(&w->lock);
        if (w->loop)
            async_loop_call_soon_threadsafe(w->loop, cb, w);
        pthread_mutex_unlock(&w->lock);
    }
}

static void *worker_thread(void *arg)
{
    worker *w = arg;
    int rc = async_run(worker_main, w, NULL);
    if (rc < 0 && !w->exit_rc)
        w->exit_rc = rc;
    atomic_fetch_sub(&workers_alive, 1);
    return NULL;
}

/*
 * With one loop, that loop runs on the main thread and this task watches
 * the signals in it: the process stays single-threaded, so libc's read and
 * send skip their thread-cancellation bookkeeping (two atomic operations
 * per call, measurable in the echo benchmark).  async_run cancels the task
 * when worker_main returns.
 */
static int signal_task(void *arg, void **result)
{
    (void)result;
    worker *w = arg;
    static const int sigs[] = {SIGINT, SIGTERM};
    async_signal_watcher *sw;
    int rc = async_signal_watcher_new(NULL, sigs, 2, &sw);
    if (rc < 0)
        return rc;
    for (int n = 0;; n++) {
        int signo;
        rc = async_signal_watcher_wait(sw, ASYNC_NO_DEADLINE, &signo);
        if (rc < 0)
            break;
        fprintf(stderr, n == 0 ? "echo_server: %s, closing listeners\n"
                               : "echo_server: %s again, closing connections\n",
                strsignal(signo));
        if (n == 0)
            worker_shutdown(w);
        else
            worker_force(w);
    }
    async_signal_watcher_free(sw);
    return rc == ASYNC_ECANCELED ? 0 : rc;
}

/* ---- the main thread: signals --------------------------------------------------- */

/* Waits for SIGINT/SIGTERM; the first starts a graceful shutdown, a second
 * forces it.  Returns once every worker loop has ended. */
static int control_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const int sigs[] = {SIGINT, SIGTERM};
    async_signal_watcher *sw;
    int rc = async_signal_watcher_new(NULL, sigs, 2, &sw);
    if (rc < 0)
        return rc;
    int nsignals = 0;
    while (atomic_load(&workers_alive) > 0) {
        if (atomic_load(&start_failed))
            post_all(worker_force); /* retried until every loop heard it */
        int signo;
        rc = async_signal_watcher_wait(sw, async_deadline_in(50 * ASYNC_MSEC),
                                       &signo);
        if (rc == ASYNC_ETIMEDOUT)
            continue;
        if (rc < 0)
            break;
        if (nsignals++ == 0) {
            fprintf(stderr, "echo_server: %s, closing listeners\n",
                    strsignal(signo));
            post_all(worker_shutdown);
        } else {
            fprintf(stderr, "echo_server: %s again, closing connections\n",
                    strsignal(signo));
            post_all(worker_force);
        }
    }
    async_signal_watcher_free(sw);
    return rc == ASYNC_ETIMEDOUT ? 0 : rc;
}

/* ---- command line ------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: echo_server [options]\n"
            "  --host H              address to listen on (default 127.0.0.1;\n"
            "                        names, IPv6 like ::1, unix:/path work)\n"
            "  --port P              TCP port, 0 for any free one (default 7000)\n"
            "  --threads N           loops, one per thread, each with its own\n"
            "                        SO_REUSEPORT listener (default 1)\n"
            "  --max-conns N         close connections beyond N at once\n"
            "                        (default 0: no limit)\n"
            "  --idle-timeout SEC    close connections idle for SEC seconds\n"
            "                        (default 0: never)\n"
            "  --help                this text\n"
            "SIGINT/SIGTERM: stop accepting, let connections finish (up to the\n"
            "idle timeout, or 5 s), print totals.  A second signal closes them.\n");
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

static int bad_value(const char *name, const char *value)
{
    fprintf(stderr, "echo_server: invalid value '%s' for --%s\n", value, name);
    fprintf(stderr, "try 'echo_server --help'\n");
    return 2;
}

/* Parses argv into opt; returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"max-conns", required_argument, NULL, 'm'},
        {"idle-timeout", required_argument, NULL, 'i'},
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
                return bad_value("port", optarg);
            opt.port = (unsigned)v;
            break;
        case 't':
            if ((v = parse_num(optarg, 1, MAX_THREADS)) < 0)
                return bad_value("threads", optarg);
            opt.threads = (unsigned)v;
            break;
        case 'm':
            if ((v = parse_num(optarg, 0, 100000000)) < 0)
                return bad_value("max-conns", optarg);
            opt.max_conns = v;
            break;
        case 'i':
            if ((v = parse_num(optarg, 0, 86400)) < 0)
                return bad_value("idle-timeout", optarg);
            opt.idle_sec = v;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "try 'echo_server --help'\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "echo_server: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return -1;
}

/* ---- listeners ---------------------------------------------------------------------- */

/* "host:port" for async_tcp_listen: IPv6 literals get brackets. */
static void listen_string(char *buf, size_t size, unsigned port)
{
    if (strncmp(opt.host, "unix:", 5) == 0)
        snprintf(buf, size, "%s", opt.host);
    else if (strchr(opt.host, ':') && opt.host[0] != '[')
        snprintf(buf, size, "[%s]:%u", opt.host, port);
    else
        snprintf(buf, size, "%s:%u", opt.host, port);
}

/* One listener per worker; with port 0 the first one picks the port and
 * the others join it.  Returns 0 or prints why not and returns an error. */
static int open_listeners(void)
{
    unsigned flags = opt.threads > 1 && strncmp(opt.host, "unix:", 5) != 0
                         ? ASYNC_LISTEN_REUSEPORT : 0;
    unsigned port = opt.port;
    char where[300];
    bool is_unix = strncmp(opt.host, "unix:", 5) == 0;
    for (unsigned i = 0; i < opt.threads; i++) {
        listen_string(where, sizeof(where), port);
        /* A Unix path cannot be bound twice: the loops share one socket. */
        int fd = is_unix && i > 0 ? fcntl(workers[0].lfd, F_DUPFD_CLOEXEC, 0)
                                  : async_tcp_listen(where, -1, flags);
        if (fd < 0 && is_unix && i > 0)
            fd = -errno;
        if (fd < 0) {
            fprintf(stderr, "echo_server: cannot listen on %s: %s\n", where,
                    async_strerror(fd));
            for (unsigned j = 0; j < i; j++)
                close(workers[j].lfd);
            return fd;
        }
        workers[i].lfd = fd;
        async_addr a;
        if (i == 0 && async_sock_local_addr(fd, &a) == 0 &&
            async_addr_port(&a) > 0)
            port = (unsigned)async_addr_port(&a);
    }
    async_addr a;
    char name[ASYNC_ADDR_STRLEN];
    if (async_sock_local_addr(workers[0].lfd, &a) == 0 &&
        async_addr_format(&a, name, sizeof(name)) > 0)
        printf("echo_server: listening on %s (%u thread%s)\n", name,
               opt.threads, opt.threads > 1 ? "s" : "");
    fflush(stdout);
    return 0;
}

static void worker_init(worker *w)
{
    w->opt = &opt;
    w->spare = -1;
    pthread_mutex_init(&w->lock, NULL);
}

static int start_workers(void)
{
    atomic_store(&workers_alive, opt.threads);
    for (unsigned i = 0; i < opt.threads; i++) {
        worker *w = &workers[i];
        worker_init(w);
        int err = pthread_create(&w->thread, NULL, worker_thread, w);
        w->started = err == 0;
        if (err) {
            fprintf(stderr, "echo_server: cannot start a thread: %s\n",
                    strerror(err));
            atomic_fetch_sub(&workers_alive, opt.threads - i);
            for (unsigned j = i; j < opt.threads; j++)
                close(workers[j].lfd);
            return -err;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = parse_args(argc, argv);
    if (rc >= 0)
        return rc;
    /* Sockets never raise SIGPIPE here (MSG_NOSIGNAL), but stdout may be a
     * closed pipe. */
    signal(SIGPIPE, SIG_IGN);
    if (open_listeners() < 0)
        return 1;
    int crc = 0;
    if (opt.threads == 1) {
        worker_init(&workers[0]);
        worker_thread(&workers[0]);
        rc = 0;
    } else {
        rc = start_workers();
        if (rc < 0)
            atomic_store(&start_failed, true);
        crc = async_run(control_main, NULL, NULL);
    }
    int exit_code = rc < 0 || crc < 0 ? 1 : 0;
    for (unsigned i = 0; i < opt.threads; i++) {
        if (workers[i].started) {
            pthread_join(workers[i].thread, NULL);
            if (workers[i].exit_rc)
                exit_code = 1;
        }
    }
    if (crc < 0)
        fprintf(stderr, "echo_server: signal handling failed: %s\n",
                async_strerror(crc));
    counts sum = {0, 0, 0, 0};
    for (unsigned i = 0; i < opt.threads; i++) {
        sum.conns += workers[i].n.conns;
        sum.rejected += workers[i].n.rejected;
        sum.bytes += workers[i].n.bytes;
        sum.trips += workers[i].n.trips;
    }
    printf("echo_server: totals: %" PRIu64 " connections, %" PRIu64
           " rejected, %" PRIu64 " bytes, %" PRIu64 " round trips\n",
           sum.conns, sum.rejected, sum.bytes, sum.trips);
    return exit_code;
}
