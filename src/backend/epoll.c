/*
 * The epoll poll backend (Linux).  See src/backend/backend.h for the contract and
 * docs/design-backend.md for the reasoning.
 *
 * - Level-triggered: an fd that stays readable is reported on every poll
 *   while the interest is set, which is what "try the syscall again" waits
 *   and add_reader-style callbacks need.  The loop must therefore drop an
 *   interest nobody is waiting on, or it will spin.
 * - Wakeups go through an eventfd registered with a sentinel cookie; an
 *   atomic flag makes a wake that is already pending cost no system call.
 * - Timeouts use epoll_pwait2 (nanoseconds) when the kernel has it, else
 *   epoll_wait with the timeout rounded up to whole milliseconds.
 */
#include "backend/backend.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Kernel events fetched per poll; more stay queued for the next poll. */
#define EPOLL_BATCH 256

struct async__backend {
    int epfd;                /* the epoll instance */
    int wakefd;              /* eventfd written by async__backend_wake() */
    atomic_flag wake_armed;  /* set from the first wake until poll drains */
    struct epoll_event buf[EPOLL_BATCH]; /* kernel results, translated out */
};

/* Whether the kernel has epoll_pwait2: probed on first use, process-wide. */
enum { PWAIT2_UNKNOWN, PWAIT2_YES, PWAIT2_NO };
static atomic_int pwait2_state = PWAIT2_UNKNOWN;

const char *async__backend_name(void)
{
    return "epoll";
}

/* The cookie that marks the wakeup eventfd: an address no caller can pass. */
static inline void *wake_cookie(async__backend *b)
{
    return &b->wakefd;
}

int async__backend_new(async__backend **out)
{
    async__backend *b = malloc(sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    int err;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0) {
        err = -errno;
        goto free_backend;
    }
    b->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->wakefd < 0) {
        err = -errno;
        goto close_epoll;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = wake_cookie(b) };
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->wakefd, &ev) < 0) {
        err = -errno;
        goto close_wakefd;
    }
    atomic_flag_clear(&b->wake_armed);
    *out = b;
    return 0;

close_wakefd:
    close(b->wakefd);
close_epoll:
    close(b->epfd);
free_backend:
    free(b);
    return err;
}

void async__backend_free(async__backend *b)
{
    if (b == NULL)
        return;
    close(b->wakefd);
    close(b->epfd);
    free(b);
}

static uint32_t epoll_mask(unsigned events)
{
    uint32_t mask = 0;
    if (events & ASYNC__EV_READ)
        mask |= EPOLLIN;
    if (events & ASYNC__EV_WRITE)
        mask |= EPOLLOUT;
    return mask;
}

static int ctl(async__backend *b, int op, int fd, unsigned events, void *data)
{
    struct epoll_event ev = { .events = epoll_mask(events), .data.ptr = data };
    return epoll_ctl(b->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

/*
 * old_events picks the operation; when the loop's idea and the kernel's
 * disagree (ADD finds the fd registered through a dup, MOD finds it gone
 * because the file was closed and the number reused), the other operation
 * is tried once so the interest ends up as asked.
 */
int async__backend_watch(async__backend *b, int fd, unsigned old_events,
                         unsigned events, void *data)
{
    if (fd < 0)
        return -EBADF;
    if (events == 0) {
        if (old_events == 0)
            return 0;
        int err = ctl(b, EPOLL_CTL_DEL, fd, 0, NULL);
        return err == -ENOENT ? 0 : err;
    }
    int op = old_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int err = ctl(b, op, fd, events, data);
    if (err == -EEXIST)
        err = ctl(b, EPOLL_CTL_MOD, fd, events, data);
    else if (err == -ENOENT)
        err = ctl(b, EPOLL_CTL_ADD, fd, events, data);
    return err;
}

/*
 * Error and hang-up wake both directions: a reader then sees EOF or the
 * error from read(), a writer sees EPIPE or the error from write().  The
 * backend does not know which directions were asked for, so a report may
 * carry a bit that is not in the interest (only ever with EPOLLERR or
 * EPOLLHUP, which epoll reports unasked); the loop ignores it.  EPOLLRDHUP is
 * never requested (EPOLLIN already fires at EOF, and a level-triggered RDHUP
 * would spin a write-only watcher), but is mapped in case it appears.
 */
static inline unsigned async_events(uint32_t e)
{
    unsigned out = 0;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        out |= ASYNC__EV_READ;
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        out |= ASYNC__EV_WRITE;
    return out;
}

/*
 * Drains the eventfd, then re-opens the flag.  The order matters: clearing
 * first would let a wake set the flag and write between the clear and the
 * read, and the read would swallow that write while the flag stayed set,
 * silencing every later wake.  A wake landing between the read and the
 * clear is not lost either: it is skipped, but this poll is returning anyway
 * and the loop looks at its thread-safe queue afterwards.
 */
static void wake_drain(async__backend *b)
{
    uint64_t count;
    while (read(b->wakefd, &count, sizeof count) < 0 && errno == EINTR)
        continue;
    atomic_flag_clear_explicit(&b->wake_armed, memory_order_seq_cst);
}

/* Rounds nanoseconds up to whole milliseconds for epoll_wait. */
static int timeout_ms(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return -1;
    int64_t ms = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

#ifdef SYS_epoll_pwait2
/* The kernel's struct __kernel_timespec: 64-bit fields on every ABI. */
struct kernel_timespec {
    int64_t tv_sec;
    long long tv_nsec;
};
#endif

/*
 * One epoll wait with the best resolution available.  epoll_pwait2 is
 * called through syscall() so the code builds with old headers; ENOSYS
 * (older kernels, valgrind) or EPERM (seccomp filters that reject unknown
 * calls) switch this process over to epoll_wait for good.
 */
static int wait_kernel(async__backend *b, int64_t timeout_ns, int max)
{
#ifdef SYS_epoll_pwait2
    if (atomic_load_explicit(&pwait2_state, memory_order_relaxed) != PWAIT2_NO) {
        struct kernel_timespec ts = { timeout_ns / 1000000000,
                                      timeout_ns % 1000000000 };
        long n = syscall(SYS_epoll_pwait2, b->epfd, b->buf, max,
                         timeout_ns < 0 ? NULL : &ts, NULL, 0);
        if (n >= 0 || (errno != ENOSYS && errno != EPERM)) {
            atomic_store_explicit(&pwait2_state, PWAIT2_YES, memory_order_relaxed);
            return (int)n;
        }
        atomic_store_explicit(&pwait2_state, PWAIT2_NO, memory_order_relaxed);
    }
#endif
    return epoll_wait(b->epfd, b->buf, max, timeout_ms(timeout_ns));
}

/*
 * Longer than most functions here because it is the loop's hot path: one
 * pass translates the kernel's results into the caller's array, skipping
 * the wakeup eventfd in the same pass instead of filtering afterwards.
 */
int async__backend_poll(async__backend *b, int64_t timeout_ns,
                        async__event *events, int max)
{
    if (max <= 0)
        return -EINVAL;
    if (max > EPOLL_BATCH)
        max = EPOLL_BATCH;
    int n = wait_kernel(b, timeout_ns, max);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;

    int out = 0;
    for (int i = 0; i < n; i++) {
        void *data = b->buf[i].data.ptr;
        if (data == wake_cookie(b)) {
            wake_drain(b);
            continue;
        }
        events[out].data = data;
        events[out].events = async_events(b->buf[i].events);
        out++;
    }
    return out;
}

/*
 * Async-signal-safe: an atomic_flag operation (always lock-free) and at
 * most one write(2).  Only the first wake after a drain writes; the rest
 * see the flag already set and return at once.
 */
void async__backend_wake(async__backend *b)
{
    if (atomic_flag_test_and_set_explicit(&b->wake_armed, memory_order_seq_cst))
        return;
    int saved = errno;
    uint64_t one = 1;
    while (write(b->wakefd, &one, sizeof one) < 0 && errno == EINTR)
        continue;
    errno = saved;
}
