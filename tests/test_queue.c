/*
 * Queues: FIFO, LIFO and priority order; bounded waits; try variants;
 * task_done / join; shutdown; deadlines; cancellation of getters and
 * putters racing with the hand-off (no item lost or duplicated); and a
 * producer/consumer soak through a bounded queue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"

enum {
    NPROD = 4,          /* soak producers */
    NCONS = 4,          /* soak consumers */
    PER_PROD = 25000,   /* items per producer */
    NITEMS = NPROD * PER_PROD,
};

static async_loop *L;
static th_leaks leaks;

typedef struct rec {
    async_queue *q;        /* queue under test */
    int rc[16];            /* return codes, by slot */
    intptr_t got[16];      /* items received, by slot */
    int dropped;           /* drop callback calls */
    intptr_t dropped_sum;  /* sum of dropped items */
    uint64_t t0, t1;       /* loop times around a deadline wait */
    unsigned char *seen;   /* soak: how often each item was consumed */
    long consumed;         /* soak: items consumed */
    long put_errors;       /* soak: failed puts */
} rec;

static rec R;

static const async_task_opts small_stack = {.stack_size = 64 * 1024};

static int setup(void **state)
{
    (void)state;
    memset(&R, 0, sizeof(R));
    th_leaks_begin(&leaks);
    assert_int_equal(async_loop_new(&L), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_queue_free(R.q), 0);
    assert_int_equal(async_loop_free(L), 0);
    th_leaks_end(&leaks);
    return 0;
}

static int run_main(async_fn main_fn, void *arg)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, main_fn, arg, NULL), 0);
    int rc = async_loop_run_until_complete(L, t, NULL);
    async_task_unref(t);
    return rc;
}

static int spawn_small(async_task **out, async_fn fn, void *arg)
{
    return async_spawn_opts(out, fn, arg, &small_stack);
}

static void settle(int rounds)
{
    for (int i = 0; i < rounds; i++)
        async_yield();
}

static void await_free(async_task *t)
{
    async_await(t, NULL);
    async_task_unref(t);
}

#define ITEM(n) ((void *)(intptr_t)(n))

static void count_drop(void *item, void *arg)
{
    (void)arg;
    R.dropped++;
    R.dropped_sum += (intptr_t)item;
}

static int int_cmp(const void *a, const void *b, void *arg)
{
    (void)arg;
    intptr_t x = (intptr_t)a / 10, y = (intptr_t)b / 10; /* ties: same tens */
    return (x > y) - (x < y);
}

/* ---- ordering (try variants work outside tasks) ---------------------------- */

static void fill_and_drain(async_queue *q, const int *in, int n, int *out)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(async_queue_try_put(q, ITEM(in[i])), 0);
    assert_int_equal(async_queue_size(q), (size_t)n);
    for (int i = 0; i < n; i++) {
        void *item = NULL;
        assert_int_equal(async_queue_try_get(q, &item), 0);
        out[i] = (int)(intptr_t)item;
    }
    void *item;
    assert_int_equal(async_queue_try_get(q, &item), ASYNC_EEMPTY);
}

static void test_orders(void **state)
{
    (void)state;
    /* Enough items to make the ring wrap and grow. */
    int in[40], out[40];
    for (int i = 0; i < 40; i++)
        in[i] = i + 1;
    assert_int_equal(async_queue_new(&R.q, NULL), 0);
    for (int round = 0; round < 3; round++) {
        fill_and_drain(R.q, in, 5 + round * 17, out);
        for (int i = 0; i < 5 + round * 17; i++)
            assert_int_equal(out[i], in[i]);
    }
    assert_int_equal(async_queue_free(R.q), 0);

    async_queue_opts lifo = {.kind = ASYNC_QUEUE_LIFO};
    assert_int_equal(async_queue_new(&R.q, &lifo), 0);
    fill_and_drain(R.q, in, 40, out);
    for (int i = 0; i < 40; i++)
        assert_int_equal(out[i], in[39 - i]);
    assert_int_equal(async_queue_free(R.q), 0);

    /* Priority: by tens, equal tens in insertion order. */
    async_queue_opts prio = {.kind = ASYNC_QUEUE_PRIORITY, .cmp = int_cmp};
    const int pin[] = {35, 12, 31, 57, 10, 33, 11, 99, 50};
    const int pout[] = {12, 10, 11, 35, 31, 33, 57, 50, 99};
    assert_int_equal(async_queue_new(&R.q, &prio), 0);
    fill_and_drain(R.q, pin, 9, out);
    for (int i = 0; i < 9; i++)
        assert_int_equal(out[i], pout[i]);
}

static void test_bad_input(void **state)
{
    (void)state;
    async_queue *q;
    void *item;
    async_queue_opts o = {.kind = ASYNC_QUEUE_PRIORITY};
    assert_int_equal(async_queue_new(&q, &o), ASYNC_EINVAL);
    o = (async_queue_opts){.kind = ASYNC_QUEUE_FIFO, .cmp = int_cmp};
    assert_int_equal(async_queue_new(&q, &o), ASYNC_EINVAL);
    o = (async_queue_opts){.kind = (async_queue_kind)7};
    assert_int_equal(async_queue_new(&q, &o), ASYNC_EINVAL);
    assert_int_equal(async_queue_new(NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_queue_put(NULL, ITEM(1)), ASYNC_EINVAL);
    assert_int_equal(async_queue_try_put(NULL, ITEM(1)), ASYNC_EINVAL);
    assert_int_equal(async_queue_get(NULL, &item), ASYNC_EINVAL);
    assert_int_equal(async_queue_try_get(NULL, &item), ASYNC_EINVAL);
    assert_int_equal(async_queue_task_done(NULL), ASYNC_EINVAL);
    assert_int_equal(async_queue_join(NULL), ASYNC_EINVAL);
    assert_int_equal(async_queue_shutdown(NULL, false), ASYNC_EINVAL);
    assert_int_equal(async_queue_size(NULL), 0);
    assert_true(async_queue_empty(NULL));
    assert_false(async_queue_full(NULL));
    assert_int_equal(async_queue_free(NULL), 0);

    o = (async_queue_opts){.maxsize = 2, .drop = count_drop};
    assert_int_equal(async_queue_new(&R.q, &o), 0);
    assert_int_equal(async_queue_maxsize(R.q), 2);
    assert_int_equal(async_queue_try_get(R.q, NULL), ASYNC_EINVAL);
    assert_int_equal(async_queue_get(R.q, &item), ASYNC_ENOTTASK);
    assert_int_equal(async_queue_put(R.q, ITEM(1)), ASYNC_ENOTTASK);
    assert_int_equal(async_queue_join(R.q), ASYNC_ENOTTASK);
    assert_int_equal(async_queue_task_done(R.q), ASYNC_EINVAL); /* none */
    assert_int_equal(async_queue_try_put(R.q, ITEM(5)), 0);
    assert_int_equal(async_queue_try_put(R.q, ITEM(6)), 0);
    assert_true(async_queue_full(R.q));
    assert_int_equal(async_queue_try_put(R.q, ITEM(7)), ASYNC_EFULL);
    assert_int_equal(async_queue_unfinished(R.q), 2);
    assert_int_equal(async_queue_task_done(R.q), 0);
    assert_int_equal(async_queue_task_done(R.q), 0);
    assert_int_equal(async_queue_task_done(R.q), ASYNC_EINVAL);
    /* Freeing with items hands them to drop. */
    assert_int_equal(async_queue_free(R.q), 0);
    R.q = NULL;
    assert_int_equal(R.dropped, 2);
    assert_int_equal(R.dropped_sum, 11);
}

/* ---- waiting -------------------------------------------------------------------- */

static int getter(void *arg, void **result)
{
    (void)result;
    int slot = (int)(intptr_t)arg;
    void *item = NULL;
    R.rc[slot] = async_queue_get(R.q, &item);
    R.got[slot] = (intptr_t)item;
    return 0;
}

static int putter(void *arg, void **result)
{
    (void)result;
    int slot = (int)(intptr_t)arg;
    R.rc[slot] = async_queue_put(R.q, ITEM(100 + slot));
    return 0;
}

static int waits_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *g[3], *p[3];
    /* Getters wait on the empty queue and are served in arrival order. */
    for (int i = 0; i < 3; i++)
        spawn_small(&g[i], getter, ITEM(i));
    settle(2);
    R.rc[10] = async_queue_free(R.q);
    for (int i = 0; i < 3; i++)
        async_queue_put(R.q, ITEM(i + 1));
    R.rc[11] = (int)async_queue_size(R.q); /* handed over, not stored */
    for (int i = 0; i < 3; i++)
        await_free(g[i]);
    /* Putters wait on the full queue (maxsize 1), in arrival order. */
    async_queue_put(R.q, ITEM(50));
    for (int i = 0; i < 3; i++)
        spawn_small(&p[i], putter, ITEM(i + 3));
    settle(2);
    void *item;
    for (int i = 0; i < 4; i++) {
        async_queue_get(R.q, &item);
        R.got[6 + i] = (intptr_t)item;
    }
    for (int i = 0; i < 3; i++)
        await_free(p[i]);
    return 0;
}

static void test_waits_fifo(void **state)
{
    (void)state;
    async_queue_opts o = {.maxsize = 1};
    assert_int_equal(async_queue_new(&R.q, &o), 0);
    assert_int_equal(run_main(waits_main, NULL), 0);
    assert_int_equal(R.rc[10], ASYNC_EBUSY);
    assert_int_equal(R.rc[11], 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(R.rc[i], 0);
        assert_int_equal(R.got[i], i + 1);
        assert_int_equal(R.rc[i + 3], 0);
    }
    assert_int_equal(R.got[6], 50);
    assert_int_equal(R.got[7], 103);
    assert_int_equal(R.got[8], 104);
    assert_int_equal(R.got[9], 105);
    assert_true(async_queue_empty(R.q));
}

static int deadline_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *item = NULL;
    R.t0 = async_loop_time(L);
    R.rc[0] = async_queue_get_until(R.q, &item, R.t0 + 2 * ASYNC_MSEC);
    R.t1 = async_loop_time(L);
    async_queue_put(R.q, ITEM(1));
    R.rc[1] = async_queue_put_until(R.q, ITEM(2), async_loop_time(L) + ASYNC_MSEC);
    R.rc[2] = async_queue_join_until(R.q, async_loop_time(L) + ASYNC_MSEC);
    /* Ready at once: succeeds even with a deadline in the past. */
    R.rc[3] = async_queue_get_until(R.q, &item, 0);
    R.got[3] = (intptr_t)item;
    async_queue_task_done(R.q);
    R.rc[4] = async_queue_join_until(R.q, 0);
    return 0;
}

static void test_deadlines(void **state)
{
    (void)state;
    async_queue_opts o = {.maxsize = 1};
    assert_int_equal(async_queue_new(&R.q, &o), 0);
    assert_int_equal(run_main(deadline_main, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_true(R.t1 - R.t0 >= 2 * ASYNC_MSEC);
    assert_int_equal(R.rc[1], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[2], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.got[3], 1);
    assert_int_equal(R.rc[4], 0);
    assert_true(async_queue_empty(R.q));
}

/* ---- join ------------------------------------------------------------------------- */

static int worker_done(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *item;
    while (async_queue_get(R.q, &item) == 0) {
        R.got[0] += (intptr_t)item;
        async_yield();
        async_queue_task_done(R.q);
    }
    return 0;
}

static int join_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *w;
    for (int i = 1; i <= 10; i++)
        async_queue_put(R.q, ITEM(i));
    spawn_small(&w, worker_done, NULL);
    R.rc[0] = async_queue_join(R.q);
    R.rc[1] = (int)async_queue_unfinished(R.q);
    R.got[1] = R.got[0];
    async_queue_shutdown(R.q, false);
    await_free(w);
    return 0;
}

static void test_join(void **state)
{
    (void)state;
    assert_int_equal(async_queue_new(&R.q, NULL), 0);
    assert_int_equal(run_main(join_main, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.got[1], 55); /* join returned after all ten */
}

/* ---- shutdown ---------------------------------------------------------------------- */

static int shutdown_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *p, *g;
    void *item = NULL;
    async_queue_put(R.q, ITEM(1));
    async_queue_put(R.q, ITEM(2));
    spawn_small(&p, putter, ITEM(0)); /* waits: full */
    settle(2);
    async_queue_shutdown(R.q, false);
    await_free(p);
    R.rc[1] = async_queue_try_put(R.q, ITEM(9));
    R.rc[2] = async_queue_get(R.q, &item); /* drains */
    R.got[2] = (intptr_t)item;
    R.rc[3] = async_queue_try_get(R.q, &item);
    R.got[3] = (intptr_t)item;
    R.rc[4] = async_queue_get(R.q, &item);
    R.rc[5] = async_queue_try_get(R.q, &item);
    /* A getter waiting when the queue shuts down. */
    async_queue_free(R.q);
    async_queue_new(&R.q, NULL);
    spawn_small(&g, getter, ITEM(6));
    settle(2);
    async_queue_shutdown(R.q, false);
    await_free(g);
    return 0;
}

static void test_shutdown(void **state)
{
    (void)state;
    async_queue_opts o = {.maxsize = 2};
    assert_int_equal(async_queue_new(&R.q, &o), 0);
    assert_int_equal(run_main(shutdown_main, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_ESHUTDOWN);
    assert_int_equal(R.rc[1], ASYNC_ESHUTDOWN);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.got[2], 1);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.got[3], 2);
    assert_int_equal(R.rc[4], ASYNC_ESHUTDOWN);
    assert_int_equal(R.rc[5], ASYNC_ESHUTDOWN);
    assert_int_equal(R.rc[6], ASYNC_ESHUTDOWN);
}

static int joiner(void *arg, void **result)
{
    (void)result;
    int slot = (int)(intptr_t)arg;
    R.rc[slot] = async_queue_join(R.q);
    return 0;
}

static int shutdown_now_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *j;
    void *item;
    for (int i = 1; i <= 4; i++)
        async_queue_put(R.q, ITEM(i));
    async_queue_get(R.q, &item); /* one taken, not yet done */
    spawn_small(&j, joiner, ITEM(0));
    settle(2);
    async_queue_shutdown(R.q, true);
    R.rc[1] = (int)async_queue_size(R.q);
    R.rc[2] = (int)async_queue_unfinished(R.q);
    R.rc[3] = async_queue_get(R.q, &item);
    async_queue_task_done(R.q);
    await_free(j);
    return 0;
}

static void test_shutdown_immediate(void **state)
{
    (void)state;
    async_queue_opts o = {.drop = count_drop};
    assert_int_equal(async_queue_new(&R.q, &o), 0);
    assert_int_equal(run_main(shutdown_now_main, NULL), 0);
    assert_int_equal(R.dropped, 3);
    assert_int_equal(R.dropped_sum, 2 + 3 + 4);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], 1);
    assert_int_equal(R.rc[3], ASYNC_ESHUTDOWN);
    assert_int_equal(R.rc[0], 0);
}

/* ---- cancellation racing with hand-off --------------------------------------------- */

static int getter_cancel_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *g1, *g2, *g3;
    void *item = NULL;
    /* (a) Handed to a cancelled getter: it goes on to the next getter. */
    spawn_small(&g1, getter, ITEM(1));
    spawn_small(&g2, getter, ITEM(2));
    settle(2);
    async_task_cancel(g1);
    async_queue_put(R.q, ITEM(7)); /* g1's node is still first */
    await_free(g1);
    await_free(g2);
    /* (b) No other getter: it goes back to the front of the queue. */
    spawn_small(&g3, getter, ITEM(3));
    settle(2);
    async_task_cancel(g3);
    async_queue_put(R.q, ITEM(8)); /* handed to g3 */
    async_queue_put(R.q, ITEM(9)); /* stored */
    R.rc[10] = async_queue_free(R.q); /* g3 still owes the item back */
    await_free(g3);
    async_queue_get(R.q, &item);
    R.got[4] = (intptr_t)item;
    async_queue_get(R.q, &item);
    R.got[5] = (intptr_t)item;
    R.rc[6] = (int)async_queue_size(R.q);
    return 0;
}

static void test_cancel_getter_no_lost_item(void **state)
{
    (void)state;
    assert_int_equal(async_queue_new(&R.q, NULL), 0);
    assert_int_equal(run_main(getter_cancel_main, NULL), 0);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.got[2], 7);
    assert_int_equal(R.rc[3], ASYNC_ECANCELED);
    assert_int_equal(R.rc[10], ASYNC_EBUSY);
    assert_int_equal(R.got[4], 8); /* back at the front */
    assert_int_equal(R.got[5], 9);
    assert_int_equal(R.rc[6], 0);
    assert_int_equal(async_queue_unfinished(R.q), 3);
}

static int putter_cancel_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *p1, *p2;
    void *item = NULL;
    async_queue_put(R.q, ITEM(1)); /* full (maxsize 1) */
    spawn_small(&p1, putter, ITEM(1)); /* offers 101 */
    spawn_small(&p2, putter, ITEM(2)); /* offers 102 */
    settle(2);
    /* p2: plain cancellation while waiting: its item is not added. */
    async_task_cancel(p2);
    settle(2);
    /* p1: cancelled, then a get admits its item before it runs: the put
     * happened, so it reports 0 and the item is in the queue once. */
    async_task_cancel(p1);
    async_queue_get(R.q, &item);
    R.got[0] = (intptr_t)item;
    await_free(p1);
    await_free(p2);
    R.rc[5] = (int)async_queue_size(R.q);
    async_queue_try_get(R.q, &item);
    R.got[5] = (intptr_t)item;
    R.rc[6] = async_queue_try_get(R.q, &item);
    return 0;
}

static void test_cancel_putter_no_double_insert(void **state)
{
    (void)state;
    async_queue_opts o = {.maxsize = 1};
    assert_int_equal(async_queue_new(&R.q, &o), 0);
    assert_int_equal(run_main(putter_cancel_main, NULL), 0);
    assert_int_equal(R.got[0], 1);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], ASYNC_ECANCELED);
    assert_int_equal(R.rc[5], 1);
    assert_int_equal(R.got[5], 101);
    assert_int_equal(R.rc[6], ASYNC_EEMPTY);
}

/* ---- producer / consumer soak ---------------------------------------------------- */

static int producer(void *arg, void **result)
{
    (void)result;
    intptr_t base = (intptr_t)arg * PER_PROD;
    unsigned seed = (unsigned)base + 1;
    for (intptr_t i = 0; i < PER_PROD; i++) {
        if (async_queue_put(R.q, ITEM(base + i + 1)) != 0)
            R.put_errors++;
        /* Sometimes let the consumers drain the queue, so that getters
         * wait and items are handed over directly. */
        if (rand_r(&seed) % 4 == 0)
            async_yield();
    }
    return 0;
}

static int consumer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *item;
    int rc;
    while ((rc = async_queue_get(R.q, &item)) == 0) {
        intptr_t n = (intptr_t)item - 1;
        if (n >= 0 && n < NITEMS)
            R.seen[n]++;
        R.consumed++;
        async_queue_task_done(R.q);
        if (R.consumed % 7 == 0)
            async_yield(); /* vary the interleaving */
    }
    return rc == ASYNC_ESHUTDOWN ? 0 : rc;
}

/* Gets once and is cancelled at once; whatever it got counts. */
static int flaky_getter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *item;
    if (async_queue_get(R.q, &item) == 0) {
        intptr_t n = (intptr_t)item - 1;
        if (n >= 0 && n < NITEMS)
            R.seen[n]++;
        R.consumed++;
        async_queue_task_done(R.q);
    }
    return 0;
}

/* Keeps spawning getters and cancelling them after a random number of
 * steps, so cancellation races with hand-off over and over. */
static int saboteur(void *arg, void **result)
{
    (void)arg;
    (void)result;
    unsigned seed = 12345;
    while (R.consumed < NITEMS - NITEMS / 10) {
        async_task *g;
        if (spawn_small(&g, flaky_getter, NULL) != 0)
            return ASYNC_ENOMEM;
        int steps = (int)(rand_r(&seed) % 3);
        for (int i = 0; i < steps; i++)
            async_yield();
        async_task_cancel(g);
        async_await(g, NULL);
        async_task_unref(g);
    }
    return 0;
}

static int soak_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *p[NPROD], *c[NCONS], *s;
    for (int i = 0; i < NCONS; i++)
        spawn_small(&c[i], consumer, NULL);
    for (int i = 0; i < NPROD; i++)
        spawn_small(&p[i], producer, ITEM(i));
    spawn_small(&s, saboteur, NULL);
    for (int i = 0; i < NPROD; i++)
        await_free(p[i]);
    R.rc[0] = async_queue_join(R.q);
    async_queue_shutdown(R.q, false);
    int failures = 0;
    for (int i = 0; i < NCONS; i++) {
        failures += async_await(c[i], NULL) != 0;
        async_task_unref(c[i]);
    }
    R.rc[1] = failures;
    R.rc[2] = async_await(s, NULL);
    async_task_unref(s);
    return 0;
}

/* 4 producers x 25,000 items, 4 consumers, a bounded queue of 64, and
 * getters cancelled at random: every item is consumed exactly once. */
static void test_soak_bounded(void **state)
{
    (void)state;
    async_queue_opts o = {.maxsize = 64};
    assert_int_equal(async_queue_new(&R.q, &o), 0);
    R.seen = calloc(NITEMS, 1);
    assert_non_null(R.seen);
    assert_int_equal(run_main(soak_main, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.put_errors, 0);
    assert_int_equal(R.consumed, NITEMS);
    for (int i = 0; i < NITEMS; i++)
        if (R.seen[i] != 1)
            fail_msg("item %d consumed %d times", i + 1, R.seen[i]);
    assert_int_equal(async_queue_unfinished(R.q), 0);
    free(R.seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_orders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waits_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadlines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_immediate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_getter_no_lost_item, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_putter_no_double_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soak_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
