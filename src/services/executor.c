/*
 * The executor: a bounded pool of threads per loop that runs blocking jobs
 * and completes a future with each job's outcome (run_in_executor).
 *
 * A job travels: submit (loop thread) -> ex->queue -> a worker pops it
 * (RUNNING) and runs it without the lock -> ex->done -> one posted delivery
 * callback (the pool's own node, so posting never allocates) moves every
 * finished job's outcome into its future on the loop thread.  Only the loop thread touches futures;
 * workers touch nothing but the job and the pool's lists, under ex->lock.
 *
 * Cancellation must be synchronous, or a worker could pop a job between
 * async_future_cancel() and a done callback scheduled for a later
 * iteration.  So each job puts a waiter node without a task on its
 * future's waiter list: the future calls its notify inline when it
 * completes, and a job still QUEUED is unlinked right there, under the
 * lock, so no worker can take it any more.
 *
 * The pool finds its way back from the loop through the loop's close-hook
 * list (the hook is embedded in the pool), so the loop needs no field for
 * it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "services/executor.h"
#include "core/internal.h"

enum job_state {
    JOB_QUEUED,   /* in ex->queue, may still be cancelled away */
    JOB_RUNNING,  /* a worker runs it; cannot be interrupted */
    JOB_FINISHED, /* in ex->done, outcome waiting for delivery */
    JOB_DROPPED,  /* taken off the queue by a cancel; never runs */
};

typedef struct executor executor;

typedef struct job {
    async__list link;              /* ex->queue, then ex->done (ex->lock) */
    async__waiter waiter;          /* on future->waiters: inline cancel */
    async__runnable release;       /* deferred release after a cancel */
    executor *ex;                  /* the pool it was submitted to */
    async_future *future;          /* the job's reference to its future */
    async_fn fn;                   /* the blocking function */
    void *arg;                     /* its argument */
    async_job_discard_fn discard;  /* frees an undelivered outcome, or NULL */
    int state;                     /* enum job_state (ex->lock) */
    bool cancel_requested;         /* cancelled while running: the future
                                      completes cancelled on delivery */
    bool detached;                 /* no one awaits: discard gets every
                                      outcome (loop thread only) */
    int rc;                        /* fn's return code, once finished */
    void *result;                  /* fn's result, once finished */
} job;

struct executor {
    async__close_hook hook;  /* shuts the pool down at loop close */
    async_loop *loop;        /* owning loop */
    pthread_mutex_t lock;    /* guards every field marked (lock) */
    pthread_cond_t cond;     /* workers sleep here for a job or shutdown */
    async__list queue;       /* jobs not yet started, FIFO (lock) */
    async__list done;        /* finished jobs to deliver (lock) */
    size_t nqueued;          /* length of queue (lock) */
    unsigned idle;           /* workers waiting on cond (lock) */
    unsigned nthreads;       /* threads started; only the loop thread
                                writes it, under the lock */
    unsigned max;            /* pool size; fixed once `used` */
    pthread_t *threads;      /* the started threads, capacity max */
    bool used;               /* a job was submitted: max is fixed */
    async__runnable kick;    /* the delivery callback's own queue node */
    bool kick_pending;       /* kick is posted, not yet run (lock) */
    bool orphaned;           /* ex_close ran while kick was queued: the
                                kick frees the pool when the loop drops it */
    bool shutdown;           /* workers must exit when idle (lock) */
    uint64_t jobs_run;       /* jobs that started on a worker (lock) */
};

/* Started minus joined pool threads, process-wide (a test hook). */
static atomic_uint unjoined;

/* ---- finding and creating the pool ------------------------------------- */

static void ex_close(async_loop *loop, async__close_hook *h);
static void ex_kick_run(async__runnable *r, bool drop);

static executor *ex_find(async_loop *loop)
{
    for (async__close_hook *h = loop->close_hooks; h; h = h->next)
        if (h->fn == ex_close)
            return async__container_of(h, executor, hook);
    return NULL;
}

/* min(32, online CPUs + 4), asyncio's ThreadPoolExecutor default: the
 * jobs are mostly blocking I/O, which needs threads rather than CPUs. */
static unsigned default_size(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    return ncpu + 4 < 32 ? (unsigned)ncpu + 4 : 32;
}

static executor *ex_create(async_loop *loop, unsigned max)
{
    executor *ex = calloc(1, sizeof(*ex));
    if (!ex)
        return NULL;
    ex->threads = calloc(max, sizeof(*ex->threads));
    if (!ex->threads) {
        free(ex);
        return NULL;
    }
    ex->loop = loop;
    ex->max = max;
    pthread_mutex_init(&ex->lock, NULL);
    pthread_cond_init(&ex->cond, NULL);
    async__list_init(&ex->queue);
    async__list_init(&ex->done);
    ex->hook.fn = ex_close;
    ex->kick.run = ex_kick_run;
    async__loop_add_close_hook(loop, &ex->hook);
    return ex;
}

/* The loop to use: `loop`, or the running one. */
static int resolve_loop(async_loop **loop)
{
    if (!*loop)
        *loop = async_get_running_loop();
    if (!*loop)
        return ASYNC_ENOLOOP;
    if (async_loop_is_closed(*loop))
        return ASYNC_ECLOSED;
    return 0;
}

int async_loop_set_executor_threads(async_loop *loop, unsigned n)
{
    if (n == 0 || n > ASYNC_EXECUTOR_MAX_THREADS)
        return ASYNC_EINVAL;
    int rc = resolve_loop(&loop);
    if (rc)
        return rc;
    executor *ex = ex_find(loop);
    if (!ex)
        return ex_create(loop, n) ? 0 : ASYNC_ENOMEM;
    if (ex->used)
        return ASYNC_EBUSY;
    pthread_t *threads = calloc(n, sizeof(*threads));
    if (!threads)
        return ASYNC_ENOMEM;
    free(ex->threads);
    ex->threads = threads;
    ex->max = n;
    return 0;
}

/* ---- delivery on the loop thread ---------------------------------------- */

/* Ends a job's life: its outcome (or ASYNC_ECANCELED for a job that never
 * ran) goes to the discard function if the future did not take it. */
static void job_release(job *j, bool delivered)
{
    if (!delivered && j->discard)
        j->discard(j->arg, j->rc, j->result);
    async_future_unref(j->future);
    free(j);
}

static void job_deliver(job *j)
{
    async__waiter_remove(&j->waiter);
    bool pending = !async_future_done(j->future) && !j->detached;
    if (pending && j->cancel_requested) {
        /* The cancel waited for the job to end; the outcome is dropped. */
        async__future_complete(j->future, ASYNC_ECANCELED, NULL);
        pending = false;
    } else if (pending && j->rc < 0)
        async_future_set_error(j->future, j->rc);
    else if (pending)
        async_future_set_result(j->future, j->result);
    job_release(j, pending);
}

/* Delivers every finished job (loop thread). */
static void ex_deliver(executor *ex)
{
    async__list batch;
    async__list_init(&batch);
    pthread_mutex_lock(&ex->lock);
    ex->kick_pending = false;
    async__list *n;
    while ((n = async__list_pop_front(&ex->done)))
        async__list_push_back(&batch, n);
    pthread_mutex_unlock(&ex->lock);
    while ((n = async__list_pop_front(&batch)))
        job_deliver(async__container_of(n, job, link));
}

static void ex_free(executor *ex)
{
    pthread_cond_destroy(&ex->cond);
    pthread_mutex_destroy(&ex->lock);
    free(ex->threads);
    free(ex);
}

/* The kick, run by the loop (or dropped at loop close, after ex_close). */
static void ex_kick_run(async__runnable *r, bool drop)
{
    (void)drop; /* dropped only once ex_close has run: then orphaned */
    executor *ex = async__container_of(r, executor, kick);
    if (ex->orphaned)
        ex_free(ex);
    else
        ex_deliver(ex);
}

/* ---- cancellation ----------------------------------------------------------- */

static void job_release_run(async__runnable *r, bool drop)
{
    (void)drop; /* dropped at loop close or run: either way, release */
    job_release(async__container_of(r, job, release), false);
}

/* The future completed (cancelled, or set by someone else) before the job
 * was delivered: a job still queued is taken off the queue at once, under
 * the lock, so it never runs.  Its release is deferred to the ready queue
 * because we are inside async__future_complete, which still uses the
 * future and must not see user discard code run under it. */
static void job_notify(async__waiter *w, int rc)
{
    (void)rc;
    job *j = w->data;
    executor *ex = j->ex;
    pthread_mutex_lock(&ex->lock);
    bool queued = j->state == JOB_QUEUED;
    if (queued) {
        async__list_remove(&j->link);
        ex->nqueued--;
    }
    pthread_mutex_unlock(&ex->lock);
    if (!queued)
        return; /* running or finished: delivery discards the outcome */
    j->rc = ASYNC_ECANCELED;
    j->release.run = job_release_run;
    async__loop_schedule(ex->loop, &j->release);
}

/* The job whose future is f (its waiter node is on f's list), or NULL. */
static job *job_of(async_future *f)
{
    for (async__list *n = f->waiters.next; n != &f->waiters; n = n->next) {
        async__waiter *w = async__container_of(n, async__waiter, link);
        if (w->notify == job_notify)
            return w->data;
    }
    return NULL;
}

/* async_future_cancel of a job's future: a queued job leaves the queue
 * and never runs (the future is cancelled now); a job already running
 * cannot be stopped, so the future stays pending until it returns and is
 * then cancelled with the outcome dropped.  That way whoever awaits the
 * future never resumes while the job still uses its argument. */
static int job_cancel(async_future *f)
{
    job *j = job_of(f);
    if (!j) {
        async__future_complete(f, ASYNC_ECANCELED, NULL);
        return 0;
    }
    executor *ex = j->ex;
    pthread_mutex_lock(&ex->lock);
    bool queued = j->state == JOB_QUEUED;
    if (queued) {
        async__list_remove(&j->link);
        ex->nqueued--;
        j->state = JOB_DROPPED;
    }
    pthread_mutex_unlock(&ex->lock);
    if (!queued) {
        j->cancel_requested = true;
        return 0;
    }
    async__waiter_remove(&j->waiter);
    async__future_complete(f, ASYNC_ECANCELED, NULL);
    j->rc = ASYNC_ECANCELED;
    j->release.run = job_release_run;
    async__loop_schedule(ex->loop, &j->release);
    return 0;
}

/* ---- workers ----------------------------------------------------------------- */

/* Posts one delivery callback for the jobs in ex->done unless one is
 * pending; called with the lock held.  The queue node is the pool's own, so
 * a job that finishes while the process is out of memory is delivered all
 * the same (an allocation here used to be retried forever, hanging loop
 * close, which joins this thread).  ECLOSED cannot happen before ex_close
 * joined us; ex_close delivers ex->done itself anyway. */
static void ex_kick(executor *ex)
{
    if (!ex->kick_pending &&
        async__loop_post_threadsafe(ex->loop, &ex->kick) == 0)
        ex->kick_pending = true;
}

/* Waits for a job (lock held); NULL when the pool shuts down. */
static job *worker_next(executor *ex)
{
    async__list *n;
    while (!(n = async__list_pop_front(&ex->queue))) {
        if (ex->shutdown)
            return NULL;
        ex->idle++;
        pthread_cond_wait(&ex->cond, &ex->lock);
        ex->idle--;
    }
    ex->nqueued--;
    return async__container_of(n, job, link);
}

static void *worker_main(void *arg)
{
    executor *ex = arg;
    pthread_mutex_lock(&ex->lock);
    job *j;
    while ((j = worker_next(ex))) {
        j->state = JOB_RUNNING;
        ex->jobs_run++;
        pthread_mutex_unlock(&ex->lock);
        void *result = NULL;
        int rc = j->fn(j->arg, &result);
        pthread_mutex_lock(&ex->lock);
        j->rc = rc;
        j->result = result;
        j->state = JOB_FINISHED;
        async__list_push_back(&ex->done, &j->link);
        ex_kick(ex);
    }
    pthread_mutex_unlock(&ex->lock);
    return NULL;
}

/* Starts one more worker (lock held).  It starts with every signal blocked
 * so that process signals go to threads that expect them, never to a
 * worker in the middle of a job. */
static int ex_spawn(executor *ex)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&ex->threads[ex->nthreads], NULL, worker_main, ex);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        return -rc;
    ex->nthreads++;
    atomic_fetch_add(&unjoined, 1);
    return 0;
}

/* ---- submitting ------------------------------------------------------------- */

/* Queues j, starting a worker if no idle one will take it.  Fails only
 * when the pool has no thread at all and cannot start one. */
static int ex_enqueue(executor *ex, job *j)
{
    pthread_mutex_lock(&ex->lock);
    if (ex->nqueued + 1 > ex->idle && ex->nthreads < ex->max) {
        int rc = ex_spawn(ex);
        if (rc && ex->nthreads == 0) {
            pthread_mutex_unlock(&ex->lock);
            return rc;
        }
    }
    ex->used = true;
    j->state = JOB_QUEUED;
    async__list_push_back(&ex->queue, &j->link);
    ex->nqueued++;
    pthread_cond_signal(&ex->cond);
    pthread_mutex_unlock(&ex->lock);
    return 0;
}

static job *job_new(executor *ex, async_fn fn, void *arg,
                    async_job_discard_fn discard)
{
    job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    if (async_future_new(ex->loop, &j->future)) {
        free(j);
        return NULL;
    }
    j->ex = ex;
    j->fn = fn;
    j->arg = arg;
    j->discard = discard;
    async__waiter_init(&j->waiter, NULL);
    j->waiter.notify = job_notify;
    j->waiter.data = j;
    j->future->cancel_fn = job_cancel;
    return j;
}

bool async__executor_owns(const async_future *f)
{
    for (const async__list *n = f->waiters.next; n != &f->waiters; n = n->next)
        if (async__container_of(n, async__waiter, link)->notify == job_notify)
            return true;
    return false;
}

/* Submits a job; *out (if not NULL) gets a reference to its future. */
static int ex_submit(async_loop *loop, async_fn fn, void *arg,
                     async_job_discard_fn discard, bool detached,
                     async_future **out)
{
    int rc = resolve_loop(&loop);
    if (rc)
        return rc;
    executor *ex = ex_find(loop);
    if (!ex && !(ex = ex_create(loop, default_size())))
        return ASYNC_ENOMEM;
    job *j = job_new(ex, fn, arg, discard);
    if (!j)
        return ASYNC_ENOMEM;
    j->detached = detached;
    async__waiter_add(&j->waiter, &j->future->waiters);
    rc = ex_enqueue(ex, j);
    if (rc) {
        async__waiter_remove(&j->waiter);
        async_future_unref(j->future);
        free(j);
        return rc;
    }
    if (out)
        *out = async_future_ref(j->future);
    return 0;
}

int async_run_in_executor_ex(async_loop *loop, async_fn fn, void *arg,
                             async_job_discard_fn discard, async_future **out)
{
    if (!fn || !out)
        return ASYNC_EINVAL;
    return ex_submit(loop, fn, arg, discard, false, out);
}

int async_run_in_executor_detached(async_loop *loop, async_fn fn, void *arg,
                                   async_job_discard_fn dispose)
{
    if (!fn)
        return ASYNC_EINVAL;
    return ex_submit(loop, fn, arg, dispose, true, NULL);
}

int async_run_in_executor(async_loop *loop, async_fn fn, void *arg,
                          async_future **out)
{
    return async_run_in_executor_ex(loop, fn, arg, NULL, out);
}

int async_to_thread(async_fn fn, void *arg, void **result)
{
    if (!fn)
        return ASYNC_EINVAL;
    if (!async_current_task())
        return ASYNC_ENOTTASK;
    async_future *f;
    int rc = async_run_in_executor(NULL, fn, arg, &f);
    if (rc)
        return rc;
    rc = async_future_await(f, result);
    if (!async_future_done(f)) {
        /* Cancelled before the wait began: the job may already run, and
         * it borrows arg, so wait until it is off the pool. */
        async_future_cancel(f);
        rc = async__future_wait_shielded(async__task_current(), f, rc);
    }
    async_future_unref(f);
    return rc;
}

/* ---- shutdown ------------------------------------------------------------------ */

/* Loop close: queued jobs are cancelled without running, running ones are
 * waited for (joined) and delivered, then the pool is freed.  Runs before
 * the loop marks itself closed, on the loop thread. */
static void ex_close(async_loop *loop, async__close_hook *h)
{
    (void)loop;
    executor *ex = async__container_of(h, executor, hook);
    async__list cancelled;
    async__list_init(&cancelled);
    pthread_mutex_lock(&ex->lock);
    ex->shutdown = true;
    async__list *n;
    while ((n = async__list_pop_front(&ex->queue)))
        async__list_push_back(&cancelled, n);
    ex->nqueued = 0;
    pthread_cond_broadcast(&ex->cond);
    pthread_mutex_unlock(&ex->lock);
    while ((n = async__list_pop_front(&cancelled))) {
        job *j = async__container_of(n, job, link);
        async__waiter_remove(&j->waiter); /* no notify: we release it */
        if (!async_future_done(j->future))
            async__future_complete(j->future, ASYNC_ECANCELED, NULL);
        j->rc = ASYNC_ECANCELED;
        job_release(j, false);
    }
    for (unsigned i = 0; i < ex->nthreads; i++) {
        pthread_join(ex->threads[i], NULL);
        atomic_fetch_sub(&unjoined, 1);
    }
    bool kick_queued = ex->kick_pending; /* workers are gone: no lock */
    ex_deliver(ex);
    if (kick_queued)
        ex->orphaned = true; /* the loop drops the kick next, freeing ex */
    else
        ex_free(ex);
}

/* ---- test hooks ---------------------------------------------------------------- */

uint64_t async__executor_jobs_run(async_loop *loop)
{
    executor *ex = ex_find(loop);
    if (!ex)
        return 0;
    pthread_mutex_lock(&ex->lock);
    uint64_t n = ex->jobs_run;
    pthread_mutex_unlock(&ex->lock);
    return n;
}

unsigned async__executor_threads(async_loop *loop)
{
    executor *ex = ex_find(loop);
    return ex ? ex->nthreads : 0;
}

unsigned async__executor_threads_unjoined(void)
{
    return atomic_load(&unjoined);
}
