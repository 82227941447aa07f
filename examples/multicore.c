/*
 * Multi-core without a GIL: N loops on N threads, CPU-bound work spread
 * over them from one task and collected there.
 *
 *     multicore [threads] [limit]
 *
 * Counts the primes below `limit` (trial division: pure CPU work) in
 * chunks.  The main task, on its own loop, hands each chunk to a worker
 * loop with async_run_coroutine_threadsafe and awaits the thread-safe
 * futures it gets back, without blocking its loop.  It runs the same job
 * with one worker loop and with `threads` of them and prints both times.
 *
 * In asyncio the same program gains nothing from threads (the GIL runs one
 * thread's Python at a time); it needs a ProcessPoolExecutor, with its
 * pickling and process start-up.  Here the workers are threads sharing
 * memory, and the speed-up is the number of cores.
 *
 * The pattern (docs/guide.md, "Threads"): one loop per thread, each running
 * run_forever; work crosses with run_coroutine_threadsafe (or a tsfuture
 * set by hand), results come back through the tsfuture; a worker stops when
 * a stop callback is posted with call_soon_threadsafe.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <async.h>

enum { MAX_THREADS = 64, CHUNKS_PER_THREAD = 8 };

typedef struct worker {
    async_loop *loop;   /* the worker's loop */
    pthread_t thread;   /* the thread running it */
} worker;

typedef struct chunk {
    uint64_t lo, hi;    /* count primes in [lo, hi) */
    uint64_t primes;    /* the answer, written by the worker */
} chunk;

typedef struct job {
    worker *workers;    /* where to send chunks */
    int nworkers;       /* how many */
    chunk *chunks;      /* the work */
    int nchunks;        /* how many */
    uint64_t total;     /* collected */
} job;

static bool is_prime(uint64_t n)
{
    if (n < 2)
        return false;
    for (uint64_t d = 2; d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

/* Runs on a worker loop: a coroutine like any other (it could await). */
static int count_chunk(void *arg, void **result)
{
    chunk *c = arg;
    c->primes = 0;
    for (uint64_t n = c->lo; n < c->hi; n++)
        c->primes += is_prime(n);
    *result = c;
    return 0;
}

/* The collecting task: sends every chunk, then awaits every answer. */
static int spread(void *arg, void **result)
{
    (void)result;
    job *j = arg;
    async_tsfuture **f = calloc((size_t)j->nchunks, sizeof(*f));
    if (!f)
        return ASYNC_ENOMEM;
    int rc = 0, sent = 0;
    for (; sent < j->nchunks && rc == 0; sent++) {
        async_loop *to = j->workers[sent % j->nworkers].loop;
        rc = async_run_coroutine_threadsafe(to, count_chunk, &j->chunks[sent],
                                            &f[sent]);
        if (rc)
            break;
    }
    j->total = 0;
    for (int i = 0; i < sent; i++) {
        void *done = NULL;
        int wrc = async_tsfuture_await(f[i], &done);
        if (wrc == 0)
            j->total += ((chunk *)done)->primes;
        else if (rc == 0)
            rc = wrc;
        async_tsfuture_unref(f[i]);
    }
    free(f);
    return rc;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    async_loop_run_forever(w->loop);
    async_loop_close(w->loop);
    return NULL;
}

static int stop_cb(void *arg)
{
    return async_loop_stop(arg);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the whole job on `n` worker loops; returns the seconds it took. */
static int run_with(int n, uint64_t limit, uint64_t *primes, double *secs)
{
    worker workers[MAX_THREADS];
    int started = 0, rc = 0;
    for (; started < n; started++) {
        if ((rc = async_loop_new(&workers[started].loop)))
            break;
        if (pthread_create(&workers[started].thread, NULL, worker_main,
                           &workers[started])) {
            async_loop_free(workers[started].loop);
            rc = ASYNC_EFAILED;
            break;
        }
    }
    int nchunks = n * CHUNKS_PER_THREAD;
    chunk *chunks = calloc((size_t)nchunks, sizeof(*chunks));
    if (!chunks && rc == 0)
        rc = ASYNC_ENOMEM;
    if (rc == 0) {
        for (int i = 0; i < nchunks; i++) {
            chunks[i].lo = limit * (uint64_t)i / (uint64_t)nchunks;
            chunks[i].hi = limit * (uint64_t)(i + 1) / (uint64_t)nchunks;
        }
        job j = {workers, started, chunks, nchunks, 0};
        double t0 = now_s();
        rc = async_run(spread, &j, NULL);
        *secs = now_s() - t0;
        *primes = j.total;
    }
    for (int i = 0; i < started; i++) {
        async_loop_call_soon_threadsafe(workers[i].loop, stop_cb,
                                        workers[i].loop);
        pthread_join(workers[i].thread, NULL);
        async_loop_free(workers[i].loop);
    }
    free(chunks);
    return rc;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    uint64_t limit = argc > 2 ? strtoull(argv[2], NULL, 10) : 2000000;
    if (threads < 1 || threads > MAX_THREADS || limit < 2) {
        fprintf(stderr, "usage: multicore [threads 1..%d] [limit >= 2]\n",
                MAX_THREADS);
        return 2;
    }
    uint64_t p1 = 0, pn = 0;
    double t1 = 0, tn = 0;
    int rc = run_with(1, limit, &p1, &t1);
    if (rc == 0)
        rc = run_with(threads, limit, &pn, &tn);
    if (rc) {
        fprintf(stderr, "multicore: %s\n", async_strerror(rc));
        return 1;
    }
    printf("primes below %" PRIu64 ": %" PRIu64 "\n", limit, pn);
    printf("1 worker loop:  %.3f s\n", t1);
    printf("%d worker loops: %.3f s (%.2fx)\n", threads, tn, t1 / tn);
    return p1 == pn ? 0 : 1;
}
