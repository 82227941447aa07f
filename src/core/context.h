/*
 * Task-local context internals: what tasks, loop handles and done
 * callbacks need to carry a context (include/async/context.h).
 *
 * A context is an immutable-once-shared array of value cells, reference
 * counted (atomically: a task of one loop may spawn on another).  Whoever
 * captures one (a spawn, a call_soon, an add_done_callback) takes a
 * reference; async_context_set copies it first if anyone else holds one.
 * NULL is the empty context, so a program that never sets a value never
 * allocates or counts anything.
 */
#ifndef ASYNC_CORE_CONTEXT_H
#define ASYNC_CORE_CONTEXT_H

#include "core/internal.h"

struct async__context;

/* The context of the callback running on this thread outside any task
 * (set around a callback that captured one), or NULL. */
extern _Thread_local struct async__context *async__cb_context_tls ASYNC__TLS_IE;

/* Takes a reference to c (non-NULL). */
void async__context_ref(struct async__context *c);
/* Drops a reference; NULL is ignored.  The last one releases the values. */
void async__context_unref(struct async__context *c);

/* A new reference to the current context (the running task's, or the
 * running callback's), or NULL when it is empty. */
static inline struct async__context *async__context_capture(void)
{
    struct async_task *t = async__task_current();
    struct async__context *c = t ? t->ctx : async__cb_context_tls;
    if (c)
        async__context_ref(c);
    return c;
}

/* Makes c the running callback's context; returns the previous one, to
 * give back afterwards. */
static inline struct async__context *async__context_swap(struct async__context *c)
{
    struct async__context *prev = async__cb_context_tls;
    async__cb_context_tls = c;
    return prev;
}

#endif
