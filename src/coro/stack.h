/*
 * Coroutine stacks: mmap'd memory below which lies a no-access guard, carved
 * from multi-stack slabs and recycled through a per-thread free list, so that
 * creating and finishing coroutines costs no system call in the common case.
 */
#ifndef ASYNC_STACK_H
#define ASYNC_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default usable size of a coroutine stack, in bytes. */
#define ASYNC__STACK_DEFAULT (256u * 1024u)
/* Smallest usable size accepted (anything smaller is ASYNC_EINVAL). */
#define ASYNC__STACK_MIN (16u * 1024u)
/* Largest usable size accepted (anything larger is ASYNC_EINVAL). */
#define ASYNC__STACK_MAX ((size_t)1 << 30)

struct async__slab;
struct async__coro;

/*
 * 32 bytes, embedded in every coroutine (so in every task): only what cannot
 * be derived is stored; the usable range is [map + guard, map + guard +
 * size), see async__stack_base() and async__stack_top().
 */
typedef struct async__stack {
    void *map;       /* start of this stack's part of its slab: the guard */
    struct async__slab *slab; /* the slab it was carved from */
    uint32_t guard;  /* bytes of guard at the bottom of map: the stack size,
                        clamped to [64 KiB, 1 MiB] */
    uint32_t size;   /* usable bytes (at most ASYNC__STACK_MAX) */
    uint16_t slot;   /* its index in the slab (kept: recomputing it at free
                        was a 64-bit division on every spawn) */
    /* Free for the coroutine layer (async__stack_alloc leaves it alone):
     * its Valgrind registration id (VALGRIND_STACK_REGISTER), kept here
     * where it costs no space. */
    unsigned valgrind_id;
} async__stack;

/* Lowest usable address of st (just above its guard). */
static inline void *async__stack_base(const async__stack *st)
{
    return (char *)st->map + st->guard;
}

/* Highest usable address of st, exclusive. */
static inline void *async__stack_top(const async__stack *st)
{
    return (char *)st->map + st->guard + st->size;
}

/*
 * Hands out a stack with at least `size` usable bytes (0 means the default),
 * from this thread's free list when one of the same size is there, else from
 * a slab (mapping a new one when needed).  Returns 0,
 * ASYNC_EINVAL for a size outside [ASYNC__STACK_MIN, ASYNC__STACK_MAX], or
 * ASYNC_ENOMEM; on error *st is untouched.  The first call in a thread also
 * installs the stack-overflow reporter (SIGSEGV handler on an alternate
 * signal stack).
 */
int async__stack_alloc(async__stack *st, size_t size);

/* Returns a stack to the free list of the thread that allocated it; past
 * the pool's cap on resident free stacks, their memory is given back to the
 * kernel (and wholly free slabs are unmapped).  A stack freed by another
 * thread has its memory released at once and its slot retired until its
 * slab is unmapped.  Never call it for the stack you are running on. */
void async__stack_free(async__stack *st);

/* Unmaps every slab of this thread with no stack in use (also done at
 * thread exit, where slabs with stacks still in use are left to be unmapped
 * by whoever frees their last stack). */
void async__stack_pool_drain(void);

/* Number of stacks currently mapped by the whole process (in use, or free
 * after having been used; slots of a slab never handed out do not count),
 * for leak checks in tests: after
 * async__stack_pool_drain() it is back where it was when nothing else is in
 * use. */
size_t async__stack_mapped_count(void);

/* The stack-pointer check at a switch (coro.c, builds without NDEBUG)
 * found co running below its stack: writes the overflow report, with the
 * reason, to stderr and aborts.  Async-signal-safe. */
_Noreturn void async__stack_overflow_abort(const struct async__coro *co);

/* True when guards are mprotect'ed (kernels without MADV_GUARD_INSTALL,
 * qemu-user): every stack then costs two VMAs against vm.max_map_count.
 * May map and unmap a probe mapping the first time it is called. */
bool async__stack_guard_splits_vma(void);

#endif
