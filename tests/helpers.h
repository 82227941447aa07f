/* Shared test helpers: leak counters and small utilities. */
#ifndef ASYNC_TEST_HELPERS_H
#define ASYNC_TEST_HELPERS_H

#include <stddef.h>

/* Open file descriptors of this process (/proc/self/fd), or -1 without /proc. */
int th_count_fds(void);

/* Lines in /proc/self/maps, or -1 without /proc. */
int th_count_maps(void);

/* Snapshot of leak counters taken before a test... */
typedef struct th_leaks {
    int fds;          /* open fds */
    size_t stacks;    /* coroutine stacks mapped (in use + pooled) */
    size_t tasks;     /* live async_task objects */
} th_leaks;

void th_leaks_begin(th_leaks *l);
/* ...and compared after it (cmocka asserts; call outside coroutines). */
void th_leaks_end(const th_leaks *l);

#endif
