/*
 * The kqueue poll backend (macOS, the BSDs, and Linux through libkqueue).
 * See src/backend/backend.h for the contract and docs/design-backend.md for the
 * reasoning.
 *
 * - Level-triggered (no EV_CLEAR on fds), to match epoll: readiness is
 *   reported on every poll while it lasts and the interest is set.
 * - kqueue keeps one registration per (fd, filter), so ASYNC__EV_READ and
 *   ASYNC__EV_WRITE map to separate EVFILT_READ / EVFILT_WRITE knotes, and
 *   a poll may report the same cookie twice, once per direction.
 * - Wakeups: EVFILT_USER with NOTE_TRIGGER where the system has it natively,
 *   else (libkqueue, whose kevent() takes locks and so is not
 *   async-signal-safe, or a kernel without EVFILT_USER) a non-blocking
 *   pipe.  Either way an atomic flag makes a pending wake free to repeat.
 * - Timeouts are a struct timespec: exact nanoseconds, no rounding.
 */
#include "backend/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#if defined(EVFILT_USER) && defined(NOTE_TRIGGER) && !defined(ASYNC_KQUEUE_EMULATED)
#define WAKE_WITH_USER_EVENT 1
#endif

/* Kernel events fetched per poll; more stay queued for the next poll. */
#define KQUEUE_BATCH 256

/* Most changes one watch call makes: two per filter (see filter_change), or
 * when emulated two stale-knote deletes plus one add per filter. */
#define MAX_CHANGES 4

struct async__backend {
    int kq;                 /* the kqueue */
#ifndef WAKE_WITH_USER_EVENT
    int wake_rd;            /* pipe read end, registered for EVFILT_READ */
    int wake_wr;            /* pipe write end, written by async__backend_wake */
#endif
    atomic_flag wake_armed; /* set from the first wake until poll drains */
    struct kevent buf[KQUEUE_BATCH]; /* kernel results, translated out */
};

const char *async__backend_name(void)
{
    return "kqueue";
}

/* The cookie that marks the wakeup: an address no caller can pass. */
static inline void *wake_cookie(async__backend *b)
{
    return &b->kq;
}

static int set_cloexec_nonblock(int fd, bool nonblock)
{
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* Applies changes that must not fail silently (setup only). */
static int kevent_apply(int kq, const struct kevent *changes, int n)
{
    return kevent(kq, changes, n, NULL, 0, NULL) < 0 ? -errno : 0;
}

#ifdef WAKE_WITH_USER_EVENT
static int wake_open(async__backend *b)
{
    struct kevent kev;
    /* EV_CLEAR: retrieving the event resets the trigger. */
    EV_SET(&kev, 0, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, wake_cookie(b));
    return kevent_apply(b->kq, &kev, 1);
}

static void wake_close(async__backend *b)
{
    (void)b; /* the knote goes with the kqueue */
}

static void wake_signal(async__backend *b)
{
    struct kevent kev;
    EV_SET(&kev, 0, EVFILT_USER, 0, NOTE_TRIGGER, 0, wake_cookie(b));
    kevent(b->kq, &kev, 1, NULL, 0, NULL);
}

static void wake_consume(async__backend *b)
{
    (void)b; /* EV_CLEAR already reset it */
}
#else
static int wake_open(async__backend *b)
{
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    b->wake_rd = p[0];
    b->wake_wr = p[1];
    int err = set_cloexec_nonblock(p[0], true);
    if (err == 0)
        err = set_cloexec_nonblock(p[1], true);
    if (err == 0) {
        struct kevent kev;
        EV_SET(&kev, p[0], EVFILT_READ, EV_ADD, 0, 0, wake_cookie(b));
        err = kevent_apply(b->kq, &kev, 1);
    }
    if (err != 0) {
        close(p[0]);
        close(p[1]);
    }
    return err;
}

static void wake_close(async__backend *b)
{
    close(b->wake_rd);
    close(b->wake_wr);
}

static void wake_signal(async__backend *b)
{
    char one = 1;
    while (write(b->wake_wr, &one, 1) < 0 && errno == EINTR)
        continue;
}

static void wake_consume(async__backend *b)
{
    char sink[64];
    for (;;) {
        ssize_t r = read(b->wake_rd, sink, sizeof sink);
        if (r > 0 || (r < 0 && errno == EINTR))
            continue;
        return; /* empty (EAGAIN) */
    }
}
#endif

#ifdef ASYNC_KQUEUE_EMULATED
/*
 * libkqueue releases a closed kqueue's own fds (an epoll fd, pipes,
 * eventfds) on a monitoring thread, some time after close().  Since 2.7 it
 * exports a call that waits for that; where it exists (a weak reference, so
 * older libkqueue still links), freeing the backend waits too, and "freed"
 * means "no fds left", as with a native kqueue.
 */
extern void libkqueue_drain_pending_close(void) __attribute__((weak));

static void kqueue_close(int kq)
{
    close(kq);
    if (libkqueue_drain_pending_close != NULL)
        libkqueue_drain_pending_close();
}
#else
static void kqueue_close(int kq)
{
    close(kq);
}
#endif

int async__backend_new(async__backend **out)
{
    async__backend *b = malloc(sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    int err;
    b->kq = kqueue();
    if (b->kq < 0) {
        err = -errno;
        goto free_backend;
    }
    err = set_cloexec_nonblock(b->kq, false);
    if (err != 0)
        goto close_kqueue;
    err = wake_open(b);
    if (err != 0)
        goto close_kqueue;
    atomic_flag_clear(&b->wake_armed);
    *out = b;
    return 0;

close_kqueue:
    close(b->kq);
free_backend:
    free(b);
    return err;
}

void async__backend_free(async__backend *b)
{
    if (b == NULL)
        return;
    wake_close(b);
    kqueue_close(b->kq);
    free(b);
}

/*
 * Appends the changes for `filter` going from interest `was` to `want`;
 * returns how many (0 to 2).  EV_ADD on an existing knote updates its cookie
 * in place on BSD and macOS.  libkqueue keeps the old cookie there (its
 * read filter refuses a modify without EV_CLEAR), so when emulated a kept
 * filter is deleted and added again, in the same kevent() call.
 */
static int filter_change(struct kevent *kev, int fd, short filter,
                         bool was, bool want, void *data)
{
    int n = 0;
#ifdef ASYNC_KQUEUE_EMULATED
    if (was && want)
        EV_SET(&kev[n++], fd, filter, EV_DELETE, 0, 0, NULL);
#endif
    if (want)
        EV_SET(&kev[n++], fd, filter, EV_ADD, 0, 0, data);
    else if (was)
        EV_SET(&kev[n++], fd, filter, EV_DELETE, 0, 0, NULL);
    return n;
}

/* The first error of a change, 0 if it did what was asked.  ENOENT from a
 * delete means the knote is already gone (the fd was closed): fine. */
static int change_error(const struct kevent *change, int err)
{
    if (err == ENOENT && (change->flags & EV_DELETE))
        return 0;
    return -err;
}

/*
 * Applies up to MAX_CHANGES changes and returns the first error, 0 if none.
 * With EV_RECEIPT every change comes back, in changelist order, as an
 * EV_ERROR entry (data 0 on success), so one call applies the batch and
 * reports per change without consuming any pending readiness.
 */
static int apply_changes(async__backend *b, struct kevent *ch, int n)
{
    int err = 0;
#ifdef EV_RECEIPT
    struct kevent res[MAX_CHANGES];
    for (int i = 0; i < n; i++)
        ch[i].flags |= EV_RECEIPT;
    int got = kevent(b->kq, ch, n, res, n, &(struct timespec){ 0, 0 });
    if (got < 0)
        return -errno;
    for (int i = 0; i < got && i < n && err == 0; i++)
        if ((res[i].flags & EV_ERROR) && res[i].data != 0)
            err = change_error(&ch[i], (int)res[i].data);
#else
    /* One change per call, so an error is known to belong to it. */
    for (int i = 0; i < n && err == 0; i++)
        if (kevent(b->kq, &ch[i], 1, NULL, 0, NULL) < 0)
            err = change_error(&ch[i], errno);
#endif
    return err;
}

/* After a failed watch, removes the filters it newly added, so a failed
 * first watch leaves nothing registered. */
static void undo_adds(async__backend *b, int fd, unsigned old_events,
                      unsigned events)
{
    struct kevent ch[2];
    int n = 0;
    unsigned added = events & ~old_events;
    if (added & ASYNC__EV_READ)
        EV_SET(&ch[n++], fd, EVFILT_READ, EV_DELETE, 0, 0, NULL);
    if (added & ASYNC__EV_WRITE)
        EV_SET(&ch[n++], fd, EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    if (n > 0)
        apply_changes(b, ch, n);
}

/*
 * Regular files and directories are refused with -EPERM, as epoll refuses
 * them.  kqueue would accept them, but its vnode read filter reports only
 * while the file offset is before the end of the file (FreeBSD, macOS;
 * libkqueue likewise stops reporting at EOF), whereas the contract's READ
 * means "a read will not block", which a read at EOF never does.  A wait on
 * a file at its end would hang until the file grew; with -EPERM the caller
 * just reads (src/io/io.c does).  Checked only when nothing is registered yet,
 * so a persistent registration pays the fstat once.
 */
static int check_pollable(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -EPERM;
    return 0;
}

#ifdef ASYNC_KQUEUE_EMULATED
/*
 * A native kqueue drops an fd's knotes when the fd is closed.  libkqueue
 * cannot see a plain close(): the knotes, and its per-fd epoll state, stay
 * under the number, and when the number is reused an EV_ADD on the new fd
 * meets the stale knote and registers nothing (or fails with ENOENT when
 * the other filter's stale state makes it try EPOLL_CTL_MOD).  So a fresh
 * registration (old_events == 0: the loop believes nothing is registered,
 * e.g. after async__loop_fd_opened) first deletes both filters, in the same
 * kevent() call; ENOENT, the usual answer, is ignored.
 */
static int flush_stale(struct kevent *kev, int fd, unsigned old_events)
{
    if (old_events != 0)
        return 0;
    EV_SET(&kev[0], fd, EVFILT_READ, EV_DELETE, 0, 0, NULL);
    EV_SET(&kev[1], fd, EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    return 2;
}
#else
static int flush_stale(struct kevent *kev, int fd, unsigned old_events)
{
    (void)kev;
    (void)fd;
    (void)old_events;
    return 0; /* close() already removed the knotes */
}
#endif

int async__backend_watch(async__backend *b, int fd, unsigned old_events,
                         unsigned events, void *data)
{
    if (fd < 0)
        return -EBADF;
    if (old_events == 0 && events != 0) {
        int err = check_pollable(fd);
        if (err != 0)
            return err;
    }
    struct kevent ch[MAX_CHANGES];
    int n = events != 0 ? flush_stale(ch, fd, old_events) : 0;
    n += filter_change(&ch[n], fd, EVFILT_READ, old_events & ASYNC__EV_READ,
                       events & ASYNC__EV_READ, data);
    n += filter_change(&ch[n], fd, EVFILT_WRITE, old_events & ASYNC__EV_WRITE,
                       events & ASYNC__EV_WRITE, data);
    if (n == 0)
        return 0;
    int err = apply_changes(b, ch, n);
    if (err != 0)
        undo_adds(b, fd, old_events, events);
    return err;
}

/*
 * Drains the wakeup, then re-opens the flag; the order matters for the same
 * reason as in the epoll backend: clearing first could leave the flag set
 * with nothing pending, silencing every later wake.
 */
static void wake_drain(async__backend *b)
{
    wake_consume(b);
    atomic_flag_clear_explicit(&b->wake_armed, memory_order_seq_cst);
}

/*
 * The filter says the direction.  EV_EOF (peer closed, or the read side of
 * a pipe gone) comes with the filter it concerns and needs no extra bit: a
 * reader then reads EOF, a writer gets EPIPE.  An EV_ERROR entry (never
 * expected here, since poll passes no changes) wakes both directions.
 */
static inline unsigned async_events(const struct kevent *kev)
{
    if (kev->flags & EV_ERROR)
        return ASYNC__EV_READ | ASYNC__EV_WRITE;
    return kev->filter == EVFILT_WRITE ? ASYNC__EV_WRITE : ASYNC__EV_READ;
}

/*
 * Longer than most functions here because it is the loop's hot path: one
 * pass translates the kernel's results into the caller's array, skipping
 * the wakeup in the same pass instead of filtering afterwards.
 */
int async__backend_poll(async__backend *b, int64_t timeout_ns,
                        async__event *events, int max)
{
    if (max <= 0)
        return -EINVAL;
    if (max > KQUEUE_BATCH)
        max = KQUEUE_BATCH;
    struct timespec ts;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
    }
    int n = kevent(b->kq, NULL, 0, b->buf, max, timeout_ns < 0 ? NULL : &ts);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;

    int out = 0;
    for (int i = 0; i < n; i++) {
        void *data = (void *)b->buf[i].udata;
        if (data == wake_cookie(b)) {
            wake_drain(b);
            continue;
        }
        events[out].data = data;
        events[out].events = async_events(&b->buf[i]);
        out++;
    }
    return out;
}

/*
 * Async-signal-safe where kevent() is a system call (native kqueue) and
 * always on the pipe path: an atomic_flag operation (lock-free) and at most
 * one kevent(2) or write(2).  Only the first wake after a drain signals.
 */
void async__backend_wake(async__backend *b)
{
    if (atomic_flag_test_and_set_explicit(&b->wake_armed, memory_order_seq_cst))
        return;
    int saved = errno;
    wake_signal(b);
    errno = saved;
}
