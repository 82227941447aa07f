/*
 * CPython's Lib/test/test_asyncio/test_queues.py (3.13, which has the
 * shutdown libasync implements) ported to libasync's queues
 * (async/queue.h).  Each case names the CPython test it ports; the mixin
 * classes (join, shutdown) run for each kind: Queue, LifoQueue and
 * PriorityQueue.  Items are small integers cast to `void *`; `await
 * asyncio.sleep(0)` is async_yield(); QueueEmpty / QueueFull /
 * QueueShutDown / ValueError are ASYNC_EEMPTY / ASYNC_EFULL /
 * ASYNC_ESHUTDOWN / ASYNC_EINVAL.
 *
 * Where libasync departs from asyncio on purpose (hand-off between putters
 * and getters; a cancelled putter whose item was accepted returns 0; a
 * getter handed an item before its cancellation returns it), the
 * departure is documented in async/queue.h and the case asserts libasync's
 * behaviour; the comment of the case says what asyncio does.  A CPython
 * test that retries after a CancelledError retries here when the call
 * reported the cancellation: in C the return code, not the task's end,
 * says whether the item moved.
 *
 * Not ported, as they test Python-only features: QueueBasicTests.test_repr,
 * test_str (repr strings), test_generic_alias (typing), the _format tests
 * of the join and shutdown mixins (repr), QueuePutTests.test_float_maxsize
 * (maxsize is a size_t), QueueGetTests.test_get_with_putters (it appends a
 * bare future to the private _putters list).  Checks of private lists
 * (`len(q._getters) == 0`) become what the public API shows of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"

static async_loop *L;
static th_leaks leaks;

enum { MAXTASKS = 32, MAXORDER = 64 };

/* What the tasks saw, recorded inside, asserted after the loop returns. */
typedef struct rec {
    int fail;                   /* line of the first CHECK that failed */
    async_queue_kind kind;      /* the kind the mixin cases run with */
    async_queue *q;             /* the queue under test */
    async_event *ev;            /* the tests' `started` event */
    async_task *t[MAXTASKS];    /* every task spawned, unref'd at the end */
    int nt;                     /* entries in t */
    int flag;                   /* the tests' `finished` / `running` */
    intptr_t acc;               /* accumulator / a getter's item */
    int rc[8];                  /* return codes seen inside tasks */
    intptr_t order[MAXORDER];   /* have_been_put and the like */
    int n;                      /* entries in order */
} rec;

static rec R;

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c) && R.fail == 0)                                              \
            R.fail = __LINE__;                                                \
    } while (0)

#define ITEM(i) ((void *)(intptr_t)(i))

static void append(intptr_t v)
{
    if (R.n < MAXORDER)
        R.order[R.n++] = v;
}

static int cmp_int(const void *a, const void *b, void *arg)
{
    (void)arg;
    intptr_t x = (intptr_t)a, y = (intptr_t)b;
    return (x > y) - (x < y);
}

/* self.q_class(maxsize) for the kind under test (FIFO outside mixins). */
static async_queue *queue_new(size_t maxsize)
{
    async_queue_opts o = {.kind = R.kind, .maxsize = maxsize};
    if (R.kind == ASYNC_QUEUE_PRIORITY)
        o.cmp = cmp_int;
    async_queue *q = NULL;
    CHECK(async_queue_new(&q, &o) == 0);
    R.q = q;
    return q;
}

static async_task *spawn(async_fn fn, intptr_t arg)
{
    async_task *t = NULL;
    if (R.nt == MAXTASKS || async_spawn(&t, fn, (void *)arg) != 0) {
        CHECK(false);
        return NULL;
    }
    R.t[R.nt++] = t;
    return t;
}

static bool done(async_task *t)
{
    return async_future_done(async_task_future(t));
}

static int await_task(async_task *t)
{
    return async_task_await(t, NULL);
}

/* `await q.get()` returning the item (or -1000 - error). */
static intptr_t get(void)
{
    void *item;
    int rc = async_queue_get(R.q, &item);
    return rc ? -1000 + rc : (intptr_t)item;
}

static intptr_t get_nowait(void)
{
    void *item;
    int rc = async_queue_try_get(R.q, &item);
    return rc ? -1000 + rc : (intptr_t)item;
}

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
    assert_int_equal(async_loop_free(L), 0);
    th_leaks_end(&leaks);
    return 0;
}

static void run_case_kind(async_fn fn, async_queue_kind kind)
{
    memset(&R, 0, sizeof(R));
    R.kind = kind;
    async_task *m;
    assert_int_equal(async_loop_spawn(L, &m, fn, NULL, NULL), 0);
    int rc = async_loop_run_until_complete(L, m, NULL);
    async_task_unref(m);
    for (int i = 0; i < R.nt; i++) {
        assert_true(done(R.t[i]));
        async_task_unref(R.t[i]);
    }
    if (R.fail)
        print_message("CHECK failed at line %d (kind %d)\n", R.fail, kind);
    assert_int_equal(R.fail, 0);
    assert_int_equal(rc, 0);
    assert_int_equal(async_queue_free(R.q), 0);
    assert_int_equal(async_event_free(R.ev), 0);
}

#define CASE(name)                                                            \
    static void test_##name(void **state)                                     \
    {                                                                         \
        (void)state;                                                          \
        run_case_kind(case_##name, ASYNC_QUEUE_FIFO);                         \
    }

/* A mixin case: runs for Queue, LifoQueue and PriorityQueue. */
#define CASE_KINDS(name)                                                      \
    static void test_##name(void **state)                                     \
    {                                                                         \
        run_case_kind(case_##name, ASYNC_QUEUE_FIFO);                         \
        teardown(state); /* a fresh loop for each kind */                     \
        setup(state);                                                         \
        run_case_kind(case_##name, ASYNC_QUEUE_LIFO);                         \
        teardown(state);                                                      \
        setup(state);                                                         \
        run_case_kind(case_##name, ASYNC_QUEUE_PRIORITY);                     \
    }

/* ---- QueueBasicTests --------------------------------------------------------- */

/* test_queues.py: QueueBasicTests.test_empty */
static int case_empty(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    CHECK(async_queue_empty(R.q));
    CHECK(async_queue_put(R.q, ITEM(1)) == 0);
    CHECK(!async_queue_empty(R.q));
    CHECK(get() == 1);
    CHECK(async_queue_empty(R.q));
    return 0;
}
CASE(empty)

/* test_queues.py: QueueBasicTests.test_full */
static int case_full(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    CHECK(!async_queue_full(R.q));
    CHECK(async_queue_free(R.q) == 0);
    queue_new(1);
    CHECK(async_queue_put(R.q, ITEM(1)) == 0);
    CHECK(async_queue_full(R.q));
    return 0;
}
CASE(full)

/* test_queues.py: QueueBasicTests.test_order, LifoQueueTests.test_order,
 * PriorityQueueTests.test_order */
static int case_order(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    static const int in[] = {1, 3, 2};
    for (int i = 0; i < 3; i++)
        CHECK(async_queue_put(R.q, ITEM(in[i])) == 0);
    intptr_t items[3];
    for (int i = 0; i < 3; i++)
        items[i] = get();
    static const intptr_t want[3][3] = {{1, 3, 2}, {2, 3, 1}, {1, 2, 3}};
    for (int i = 0; i < 3; i++)
        CHECK(items[i] == want[R.kind][i]);
    return 0;
}
CASE_KINDS(order)

/* putter() of test_maxsize. */
static int maxsize_putter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 3; i++) {
        int rc = async_queue_put(R.q, ITEM(i));
        if (rc)
            return rc;
        append(i);
    }
    return 0;
}

/* test_queues.py: QueueBasicTests.test_maxsize */
static int case_maxsize(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(2);
    CHECK(async_queue_maxsize(R.q) == 2);
    async_task *t = spawn(maxsize_putter, 0);
    async_yield();
    async_yield();
    CHECK(R.n == 2 && R.order[0] == 0 && R.order[1] == 1);
    CHECK(get() == 0);
    async_yield();
    CHECK(R.n == 3 && R.order[2] == 2);
    CHECK(get() == 1);
    CHECK(get() == 2);
    CHECK(done(t) && await_task(t) == 0);
    return 0;
}
CASE(maxsize)

/* ---- QueueGetTests ------------------------------------------------------------ */

/* test_queues.py: QueueGetTests.test_blocking_get and
 * QueuePutTests.test_blocking_put */
static int case_blocking_get(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    CHECK(get() == 1);
    CHECK(async_queue_put(R.q, ITEM(1)) == 0); /* no maxsize: no wait */
    CHECK(get() == 1);
    return 0;
}
CASE(blocking_get)

/* queue_get() of test_blocking_get_wait. */
static int started_getter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_event_set(R.ev);
    R.acc = get();
    R.flag = 1; /* finished */
    return 0;
}

static int cb_put_1(void *arg)
{
    (void)arg;
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    return 0;
}

/* test_queues.py: QueueGetTests.test_blocking_get_wait */
static int case_blocking_get_wait(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    CHECK(async_event_new(&R.ev) == 0);
    async_task *t = spawn(started_getter, 0);
    CHECK(async_event_wait(R.ev) == 0);
    CHECK(R.flag == 0);
    CHECK(async_loop_call_later(async_get_running_loop(), 10 * ASYNC_MSEC,
                                cb_put_1, NULL, NULL) == 0);
    CHECK(await_task(t) == 0);
    CHECK(R.flag == 1);
    CHECK(R.acc == 1);
    return 0;
}
CASE(blocking_get_wait)

/* test_queues.py: QueueGetTests.test_nonblocking_get,
 * test_nonblocking_get_exception and QueuePutTests.test_nonblocking_put */
static int case_nonblocking_get(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    void *item;
    CHECK(async_queue_try_get(R.q, &item) == ASYNC_EEMPTY);
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    CHECK(get_nowait() == 1);
    return 0;
}
CASE(nonblocking_get)

/* q.get() as a task; the item lands in R.order. */
static int getter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *item;
    int rc = async_queue_get(R.q, &item);
    if (rc == 0)
        append((intptr_t)item);
    return rc;
}

/* q.put(item) as a task; put's own return code lands in R.rc[slot]. */
typedef struct put_arg {
    intptr_t item;
    int slot;
} put_arg;

static int putter(void *arg, void **result)
{
    (void)result;
    const put_arg *p = arg;
    int rc = async_queue_put(R.q, ITEM(p->item));
    R.rc[p->slot] = rc;
    return rc;
}

/* test_queues.py: QueueGetTests.test_get_cancelled_race */
static int case_get_cancelled_race(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    async_task *t1 = spawn(getter, 0);
    async_task *t2 = spawn(getter, 0);
    async_yield();
    async_task_cancel(t1);
    async_yield();
    CHECK(done(t1));
    CHECK(async_queue_put(R.q, ITEM('a')) == 0);
    async_yield();
    CHECK(await_task(t2) == 0);
    CHECK(R.n == 1 && R.order[0] == 'a');
    return 0;
}
CASE(get_cancelled_race)

/* test_queues.py: QueueGetTests.test_get_with_waiting_putters */
static int case_get_with_waiting_putters(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const put_arg a = {'a', 0}, b = {'b', 1};
    queue_new(1);
    spawn(putter, (intptr_t)&a);
    spawn(putter, (intptr_t)&b);
    CHECK(get() == 'a');
    CHECK(get() == 'b');
    for (int i = 0; i < R.nt; i++)
        CHECK(await_task(R.t[i]) == 0);
    return 0;
}
CASE(get_with_waiting_putters)

static int consumer(void *arg, void **result)
{
    (void)result;
    for (intptr_t i = 0; i < (intptr_t)arg; i++) {
        void *item;
        int rc = async_queue_get(R.q, &item);
        if (rc)
            return rc;
    }
    return 0;
}

static int producer(void *arg, void **result)
{
    (void)result;
    for (intptr_t i = 0; i < (intptr_t)arg; i++) {
        int rc = async_queue_put(R.q, ITEM(i));
        if (rc)
            return rc;
    }
    return 0;
}

/* test_queues.py: QueueGetTests.test_why_are_getters_waiting */
static int case_why_are_getters_waiting(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(1);
    async_group *g;
    CHECK(async_group_new(&g) == 0);
    CHECK(async_group_spawn(g, NULL, producer, ITEM(5), NULL) == 0);
    CHECK(async_group_spawn(g, NULL, consumer, ITEM(5), NULL) == 0);
    CHECK(async_group_wait(g) == 0);
    CHECK(async_group_free(g) == 0);
    return 0;
}
CASE(why_are_getters_waiting)

/* test_queues.py: QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters
 * (wait_for(q.get(), 0.1) is the deadline form of get) */
static int case_cancelled_getters_not_held(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(5);
    void *item;
    uint64_t deadline = async_loop_time(async_get_running_loop()) +
                        5 * ASYNC_MSEC;
    CHECK(async_queue_get_until(R.q, &item, deadline) == ASYNC_ETIMEDOUT);
    /* len(queue._getters) == 0: a put is not handed to a gone getter. */
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    CHECK(async_queue_size(R.q) == 1);
    CHECK(get_nowait() == 1);
    return 0;
}
CASE(cancelled_getters_not_held)

/* ---- QueuePutTests ------------------------------------------------------------ */

/* queue_put() of test_blocking_put_wait. */
static int started_putter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_event_set(R.ev);
    int rc = async_queue_put(R.q, ITEM(1));
    if (rc == 0)
        rc = async_queue_put(R.q, ITEM(2));
    if (rc == 0)
        R.flag = 1;
    return rc;
}

static int cb_get_nowait(void *arg)
{
    (void)arg;
    CHECK(get_nowait() == 1);
    return 0;
}

/* test_queues.py: QueuePutTests.test_blocking_put_wait */
static int case_blocking_put_wait(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(1);
    CHECK(async_event_new(&R.ev) == 0);
    CHECK(async_loop_call_later(async_get_running_loop(), 10 * ASYNC_MSEC,
                                cb_get_nowait, NULL, NULL) == 0);
    async_task *t = spawn(started_putter, 0);
    CHECK(async_event_wait(R.ev) == 0);
    CHECK(R.flag == 0);
    CHECK(await_task(t) == 0);
    CHECK(R.flag == 1);
    CHECK(get_nowait() == 2);
    return 0;
}
CASE(blocking_put_wait)

/* test_queues.py: QueuePutTests.test_get_cancel_drop_one_pending_reader.
 * The reader is cancelled after item 1 was put.  In asyncio it may raise
 * CancelledError and leave 1 in the queue for a retry; in libasync item 1
 * was handed to the waiting reader, so its get returns 1 (the grant came
 * first, async_queue_get).  Either way 1 is not dropped. */
static int case_get_cancel_drop_one_pending_reader(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    async_task *reader = spawn(getter, 0);
    async_yield();
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    CHECK(async_queue_try_put(R.q, ITEM(2)) == 0);
    async_task_cancel(reader);
    (void)await_task(reader);
    /* asyncio may raise CancelledError here and the test then retries; in
     * libasync the get already returned 1. */
    CHECK(R.n == 1 && R.order[0] == 1); /* if 2: 1 got dropped */
    CHECK(get_nowait() == 2);
    return 0;
}
CASE(get_cancel_drop_one_pending_reader)

/* test_queues.py: QueuePutTests.test_get_cancel_drop_many_pending_readers.
 * reader1 was handed item 1 before its cancellation: in libasync its get
 * returns 1, and the item is then reader1's (asyncio: CancelledError, and
 * readers 2 and 3 get 1 and 2).  No item is lost or duplicated. */
static int case_get_cancel_drop_many_pending_readers(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    async_group *g;
    CHECK(async_group_new(&g) == 0);
    async_task *r[3];
    for (int i = 0; i < 3; i++) {
        CHECK(async_group_spawn(g, &r[i], getter, NULL, NULL) == 0);
        R.t[R.nt++] = r[i];
    }
    async_yield();
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    CHECK(async_queue_try_put(R.q, ITEM(2)) == 0);
    async_task_cancel(r[0]);
    (void)await_task(r[0]);
    /* reader1 had 1 already (asyncio: CancelledError, and readers 2 and 3
     * get 1 and 2); reader2 gets 2 and reader3 still waits, so a third
     * item is put for it. */
    CHECK(R.n >= 1 && R.order[0] == 1);
    CHECK(async_queue_try_put(R.q, ITEM(3)) == 0);
    CHECK(await_task(r[2]) == 0);
    CHECK(R.n == 3 && R.order[1] == 2 && R.order[2] == 3);
    CHECK(async_group_wait(g) == 0);
    CHECK(async_group_free(g) == 0);
    return 0;
}
CASE(get_cancel_drop_many_pending_readers)

/* test_queues.py: QueuePutTests.test_put_cancel_drop.  The get moved the
 * writer's item 2 into the queue before the writer was cancelled: asyncio's
 * put raises CancelledError and does not insert; libasync's put returns 0
 * (the item was accepted, async_queue_put), so the C caller does not try
 * again.  Either way 2 is in the queue exactly once. */
static int case_put_cancel_drop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const put_arg two = {2, 0};
    queue_new(1);
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    async_task *writer = spawn(putter, (intptr_t)&two);
    async_yield();
    CHECK(get_nowait() == 1);
    async_task_cancel(writer);
    (void)await_task(writer);
    CHECK(R.rc[0] == 0); /* asyncio: CancelledError */
    if (R.rc[0] != 0) {
        writer = spawn(putter, (intptr_t)&two);
        CHECK(await_task(writer) == 0);
    }
    CHECK(get_nowait() == 2);
    CHECK(async_queue_size(R.q) == 0);
    return 0;
}
CASE(put_cancel_drop)

/* test_queues.py: QueuePutTests.test_nonblocking_put_exception */
static int case_nonblocking_put_exception(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(1);
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    CHECK(async_queue_try_put(R.q, ITEM(2)) == ASYNC_EFULL);
    return 0;
}
CASE(nonblocking_put_exception)

/* test_queues.py: QueuePutTests.test_put_cancelled */
static int case_put_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const put_arg one = {1, 0};
    queue_new(0);
    async_task *t = spawn(putter, (intptr_t)&one);
    CHECK(get() == 1);
    CHECK(done(t) && await_task(t) == 0);
    return 0;
}
CASE(put_cancelled)

/* test_queues.py: QueuePutTests.test_put_cancelled_race */
static int case_put_cancelled_race(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const put_arg a = {'a', 0}, b = {'b', 1}, x = {'X', 2};
    queue_new(1);
    async_task *put_a = spawn(putter, (intptr_t)&a);
    async_task *put_b = spawn(putter, (intptr_t)&b);
    async_task *put_c = spawn(putter, (intptr_t)&x);
    async_yield();
    CHECK(done(put_a));
    CHECK(!done(put_b));
    async_task_cancel(put_c);
    async_yield();
    CHECK(done(put_c));
    CHECK(get_nowait() == 'a');
    async_yield();
    CHECK(get_nowait() == 'b');
    CHECK(await_task(put_b) == 0);
    CHECK(R.rc[2] == ASYNC_ECANCELED);
    CHECK(async_queue_empty(R.q)); /* X never went in */
    return 0;
}
CASE(put_cancelled_race)

/* test_queues.py: QueuePutTests.test_put_with_waiting_getters */
static int case_put_with_waiting_getters(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    async_task *t = spawn(getter, 0);
    async_yield();
    CHECK(async_queue_put(R.q, ITEM('a')) == 0);
    CHECK(await_task(t) == 0);
    CHECK(R.n == 1 && R.order[0] == 'a');
    return 0;
}
CASE(put_with_waiting_getters)

/* getter() of test_why_are_putters_waiting: empties the queue once. */
static int getter_all_nowait(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = async_yield();
    if (rc)
        return rc;
    size_t num = async_queue_size(R.q);
    for (size_t i = 0; i < num; i++)
        CHECK(get_nowait() >= 0);
    return 0;
}

/* test_queues.py: QueuePutTests.test_why_are_putters_waiting */
static int case_why_are_putters_waiting(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const put_arg p[4] = {{0, 0}, {1, 1}, {2, 2}, {3, 3}};
    queue_new(2);
    async_group *g;
    CHECK(async_group_new(&g) == 0);
    CHECK(async_group_spawn(g, NULL, getter_all_nowait, NULL, NULL) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(async_group_spawn(g, NULL, putter, (void *)&p[i], NULL) == 0);
    CHECK(async_group_wait(g) == 0);
    CHECK(async_group_free(g) == 0);
    return 0;
}
CASE(why_are_putters_waiting)

/* test_queues.py: QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters */
static int case_cancelled_puts_not_held(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const put_arg one = {1, 0};
    queue_new(1);
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    async_task *t = spawn(putter, (intptr_t)&one);
    async_yield();
    CHECK(async_queue_free(R.q) == ASYNC_EBUSY); /* one putter waits */
    async_task_cancel(t);
    CHECK(await_task(t) == ASYNC_ECANCELED);
    /* len(queue._putters) == 0: after a get, a newcomer may put. */
    CHECK(get_nowait() == 1);
    CHECK(async_queue_try_put(R.q, ITEM(5)) == 0);
    return 0;
}
CASE(cancelled_puts_not_held)

/* test_queues.py: QueuePutTests.test_cancelled_put_silence_value_error_exception.
 * get_nowait accepted the waiting put's item, then the putter is
 * cancelled: asyncio's put raises CancelledError; libasync's returns 0, the
 * item having been accepted (async_queue_put), and the cancellation ends
 * the task at its next suspension point. */
static int put_then_yield(void *arg, void **result)
{
    (void)arg;
    (void)result;
    R.rc[0] = async_queue_put(R.q, ITEM(2));
    R.rc[1] = async_yield();
    return R.rc[0] ? R.rc[0] : R.rc[1];
}

static int case_cancelled_put_silence_value_error(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(1);
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    async_task *t = spawn(put_then_yield, 0);
    async_yield();
    CHECK(get_nowait() == 1);
    async_task_cancel(t);
    CHECK(await_task(t) == ASYNC_ECANCELED);
    CHECK(R.rc[0] == 0); /* asyncio: CancelledError from put */
    CHECK(R.rc[1] == ASYNC_ECANCELED);
    CHECK(get_nowait() == 2); /* in the queue exactly once */
    CHECK(async_queue_empty(R.q));
    return 0;
}
CASE(cancelled_put_silence_value_error)

/* ---- _QueueJoinTestMixin (Queue, LifoQueue, PriorityQueue) ---------------------- */

/* test_queues.py: _QueueJoinTestMixin.test_task_done_underflow */
static int case_task_done_underflow(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    CHECK(async_queue_task_done(R.q) == ASYNC_EINVAL);
    return 0;
}
CASE_KINDS(task_done_underflow)

/* worker() of test_task_done. */
static int join_worker(void *arg, void **result)
{
    (void)arg;
    (void)result;
    while (R.flag) {
        void *item;
        int rc = async_queue_get(R.q, &item);
        if (rc)
            return rc;
        R.acc += (intptr_t)item;
        async_queue_task_done(R.q);
    }
    return 0;
}

/* test_queues.py: _QueueJoinTestMixin.test_task_done */
static int case_task_done(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    for (int i = 0; i < 100; i++)
        CHECK(async_queue_try_put(R.q, ITEM(i)) == 0);
    R.flag = 1; /* running */
    async_group *g;
    CHECK(async_group_new(&g) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(async_group_spawn(g, NULL, join_worker, NULL, NULL) == 0);
    CHECK(async_queue_join(R.q) == 0);
    CHECK(R.acc == 99 * 100 / 2);
    R.flag = 0;
    for (int i = 0; i < 2; i++)
        CHECK(async_queue_try_put(R.q, ITEM(0)) == 0);
    CHECK(async_group_wait(g) == 0);
    CHECK(async_group_free(g) == 0);
    return 0;
}
CASE_KINDS(task_done)

/* test_queues.py: _QueueJoinTestMixin.test_join_empty_queue */
static int case_join_empty_queue(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    CHECK(async_queue_join(R.q) == 0);
    CHECK(async_queue_join(R.q) == 0);
    return 0;
}
CASE_KINDS(join_empty_queue)

/* ---- _QueueShutdownTestMixin (Queue, LifoQueue, PriorityQueue) ------------------ */

static int joiner(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return async_queue_join(R.q);
}

/* put() / put_nowait() / get() / get_nowait() all refuse: ShutDown. */
static void check_all_shut_down(void)
{
    void *item;
    CHECK(async_queue_put(R.q, ITEM(9)) == ASYNC_ESHUTDOWN);
    CHECK(async_queue_try_put(R.q, ITEM(9)) == ASYNC_ESHUTDOWN);
    CHECK(async_queue_get(R.q, &item) == ASYNC_ESHUTDOWN);
    CHECK(async_queue_try_get(R.q, &item) == ASYNC_ESHUTDOWN);
}

/* test_queues.py: _QueueShutdownTestMixin.test_shutdown_empty */
static int case_shutdown_empty(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    async_task *get_task = spawn(getter, 0);
    async_yield();
    CHECK(async_queue_shutdown(R.q, false) == 0);
    CHECK(async_queue_size(R.q) == 0);
    CHECK(async_queue_join(R.q) == 0);
    async_yield();
    CHECK(done(get_task));
    CHECK(await_task(get_task) == ASYNC_ESHUTDOWN);
    check_all_shut_down();
    return 0;
}
CASE_KINDS(shutdown_empty)

/* test_queues.py: _QueueShutdownTestMixin.test_shutdown_nonempty */
static int case_shutdown_nonempty(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const put_arg data2 = {2, 0};
    queue_new(1);
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    async_task *join_task = spawn(joiner, 0);
    async_task *put_task = spawn(putter, (intptr_t)&data2);
    async_yield();
    CHECK(!done(put_task));
    CHECK(async_queue_shutdown(R.q, false) == 0);
    CHECK(async_queue_size(R.q) == 1);
    async_yield();
    CHECK(done(put_task));
    CHECK(await_task(put_task) == ASYNC_ESHUTDOWN);
    CHECK(get() == 1);
    async_yield();
    CHECK(!done(join_task));
    check_all_shut_down();
    CHECK(async_queue_task_done(R.q) == 0);
    async_yield();
    CHECK(done(join_task));
    CHECK(await_task(join_task) == 0);
    CHECK(async_queue_task_done(R.q) == ASYNC_EINVAL);
    return 0;
}
CASE_KINDS(shutdown_nonempty)

/* test_queues.py: _QueueShutdownTestMixin.test_shutdown_immediate */
static int case_shutdown_immediate(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    async_task *join_task = spawn(joiner, 0);
    CHECK(async_queue_shutdown(R.q, true) == 0);
    CHECK(async_queue_size(R.q) == 0);
    async_yield();
    CHECK(done(join_task));
    CHECK(await_task(join_task) == 0);
    check_all_shut_down();
    CHECK(async_queue_task_done(R.q) == ASYNC_EINVAL);
    return 0;
}
CASE_KINDS(shutdown_immediate)

/* test_queues.py: _QueueShutdownTestMixin.test_shutdown_immediate_with_unfinished */
static int case_shutdown_immediate_with_unfinished(void *arg, void **result)
{
    (void)arg;
    (void)result;
    queue_new(0);
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    CHECK(async_queue_try_put(R.q, ITEM(1)) == 0);
    async_task *join_task = spawn(joiner, 0);
    CHECK(get() == 1);
    CHECK(async_queue_shutdown(R.q, true) == 0);
    CHECK(async_queue_size(R.q) == 0);
    async_yield();
    CHECK(!done(join_task));
    check_all_shut_down();
    CHECK(async_queue_task_done(R.q) == 0);
    CHECK(async_queue_task_done(R.q) == ASYNC_EINVAL);
    async_yield();
    CHECK(done(join_task));
    CHECK(await_task(join_task) == 0);
    return 0;
}
CASE_KINDS(shutdown_immediate_with_unfinished)

#define T(name) cmocka_unit_test_setup_teardown(test_##name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(empty),
        T(full),
        T(order),
        T(maxsize),
        T(blocking_get),
        T(blocking_get_wait),
        T(nonblocking_get),
        T(get_cancelled_race),
        T(get_with_waiting_putters),
        T(why_are_getters_waiting),
        T(cancelled_getters_not_held),
        T(blocking_put_wait),
        T(get_cancel_drop_one_pending_reader),
        T(get_cancel_drop_many_pending_readers),
        T(put_cancel_drop),
        T(nonblocking_put_exception),
        T(put_cancelled),
        T(put_cancelled_race),
        T(put_with_waiting_getters),
        T(why_are_putters_waiting),
        T(cancelled_puts_not_held),
        T(cancelled_put_silence_value_error),
        T(task_done_underflow),
        T(task_done),
        T(join_empty_queue),
        T(shutdown_empty),
        T(shutdown_nonempty),
        T(shutdown_immediate),
        T(shutdown_immediate_with_unfinished),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
