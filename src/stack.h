/*
 * Coroutine stacks: mmap'd memory below which lies a PROT_NONE guard, handed
 * out from a small per-thread pool so that creating and finishing coroutines
 * in a loop does not mmap and munmap each time.
 */
#ifndef ASYNC_STACK_H
#define ASYNC_STACK_H

#include <stddef.h>

/* Default usable size of a coroutine stack, in bytes. */
#define ASYNC__STACK_DEFAULT (256u * 1024u)
/* Smallest usable size accepted (anything smaller is ASYNC_EINVAL). */
#define ASYNC__STACK_MIN (16u * 1024u)
/* Largest usable size accepted (anything larger is ASYNC_EINVAL). */
#define ASYNC__STACK_MAX ((size_t)1 << 30)

typedef struct async__stack {
    void *map;       /* start of the mapping: the guard region lives here */
    size_t map_size; /* whole mapping, guard included */
    size_t guard;    /* bytes of PROT_NONE guard at the bottom of map */
    void *base;      /* lowest usable address (map + guard) */
    void *top;       /* highest usable address, exclusive (map + map_size) */
    size_t size;     /* usable bytes, top - base */
} async__stack;

/*
 * Hands out a stack with at least `size` usable bytes (0 means the default),
 * from this thread's pool when one of the same size is there.  Returns 0,
 * ASYNC_EINVAL for a size outside [ASYNC__STACK_MIN, ASYNC__STACK_MAX], or
 * ASYNC_ENOMEM; on error *st is untouched.  The first call in a thread also
 * installs the stack-overflow reporter (SIGSEGV handler on an alternate
 * signal stack).
 */
int async__stack_alloc(async__stack *st, size_t size);

/* Returns a stack to this thread's pool, or unmaps it when the pool is full.
 * Never call it for the stack you are running on. */
void async__stack_free(async__stack *st);

/* Unmaps every stack pooled by this thread (also done at thread exit). */
void async__stack_pool_drain(void);

/* Number of stacks currently mapped by the whole process (in use + pooled),
 * for leak checks in tests. */
size_t async__stack_mapped_count(void);

#endif
