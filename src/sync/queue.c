/*
 * asyncio.Queue, LifoQueue and PriorityQueue on hand-off wait queues.
 *
 * Items live in one array: a ring for FIFO and LIFO (LIFO takes from the
 * tail), a binary min-heap for PRIORITY (ordered by cmp, then by insertion
 * sequence so equal items come out oldest first).
 *
 * Invariants that make the hand-off safe:
 *  - getters wait only while the queue is empty, and putters only while it
 *    is full, so a put never has to choose between a getter and the array;
 *  - cap >= count + inflight, where inflight counts items handed to getters
 *    that have not resumed yet.  A getter cancelled at that moment gives its
 *    item back into the array, and thanks to this reserve that can never
 *    need an allocation (that could fail and lose the item).
 */
#include <stdlib.h>
#include <string.h>

#include "core/waitq.h"

typedef struct qentry {
    void *item;   /* the user's item */
    uint64_t seq; /* insertion order, for stable priority order */
} qentry;

struct async_queue {
    async_queue_opts o;   /* kind, maxsize, cmp, drop (copied at new) */
    qentry *buf;          /* ring (FIFO/LIFO) or heap (PRIORITY) */
    size_t cap;           /* entries buf can hold */
    size_t head;          /* ring: index of the oldest entry */
    size_t count;         /* entries in buf */
    size_t inflight;      /* items handed to getters not yet resumed */
    size_t unfinished;    /* items added and not task_done'd */
    uint64_t seq;         /* next insertion sequence number */
    bool shutdown;        /* puts fail; gets fail once empty */
    bool immediate;       /* shut down immediately: items are discarded */
    async__waitq getters; /* tasks waiting in get (queue empty) */
    async__waitq putters; /* tasks waiting in put (queue full) */
    async__waitq joiners; /* tasks waiting in join */
};

/* ---- storage ------------------------------------------------------------- */

static bool entry_before(const async_queue *q, const qentry *a,
                         const qentry *b)
{
    int c = q->o.cmp(a->item, b->item, q->o.cmp_arg);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

/* Makes room for n entries (no-op if there is); 0 or ASYNC_ENOMEM. */
static int store_reserve(async_queue *q, size_t n)
{
    if (n <= q->cap)
        return 0;
    size_t cap = q->cap ? q->cap * 2 : 8;
    if (cap < n)
        cap = n;
    if (cap > SIZE_MAX / sizeof(qentry))
        return ASYNC_ENOMEM;
    qentry *buf = malloc(cap * sizeof(qentry));
    if (!buf)
        return ASYNC_ENOMEM;
    /* Unwrap the ring while copying; for a heap head is 0 anyway. */
    for (size_t i = 0; i < q->count; i++)
        buf[i] = q->buf[(q->head + i) % q->cap];
    free(q->buf);
    q->buf = buf;
    q->cap = cap;
    q->head = 0;
    return 0;
}

static void heap_push(async_queue *q, qentry e)
{
    size_t i = q->count++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_before(q, &e, &q->buf[parent]))
            break;
        q->buf[i] = q->buf[parent];
        i = parent;
    }
    q->buf[i] = e;
}

static qentry heap_pop(async_queue *q)
{
    qentry top = q->buf[0];
    qentry last = q->buf[--q->count];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= q->count)
            break;
        if (child + 1 < q->count &&
            entry_before(q, &q->buf[child + 1], &q->buf[child]))
            child++;
        if (!entry_before(q, &q->buf[child], &last))
            break;
        q->buf[i] = q->buf[child];
        i = child;
    }
    if (q->count > 0)
        q->buf[i] = last;
    return top;
}

/* Adds an entry at its place; the caller made room. */
static void store_push(async_queue *q, qentry e)
{
    if (q->o.kind == ASYNC_QUEUE_PRIORITY) {
        heap_push(q, e);
        return;
    }
    q->buf[(q->head + q->count) % q->cap] = e;
    q->count++;
}

/* Puts back an entry that was the next to come out; the caller made room. */
static void store_push_front(async_queue *q, qentry e)
{
    if (q->o.kind != ASYNC_QUEUE_FIFO) {
        store_push(q, e); /* LIFO top, or its heap place (seq kept) */
        return;
    }
    q->head = (q->head + q->cap - 1) % q->cap;
    q->buf[q->head] = e;
    q->count++;
}

/* Removes the entry a get takes; count must be > 0. */
static qentry store_pop(async_queue *q)
{
    if (q->o.kind == ASYNC_QUEUE_PRIORITY)
        return heap_pop(q);
    q->count--;
    if (q->o.kind == ASYNC_QUEUE_LIFO)
        return q->buf[(q->head + q->count) % q->cap];
    qentry e = q->buf[q->head];
    q->head = (q->head + 1) % q->cap;
    return e;
}

/* ---- creation ------------------------------------------------------------- */

static bool opts_valid(const async_queue_opts *o)
{
    if (o->kind == ASYNC_QUEUE_PRIORITY)
        return o->cmp != NULL;
    return (o->kind == ASYNC_QUEUE_FIFO || o->kind == ASYNC_QUEUE_LIFO) &&
           o->cmp == NULL;
}

int async_queue_new(async_queue **out, const async_queue_opts *opts)
{
    static const async_queue_opts defaults;
    if (!opts)
        opts = &defaults;
    if (!out || !opts_valid(opts))
        return ASYNC_EINVAL;
    async_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return ASYNC_ENOMEM;
    q->o = *opts;
    async__waitq_init(&q->getters);
    async__waitq_init(&q->putters);
    async__waitq_init(&q->joiners);
    *out = q;
    return 0;
}

static void queue_drop(async_queue *q, void *item)
{
    if (q->o.drop)
        q->o.drop(item, q->o.drop_arg);
}

int async_queue_free(async_queue *q)
{
    if (!q)
        return 0;
    if (async__waitq_busy(&q->getters) || async__waitq_busy(&q->putters) ||
        async__waitq_busy(&q->joiners) || q->inflight > 0)
        return ASYNC_EBUSY;
    while (q->count > 0)
        queue_drop(q, store_pop(q).item);
    free(q->buf);
    free(q);
    return 0;
}

/* ---- bookkeeping ----------------------------------------------------------- */

static bool queue_full(const async_queue *q)
{
    return q->o.maxsize > 0 && q->count >= q->o.maxsize;
}

/* One fewer unfinished item; wakes join when none is left. */
static void queue_finish_one(async_queue *q)
{
    if (q->unfinished > 0 && --q->unfinished == 0)
        async__waitq_grant_all(&q->joiners, 0);
}

/* Hands an entry to the first waiting getter; the caller checked there is
 * one and reserved room for the item to come back. */
static void queue_hand_to_getter(async_queue *q, qentry e)
{
    async__waitq_node *n = async__waitq_first(&q->getters);
    n->item = e.item;
    n->seq = e.seq;
    q->inflight++;
    async__waitq_grant(&q->getters, 0);
}

/* A get made room: the first waiting putter's item moves in. */
static void queue_admit_putter(async_queue *q)
{
    async__waitq_node *n = async__waitq_first(&q->putters);
    if (!n || queue_full(q))
        return;
    store_push(q, (qentry){n->item, q->seq++});
    q->unfinished++;
    async__waitq_grant(&q->putters, 0);
}

/* ---- put --------------------------------------------------------------------- */

int async_queue_try_put(async_queue *q, void *item)
{
    if (!q)
        return ASYNC_EINVAL;
    if (q->shutdown)
        return ASYNC_ESHUTDOWN;
    bool to_getter = !async__waitq_empty(&q->getters);
    if (!to_getter && (queue_full(q) || !async__waitq_empty(&q->putters)))
        return ASYNC_EFULL;
    if (store_reserve(q, q->count + q->inflight + 1) != 0)
        return ASYNC_ENOMEM;
    qentry e = {item, q->seq++};
    if (to_getter)
        queue_hand_to_getter(q, e);
    else
        store_push(q, e);
    q->unfinished++;
    return 0;
}

int async_queue_put_until(async_queue *q, void *item, uint64_t deadline)
{
    if (!q)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    int rc = async_queue_try_put(q, item);
    if (rc != ASYNC_EFULL)
        return rc;
    async__waitq_node n;
    n.item = item;
    async__task_wait_on(t, ASYNC_WAIT_QUEUE, q);
    rc = async__waitq_park(&q->putters, &n, t, deadline);
    /* A grant is the truth: 0 means the item went in, even if we were
     * cancelled at the same moment; ESHUTDOWN means it did not. */
    return n.granted ? n.code : rc;
}

int async_queue_put(async_queue *q, void *item)
{
    return async_queue_put_until(q, item, ASYNC__FOREVER);
}

/* ---- get --------------------------------------------------------------------- */

int async_queue_try_get(async_queue *q, void **item)
{
    if (!q || !item)
        return ASYNC_EINVAL;
    if (q->count == 0)
        return q->shutdown ? ASYNC_ESHUTDOWN : ASYNC_EEMPTY;
    *item = store_pop(q).item;
    queue_admit_putter(q);
    return 0;
}

/* A getter gave up just as e was handed to it: e goes to the next getter,
 * else back to the front (or, after an immediate shutdown, to drop). */
static void queue_give_back(async_queue *q, qentry e)
{
    if (!async__waitq_empty(&q->getters)) {
        queue_hand_to_getter(q, e);
    } else if (q->immediate) {
        queue_drop(q, e.item);
        queue_finish_one(q);
    } else {
        store_push_front(q, e); /* cap >= count + inflight: no allocation */
    }
}

int async_queue_get_until(async_queue *q, void **item, uint64_t deadline)
{
    if (!q || !item)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    int rc = async_queue_try_get(q, item);
    if (rc != ASYNC_EEMPTY)
        return rc;
    async__waitq_node n;
    async__task_wait_on(t, ASYNC_WAIT_QUEUE, q);
    rc = async__waitq_park(&q->getters, &n, t, deadline);
    if (!n.granted)
        return rc;
    if (n.code)
        return n.code; /* shut down while we waited */
    q->inflight--;
    if (rc == 0) {
        *item = n.item;
        return 0;
    }
    queue_give_back(q, (qentry){n.item, n.seq});
    return rc;
}

int async_queue_get(async_queue *q, void **item)
{
    return async_queue_get_until(q, item, ASYNC__FOREVER);
}

/* ---- join --------------------------------------------------------------------- */

int async_queue_task_done(async_queue *q)
{
    if (!q || q->unfinished == 0)
        return ASYNC_EINVAL;
    queue_finish_one(q);
    return 0;
}

int async_queue_join_until(async_queue *q, uint64_t deadline)
{
    if (!q)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (q->unfinished == 0)
        return 0;
    async__waitq_node n;
    async__task_wait_on(t, ASYNC_WAIT_QUEUE, q);
    return async__waitq_park(&q->joiners, &n, t, deadline);
}

int async_queue_join(async_queue *q)
{
    return async_queue_join_until(q, ASYNC__FOREVER);
}

/* ---- shutdown ------------------------------------------------------------------- */

int async_queue_shutdown(async_queue *q, bool immediate)
{
    if (!q)
        return ASYNC_EINVAL;
    q->shutdown = true;
    if (immediate) {
        q->immediate = true;
        while (q->count > 0) {
            queue_drop(q, store_pop(q).item);
            queue_finish_one(q);
        }
    }
    /* Getters wait only on an empty queue, so they all fail now. */
    async__waitq_grant_all(&q->getters, ASYNC_ESHUTDOWN);
    async__waitq_grant_all(&q->putters, ASYNC_ESHUTDOWN);
    return 0;
}

/* ---- queries ----------------------------------------------------------------------- */

size_t async_queue_size(const async_queue *q)
{
    return q ? q->count : 0;
}

size_t async_queue_maxsize(const async_queue *q)
{
    return q ? q->o.maxsize : 0;
}

bool async_queue_empty(const async_queue *q)
{
    return !q || q->count == 0;
}

bool async_queue_full(const async_queue *q)
{
    return q && queue_full(q);
}

size_t async_queue_unfinished(const async_queue *q)
{
    return q ? q->unfinished : 0;
}
