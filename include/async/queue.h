/*
 * Queues between tasks: asyncio's Queue, LifoQueue and PriorityQueue (with
 * the 3.13 shutdown), in C.  Items are `void *`; the queue never looks at
 * what they point to.
 *
 * Like the objects of async/sync.h a queue belongs to no loop and is not
 * thread-safe; use it from the thread of one loop.  Waiting calls (put,
 * get, join) must run inside a task (else ASYNC_ENOTTASK), have an _until
 * form with a loop-time deadline (UINT64_MAX: never; ASYNC_ETIMEDOUT when
 * it passes) and return ASYNC_ECANCELED once the task is cancelled.
 * Cancellation is level-triggered (async/task.h): every later wait of the
 * task returns ASYNC_ECANCELED too, until the task returns (asyncio
 * delivers one CancelledError, which the coroutine may catch and go on).
 * A call that can complete at once completes without suspending.
 *
 * Fairness and hand-off.  Getters and putters are served in arrival order.
 * A put that finds getters waiting hands its item straight to the first
 * one; a get that frees space in a full queue moves the first waiting
 * putter's item in.  A getter cancelled (or timed out) just as an item was
 * handed to it gives the item back -- to the next getter, else to the
 * front of the queue (then, exceptionally, the size may exceed maxsize by
 * such returned items) -- so no item is ever lost.  A putter whose item was
 * accepted returns 0 even if it was cancelled at that moment (its next
 * suspension point sees the cancellation), so an item is never inserted
 * twice nor reported as not inserted when it was.
 */
#ifndef ASYNC_QUEUE_H
#define ASYNC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <async/error.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct async_queue async_queue;

/* Which item a get takes. */
typedef enum async_queue_kind {
    ASYNC_QUEUE_FIFO = 0, /* the oldest (asyncio.Queue) */
    ASYNC_QUEUE_LIFO,     /* the newest (asyncio.LifoQueue) */
    ASYNC_QUEUE_PRIORITY, /* the smallest by cmp; equal ones oldest first
                           * (asyncio.PriorityQueue, but stable) */
} async_queue_kind;

/* Priority order: negative if a comes before b, 0 if equal, positive if
 * after.  Called with the items as put and opts.cmp_arg. */
typedef int (*async_queue_cmp)(const void *a, const void *b, void *arg);

/* Disposes of an item the queue discards (immediate shutdown, free). */
typedef void (*async_queue_drop_fn)(void *item, void *arg);

/* Options; zero-initialised means an unbounded FIFO. */
typedef struct async_queue_opts {
    async_queue_kind kind;    /* FIFO, LIFO or PRIORITY */
    size_t maxsize;           /* most items held; 0 = unbounded */
    async_queue_cmp cmp;      /* PRIORITY only, and required there */
    void *cmp_arg;            /* passed to cmp */
    async_queue_drop_fn drop; /* called for discarded items; NULL = none */
    void *drop_arg;           /* passed to drop */
} async_queue_opts;

/*
 * Creates an empty queue (opts NULL: unbounded FIFO; opts is copied).
 * Returns 0, ASYNC_EINVAL (out NULL, unknown kind, PRIORITY without cmp,
 * or cmp given for another kind) or ASYNC_ENOMEM.
 */
ASYNC_API int async_queue_new(async_queue **out, const async_queue_opts *opts);

/*
 * Frees the queue, passing every item still in it to opts.drop.  Returns 0
 * (also for NULL) or ASYNC_EBUSY when tasks wait on it or an item handed to
 * a getter has not been collected yet (nothing is freed then).
 */
ASYNC_API int async_queue_free(async_queue *q);

/*
 * Adds item, waiting while the queue is full.  Returns 0 (the item is in
 * the queue or with a getter), ASYNC_EINVAL, ASYNC_ENOTTASK, ASYNC_ESHUTDOWN
 * (the queue is shut down, also while waiting: the item was not added),
 * ASYNC_ENOMEM, ASYNC_ECANCELED or ASYNC_ETIMEDOUT.  On error the item stays
 * the caller's.
 *
 * Difference from asyncio: a waiting putter whose item was accepted (moved
 * into the queue by a get, or handed to a getter) returns 0 even if the
 * task was cancelled or its deadline passed at that moment; the
 * cancellation stays pending (cancellation is level-triggered) and hits the
 * task's next suspension point.  asyncio's put raises CancelledError once
 * the task is cancelled, even when its slot was already granted.  In C the
 * return code decides who owns the item: once accepted it may already be
 * consumed, so reporting "not inserted" would make the caller free or
 * re-send an item the queue has handed out.  Waiting putters are also
 * served by hand-off, in arrival order: a get that frees space moves the
 * first putter's item in at once, so a task arriving in between cannot
 * take that space.
 */
ASYNC_API int async_queue_put(async_queue *q, void *item);
ASYNC_API int async_queue_put_until(async_queue *q, void *item,
                                    uint64_t deadline);

/* Adds item only if that needs no waiting (put_nowait).  Any code may call
 * it.  Returns 0, ASYNC_EINVAL, ASYNC_EFULL (full, or putters are queued),
 * ASYNC_ESHUTDOWN or ASYNC_ENOMEM. */
ASYNC_API int async_queue_try_put(async_queue *q, void *item);

/*
 * Removes an item into *item, waiting while the queue is empty.  Returns 0,
 * ASYNC_EINVAL (q or item NULL), ASYNC_ENOTTASK, ASYNC_ESHUTDOWN (shut down
 * and empty: after a plain shutdown the remaining items are still handed
 * out first), ASYNC_ECANCELED or ASYNC_ETIMEDOUT; *item is set only on
 * success, and then the item is the caller's.
 *
 * Difference from asyncio: a put (or a get that frees space for a putter)
 * hands its item directly to the first waiting getter, so the item never
 * sits in the queue where a task arriving in between could take it
 * (asyncio puts the item in the queue and wakes the getter, which takes
 * whatever is there when it runs).  If the item reached the getter before
 * a cancellation, the get returns 0 with the item and the cancellation
 * hits the next suspension point (level-triggered; asyncio raises
 * CancelledError).  If the cancellation came first, the item is given
 * back -- to the next getter, else to the front of the queue -- so no item
 * is lost either way.
 */
ASYNC_API int async_queue_get(async_queue *q, void **item);
ASYNC_API int async_queue_get_until(async_queue *q, void **item,
                                    uint64_t deadline);

/* Removes an item only if one is there (get_nowait).  Any code may call
 * it.  Returns 0, ASYNC_EINVAL, ASYNC_EEMPTY or ASYNC_ESHUTDOWN (shut down
 * and empty). */
ASYNC_API int async_queue_try_get(async_queue *q, void **item);

/*
 * Join support: every item added counts as unfinished until a consumer calls
 * task_done for it.  task_done returns 0, ASYNC_EINVAL (NULL, or called more
 * often than items were added).  join waits until nothing is unfinished:
 * 0, ASYNC_EINVAL, ASYNC_ENOTTASK, ASYNC_ECANCELED or ASYNC_ETIMEDOUT.
 */
ASYNC_API int async_queue_task_done(async_queue *q);
ASYNC_API int async_queue_join(async_queue *q);
ASYNC_API int async_queue_join_until(async_queue *q, uint64_t deadline);

/*
 * Shuts the queue down (asyncio 3.13): puts fail with ASYNC_ESHUTDOWN from
 * now on, and so do the putters waiting now; gets take the remaining items,
 * then fail with ASYNC_ESHUTDOWN (the getters waiting now fail at once).
 * With `immediate` the remaining items are discarded through opts.drop and
 * count as done for join.  Calling it again is allowed (a plain shutdown
 * can be made immediate).  Returns 0 or ASYNC_EINVAL.
 */
ASYNC_API int async_queue_shutdown(async_queue *q, bool immediate);

/* Items in the queue; its maxsize (0: unbounded); empty / full tests
 * (full is never true for an unbounded queue).  NULL gives 0 / 0 / true /
 * false. */
ASYNC_API size_t async_queue_size(const async_queue *q);
ASYNC_API size_t async_queue_maxsize(const async_queue *q);
ASYNC_API bool async_queue_empty(const async_queue *q);
ASYNC_API bool async_queue_full(const async_queue *q);

/* Items added and not yet marked done with task_done (0 for NULL). */
ASYNC_API size_t async_queue_unfinished(const async_queue *q);

#ifdef __cplusplus
}
#endif

#endif
