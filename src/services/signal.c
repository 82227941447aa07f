/*
 * Signals delivered to a loop: a process-wide handler records each signal
 * in an atomic counter and writes a byte into the watching loop's pipe (the
 * self-pipe trick); the loop's reader for that pipe hands the counts to the
 * loop's watchers and handler callbacks.
 *
 * Why a self-pipe everywhere rather than signalfd on Linux or EVFILT_SIGNAL
 * on kqueue: both of those only see a signal that is blocked in *every*
 * thread of the process, else the kernel delivers it to some thread that
 * has it unblocked (a thread the user or another library created) and the
 * default action kills the process.  A library cannot block signals in
 * threads it does not own.  A sigaction handler catches the signal on
 * whichever thread it lands, so the self-pipe works in any multi-threaded
 * program, with the same code on every platform and no backend special
 * case.  The cost, one write and one read per signal, is irrelevant for
 * signals.  The executor's own threads block every signal, so they never
 * take one.
 *
 * The handler is async-signal-safe: lock-free atomics and write(2) only.
 * Unwatching restores the saved sigaction, then waits until no handler is
 * running before the pipe may be closed (sig_active), so a late handler
 * never writes into a closed, possibly reused, fd.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
               "the signal handler needs lock-free atomics");

/* The most signals one watcher may list. */
#define MAX_WATCH 32

/*
 * Work one loop iteration spends on signals, so that a flood of them
 * cannot stall timers and I/O: the pipe bytes are only wakeups (the counts
 * are in sig_count), so one read per iteration is enough, and at most
 * HANDLER_BUDGET handler callbacks run before the loop gets a turn.
 * Draining the pipe until empty used to chase a signal storm for up to
 * half a second, since every new signal refilled it.
 */
#define PIPE_READ_BYTES 512
#define HANDLER_BUDGET 64

typedef struct sigsvc sigsvc;

/* ---- process-wide state --------------------------------------------------- */

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER; /* owner, old */
static sigsvc *sig_owner[NSIG];          /* loop service watching each */
static struct sigaction sig_old[NSIG];   /* disposition to restore */
static atomic_uint sig_count[NSIG];      /* deliveries not yet taken */
static atomic_int sig_wfd[NSIG];         /* owner's pipe write end + 1 */
static atomic_int sig_active;            /* handlers running right now */

static void sig_handler(int signo)
{
    int saved = errno;
    atomic_fetch_add(&sig_active, 1);
    atomic_fetch_add(&sig_count[signo], 1);
    int fd = atomic_load(&sig_wfd[signo]) - 1;
    if (fd >= 0) {
        char byte = 0;
        /* A full pipe already holds a wakeup: nothing to do on EAGAIN. */
        ssize_t rc = write(fd, &byte, 1);
        (void)rc;
    }
    atomic_fetch_sub(&sig_active, 1);
    errno = saved;
}

static bool sig_watchable(int signo)
{
    return signo > 0 && signo < NSIG && signo != SIGKILL &&
           signo != SIGSTOP && signo != SIGSEGV && signo != SIGBUS &&
           signo != SIGFPE && signo != SIGILL;
}

/* Makes `svc` the process's watcher of signo and installs the handler. */
static int sig_acquire(sigsvc *svc, int signo, int wfd)
{
    pthread_mutex_lock(&sig_lock);
    if (sig_owner[signo]) {
        pthread_mutex_unlock(&sig_lock);
        return ASYNC_EBUSY;
    }
    atomic_store(&sig_count[signo], 0);
    atomic_store(&sig_wfd[signo], wfd + 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sig_handler;
    sa.sa_flags = SA_RESTART; /* the rest of the program never sees EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(signo, &sa, &sig_old[signo]) != 0) {
        int err = -errno;
        atomic_store(&sig_wfd[signo], 0);
        pthread_mutex_unlock(&sig_lock);
        return err;
    }
    sig_owner[signo] = svc;
    pthread_mutex_unlock(&sig_lock);
    return 0;
}

/* Restores signo's previous disposition; waits out running handlers. */
static void sig_release(int signo)
{
    pthread_mutex_lock(&sig_lock);
    sigaction(signo, &sig_old[signo], NULL);
    atomic_store(&sig_wfd[signo], 0);
    sig_owner[signo] = NULL;
    pthread_mutex_unlock(&sig_lock);
    while (atomic_load(&sig_active) > 0)
        sched_yield();
}

/* ---- the per-loop service -------------------------------------------------- */

struct async_signal_watcher {
    async__list link;          /* in svc->watchers */
    sigsvc *svc;               /* NULL once the loop closed */
    async_loop *loop;          /* for the wrong-loop check */
    async__list waiters;       /* parked tasks (async__waiter.link) */
    async__list waits;         /* sig_wait records of running wait calls */
    async_signal_fn cb;        /* handler callback, or NULL (task watcher) */
    void *arg;                 /* cb's argument */
    bool watched[NSIG];        /* the signals it watches */
    unsigned pending[NSIG];    /* deliveries not yet taken, per signal */
};

struct sigsvc {
    async__close_hook hook;    /* frees everything at loop close */
    async_loop *loop;          /* owning loop */
    int rfd;                   /* self-pipe read end, watched by the loop */
    int wfd;                   /* self-pipe write end, for sig_handler */
    unsigned refs[NSIG];       /* watchers (incl. handlers) per signal */
    unsigned nrefs;            /* sum of refs[] */
    async__list watchers;      /* async_signal_watcher.link */
    bool dispatching;          /* inside handler callbacks: defer free */
};

/* A running async_signal_watcher_wait call, on the waiting task's stack. */
typedef struct sig_wait {
    async__list link;          /* in watcher->waits */
    bool gone;                 /* the watcher was freed or detached */
} sig_wait;

static void svc_close(async_loop *loop, async__close_hook *h);

static sigsvc *svc_find(async_loop *loop)
{
    for (async__close_hook *h = loop->close_hooks; h; h = h->next)
        if (h->fn == svc_close)
            return async__container_of(h, sigsvc, hook);
    return NULL;
}

/* Takes up to PIPE_READ_BYTES wakeup bytes; whatever stays keeps the pipe
 * readable, and the loop calls again next iteration. */
static void drain_pipe(int fd)
{
    char buf[PIPE_READ_BYTES];
    ssize_t rc = read(fd, buf, sizeof(buf));
    (void)rc;
}

/* Makes the pipe readable again, so that the loop comes back next
 * iteration for work left over (EAGAIN: it is readable already). */
static void svc_rearm(sigsvc *svc)
{
    char byte = 0;
    ssize_t rc = write(svc->wfd, &byte, 1);
    (void)rc;
}

/* Adds n deliveries of signo to every watcher of it and wakes its tasks. */
static void svc_distribute(sigsvc *svc, int signo, unsigned n)
{
    for (async__list *l = svc->watchers.next; l != &svc->watchers;
         l = l->next) {
        async_signal_watcher *w =
            async__container_of(l, async_signal_watcher, link);
        if (!w->watched[signo])
            continue;
        w->pending[signo] += n;
        async__waiters_notify_all(&w->waiters, 0);
    }
}

/* Lowest pending signal of w, taken; 0 if none. */
static int watcher_take(async_signal_watcher *w)
{
    for (int s = 1; s < NSIG; s++) {
        if (w->pending[s]) {
            w->pending[s]--;
            return s;
        }
    }
    return 0;
}

/* The next handler callback with a pending signal, rescanned from the
 * head each time since a callback may add or remove handlers. */
static async_signal_watcher *next_handler(sigsvc *svc, int *signo)
{
    for (async__list *l = svc->watchers.next; l != &svc->watchers;
         l = l->next) {
        async_signal_watcher *w =
            async__container_of(l, async_signal_watcher, link);
        if (w->cb && (*signo = watcher_take(w)))
            return w;
    }
    return NULL;
}

static void svc_free(sigsvc *svc);

/* Runs up to HANDLER_BUDGET handler callbacks; if deliveries are left,
 * comes back next iteration, after timers and I/O had their turn. */
static void svc_run_handlers(sigsvc *svc)
{
    svc->dispatching = true;
    async_signal_watcher *w;
    int signo;
    unsigned budget = HANDLER_BUDGET;
    while (budget > 0 && (w = next_handler(svc, &signo))) {
        budget--;
        int rc = w->cb(signo, w->arg);
        if (rc < 0)
            async__loop_report(svc->loop, "signal handler failed", rc, NULL,
                               NULL);
    }
    svc->dispatching = false;
    if (svc->nrefs == 0)
        svc_free(svc);
    else if (budget == 0)
        svc_rearm(svc);
}

/* The pipe is readable: one or more signals arrived. */
static int svc_readable(void *arg)
{
    sigsvc *svc = arg;
    drain_pipe(svc->rfd);
    for (int s = 1; s < NSIG; s++) {
        if (!svc->refs[s])
            continue;
        unsigned n = atomic_exchange(&sig_count[s], 0);
        if (n)
            svc_distribute(svc, s, n);
    }
    svc_run_handlers(svc);
    return 0;
}

static int set_pipe_flags(int fd)
{
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return -errno;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -errno;
    return 0;
}

static int svc_open_pipe(sigsvc *svc)
{
    int p[2];
    if (pipe(p) != 0)
        return -errno;
    int rc = set_pipe_flags(p[0]);
    if (rc == 0)
        rc = set_pipe_flags(p[1]);
    if (rc == 0)
        rc = async_loop_add_reader(svc->loop, p[0], svc_readable, svc);
    if (rc) {
        close(p[0]);
        close(p[1]);
        return rc;
    }
    svc->rfd = p[0];
    svc->wfd = p[1];
    return 0;
}

static int svc_get(async_loop *loop, sigsvc **out)
{
    sigsvc *svc = svc_find(loop);
    if (svc) {
        *out = svc;
        return 0;
    }
    svc = calloc(1, sizeof(*svc));
    if (!svc)
        return ASYNC_ENOMEM;
    svc->loop = loop;
    async__list_init(&svc->watchers);
    int rc = svc_open_pipe(svc);
    if (rc) {
        free(svc);
        return rc;
    }
    svc->hook.fn = svc_close;
    async__loop_add_close_hook(loop, &svc->hook);
    *out = svc;
    return 0;
}

/* Cuts w loose from its service: its waiting tasks get ASYNC_ECLOSED and
 * their wait calls will not touch w again. */
static void watcher_detach(async_signal_watcher *w)
{
    async__list_remove(&w->link);
    w->svc = NULL;
    async__waiters_notify_all(&w->waiters, ASYNC_ECLOSED);
    async__list *n;
    while ((n = async__list_pop_front(&w->waits)))
        async__container_of(n, sig_wait, link)->gone = true;
}

/* Releases every signal the service holds, closes its pipe and frees it;
 * handler watchers go with it, task watchers are only detached. */
static void svc_destroy(sigsvc *svc)
{
    for (int s = 1; s < NSIG; s++)
        if (svc->refs[s])
            sig_release(s);
    async__list *n;
    while ((n = svc->watchers.next) != &svc->watchers) {
        async_signal_watcher *w =
            async__container_of(n, async_signal_watcher, link);
        watcher_detach(w);
        if (w->cb)
            free(w);
    }
    async_loop_remove_reader(svc->loop, svc->rfd);
    close(svc->rfd);
    close(svc->wfd);
    free(svc);
}

/* The last watcher went: give everything back now (unless a handler
 * callback is running, then svc_run_handlers does it afterwards). */
static void svc_free(sigsvc *svc)
{
    if (svc->dispatching)
        return;
    async__loop_remove_close_hook(svc->loop, &svc->hook);
    svc_destroy(svc);
}

static void svc_close(async_loop *loop, async__close_hook *h)
{
    (void)loop;
    svc_destroy(async__container_of(h, sigsvc, hook));
}

/* ---- watchers ------------------------------------------------------------------ */

/* Drops w's references on its signals, releasing those now unwatched. */
static void svc_unref(sigsvc *svc, const bool *watched)
{
    for (int s = 1; s < NSIG; s++) {
        if (!watched[s])
            continue;
        if (--svc->refs[s] == 0)
            sig_release(s);
        svc->nrefs--;
    }
}

/* Takes a reference on each watched signal; all or nothing. */
static int svc_ref(sigsvc *svc, const bool *watched)
{
    for (int s = 1; s < NSIG; s++) {
        if (!watched[s])
            continue;
        int rc = svc->refs[s] ? 0 : sig_acquire(svc, s, svc->wfd);
        if (rc) {
            bool undo[NSIG] = {false};
            memcpy(undo, watched, (size_t)s * sizeof(bool));
            svc_unref(svc, undo);
            return rc;
        }
        svc->refs[s]++;
        svc->nrefs++;
    }
    return 0;
}

static int watcher_create(async_loop *loop, const int *signals, size_t n,
                          async_signal_fn cb, void *arg,
                          async_signal_watcher **out)
{
    async_signal_watcher *w = calloc(1, sizeof(*w));
    if (!w)
        return ASYNC_ENOMEM;
    for (size_t i = 0; i < n; i++)
        w->watched[signals[i]] = true;
    sigsvc *svc;
    int rc = svc_get(loop, &svc);
    if (rc == 0 && (rc = svc_ref(svc, w->watched)) != 0 && svc->nrefs == 0)
        svc_free(svc);
    if (rc) {
        free(w);
        return rc;
    }
    w->svc = svc;
    w->loop = loop;
    w->cb = cb;
    w->arg = arg;
    async__list_init(&w->waiters);
    async__list_init(&w->waits);
    async__list_push_back(&svc->watchers, &w->link);
    *out = w;
    return 0;
}

static int check_signals(const int *signals, size_t n)
{
    if (!signals || n == 0 || n > MAX_WATCH)
        return ASYNC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!sig_watchable(signals[i]))
            return ASYNC_EINVAL;
    return 0;
}

int async_signal_watcher_new(async_loop *loop, const int *signals, size_t n,
                             async_signal_watcher **out)
{
    if (!out || check_signals(signals, n))
        return ASYNC_EINVAL;
    if (!loop && !(loop = async_get_running_loop()))
        return ASYNC_ENOLOOP;
    if (async_loop_is_closed(loop))
        return ASYNC_ECLOSED;
    return watcher_create(loop, signals, n, NULL, NULL, out);
}

/* Parks until w has a signal; returns the park's code. */
static int watcher_park(async_signal_watcher *w, async_task *t,
                        uint64_t deadline)
{
    async__waiter wt;
    async__waiter_init(&wt, t);
    async__waiter_add(&wt, &w->waiters);
    async__task_wait_on(t, ASYNC_WAIT_SIGNAL, w);
    int rc = async__task_park(t, deadline);
    async__waiter_remove(&wt);
    return rc;
}

int async_signal_watcher_wait(async_signal_watcher *w, uint64_t deadline,
                              int *signo)
{
    if (!w)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (!w->svc)
        return ASYNC_ECLOSED;
    if (t->fut.loop != w->loop)
        return ASYNC_EWRONGLOOP;
    sig_wait me = {.gone = false};
    async__list_push_back(&w->waits, &me.link);
    int rc, s;
    while (!(s = watcher_take(w))) {
        rc = watcher_park(w, t, deadline);
        if (me.gone)
            return ASYNC_ECLOSED; /* w may be freed: do not touch it */
        if (rc) {
            async__list_remove(&me.link);
            return rc;
        }
    }
    async__list_remove(&me.link);
    if (signo)
        *signo = s;
    return 0;
}

void async_signal_watcher_free(async_signal_watcher *w)
{
    if (!w)
        return;
    sigsvc *svc = w->svc;
    if (svc) {
        watcher_detach(w);
        svc_unref(svc, w->watched);
        if (svc->nrefs == 0)
            svc_free(svc);
    }
    free(w);
}

int async_signal_wait(const int *signals, size_t n, uint64_t deadline,
                      int *signo)
{
    if (check_signals(signals, n))
        return ASYNC_EINVAL;
    if (!async_current_task())
        return ASYNC_ENOTTASK;
    async_signal_watcher *w;
    int rc = async_signal_watcher_new(NULL, signals, n, &w);
    if (rc)
        return rc;
    rc = async_signal_watcher_wait(w, deadline, signo);
    async_signal_watcher_free(w);
    return rc;
}

/* ---- loop signal handlers ------------------------------------------------------ */

static async_signal_watcher *handler_find(sigsvc *svc, int signo)
{
    for (async__list *l = svc->watchers.next; l != &svc->watchers;
         l = l->next) {
        async_signal_watcher *w =
            async__container_of(l, async_signal_watcher, link);
        if (w->cb && w->watched[signo])
            return w;
    }
    return NULL;
}

int async_loop_add_signal_handler(async_loop *loop, int signo,
                                  async_signal_fn cb, void *arg)
{
    if (!loop || !cb || !sig_watchable(signo))
        return ASYNC_EINVAL;
    if (async_loop_is_closed(loop))
        return ASYNC_ECLOSED;
    sigsvc *svc = svc_find(loop);
    async_signal_watcher *w = svc ? handler_find(svc, signo) : NULL;
    if (w) {
        w->cb = cb;
        w->arg = arg;
        return 0;
    }
    return watcher_create(loop, &signo, 1, cb, arg, &w);
}

int async_loop_remove_signal_handler(async_loop *loop, int signo)
{
    if (!loop || !sig_watchable(signo))
        return ASYNC_EINVAL;
    sigsvc *svc = svc_find(loop);
    async_signal_watcher *w = svc ? handler_find(svc, signo) : NULL;
    if (!w)
        return ASYNC_ENOENT;
    async_signal_watcher_free(w);
    return 0;
}
