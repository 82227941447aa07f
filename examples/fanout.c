/*
 * Fan-out: a producer feeds numbers through a bounded Queue to a group of
 * worker tasks; each worker computes the Collatz stopping time of its
 * numbers; the main task prints a summary.
 *
 *     fanout [items] [workers]
 *
 * Shows: async_queue (bounded: the producer waits while workers lag),
 * async_group (leaving the scope waits for the workers; a failing worker
 * would cancel the rest), queue shutdown to tell workers there is no more
 * work, and a Lock protecting the shared summary across a suspension.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <async.h>

typedef struct summary {
    async_queue *work;     /* numbers to process */
    async_lock *lock;      /* guards the fields below */
    uint64_t items;        /* numbers processed */
    uint64_t total_steps;  /* sum of stopping times */
    uint64_t best_n;       /* number with the longest stopping time */
    uint64_t best_steps;   /* that stopping time */
    uint64_t per_worker[64]; /* numbers processed by each worker */
} summary;

typedef struct worker_arg {
    summary *s;            /* shared state */
    int id;                /* worker number */
} worker_arg;

static uint64_t collatz_steps(uint64_t n)
{
    uint64_t steps = 0;
    while (n != 1) {
        n = (n & 1) ? 3 * n + 1 : n / 2;
        steps++;
    }
    return steps;
}

/* Records one result; the lock is held across a yield on purpose, to show
 * that other workers wait for it instead of corrupting the summary. */
static int record(summary *s, int id, uint64_t n, uint64_t steps)
{
    int rc = async_lock_acquire(s->lock);
    if (rc)
        return rc;
    s->items++;
    s->total_steps += steps;
    s->per_worker[id]++;
    if (steps > s->best_steps) {
        s->best_steps = steps;
        s->best_n = n;
    }
    if (s->items % 1000 == 0)
        (void)async_yield();
    return async_lock_release(s->lock);
}

static int worker(void *arg, void **result)
{
    (void)result;
    worker_arg *w = arg;
    void *item;
    int rc;
    while ((rc = async_queue_get(w->s->work, &item)) == 0) {
        uint64_t n = (uint64_t)(uintptr_t)item;
        rc = record(w->s, w->id, n, collatz_steps(n));
        async_queue_task_done(w->s->work);
        if (rc)
            return rc;
    }
    /* The producer shut the queue down: no more work, a normal end. */
    return rc == ASYNC_ESHUTDOWN ? 0 : rc;
}

typedef struct run_arg {
    uint64_t items;   /* how many numbers */
    int workers;      /* how many worker tasks */
} run_arg;

static int produce_and_wait(summary *s, const run_arg *a, worker_arg *wa)
{
    async_group *g;
    int rc = async_group_new(&g);
    if (rc)
        return rc;
    for (int i = 0; i < a->workers && rc == 0; i++) {
        wa[i] = (worker_arg){s, i};
        rc = async_group_spawn(g, NULL, worker, &wa[i], NULL);
    }
    for (uint64_t n = 1; n <= a->items && rc == 0; n++)
        rc = async_queue_put(s->work, (void *)(uintptr_t)n);
    if (rc == 0)
        rc = async_queue_join(s->work); /* every item processed */
    async_queue_shutdown(s->work, false);
    int grc = async_group_wait(g);
    async_group_free(g);
    return rc ? rc : grc;
}

static int main_task(void *arg, void **result)
{
    (void)result;
    const run_arg *a = arg;
    summary s = {0};
    worker_arg wa[64];
    async_queue_opts qo = {.kind = ASYNC_QUEUE_FIFO, .maxsize = 32};
    int rc = async_queue_new(&s.work, &qo);
    if (rc)
        return rc;
    rc = async_lock_new(&s.lock);
    if (rc == 0)
        rc = produce_and_wait(&s, a, wa);
    if (rc == 0) {
        printf("%" PRIu64 " numbers, %d workers\n", s.items, a->workers);
        printf("mean stopping time %.2f; longest: %" PRIu64 " (%" PRIu64
               " steps)\n", (double)s.total_steps / (double)s.items,
               s.best_n, s.best_steps);
        for (int i = 0; i < a->workers; i++)
            printf("  worker %d: %" PRIu64 " numbers\n", i, s.per_worker[i]);
    }
    async_lock_free(s.lock);
    async_queue_free(s.work);
    return rc;
}

int main(int argc, char **argv)
{
    run_arg a = {.items = 100000, .workers = 4};
    if (argc > 1)
        a.items = strtoull(argv[1], NULL, 10);
    if (argc > 2)
        a.workers = atoi(argv[2]);
    if (a.items == 0 || a.workers < 1 || a.workers > 64) {
        fprintf(stderr, "usage: fanout [items >= 1] [workers 1..64]\n");
        return 2;
    }
    int rc = async_run(main_task, &a, NULL);
    if (rc) {
        fprintf(stderr, "fanout: %s\n", async_strerror(rc));
        return 1;
    }
    return 0;
}
