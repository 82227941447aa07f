/*
 * The event loop: lifecycle, the ready queue, timers, one iteration.
 *
 * One iteration (loop_run_once), in order:
 *   1. pick the poll timeout: 0 if anything is ready or a stop is pending,
 *      else until the earliest timer, else forever;
 *   2. poll the backend and turn fd readiness into ready work (reader and
 *      writer callbacks, woken tasks);
 *   3. move call_soon_threadsafe items into the ready queue;
 *   4. fire every timer whose deadline has passed;
 *   5. run exactly the items that are ready now; what they schedule runs in
 *      the next iteration (asyncio's _run_once).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/context.h"
#include "core/internal.h"
#include "core/objcache.h"

/* Events taken from the backend per poll. */
#define LOOP_MAX_EVENTS 256

struct async_handle {
    async__runnable run;   /* ready-queue node */
    struct async__context *ctx; /* context captured when scheduled, or NULL */
    async__ltimer timer;   /* for call_later / call_at */
    async_loop *loop;      /* owner */
    async_callback cb;     /* what to call */
    void *arg;             /* its argument */
    uint64_t when;         /* deadline (0 for call_soon) */
    unsigned refs;         /* user + timer/queue/fd-watcher references */
    bool cancelled;        /* will never run (again) */
    bool queued;           /* in the ready queue */
    bool persistent;       /* reader/writer: runs every time it is queued */
};

/* A call_soon_threadsafe request, allocated by the calling thread. */
typedef struct ts_call {
    async__runnable run;   /* ready-queue node */
    async_callback cb;     /* what to call */
    void *arg;             /* its argument */
    async_loop *loop;      /* for error reports */
} ts_call;

static _Thread_local async_loop *running_loop ASYNC__TLS_IE;
static _Thread_local async_loop *default_loop;

/* ---- clock -------------------------------------------------------------- */

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t async__loop_now(async_loop *loop)
{
    return loop->virtual_clock ? loop->vnow : monotonic_ns();
}

uint64_t async_loop_time(const async_loop *loop)
{
    if (!loop)
        return 0;
    return loop->virtual_clock ? loop->vnow : monotonic_ns();
}

void async__loop_use_virtual_clock(async_loop *loop, uint64_t start)
{
    loop->virtual_clock = true;
    loop->vnow = start;
    loop->now = start;
}

void async__loop_advance_clock(async_loop *loop, uint64_t ns)
{
    loop->vnow += ns;
}

/* ---- ready queue and timers --------------------------------------------- */



void async__loop_timer_arm(async_loop *loop, async__ltimer *t, uint64_t when)
{
    async__timer_arm(&loop->timers, &t->node, when);
}

void async__loop_timer_disarm(async_loop *loop, async__ltimer *t)
{
    async__timer_disarm(&loop->timers, &t->node);
}

static void loop_fire_timers(async_loop *loop)
{
    async__timer *min;
    while ((min = async__timer_heap_min(&loop->timers)) &&
           min->deadline <= loop->now) {
        async__ltimer *t = async__container_of(min, async__ltimer, node);
        async__timer_disarm(&loop->timers, min);
        t->fire(loop, t);
    }
}

/* ---- handles ------------------------------------------------------------ */

/* Freed handles, reused by the next call_soon / call_later on this thread. */
static _Thread_local async__objcache handle_cache ASYNC__TLS_IE =
    ASYNC__OBJCACHE_INIT(256);

static void handle_unref(async_handle *h)
{
    if (--h->refs == 0) {
        async__context_unref(h->ctx);
        async__objcache_put(&handle_cache, h);
    }
}

void async_handle_unref(async_handle *h)
{
    if (h)
        handle_unref(h);
}

static void handle_run(async__runnable *r, bool drop);

async_callback async__handle_callback(async__runnable *r)
{
    return r->run == handle_run ? async__container_of(r, async_handle, run)->cb
                                : NULL;
}

static void handle_run(async__runnable *r, bool drop)
{
    async_handle *h = async__container_of(r, async_handle, run);
    h->queued = false;
    if (drop)
        h->cancelled = true;
    if (!h->cancelled) {
        if (!h->persistent)
            h->cancelled = true; /* ran: a later cancel is a no-op */
        struct async__context *prev = async__context_swap(h->ctx);
        int rc = h->cb(h->arg);
        async__context_swap(prev);
        if (rc < 0)
            async__loop_report(h->loop, "callback failed", rc, NULL, NULL);
    }
    handle_unref(h);
}

/* Queues h (taking a queue reference) unless it is queued already. */
static void handle_queue(async_loop *loop, async_handle *h)
{
    if (h->queued)
        return;
    h->queued = true;
    h->refs++;
    async__loop_schedule(loop, &h->run);
}

static void handle_fire(async_loop *loop, async__ltimer *t)
{
    async_handle *h = async__container_of(t, async_handle, timer);
    if (!loop->closed)
        handle_queue(loop, h);
    else
        h->cancelled = true;
    handle_unref(h); /* the timer's reference */
}

static async_handle *handle_new(async_loop *loop, async_callback cb,
                                void *arg)
{
    async_handle *h = async__objcache_get(&handle_cache, sizeof(*h));
    if (!h)
        return NULL;
    h->when = 0;
    h->refs = 0;
    h->cancelled = false;
    h->queued = false;
    h->persistent = false;
    h->run.run = handle_run;
    h->timer.fire = handle_fire;
    async__timer_init(&h->timer.node);
    h->loop = loop;
    h->cb = cb;
    h->arg = arg;
    h->ctx = async__context_capture();
    return h;
}

static int check_schedule(async_loop *loop, async_callback cb)
{
    if (!loop || !cb)
        return ASYNC_EINVAL;
    if (loop->closed)
        return ASYNC_ECLOSED;
    return async__loop_check_thread(loop);
}

/* Hands the optional user reference out. */
static void handle_give(async_handle *h, async_handle **out)
{
    if (out) {
        h->refs++;
        *out = h;
    }
}

int async_loop_call_soon(async_loop *loop, async_callback cb, void *arg,
                         async_handle **handle)
{
    int rc = check_schedule(loop, cb);
    if (rc)
        return rc;
    async_handle *h = handle_new(loop, cb, arg);
    if (!h)
        return ASYNC_ENOMEM;
    handle_queue(loop, h);
    handle_give(h, handle);
    return 0;
}

int async_loop_call_at(async_loop *loop, uint64_t when, async_callback cb,
                       void *arg, async_handle **handle)
{
    int rc = check_schedule(loop, cb);
    if (rc)
        return rc;
    async_handle *h = handle_new(loop, cb, arg);
    if (!h)
        return ASYNC_ENOMEM;
    h->when = when;
    h->refs = 1; /* the timer's */
    async__loop_timer_arm(loop, &h->timer, when);
    handle_give(h, handle);
    return 0;
}

int async_loop_call_later(async_loop *loop, int64_t delay, async_callback cb,
                          void *arg, async_handle **handle)
{
    int rc = check_schedule(loop, cb);
    if (rc)
        return rc;
    uint64_t now = async__loop_now(loop);
    /* asyncio: a negative delay is a deadline in the past, so the call
     * runs at the next iteration, in deadline order (-2 before -1). */
    uint64_t back = delay < 0 ? (uint64_t)(-(delay + 1)) + 1 : 0;
    uint64_t when = delay < 0 ? (now > back ? now - back : 0)
                              : now + (uint64_t)delay;
    return async_loop_call_at(loop, when, cb, arg, handle);
}

int async_handle_cancel(async_handle *h)
{
    if (!h)
        return ASYNC_EINVAL;
    if (h->cancelled)
        return 0;
    h->cancelled = true;
    if (async__timer_armed(&h->timer.node)) {
        async__loop_timer_disarm(h->loop, &h->timer);
        handle_unref(h); /* the timer's reference; the user still has one */
    }
    return 0;
}

bool async_handle_cancelled(const async_handle *h)
{
    return h && h->cancelled;
}

uint64_t async_handle_when(const async_handle *h)
{
    return h ? h->when : 0;
}

/* ---- call_soon_threadsafe ----------------------------------------------- */

static void ts_run(async__runnable *r, bool drop)
{
    ts_call *c = async__container_of(r, ts_call, run);
    if (!drop) {
        int rc = c->cb(c->arg);
        if (rc < 0)
            async__loop_report(c->loop, "callback failed", rc, NULL, NULL);
    }
    free(c);
}

int async__loop_post_threadsafe(async_loop *loop, async__runnable *r)
{
    r->next = NULL;
    pthread_mutex_lock(&loop->ts_lock);
    if (loop->closed) {
        pthread_mutex_unlock(&loop->ts_lock);
        return ASYNC_ECLOSED;
    }
    *loop->ts_tail = r;
    loop->ts_tail = &r->next;
    atomic_store_explicit(&loop->ts_pending, true, memory_order_release);
    async__backend_wake(loop->backend);
    pthread_mutex_unlock(&loop->ts_lock);
    return 0;
}

int async_loop_call_soon_threadsafe(async_loop *loop, async_callback cb,
                                    void *arg)
{
    if (!loop || !cb)
        return ASYNC_EINVAL;
    ts_call *c = malloc(sizeof(*c));
    if (!c)
        return ASYNC_ENOMEM;
    c->run.run = ts_run;
    c->cb = cb;
    c->arg = arg;
    c->loop = loop;
    if (running_loop == loop) {
        /* On the loop's own thread: straight into the ready queue, so the
         * call keeps FIFO order with call_soon (asyncio uses one queue). */
        async__loop_schedule(loop, &c->run);
        return 0;
    }
    int rc = async__loop_post_threadsafe(loop, &c->run);
    if (rc)
        free(c);
    return rc;
}

/* The interrupt hook's flags are read and written by signal handlers. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
               "async__loop_interrupt needs lock-free atomic_int");

void async__loop_set_interrupt(async_loop *loop,
                               void (*fn)(async_loop *, void *), void *arg)
{
    loop->intr_fn = fn;
    loop->intr_arg = arg;
    atomic_store_explicit(&loop->intr_pending, false, memory_order_relaxed);
}

void async__loop_interrupt(async_loop *loop)
{
    int saved = errno;
    /* intr_pending first: whoever sees ts_pending raised by this call also
     * sees intr_pending (loop_take_threadsafe reads them in that order). */
    atomic_store_explicit(&loop->intr_pending, true, memory_order_release);
    atomic_store_explicit(&loop->ts_pending, true, memory_order_release);
    async__backend_wake(loop->backend);
    errno = saved;
}

/* Moves the threadsafe FIFO into the ready queue, then runs the interrupt
 * function if async__loop_interrupt() was called. */
static void loop_take_threadsafe(async_loop *loop)
{
    if (!atomic_load_explicit(&loop->ts_pending, memory_order_acquire))
        return;
    pthread_mutex_lock(&loop->ts_lock);
    async__runnable *r = loop->ts_head;
    loop->ts_head = NULL;
    loop->ts_tail = &loop->ts_head;
    atomic_store_explicit(&loop->ts_pending, false, memory_order_relaxed);
    pthread_mutex_unlock(&loop->ts_lock);
    while (r) {
        async__runnable *next = r->next;
        async__loop_schedule(loop, r);
        r = next;
    }
    /* An interrupt that lands after this exchange raises ts_pending again,
     * so the next iteration takes it. */
    if (atomic_exchange_explicit(&loop->intr_pending, false,
                                 memory_order_acq_rel) &&
        loop->intr_fn)
        loop->intr_fn(loop, loop->intr_arg);
}

/* ---- exception handler -------------------------------------------------- */

void async_loop_default_exception_handler(async_loop *loop,
                                          const async_exception_context *ctx)
{
    (void)loop;
    if (!ctx)
        return;
    const char *task = ctx->task ? async_task_name(ctx->task) : NULL;
    char site[256];
    async__debug_site(site, sizeof site, ctx->task ? ctx->task->spawn_site : NULL);
    if (ctx->error)
        fprintf(stderr, "libasync: %s: %s (%s)%s%s%s\n",
                ctx->message ? ctx->message : "error",
                async_strerror(ctx->error), async_err_name(ctx->error),
                task ? " in task " : "", task ? task : "", site);
    else
        fprintf(stderr, "libasync: %s%s%s%s\n",
                ctx->message ? ctx->message : "error", task ? ": task " : "",
                task ? task : "", site);
}

void async_loop_call_exception_handler(async_loop *loop,
                                       const async_exception_context *ctx)
{
    if (loop && loop->exc_fn)
        loop->exc_fn(loop, ctx, loop->exc_arg);
    else
        async_loop_default_exception_handler(loop, ctx);
}

int async_loop_set_exception_handler(async_loop *loop,
                                     async_exception_handler fn, void *arg)
{
    if (!loop)
        return ASYNC_EINVAL;
    loop->exc_fn = fn;
    loop->exc_arg = fn ? arg : NULL;
    return 0;
}

void async__loop_report(async_loop *loop, const char *message, int error,
                        async_task *task, async_future *future)
{
    async_exception_context ctx = {message, error, task, future};
    /* A loop already freed has no handler any more: the process-wide
     * default (stderr) hears of it instead. */
    if (loop && loop->freed)
        async_loop_default_exception_handler(NULL, &ctx);
    else
        async_loop_call_exception_handler(loop, &ctx);
}

/* ---- fd watchers and fd waits ------------------------------------------- */

static async__fdw *fdw_create(async_loop *loop, int fd);

static inline async__fdw *fdw_get(async_loop *loop, int fd, bool create)
{
    if (fd < loop->nfds && loop->fds[fd])
        return loop->fds[fd];
    return create ? fdw_create(loop, fd) : NULL;
}

/* fdw_get's slow path: a first wait on fd. */
static __attribute__((noinline)) async__fdw *fdw_create(async_loop *loop,
                                                        int fd)
{
    if (fd >= loop->nfds) {
        int n = loop->nfds ? loop->nfds : 64;
        while (n <= fd)
            n *= 2;
        async__fdw **fds = realloc(loop->fds, (size_t)n * sizeof(*fds));
        if (!fds)
            return NULL;
        memset(fds + loop->nfds, 0, (size_t)(n - loop->nfds) * sizeof(*fds));
        loop->fds = fds;
        loop->nfds = n;
    }
    async__fdw *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->fd = fd;
    async__list_init(&w->rwait);
    async__list_init(&w->wwait);
    loop->fds[fd] = w;
    return w;
}

static void fdw_set_registered(async_loop *loop, async__fdw *w,
                               unsigned events)
{
    if (!w->registered != !events)
        loop->nwatched += events ? 1 : (size_t)-1;
    w->registered = events;
}

/* Dropping interest failed (EBADF: the fd was closed before its interest
 * was removed; or the kernel ran out of memory): what the backend still
 * holds is unknown.  One attempt to remove everything, then the record
 * claims nothing either way, so the next watch of this number adds afresh
 * (the backend turns an add that finds the fd still registered into a
 * modify) instead of trusting a registration that may be gone. */
static void fdw_removal_failed(async_loop *loop, async__fdw *w)
{
    (void)async__backend_watch(loop->backend, w->fd,
                               ASYNC__EV_READ | ASYNC__EV_WRITE, 0, w);
    fdw_set_registered(loop, w, 0);
}

/* Sets the backend interest of w to exactly `events`.  An fd closed and
 * reopened behind our back (same number) makes MOD fail with ENOENT, or
 * ADD with EEXIST; both are retried the other way. */
static int fdw_set_interest(async_loop *loop, async__fdw *w, unsigned events)
{
    if (w->registered == events)
        return 0;
    int rc = async__backend_watch(loop->backend, w->fd, w->registered, events,
                                  w);
    if (rc == ASYNC_ENOENT && events)
        rc = async__backend_watch(loop->backend, w->fd, 0, events, w);
    else if (rc == ASYNC_EEXIST)
        rc = async__backend_watch(loop->backend, w->fd,
                                  ASYNC__EV_READ | ASYNC__EV_WRITE, events, w);
    if (rc == ASYNC_ENOENT && !events)
        rc = 0; /* already gone from the backend */
    if (rc && (events & ~w->registered) == 0)
        fdw_removal_failed(loop, w);
    else if (rc == 0)
        fdw_set_registered(loop, w, events);
    return rc;
}

/* Interest that someone still needs right now. */
static unsigned fdw_wanted(const async__fdw *w)
{
    unsigned ev = 0;
    if (w->reader || !async__list_empty(&w->rwait))
        ev |= ASYNC__EV_READ;
    if (w->writer || !async__list_empty(&w->wwait))
        ev |= ASYNC__EV_WRITE;
    return ev;
}

/* Readiness for one fd.  Interest nobody waits for any more is dropped
 * here, lazily, so a task that waits on the same fd again and again (the
 * usual read loop) costs no epoll_ctl per wait. */
static void fdw_dispatch(async_loop *loop, async__fdw *w, unsigned events)
{
    unsigned stale = events & ~fdw_wanted(w);
    if (events & ASYNC__EV_READ) {
        if (w->reader)
            handle_queue(loop, w->reader);
        async__waiters_notify_all(&w->rwait, 0);
    }
    if (events & ASYNC__EV_WRITE) {
        if (w->writer)
            handle_queue(loop, w->writer);
        async__waiters_notify_all(&w->wwait, 0);
    }
    if (stale)
        (void)fdw_set_interest(loop, w, w->registered & ~stale);
}

int async__loop_fd_wait(async_loop *loop, int fd, unsigned events,
                        uint64_t deadline)
{
    return async__loop_fd_wait_on(loop, fd, events, deadline, ASYNC_WAIT_NONE,
                                  NULL);
}

int async__loop_fd_wait_on(async_loop *loop, int fd, unsigned events,
                           uint64_t deadline, unsigned kind, const void *obj)
{
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (fd < 0)
        return ASYNC_EBADF;
    async__fdw *w = fdw_get(loop, fd, true);
    if (!w)
        return ASYNC_ENOMEM;
    if ((w->registered & events) != events) {
        int rc = fdw_set_interest(loop, w, w->registered | events);
        if (rc)
            return rc;
    }
    async__waiter wt;
    async__waiter_init(&wt, t);
    async__waiter_add(&wt, events & ASYNC__EV_READ ? &w->rwait : &w->wwait);
    if (kind == ASYNC_WAIT_NONE) {
        kind = events & ASYNC__EV_READ ? ASYNC_WAIT_FD_READ : ASYNC_WAIT_FD_WRITE;
        obj = (const void *)(intptr_t)fd;
    }
    async__task_wait_on(t, kind, obj);
    int rc = async__task_park(t, deadline);
    async__waiter_remove(&wt);
    return rc;
}

/* Wakes everyone waiting on w with err and drops its reader/writer. */
static void fdw_abandon(async__fdw *w, int err)
{
    async__waiters_notify_all(&w->rwait, err);
    async__waiters_notify_all(&w->wwait, err);
    for (int i = 0; i < 2; i++) {
        async_handle **hp = i ? &w->writer : &w->reader;
        if (*hp) {
            (*hp)->cancelled = true;
            handle_unref(*hp);
            *hp = NULL;
        }
    }
}

void async__loop_fd_forget(async_loop *loop, int fd, int err)
{
    async__fdw *w = fdw_get(loop, fd, false);
    if (!w)
        return;
    fdw_abandon(w, err);
    (void)fdw_set_interest(loop, w, 0);
}

void async__loop_fd_opened(async_loop *loop, int fd)
{
    async__fdw *w = loop && fd >= 0 ? fdw_get(loop, fd, false) : NULL;
    if (!w)
        return;
    /* The kernel has just handed this number out again, so the fd we knew
     * under it was closed without async_close: its registration went with
     * it (the backend drops closed fds), and our record is stale.  Without
     * this, a wait on the new fd would trust the old interest and never be
     * polled. */
    fdw_abandon(w, ASYNC_EBADF);
    if (w->registered) {
        loop->nwatched--;
        w->registered = 0;
    }
}

static int loop_add_watcher(async_loop *loop, int fd, async_callback cb,
                            void *arg, unsigned which)
{
    int rc = check_schedule(loop, cb);
    if (rc)
        return rc;
    if (fd < 0 || fcntl(fd, F_GETFD) == -1)
        return ASYNC_EBADF;
    async__fdw *w = fdw_get(loop, fd, true);
    if (!w)
        return ASYNC_ENOMEM;
    async_handle **slot = which == ASYNC__EV_READ ? &w->reader : &w->writer;
    if (*slot)
        return ASYNC_EEXIST;
    async_handle *h = handle_new(loop, cb, arg);
    if (!h)
        return ASYNC_ENOMEM;
    h->persistent = true;
    h->refs = 1; /* the watcher slot's */
    rc = fdw_set_interest(loop, w, w->registered | which);
    if (rc) {
        async__objcache_put(&handle_cache, h);
        return rc;
    }
    *slot = h;
    return 0;
}

static int loop_remove_watcher(async_loop *loop, int fd, unsigned which)
{
    if (!loop)
        return ASYNC_EINVAL;
    int rc = async__loop_check_thread(loop);
    if (rc)
        return rc;
    async__fdw *w = fd >= 0 ? fdw_get(loop, fd, false) : NULL;
    async_handle **slot = NULL;
    if (w)
        slot = which == ASYNC__EV_READ ? &w->reader : &w->writer;
    if (!slot || !*slot)
        return ASYNC_ENOENT;
    (*slot)->cancelled = true;
    handle_unref(*slot);
    *slot = NULL;
    /* Eagerly: the caller may close the fd next. */
    (void)fdw_set_interest(loop, w, fdw_wanted(w));
    return 0;
}

int async_loop_add_reader(async_loop *loop, int fd, async_callback cb,
                          void *arg)
{
    return loop_add_watcher(loop, fd, cb, arg, ASYNC__EV_READ);
}

int async_loop_add_writer(async_loop *loop, int fd, async_callback cb,
                          void *arg)
{
    return loop_add_watcher(loop, fd, cb, arg, ASYNC__EV_WRITE);
}

int async_loop_remove_reader(async_loop *loop, int fd)
{
    return loop_remove_watcher(loop, fd, ASYNC__EV_READ);
}

int async_loop_remove_writer(async_loop *loop, int fd)
{
    return loop_remove_watcher(loop, fd, ASYNC__EV_WRITE);
}

/* ---- close hooks -------------------------------------------------------- */

void async__loop_add_close_hook(async_loop *loop, async__close_hook *h)
{
    h->next = loop->close_hooks;
    loop->close_hooks = h;
}

void async__loop_remove_close_hook(async_loop *loop, async__close_hook *h)
{
    for (async__close_hook **p = &loop->close_hooks; *p; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            return;
        }
    }
}

/* ---- lifecycle ---------------------------------------------------------- */

int async_loop_new(async_loop **out)
{
    if (!out)
        return ASYNC_EINVAL;
    async_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return ASYNC_ENOMEM;
    int rc = async__backend_new(&loop->backend);
    if (rc) {
        free(loop);
        return rc;
    }
    loop->ready_tail = &loop->ready_head;
    loop->ts_tail = &loop->ts_head;
    pthread_mutex_init(&loop->ts_lock, NULL);
    atomic_init(&loop->ts_pending, false);
    atomic_init(&loop->intr_pending, false);
    async__timer_heap_init(&loop->timers);
    async__list_init(&loop->tasks);
    loop->now = monotonic_ns();
    loop->slow_ns = 100 * 1000 * 1000;
    loop->debug = async__debug_env();
    async__debug_loop_created(loop);
    *out = loop;
    return 0;
}

static int check_run(async_loop *loop)
{
    if (!loop)
        return ASYNC_EINVAL;
    if (loop->closed)
        return ASYNC_ECLOSED;
    if (loop->running)
        return ASYNC_ERUNNING;
    if (running_loop)
        return ASYNC_EOTHERLOOP;
    return 0;
}

/* The poll timeout for this iteration, in ns (-1: forever).  With the
 * virtual clock the loop never sleeps for a timer: it jumps time instead. */
static int64_t loop_timeout(async_loop *loop)
{
    if (loop->ready_head || loop->stopping ||
        atomic_load_explicit(&loop->ts_pending, memory_order_relaxed))
        return 0;
    async__timer *min = async__timer_heap_min(&loop->timers);
    if (!min)
        return -1;
    uint64_t now = async__loop_now(loop);
    if (min->deadline <= now)
        return 0;
    if (loop->virtual_clock) {
        loop->vnow = min->deadline;
        return 0;
    }
    uint64_t d = min->deadline - now;
    return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}

/*
 * Polls the backend, unless that cannot find anything: with a zero timeout
 * and no fd watched, the only possible event is the wakeup of
 * call_soon_threadsafe, and loop_take_threadsafe() checks its flag anyway
 * (the wakeup fd then stays signalled until the next real poll, which
 * returns at once and drains it).  Saves a syscall per iteration for
 * programs that only compute and yield (bench_tasks yield: 340 ns to
 * 170 ns per yield on a loaded machine).
 */
static int loop_poll(async_loop *loop, async__event *events, int max)
{
    int64_t timeout = loop_timeout(loop);
    if (timeout == 0 && loop->nwatched == 0)
        return 0;
    return async__backend_poll(loop->backend, timeout, events, max);
}

/* One iteration.  A failed poll (anything but EINTR, which the backend
 * turns into 0 events) is reported through the exception handler and
 * returned before anything runs: a poller that keeps failing would
 * otherwise make the loop spin at full CPU without ever delivering I/O. */
static int loop_run_once(async_loop *loop)
{
    async__event events[LOOP_MAX_EVENTS];
    int n = loop_poll(loop, events, LOOP_MAX_EVENTS);
    if (n < 0) {
        async__loop_report(loop, "polling the backend failed", n, NULL, NULL);
        return n;
    }
    /* The clock is only needed to fire timers. */
    if (async__timer_heap_min(&loop->timers))
        loop->now = async__loop_now(loop);
    for (int i = 0; i < n; i++)
        fdw_dispatch(loop, events[i].data, events[i].events);
    loop_take_threadsafe(loop);
    loop_fire_timers(loop);
    if (loop->debug) {
        async__debug_run_ready(loop);
        return 0;
    }
    /* Only what is ready now; anything scheduled while running waits for
     * the next iteration, so a callback that reschedules itself cannot
     * starve I/O. */
    for (loop->todo = loop->ready_len; loop->todo > 0;) {
        loop->todo--;
        async__runnable *r = async__loop_ready_pop(loop);
        r->run(r, false);
    }
    return 0;
}

/* Marks the loop as running on this thread (check_run passed). */
static void loop_enter(async_loop *loop)
{
    loop->running = true;
    loop->thread = pthread_self();
    running_loop = loop;
}

static void loop_leave(async_loop *loop)
{
    loop->stopping = false;
    loop->running = false;
    running_loop = NULL;
}

int async_loop_run_forever(async_loop *loop)
{
    int rc = check_run(loop);
    if (rc)
        return rc;
    loop_enter(loop);
    do
        rc = loop_run_once(loop);
    while (rc == 0 && !loop->stopping);
    loop_leave(loop);
    return rc;
}

int async__loop_run_once(async_loop *loop)
{
    int rc = check_run(loop);
    if (rc)
        return rc;
    loop_enter(loop);
    rc = loop_run_once(loop);
    loop_leave(loop);
    return rc;
}

int async_loop_stop(async_loop *loop)
{
    if (!loop)
        return ASYNC_EINVAL;
    loop->stopping = true;
    return 0;
}

bool async_loop_is_running(const async_loop *loop)
{
    return loop && loop->running;
}

bool async_loop_is_closed(const async_loop *loop)
{
    return !loop || loop->closed;
}

/* run_until_complete's watch on its future. */
typedef struct run_until {
    async__waiter w;      /* on the future's waiters (notify below) */
    async_loop *loop;     /* the loop to stop */
    async_handle *stop;   /* the scheduled stop call, or NULL */
} run_until;

static int run_until_stop(void *arg)
{
    return async_loop_stop(arg);
}

/*
 * The future is done: stop the loop through a call_soon, as asyncio's
 * _run_until_complete_cb does, so the loop runs one more iteration.
 * Everything the completion scheduled (done callbacks added before it,
 * tasks spawned just before a task returned) is already queued ahead of
 * the stop and runs in that iteration.
 */
static void run_until_schedule_stop(run_until *ru)
{
    if (async_loop_call_soon(ru->loop, run_until_stop, ru->loop, &ru->stop))
        async_loop_stop(ru->loop); /* out of memory: stop now */
}

static void run_until_notify(async__waiter *w, int rc)
{
    (void)rc;
    run_until_schedule_stop(async__container_of(w, run_until, w));
}

int async_loop_run_future(async_loop *loop, async_future *f, void **result)
{
    int rc = check_run(loop);
    if (rc)
        return rc;
    if (!f)
        return ASYNC_EINVAL;
    if (f->loop != loop)
        return ASYNC_EWRONGLOOP;
    run_until ru = {.loop = loop, .stop = NULL};
    async__waiter_init(&ru.w, NULL);
    ru.w.notify = run_until_notify;
    if (async_future_done(f))
        run_until_schedule_stop(&ru); /* asyncio runs one iteration too */
    else
        async__waiter_add(&ru.w, &f->waiters);
    async_future_ref(f);
    rc = async_loop_run_forever(loop);
    async__waiter_remove(&ru.w);
    if (ru.stop) {
        /* Stopped by someone else first: the stop must not hit a later
         * run of the loop. */
        async_handle_cancel(ru.stop);
        async_handle_unref(ru.stop);
    }
    bool done = async_future_done(f);
    async_future_unref(f);
    if (rc)
        return rc;
    if (!done)
        return ASYNC_ESTOPPED;
    return async_future_result(f, result);
}

async_loop *async_get_running_loop(void)
{
    return running_loop;
}

int async_get_event_loop(async_loop **out)
{
    if (!out)
        return ASYNC_EINVAL;
    async_loop *loop = running_loop ? running_loop : default_loop;
    if (!loop)
        return ASYNC_ENOLOOP;
    *out = loop;
    return 0;
}

int async_set_event_loop(async_loop *loop)
{
    if (loop && loop->closed)
        return ASYNC_ECLOSED;
    default_loop = loop;
    return 0;
}

static void loop_drop_ready(async_loop *loop)
{
    async__runnable *r;
    while ((r = async__loop_ready_pop(loop)))
        r->run(r, true);
    pthread_mutex_lock(&loop->ts_lock);
    r = loop->ts_head;
    loop->ts_head = NULL;
    loop->ts_tail = &loop->ts_head;
    pthread_mutex_unlock(&loop->ts_lock);
    while (r) {
        async__runnable *next = r->next;
        r->run(r, true);
        r = next;
    }
}

static void loop_drop_timers(async_loop *loop)
{
    async__timer *min;
    while ((min = async__timer_heap_min(&loop->timers))) {
        async__ltimer *t = async__container_of(min, async__ltimer, node);
        async__timer_disarm(&loop->timers, min);
        t->fire(loop, t);
    }
}

static void loop_drop_fds(async_loop *loop)
{
    for (int fd = 0; fd < loop->nfds; fd++) {
        async__fdw *w = loop->fds[fd];
        if (!w)
            continue;
        async__loop_fd_forget(loop, fd, ASYNC_ECLOSED);
        free(w);
    }
    free(loop->fds);
    loop->fds = NULL;
    loop->nfds = 0;
}

int async_loop_close(async_loop *loop)
{
    if (!loop)
        return ASYNC_EINVAL;
    if (loop->running)
        return ASYNC_ECLOSERUNNING;
    if (loop->closed)
        return 0;
    /* Services first (they may still hold tasks or fds), then tasks, then
     * whatever is still queued. */
    while (loop->close_hooks) {
        async__close_hook *h = loop->close_hooks;
        loop->close_hooks = h->next;
        h->fn(loop, h);
    }
    pthread_mutex_lock(&loop->ts_lock);
    loop->closed = true;
    pthread_mutex_unlock(&loop->ts_lock);
    loop_drop_ready(loop);
    async__tasks_kill_all(loop);
    loop_drop_timers(loop);
    loop_drop_fds(loop);
    async__backend_free(loop->backend);
    loop->backend = NULL;
    async__stack_pool_drain();
    if (default_loop == loop)
        default_loop = NULL;
    return 0;
}

int async_loop_free(async_loop *loop)
{
    if (!loop)
        return 0;
    int rc = async_loop_close(loop);
    if (rc)
        return rc;
    pthread_mutex_destroy(&loop->ts_lock);
    async__debug_loop_freed(loop);
    /* Futures and tasks still referenced by the user point at the loop
     * (and report their unretrieved errors through it): the struct stays
     * until the last of them goes. */
    if (loop->nfutures > 0)
        loop->freed = true;
    else
        free(loop);
    return 0;
}

void async__loop_release(async_loop *loop)
{
    free(loop);
}

size_t async__loop_task_count(const async_loop *loop)
{
    return loop->ntasks;
}
