/*
 * The poll-backend contract (src/backend/backend.h), tested directly on whichever
 * backend meson compiled in (epoll, or kqueue natively or through
 * libkqueue).  Every test gets a fresh backend; the setup and teardown count
 * the process's open fds (where /proc exists) so a leak fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <dirent.h>
#define HAVE_PROC_SELF_FD 1
#endif

#include "backend/backend.h"

#define NS_PER_MS 1000000

typedef struct fixture {
    async__backend *b;
    int fds_before; /* open fds before async__backend_new, or -1 */
} fixture;

/* Number of open fds, or -1 where it cannot be counted (no /proc). */
static int count_fds(void)
{
#ifdef HAVE_PROC_SELF_FD
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
#else
    return -1;
#endif
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->fds_before = count_fds();
    if (async__backend_new(&f->b) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    async__backend_free(f->b);
    int after = count_fds();
    int before = f->fds_before;
    free(f);
    /* A leak (from the backend or the test itself) fails the test. */
    if (before >= 0 && after != before) {
        fprintf(stderr, "fd leak: %d open before, %d after\n", before, after);
        return -1;
    }
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Polls once and ORs together everything reported for `cookie` (kqueue
 * reports read and write readiness as separate entries).  Fails on an error
 * and on a report for a cookie the test never registered.  *total, when
 * given, receives the number of entries.
 */
static unsigned poll_for(async__backend *b, int64_t timeout_ns, void *cookie,
                         void *other, int *total)
{
    async__event ev[16];
    int n = async__backend_poll(b, timeout_ns, ev, 16);
    assert_true(n >= 0);
    unsigned mask = 0;
    for (int i = 0; i < n; i++) {
        assert_true(ev[i].data == cookie || (other && ev[i].data == other));
        assert_int_not_equal(ev[i].events, 0);
        if (ev[i].data == cookie)
            mask |= ev[i].events;
    }
    if (total)
        *total = n;
    return mask;
}

static void test_name(void **state)
{
    (void)state;
    const char *name = async__backend_name();
    assert_true(strcmp(name, "epoll") == 0 || strcmp(name, "kqueue") == 0);
}

static void test_pipe_readable_only_after_write(void **state)
{
    fixture *f = *state;
    int p[2];
    int cookie;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(async__backend_watch(f->b, p[0], 0, ASYNC__EV_READ, &cookie), 0);

    int n;
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, NULL), ASYNC__EV_READ);
    /* Level-triggered: reported again until the data is read. */
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, NULL), ASYNC__EV_READ);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, &n), 0);
    assert_int_equal(n, 0);

    assert_int_equal(async__backend_watch(f->b, p[0], ASYNC__EV_READ, 0, NULL), 0);
    close(p[0]);
    close(p[1]);
}

static void test_socketpair_writable(void **state)
{
    fixture *f = *state;
    int s[2];
    int cookie;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    assert_int_equal(async__backend_watch(f->b, s[0], 0, ASYNC__EV_WRITE, &cookie), 0);
    assert_int_equal(poll_for(f->b, -1, &cookie, NULL, NULL), ASYNC__EV_WRITE);
    assert_int_equal(async__backend_watch(f->b, s[0], ASYNC__EV_WRITE, 0, NULL), 0);
    close(s[0]);
    close(s[1]);
}

static void test_interest_change_and_removal(void **state)
{
    fixture *f = *state;
    int s[2];
    int cookie;
    const unsigned both = ASYNC__EV_READ | ASYNC__EV_WRITE;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    assert_int_equal(write(s[1], "x", 1), 1); /* s[0] is readable and writable */

    assert_int_equal(async__backend_watch(f->b, s[0], 0, both, &cookie), 0);
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, NULL), both);

    assert_int_equal(async__backend_watch(f->b, s[0], both, ASYNC__EV_WRITE, &cookie), 0);
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, NULL), ASYNC__EV_WRITE);

    assert_int_equal(async__backend_watch(f->b, s[0], ASYNC__EV_WRITE, ASYNC__EV_READ, &cookie), 0);
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, NULL), ASYNC__EV_READ);

    int n;
    assert_int_equal(async__backend_watch(f->b, s[0], ASYNC__EV_READ, 0, NULL), 0);
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, &n), 0);
    assert_int_equal(n, 0);

    /* Removing interest that is already gone, or never set, is harmless. */
    assert_int_equal(async__backend_watch(f->b, s[0], 0, 0, NULL), 0);
    assert_int_equal(async__backend_watch(f->b, s[0], ASYNC__EV_READ, 0, NULL), 0);

    /* And it can be added back. */
    assert_int_equal(async__backend_watch(f->b, s[0], 0, ASYNC__EV_READ, &cookie), 0);
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, NULL), ASYNC__EV_READ);
    assert_int_equal(async__backend_watch(f->b, s[0], ASYNC__EV_READ, 0, NULL), 0);
    close(s[0]);
    close(s[1]);
}

static void test_cookie_round_trip(void **state)
{
    fixture *f = *state;
    int p[2], q[2];
    int a, b, c;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(q), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(write(q[1], "x", 1), 1);
    assert_int_equal(async__backend_watch(f->b, p[0], 0, ASYNC__EV_READ, &a), 0);
    assert_int_equal(async__backend_watch(f->b, q[0], 0, ASYNC__EV_READ, &b), 0);

    async__event ev[8];
    int n = async__backend_poll(f->b, 0, ev, 8);
    assert_int_equal(n, 2);
    assert_true((ev[0].data == &a && ev[1].data == &b)
                || (ev[0].data == &b && ev[1].data == &a));

    /* Same events, new cookie: the new one is reported. */
    assert_int_equal(async__backend_watch(f->b, p[0], ASYNC__EV_READ, ASYNC__EV_READ, &c), 0);
    assert_int_equal(poll_for(f->b, 0, &c, &b, NULL), ASYNC__EV_READ);

    /* NULL is an ordinary cookie, not confused with the wakeup. */
    assert_int_equal(async__backend_watch(f->b, q[0], ASYNC__EV_READ, ASYNC__EV_READ, NULL), 0);
    n = async__backend_poll(f->b, 0, ev, 8);
    assert_int_equal(n, 2);
    assert_true(ev[0].data == NULL || ev[1].data == NULL);

    assert_int_equal(async__backend_watch(f->b, p[0], ASYNC__EV_READ, 0, NULL), 0);
    assert_int_equal(async__backend_watch(f->b, q[0], ASYNC__EV_READ, 0, NULL), 0);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

/* Both polls together must return both fds; a short buffer returns fewer. */
static void test_max_limits_events(void **state)
{
    fixture *f = *state;
    int p[2], q[2];
    int a, b;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(q), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(write(q[1], "x", 1), 1);
    assert_int_equal(async__backend_watch(f->b, p[0], 0, ASYNC__EV_READ, &a), 0);
    assert_int_equal(async__backend_watch(f->b, q[0], 0, ASYNC__EV_READ, &b), 0);

    async__event ev[1];
    assert_int_equal(async__backend_poll(f->b, 0, ev, 1), 1);
    assert_true(ev[0].data == &a || ev[0].data == &b);
    assert_int_equal(async__backend_poll(f->b, 0, ev, 0), -EINVAL);

    assert_int_equal(async__backend_watch(f->b, p[0], ASYNC__EV_READ, 0, NULL), 0);
    assert_int_equal(async__backend_watch(f->b, q[0], ASYNC__EV_READ, 0, NULL), 0);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

/* A closed write end makes the read end readable (EOF); a closed read end
 * makes the write end writable (the write fails with EPIPE). */
static void test_hangup_wakes_waiters(void **state)
{
    fixture *f = *state;
    int p[2], q[2];
    int r, w;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(q), 0);
    /* Fill q so its write end is not writable before the hang-up. */
    assert_int_equal(fcntl(q[1], F_SETFL, O_NONBLOCK), 0);
    char buf[4096] = { 0 };
    while (write(q[1], buf, sizeof buf) > 0)
        continue;

    assert_int_equal(async__backend_watch(f->b, p[0], 0, ASYNC__EV_READ, &r), 0);
    assert_int_equal(async__backend_watch(f->b, q[1], 0, ASYNC__EV_WRITE, &w), 0);
    int n;
    assert_int_equal(poll_for(f->b, 0, &r, &w, &n), 0);
    assert_int_equal(n, 0);

    close(p[1]);
    assert_true(poll_for(f->b, 0, &r, &w, NULL) & ASYNC__EV_READ);
    close(q[0]);
    assert_true(poll_for(f->b, 0, &w, &r, NULL) & ASYNC__EV_WRITE);

    assert_int_equal(async__backend_watch(f->b, p[0], ASYNC__EV_READ, 0, NULL), 0);
    assert_int_equal(async__backend_watch(f->b, q[1], ASYNC__EV_WRITE, 0, NULL), 0);
    close(p[0]);
    close(q[1]);
}

static void *wake_later(void *arg)
{
    struct timespec ts = { 0, 20 * NS_PER_MS };
    nanosleep(&ts, NULL);
    async__backend_wake(arg);
    return NULL;
}

static void test_wake_from_thread_ends_blocking_poll(void **state)
{
    fixture *f = *state;
    for (int round = 0; round < 3; round++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, wake_later, f->b), 0);
        async__event ev[4];
        /* Blocks forever unless the wake works (the test timeout fails it).
         * EINTR-style early returns are fine; the wake itself is never an
         * event. */
        int n = async__backend_poll(f->b, -1, ev, 4);
        assert_int_equal(n, 0);
        assert_int_equal(pthread_join(t, NULL), 0);
    }
}

static void test_wake_before_poll_is_kept(void **state)
{
    fixture *f = *state;
    async__event ev[4];
    async__backend_wake(f->b);
    assert_int_equal(async__backend_poll(f->b, -1, ev, 4), 0);
}

static void test_wakes_coalesce(void **state)
{
    fixture *f = *state;
    async__event ev[4];
    for (int i = 0; i < 1000; i++)
        async__backend_wake(f->b);
    assert_int_equal(async__backend_poll(f->b, -1, ev, 4), 0);

    /* All of them were consumed by that one poll: the next one waits out
     * its whole timeout. */
    int64_t start = now_ns();
    assert_int_equal(async__backend_poll(f->b, 5 * NS_PER_MS, ev, 4), 0);
    assert_true(now_ns() - start >= 5 * NS_PER_MS);

    /* And waking works again afterwards. */
    async__backend_wake(f->b);
    async__backend_wake(f->b);
    assert_int_equal(async__backend_poll(f->b, -1, ev, 4), 0);
}

static async__backend *signal_backend;

static void on_sigusr1(int sig)
{
    (void)sig;
    async__backend_wake(signal_backend);
}

static void test_wake_from_signal_handler(void **state)
{
    fixture *f = *state;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    signal_backend = f->b;

    async__event ev[4];
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(async__backend_poll(f->b, -1, ev, 4), 0);

    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    signal_backend = NULL;
}

/* Lower bounds only: the timeout is rounded up, never down. */
static void test_timeout_never_early(void **state)
{
    fixture *f = *state;
    async__event ev[4];
    const int64_t timeout = 1500000; /* 1.5 ms */
    for (int i = 0; i < 20; i++) {
        int64_t start = now_ns();
        assert_int_equal(async__backend_poll(f->b, timeout, ev, 4), 0);
        assert_true(now_ns() - start >= timeout);
    }
    /* Sub-millisecond and odd values too (epoll_wait would round them). */
    static const int64_t odd[] = { 1, 999, 250000, 1000001 };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        int64_t start = now_ns();
        assert_int_equal(async__backend_poll(f->b, odd[i], ev, 4), 0);
        assert_true(now_ns() - start >= odd[i]);
    }
}

static void test_zero_timeout_returns(void **state)
{
    fixture *f = *state;
    async__event ev[4];
    assert_int_equal(async__backend_poll(f->b, 0, ev, 4), 0);
}

static void test_bad_fd(void **state)
{
    fixture *f = *state;
    int cookie;
    assert_int_equal(async__backend_watch(f->b, -1, 0, ASYNC__EV_READ, &cookie), -EBADF);

    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    assert_int_equal(async__backend_watch(f->b, p[0], 0, ASYNC__EV_READ, &cookie), -EBADF);
    assert_int_equal(async__backend_watch(f->b, p[1], 0, ASYNC__EV_WRITE, &cookie), -EBADF);
}

/*
 * Neither backend polls regular files or directories: both say EPERM
 * (epoll by nature; kqueue because its vnode filter stays silent at the end
 * of a file, where a read would not block) and register nothing.
 */
static void test_regular_file(void **state)
{
    fixture *f = *state;
    char path[] = "/tmp/async-test-backend-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "data", 4), 4);

    int cookie;
    assert_int_equal(async__backend_watch(f->b, fd, 0, ASYNC__EV_READ, &cookie), -EPERM);
    assert_int_equal(async__backend_watch(f->b, fd, 0, ASYNC__EV_WRITE, &cookie), -EPERM);
    close(fd);
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dir >= 0);
    assert_int_equal(async__backend_watch(f->b, dir, 0, ASYNC__EV_READ, &cookie), -EPERM);
    close(dir);
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, NULL), 0);
}

/*
 * An fd closed with a plain close() while registered, and its number
 * reused: a fresh watch (old_events 0) of the new fd must work.  The
 * kernel drops a closed fd from epoll and a native kqueue; libkqueue keeps
 * its knotes, which the backend clears before adding.
 */
static void test_reused_number_after_plain_close(void **state)
{
    fixture *f = *state;
    int a[2], c[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    int old_cookie, cookie;
    assert_int_equal(async__backend_watch(f->b, a[0], 0, ASYNC__EV_READ | ASYNC__EV_WRITE, &old_cookie), 0);
    int num = a[0];
    close(a[0]);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, c), 0);
    assert_int_equal(c[0], num); /* the lowest free number */
    assert_int_equal(async__backend_watch(f->b, c[0], 0, ASYNC__EV_READ, &cookie), 0);
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, NULL), 0);
    assert_int_equal(write(c[1], "x", 1), 1);
    assert_int_equal(poll_for(f->b, 1000 * NS_PER_MS, &cookie, NULL, NULL), ASYNC__EV_READ);
    assert_int_equal(async__backend_watch(f->b, c[0], ASYNC__EV_READ, ASYNC__EV_READ | ASYNC__EV_WRITE, &cookie), 0);
    assert_int_equal(poll_for(f->b, 0, &cookie, NULL, NULL), ASYNC__EV_READ | ASYNC__EV_WRITE);
    assert_int_equal(async__backend_watch(f->b, c[0], ASYNC__EV_READ | ASYNC__EV_WRITE, 0, NULL), 0);
    close(c[0]);
    close(c[1]);
    close(a[1]);
}

/* Backends created and freed repeatedly leave nothing open. */
static void test_new_free_no_leak(void **state)
{
    (void)state;
    int before = count_fds();
    for (int i = 0; i < 50; i++) {
        async__backend *b;
        assert_int_equal(async__backend_new(&b), 0);
        async__backend_wake(b);
        async__backend_free(b);
    }
    if (before >= 0)
        assert_int_equal(count_fds(), before);
}

int main(void)
{
    /*
     * libkqueue opens two process-wide fds (for its monitoring thread) with
     * the first kqueue and keeps them; create and free one backend first so
     * the per-test fd counts see only what each test opens.  Harmless for
     * the other backends.
     */
    async__backend *warm;
    if (async__backend_new(&warm) != 0)
        return 1;
    async__backend_free(warm);

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_name),
        T(test_pipe_readable_only_after_write),
        T(test_socketpair_writable),
        T(test_interest_change_and_removal),
        T(test_cookie_round_trip),
        T(test_max_limits_events),
        T(test_hangup_wakes_waiters),
        T(test_wake_from_thread_ends_blocking_poll),
        T(test_wake_before_poll_is_kept),
        T(test_wakes_coalesce),
        T(test_wake_from_signal_handler),
        T(test_timeout_never_early),
        T(test_zero_timeout_returns),
        T(test_bad_fd),
        T(test_regular_file),
        T(test_reused_number_after_plain_close),
        T(test_new_free_no_leak),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
