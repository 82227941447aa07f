/*
 * Per-thread caches of freed fixed-size objects (tasks, loop handles).
 *
 * malloc + free were a tenth of a spawn + await and most of a call_later +
 * cancel; a LIFO of recently freed objects makes both a few instructions.
 * Declare one cache per object type as a thread-local with
 * ASYNC__OBJCACHE_INIT; objects may be freed on any thread (they then join
 * that thread's cache).  A thread's caches are emptied when it exits.
 * Compiled out under ASan and Valgrind so that a use after free is still
 * caught there.
 */
#ifndef ASYNC_OBJCACHE_H
#define ASYNC_OBJCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#if !defined(ASYNC_HAVE_ASAN) && !defined(ASYNC_HAVE_VALGRIND)
#define ASYNC__OBJCACHE_ENABLED 1
#endif

typedef struct async__objcache {
    void *head;                        /* freed objects, linked through their first word */
    unsigned len;                      /* objects in the list */
    unsigned max;                      /* most objects kept; beyond, free() */
    bool armed;                        /* registered for flushing at thread exit */
    struct async__objcache *next_armed;/* this thread's armed caches */
} async__objcache;

#define ASYNC__OBJCACHE_INIT(cap) {NULL, 0, (cap), false, NULL}

/* Registers c to be emptied at thread exit; false if that cannot be done
 * (then the cache must not keep objects). */
bool async__objcache_arm(async__objcache *c);

/* Empties c now. */
void async__objcache_flush(async__objcache *c);

/* An object of `size` bytes (uninitialised), or NULL. */
static inline void *async__objcache_get(async__objcache *c, size_t size)
{
#ifdef ASYNC__OBJCACHE_ENABLED
    void *p = c->head;
    if (p) {
        c->head = *(void **)p;
        c->len--;
        return p;
    }
#else
    (void)c;
#endif
    return malloc(size);
}

/* Gives an object back (NULL is ignored). */
static inline void async__objcache_put(async__objcache *c, void *p)
{
    if (!p)
        return;
#ifdef ASYNC__OBJCACHE_ENABLED
    if (c->len < c->max && (c->armed || async__objcache_arm(c))) {
        *(void **)p = c->head;
        c->head = p;
        c->len++;
        return;
    }
#else
    (void)c;
#endif
    free(p);
}

#endif
