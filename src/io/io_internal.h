/*
 * What src/io/io.c shares with the other files that do fd I/O for tasks
 * (src/io/net.c): the entry check every call makes and the wait it parks in.
 */
#ifndef ASYNC_IO_INTERNAL_H
#define ASYNC_IO_INTERNAL_H

#include "core/internal.h"

/*
 * Fairness.  An optimistic call that never has to wait never suspends, so
 * a task whose peer always keeps data ready (a fast client, a local pipe)
 * would run its read-write loop forever while every other task and the
 * poller starve.  So each task gets a budget of calls that complete without
 * waiting (Tokio's cooperative budget, in spirit): when it is spent, the
 * next call first yields, putting the task at the back of the ready queue
 * behind the next I/O poll.  The budget is tracked per thread for the task
 * charged last: another task charged in between, or any park, means the
 * loop went round, and starts a fresh budget.
 */
#define ASYNC__IO_BUDGET 32

/*
 * The drained hint.  A read from a stream socket or pipe that returns less
 * than asked for has emptied the kernel's buffer, so the next read of that
 * fd would most likely fail with EAGAIN; request/response traffic (read,
 * write the answer, read the next request) would pay that failed system
 * call on every message, a third of an echo server's calls.  So a short
 * read leaves a hint, and the next read of the same fd by the same task
 * waits for readiness first.  Waiting is always safe with level-triggered
 * polling (data that is already there is reported by the next poll at
 * once), so a wrong hint costs one loop iteration, never a lost wake-up.
 * One entry per thread suffices for the pattern it serves; anything else
 * (another fd, another task, a close) just overwrites or clears it.
 */
typedef struct async__io_tls {
    async_task *task;          /* task charged last (only compared) */
    unsigned used;             /* its calls since it last suspended */
    int drained_fd;            /* fd whose buffer a short read emptied */
    async_task *drained_task;  /* the task that read it (only compared) */
} async__io_tls;

extern _Thread_local async__io_tls async__io_tls_state ASYNC__TLS_IE;

/* Charges one call to t; yields when the budget is spent. */
static inline int async__io_charge(async_task *t)
{
    async__io_tls *b = &async__io_tls_state;
    if (b->task != t) {
        b->task = t;
        b->used = 0;
    }
    if (++b->used <= ASYNC__IO_BUDGET)
        return 0;
    b->used = 0;
    return async_yield();
}

/*
 * The check before every I/O call: ASYNC_ENOTTASK outside a task,
 * ASYNC_ECANCELED for a cancelled task (the level-triggered rule holds for
 * calls that would not have to wait too, so a read-write loop always sees
 * it), then the budget charge (whose yield may return ASYNC_ECANCELED or
 * ASYNC_ETIMEDOUT).  Deadline scopes are otherwise left to the park, which
 * knows the clock: a call that need not wait simply completes.
 */
static inline int async__io_enter(async_task **out)
{
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    if (t->cancel_requested && !t->shield)
        return ASYNC_ECANCELED;
    *out = t;
    return async__io_charge(t);
}

/* Parks t until fd has `ev` ready (see async__loop_fd_wait); a park is a
 * trip round the loop, so the budget starts again. */
static inline int async__io_wait(async_task *t, int fd, unsigned ev,
                                 uint64_t deadline)
{
    async__io_tls_state.used = 0;
    return async__loop_fd_wait(t->fut.loop, fd, ev, deadline);
}

/* Records that t's read of fd came back short. */
static inline void async__io_drained_set(async_task *t, int fd)
{
    async__io_tls_state.drained_fd = fd;
    async__io_tls_state.drained_task = t;
}

/* True (and clears the hint) if t's last read of fd came back short. */
static inline bool async__io_drained_take(async_task *t, int fd)
{
    async__io_tls *s = &async__io_tls_state;
    if (s->drained_task != t || s->drained_fd != fd)
        return false;
    s->drained_task = NULL;
    return true;
}

/* Forgets the hint for fd (it is being closed). */
static inline void async__io_drained_forget(int fd)
{
    if (async__io_tls_state.drained_fd == fd)
        async__io_tls_state.drained_task = NULL;
}

#endif
