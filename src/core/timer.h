/*
 * Timers: an intrusive binary min-heap ordered by (deadline, seq).  The node
 * lives inside whatever owns the timer (a task, a call_later handle), so
 * arming never allocates, and removal takes the node out at once (no
 * tombstones).  The sequence number makes equal deadlines fire in the order
 * they were armed.
 */
#ifndef ASYNC_TIMER_H
#define ASYNC_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct async__timer {
    struct async__timer *parent; /* heap links; parent == self when unarmed */
    struct async__timer *left;
    struct async__timer *right;
    uint64_t deadline;           /* loop clock, nanoseconds */
    uint64_t seq;                /* arming order, breaks deadline ties */
} async__timer;

typedef struct async__timer_heap {
    async__timer *min;  /* root: the earliest timer, NULL when empty */
    size_t count;       /* number of armed timers */
    uint64_t next_seq;  /* sequence number for the next arm */
} async__timer_heap;

void async__timer_heap_init(async__timer_heap *h);

/* Marks a timer node as not armed. Call once before first use.  Inline:
 * every spawn and call_later does it. */
static inline void async__timer_init(async__timer *t)
{
    t->parent = t;
    t->left = NULL;
    t->right = NULL;
}

/* True while `t` is in a heap. */
bool async__timer_armed(const async__timer *t);

/* Arms `t` (which must not be armed) for `deadline`. O(log n), no allocation. */
void async__timer_arm(async__timer_heap *h, async__timer *t, uint64_t deadline);

/* Disarms `t`; a no-op when it is not armed. O(log n). */
void async__timer_disarm(async__timer_heap *h, async__timer *t);

/* The earliest armed timer, or NULL. */
static inline async__timer *async__timer_heap_min(const async__timer_heap *h)
{
    return h->min;
}

#endif
