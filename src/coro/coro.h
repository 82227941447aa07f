/*
 * The coroutine object: a function running on its own stack that can
 * suspend back to whoever resumed it.  The loop builds tasks on it; nothing
 * here knows about loops, futures or timers.
 *
 * Asymmetric model: async__coro_resume() runs a coroutine until it calls
 * async__coro_suspend() or its function returns; either way control comes
 * back to the resumer.  A coroutine's stack is released only by
 * async__coro_destroy(), which must be called from outside the coroutine.
 */
#ifndef ASYNC_CORO_H
#define ASYNC_CORO_H

#include <stdbool.h>
#include <stddef.h>

#include "coro/stack.h"

typedef void (*async__coro_fn)(void *arg);

enum async__coro_state {
    ASYNC__CORO_READY,    /* created, never resumed yet */
    ASYNC__CORO_RUNNING,  /* executing now */
    ASYNC__CORO_SUSPENDED,/* parked in async__coro_suspend() */
    ASYNC__CORO_FINISHED, /* its function returned; only destroy is left */
};

/*
 * Embedded in every task, so kept small (80 bytes in a normal build): the
 * function and its argument live at the top of the coroutine's own stack
 * until the first resume reads them (async__coro_init), and the stack's
 * usable range is derived from its guard and size (coro/stack.h).
 */
typedef struct async__coro {
    void *sp;               /* saved stack pointer while not running */
    void *resumer_sp;       /* saved stack pointer of the resumer while running */
    struct async__coro *resumer; /* coroutine that resumed us (NULL: thread stack) */
    const char *name;       /* shown by the stack-overflow report; may be NULL */
    unsigned long long id;  /* shown as "Task-<id>" when name is NULL (0: none) */
    enum async__coro_state state; /* see enum above */
    bool transferred_in;    /* last entered by a transfer, not a resume */
    async__stack stack;     /* the stack this coroutine runs on (its
                               valgrind_id is our Valgrind registration) */
#if defined(ASYNC_HAVE_ASAN)
    void *asan_fake_stack;        /* ASan fake stack of the suspended side */
    const void *resumer_bottom;   /* resumer's stack bounds, told to ASan */
    size_t resumer_size;          /* (size of that stack) */
#endif
#if defined(ASYNC_HAVE_TSAN)
    void *tsan_fiber;         /* ThreadSanitizer's fiber of this coroutine */
    void *tsan_resumer_fiber; /* the fiber control goes back to */
#endif
} async__coro;

/*
 * Prepares `co` (caller-owned memory, e.g. embedded in a task) to run
 * fn(arg) on a stack of `stack_size` usable bytes (0: default); fn and arg
 * are kept in the top 16 bytes of that stack.  Returns 0, ASYNC_EINVAL
 * (NULL co or fn, bad size) or ASYNC_ENOMEM; on error nothing is allocated.
 */
int async__coro_init(async__coro *co, async__coro_fn fn, void *arg,
                     size_t stack_size);

/*
 * Runs `co` (READY or SUSPENDED) until control comes back: returns the
 * coroutine that suspended or finished, which is `co` itself unless `co`
 * transferred to a sibling (async__coro_transfer) that then gave control
 * back.
 */
async__coro *async__coro_resume(async__coro *co);

/* Called from inside a coroutine: returns control to its resumer.  Returns
 * when the coroutine is resumed again. */
void async__coro_suspend(void);

/* Releases the stack of a READY, SUSPENDED or FINISHED coroutine.  A
 * SUSPENDED one is killed: its frames are dropped without unwinding (what
 * they own leaks) and the stack goes back to the pool (unpoisoned for
 * AddressSanitizer by async__stack_free).  Never call it from the coroutine
 * itself. */
void async__coro_destroy(async__coro *co);

/*
 * Called from inside the running coroutine `from`: switches straight to
 * `to` (READY or SUSPENDED) without going back to the common resumer, one
 * context switch instead of two.  `to` inherits from's resumer, so its next
 * suspend (or its end) returns control there.  Returns when something
 * resumes or transfers back to `from`.
 */
void async__coro_transfer(async__coro *from, async__coro *to);

/* The coroutine running on this thread, or NULL on the thread's own stack. */
async__coro *async__coro_current(void);

#endif
