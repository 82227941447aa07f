/*
 * A server on N threads: one loop per thread, each with its own
 * SO_REUSEPORT listener (the kernel spreads connections over them; a Unix
 * path, which cannot be bound twice, is one listener shared by all), and
 * one handle to close and wait for all of them.
 *
 * The listeners are opened by the calling thread, so bind errors come back
 * from async_server_group_start.  Requests from other threads (close,
 * close_clients, abort_clients) travel to each loop by
 * call_soon_threadsafe.  A task on another loop waiting in wait_closed is
 * woken the same way when the last worker ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream/server.h"

/* One thread's loop and server. */
typedef struct worker {
    async_server_group *g;  /* the group */
    pthread_t thread;       /* runs async_run(worker_main) */
    bool started;           /* thread created (to be joined) */
    int lfd;                /* its listener until its server owns it */
    async_loop *loop;       /* its loop while it serves (under g->lock) */
    async_server *srv;      /* its server (worker thread only) */
    int rc;                 /* why it stopped, or 0 */
} worker;

struct async_server_group {
    pthread_mutex_t lock;     /* guards the fields below and worker.loop */
    pthread_cond_t cond;      /* signalled when a worker starts or ends */
    async_conn_handler handler; /* as async_start_server */
    void *arg;                /* for handler */
    async_server_opts opts;   /* copy of the caller's options */
    async_addr addr;          /* the address (port resolved) */
    unsigned nworkers;        /* threads */
    unsigned running;         /* workers whose loop still runs */
    unsigned ready;           /* workers serving (or failed to start) */
    bool closing;             /* close() was called */
    async_loop *waiter_loop;  /* loop of a task in wait_closed, or NULL */
    async_event *waiter_ev;   /* set on that loop when running hits 0 */
    worker w[];               /* the workers */
};

/* ---- on a worker's loop ----------------------------------------------------- */

static int do_close(void *arg)
{
    worker *wk = arg;
    if (wk->srv)
        async_server_close(wk->srv);
    return 0;
}

static int do_close_clients(void *arg)
{
    worker *wk = arg;
    if (wk->srv)
        async_server_close_clients(wk->srv);
    return 0;
}

static int do_abort_clients(void *arg)
{
    worker *wk = arg;
    if (wk->srv)
        async_server_abort_clients(wk->srv);
    return 0;
}

static int worker_main(void *arg, void **result)
{
    (void)result;
    worker *wk = arg;
    async_server_group *g = wk->g;
    int rc = async__server_start_fd(wk->lfd, g->handler, g->arg, &g->opts,
                                    &wk->srv);
    wk->lfd = -1;
    pthread_mutex_lock(&g->lock);
    if (rc == 0) {
        wk->loop = async_get_running_loop();
        if (g->closing)
            async_server_close(wk->srv);
    }
    g->ready++;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    if (rc)
        return rc;
    rc = async_server_serve_forever(wk->srv);
    async_shield_enter();
    async_server_wait_closed(wk->srv, ASYNC_NO_DEADLINE);
    async_shield_leave();
    pthread_mutex_lock(&g->lock);
    wk->loop = NULL;
    pthread_mutex_unlock(&g->lock);
    async_server_free(wk->srv);
    wk->srv = NULL;
    return rc == ASYNC_ECANCELED ? 0 : rc;
}

static int wake_waiter(void *arg)
{
    async_event_set(arg);
    return 0;
}

static void *worker_thread(void *arg)
{
    worker *wk = arg;
    async_server_group *g = wk->g;
    wk->rc = async_run(worker_main, wk, NULL);
    pthread_mutex_lock(&g->lock);
    if (wk->lfd >= 0) { /* its loop never started */
        close(wk->lfd);
        wk->lfd = -1;
        g->ready++;
    }
    if (--g->running == 0 && g->waiter_loop)
        async_loop_call_soon_threadsafe(g->waiter_loop, wake_waiter,
                                        g->waiter_ev);
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

/* ---- from any thread -------------------------------------------------------- */

/* Posts fn to every serving loop. */
static int post_all(async_server_group *g, async_callback fn)
{
    if (!g)
        return ASYNC_EINVAL;
    pthread_mutex_lock(&g->lock);
    for (unsigned i = 0; i < g->nworkers; i++)
        if (g->w[i].loop)
            async_loop_call_soon_threadsafe(g->w[i].loop, fn, &g->w[i]);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

/* Opens the listeners: the first picks the port (for port 0), the others
 * join it; Unix sockets share one. */
static int open_listeners(async_server_group *g, const char *addr)
{
    int backlog = g->opts.backlog ? g->opts.backlog : -1;
    int rc = async_tcp_listen(addr, backlog,
                              g->nworkers > 1 ? ASYNC_LISTEN_REUSEPORT : 0);
    if (rc < 0 && g->nworkers > 1 && strncmp(addr, "unix:", 5) == 0)
        rc = async_tcp_listen(addr, backlog, 0);
    if (rc < 0)
        return rc;
    g->w[0].lfd = rc;
    if ((rc = async_sock_local_addr(g->w[0].lfd, &g->addr)))
        return rc;
    bool shared = g->addr.u.sa.sa_family == AF_UNIX;
    for (unsigned i = 1; i < g->nworkers; i++) {
        int fd = shared ? fcntl(g->w[0].lfd, F_DUPFD_CLOEXEC, 0)
                        : async_tcp_listen_addr(&g->addr, backlog,
                                                ASYNC_LISTEN_REUSEPORT);
        if (fd < 0)
            return shared ? -errno : fd;
        g->w[i].lfd = fd;
    }
    return 0;
}

static void group_release(async_server_group *g)
{
    for (unsigned i = 0; i < g->nworkers; i++)
        if (g->w[i].lfd >= 0)
            close(g->w[i].lfd);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    free(g);
}

static int start_threads(async_server_group *g)
{
    for (unsigned i = 0; i < g->nworkers; i++) {
        worker *wk = &g->w[i];
        pthread_mutex_lock(&g->lock);
        g->running++;
        pthread_mutex_unlock(&g->lock);
        int err = pthread_create(&wk->thread, NULL, worker_thread, wk);
        if (err) {
            pthread_mutex_lock(&g->lock);
            g->running--;
            g->ready += g->nworkers - i;
            pthread_mutex_unlock(&g->lock);
            return -err;
        }
        wk->started = true;
    }
    return 0;
}

int async_server_group_start(const char *addr, unsigned threads,
                             async_conn_handler handler, void *arg,
                             const async_server_opts *opts,
                             async_server_group **out)
{
    if (!addr || !handler || !out || threads == 0 || threads > 1024 ||
        (opts && opts->backlog < 0))
        return ASYNC_EINVAL;
    async_server_group *g = calloc(1, sizeof(*g) + threads * sizeof(worker));
    if (!g)
        return ASYNC_ENOMEM;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->handler = handler;
    g->arg = arg;
    g->nworkers = threads;
    if (opts)
        g->opts = *opts;
    g->opts.reuse_port = false; /* the listeners are made here */
    for (unsigned i = 0; i < threads; i++) {
        g->w[i].g = g;
        g->w[i].lfd = -1;
    }
    int rc = open_listeners(g, addr);
    if (rc) {
        group_release(g);
        return rc;
    }
    rc = start_threads(g);
    pthread_mutex_lock(&g->lock);
    while (g->ready < g->nworkers)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    if (rc == 0)
        for (unsigned i = 0; i < threads && rc == 0; i++)
            rc = g->w[i].loop ? 0 : ASYNC_EFAILED;
    if (rc) {
        async_server_group_close(g);
        async_server_group_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

int async_server_group_close(async_server_group *g)
{
    if (!g)
        return ASYNC_EINVAL;
    pthread_mutex_lock(&g->lock);
    g->closing = true;
    pthread_mutex_unlock(&g->lock);
    return post_all(g, do_close);
}

int async_server_group_close_clients(async_server_group *g)
{
    return post_all(g, do_close_clients);
}

int async_server_group_abort_clients(async_server_group *g)
{
    return post_all(g, do_abort_clients);
}

/*
 * From a task: park until the last worker ends, woken by wake_waiter.  A
 * wake-up posted to our loop holds the event, so when the wait ends
 * early (time-out, cancellation) after the last worker posted it, the
 * event is freed only once that callback has run.
 */
static int wait_in_task(async_server_group *g, uint64_t deadline)
{
    async_event *ev;
    int rc = async_event_new(&ev);
    if (rc)
        return rc;
    pthread_mutex_lock(&g->lock);
    bool done = g->running == 0;
    if (!done && g->waiter_loop) {
        rc = ASYNC_EBUSY; /* one waiting task at a time */
    } else if (!done) {
        g->waiter_loop = async_get_running_loop();
        g->waiter_ev = ev;
    }
    pthread_mutex_unlock(&g->lock);
    if (!done && rc == 0) {
        rc = async_event_wait_until(ev, deadline);
        pthread_mutex_lock(&g->lock);
        g->waiter_loop = NULL;
        g->waiter_ev = NULL;
        bool posted = g->running == 0;
        pthread_mutex_unlock(&g->lock);
        if (posted) {
            rc = 0; /* it did finish */
            async_shield_enter();
            while (!async_event_is_set(ev))
                async_sleep(0);
            async_shield_leave();
        }
    }
    async_event_free(ev);
    return rc;
}

int async_server_group_wait_closed(async_server_group *g, uint64_t deadline)
{
    if (!g)
        return ASYNC_EINVAL;
    if (async_current_task())
        return wait_in_task(g, deadline);
    if (async_get_running_loop())
        return ASYNC_ENOTTASK;
    if (deadline != ASYNC_NO_DEADLINE)
        return ASYNC_EINVAL;
    pthread_mutex_lock(&g->lock);
    while (g->running > 0)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

int async_server_group_addr(const async_server_group *g, async_addr *out)
{
    if (!g || !out)
        return ASYNC_EINVAL;
    *out = g->addr;
    return 0;
}

int async_server_group_free(async_server_group *g)
{
    if (!g)
        return 0;
    pthread_mutex_lock(&g->lock);
    bool busy = g->running > 0 && !g->closing;
    pthread_mutex_unlock(&g->lock);
    if (busy)
        return ASYNC_EBUSY;
    for (unsigned i = 0; i < g->nworkers; i++)
        if (g->w[i].started)
            pthread_join(g->w[i].thread, NULL);
    group_release(g);
    return 0;
}
