/*
 * The poll-backend contract.  The loop core (src/core/loop.c) sees only this
 * header; src/backend/epoll.c and src/backend/kqueue.c implement it and meson
 * compiles exactly one of them.
 *
 * Interest is persistent: an fd is registered once with the events wanted
 * and stays registered until watched again with events == 0, so waiting on
 * the same fd costs no system call.
 */
#ifndef ASYNC_BACKEND_H
#define ASYNC_BACKEND_H

#include <stdint.h>

#define ASYNC__EV_READ  1u  /* readable, or hang-up / error pending */
#define ASYNC__EV_WRITE 2u  /* writable, or error pending */

typedef struct async__backend async__backend;

/* One readiness report: the `data` given at watch time and what is ready. */
typedef struct async__event {
    void *data;      /* the cookie passed to async__backend_watch() */
    unsigned events; /* ASYNC__EV_READ and/or ASYNC__EV_WRITE */
} async__event;

/* Name of the backend compiled in ("epoll" or "kqueue"). */
const char *async__backend_name(void);

/* Creates a backend, including its wakeup channel.  0 or negative errno. */
int async__backend_new(async__backend **out);

/* Closes every fd the backend owns and frees it. */
void async__backend_free(async__backend *b);

/*
 * Sets the interest for fd to `events` (0 removes all interest but keeps
 * nothing registered).  `data` is reported with each event.  `old_events`
 * is the interest previously set for this fd (0 if never watched), which the
 * backend uses to pick add / modify / delete.  Returns 0 or negative errno
 * (-EBADF for a bad fd, -EPERM for an fd the backend cannot poll, e.g. a
 * regular file with epoll).
 */
int async__backend_watch(async__backend *b, int fd, unsigned old_events,
                         unsigned events, void *data);

/*
 * Waits for events up to `timeout_ns` nanoseconds (-1: forever, 0: do not
 * block).  The timeout is rounded up, never down, so the loop never wakes
 * before a timer is due.  Fills at most `max` events and returns their
 * number, or negative errno; EINTR is reported as 0 events.  A wakeup
 * (async__backend_wake) makes it return; wakeups are consumed internally and
 * never reported as events.
 */
int async__backend_poll(async__backend *b, int64_t timeout_ns,
                        async__event *events, int max);

/* Makes a concurrent or later async__backend_poll() return.  Callable from
 * any thread and async-signal-safe. */
void async__backend_wake(async__backend *b);

#endif
