/*
 * The loop under faults: a poller that keeps failing, an interest removal
 * that fails, a worker thread that cannot allocate, and async_run's final
 * drain waiting for a shielded cleanup.
 *
 * Failures are injected at link time: this executable is linked with
 * --wrap for malloc, calloc, realloc and epoll_ctl, so the library's own
 * calls (it is linked statically) go through the __wrap_ functions below,
 * which fail on demand and otherwise call the real ones.  Sanitizer and
 * Valgrind allocators stay underneath, untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"
#include "services/executor.h"

/* ---- fault injection -------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
int __real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);

/* Allocations of this thread fail until this CLOCK_MONOTONIC time (ns). */
static _Thread_local uint64_t alloc_fail_until;
/* Allocations refused so far, all threads. */
static atomic_int allocs_refused;
/* The next this-many EPOLL_CTL_DEL calls fail with ENOMEM, doing nothing. */
static atomic_int del_failures;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool alloc_fails(void)
{
    if (alloc_fail_until == 0 || now_ns() >= alloc_fail_until)
        return false;
    atomic_fetch_add(&allocs_refused, 1);
    return true;
}

void *__wrap_malloc(size_t n)
{
    return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_fails() ? NULL : __real_realloc(p, n);
}

int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (op == EPOLL_CTL_DEL && atomic_load(&del_failures) > 0) {
        atomic_fetch_sub(&del_failures, 1);
        errno = ENOMEM;
        return -1;
    }
    return __real_epoll_ctl(epfd, op, fd, ev);
}

/* ---- shared state ---------------------------------------------------------------- */

static th_leaks leaks;
static int handler_calls;     /* exception handler invocations */
static int handler_error;     /* the last error it saw */

static void record_handler(async_loop *loop, const async_exception_context *ctx,
                           void *arg)
{
    (void)loop;
    (void)arg;
    handler_calls++;
    /* A loop a failed poll ended destroys its pending tasks at close, each
     * reported as such (ECANCELED); the tests look at the poll's error. */
    if (ctx->error != ASYNC_ECANCELED)
        handler_error = ctx->error;
}

static int setup(void **state)
{
    (void)state;
    handler_calls = 0;
    handler_error = 0;
    atomic_store(&allocs_refused, 0);
    atomic_store(&del_failures, 0);
    th_leaks_begin(&leaks);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    th_leaks_end(&leaks);
    return 0;
}

/*
 * A watchdog: if the test has not finished within `secs`, it posts a
 * callback that unblocks the loop (advancing a virtual clock, stopping the
 * loop) and records that it had to, so a regression fails an assert
 * instead of hanging the suite.
 */
typedef struct watchdog {
    pthread_t thread;        /* the timer thread */
    pthread_mutex_t lock;    /* guards done */
    pthread_cond_t cond;     /* signalled when the test is done */
    bool done;               /* the test finished on its own */
    async_loop *loop;        /* the loop to unblock */
    int secs;                /* how long to give the test */
    atomic_bool fired;       /* the watchdog had to step in */
} watchdog;

static int watchdog_rescue(void *arg)
{
    watchdog *wd = arg;
    if (wd->loop->virtual_clock)
        async__loop_advance_clock(wd->loop, 3600 * (uint64_t)ASYNC_SEC);
    async_loop_stop(wd->loop);
    return 0;
}

static void *watchdog_main(void *arg)
{
    watchdog *wd = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wd->secs;
    pthread_mutex_lock(&wd->lock);
    while (!wd->done &&
           pthread_cond_timedwait(&wd->cond, &wd->lock, &until) != ETIMEDOUT)
        continue;
    if (!wd->done) {
        atomic_store(&wd->fired, true);
        (void)async_loop_call_soon_threadsafe(wd->loop, watchdog_rescue, wd);
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

/* Safe inside a coroutine (no cmocka assert); false if it did not start. */
static bool watchdog_start(watchdog *wd, async_loop *loop, int secs)
{
    memset(wd, 0, sizeof(*wd));
    pthread_mutex_init(&wd->lock, NULL);
    pthread_cond_init(&wd->cond, NULL);
    wd->loop = loop;
    wd->secs = secs;
    return pthread_create(&wd->thread, NULL, watchdog_main, wd) == 0;
}

/* Returns whether the watchdog had to step in. */
static bool watchdog_stop(watchdog *wd)
{
    pthread_mutex_lock(&wd->lock);
    wd->done = true;
    pthread_cond_signal(&wd->cond);
    pthread_mutex_unlock(&wd->lock);
    pthread_join(wd->thread, NULL);
    pthread_cond_destroy(&wd->cond);
    pthread_mutex_destroy(&wd->lock);
    return atomic_load(&wd->fired);
}

/* ---- async_run's drain sleeps in the poll ----------------------------------------- */

static int cleanup_rc = 1;      /* the shielded cleanup sleep's outcome */
static bool cleanup_done;       /* it got past the sleep */

/* Sleeps until cancelled, then cleans up under a shield: a 10 s sleep. */
static int slow_cleanup(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = async_sleep(3600 * ASYNC_SEC);
    async_shield_enter();
    cleanup_rc = async_sleep(10 * ASYNC_SEC);
    cleanup_done = true;
    async_shield_leave();
    return rc;
}

/*
 * With a virtual clock the loop jumps time to the next timer whenever it
 * would block; a drain that never blocks (zero timeout each turn) never
 * moves it, and the cleanup's sleep would never end.
 */
static void test_drain_sleeps_in_poll(void **state)
{
    (void)state;
    async_loop *loop;
    assert_int_equal(async_loop_new(&loop), 0);
    async__loop_use_virtual_clock(loop, 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(loop, &t, slow_cleanup, NULL, NULL), 0);
    async_loop_stop(loop);
    assert_int_equal(async_loop_run_forever(loop), 0); /* t starts, sleeps */
    cleanup_rc = 1;
    cleanup_done = false;
    watchdog wd;
    assert_true(watchdog_start(&wd, loop, 20));
    async__loop_drain_tasks(loop);
    bool rescued = watchdog_stop(&wd);
    assert_false(rescued);
    assert_true(cleanup_done);
    assert_int_equal(cleanup_rc, 0);
    assert_true(async_loop_time(loop) >= 10 * (uint64_t)ASYNC_SEC);
    assert_true(async_future_cancelled(async_task_future(t)));
    async_task_unref(t);
    assert_int_equal(async_loop_free(loop), 0);
}

/* ---- a poller that keeps failing ------------------------------------------------- */

/* Replaces the process's (only) epoll instance by /dev/null, so every
 * later epoll_wait fails with EINVAL: a persistent poll failure.  Returns
 * false when there is no epoll fd to break (another backend). */
static bool break_epoll(void)
{
    int victim = -1;
    for (int fd = 0; fd < 1024 && victim < 0; fd++) {
        char path[64], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, "anon_inode:[eventpoll]") == 0)
            victim = fd;
    }
    if (victim < 0)
        return false;
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0)
        return false;
    dup2(null, victim);
    close(null);
    return true;
}

static int pipe_fds[2] = {-1, -1};
static int reader_calls;
static watchdog run_wd;          /* started inside async_run's main */
static bool run_wd_started;

static int never_called(void *arg)
{
    (void)arg;
    return 0;
}

/* Watches a pipe (so the loop polls), breaks the poller, sleeps. */
static int sleep_on_broken_poller(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_loop *loop = async_get_running_loop();
    async_loop_set_exception_handler(loop, record_handler, NULL);
    int rc = async_loop_add_reader(loop, pipe_fds[0], never_called, NULL);
    if (rc)
        return rc;
    if (!break_epoll())
        return ASYNC_EFAILED;
    run_wd_started = watchdog_start(&run_wd, loop, 20);
    return async_sleep(3600 * ASYNC_SEC);
}

static void test_poll_failure_ends_async_run(void **state)
{
    (void)state;
    if (strcmp(async__backend_name(), "epoll") != 0)
        skip();
    assert_int_equal(pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
    run_wd_started = false;
    int rc = async_run(sleep_on_broken_poller, NULL, NULL);
    assert_true(run_wd_started);
    bool rescued = watchdog_stop(&run_wd);
    assert_false(rescued);
    assert_int_equal(rc, -EINVAL);
    assert_true(handler_calls >= 1);
    assert_int_equal(handler_error, -EINVAL);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* The run call returns the error; a loop whose poller failed can still be
 * closed cleanly, and run_forever does not spin (the watchdog would stop
 * it, and say so). */
static void test_poll_failure_ends_run_forever(void **state)
{
    (void)state;
    if (strcmp(async__backend_name(), "epoll") != 0)
        skip();
    assert_int_equal(pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
    async_loop *loop;
    assert_int_equal(async_loop_new(&loop), 0);
    async_loop_set_exception_handler(loop, record_handler, NULL);
    assert_int_equal(async_loop_add_reader(loop, pipe_fds[0], never_called,
                                           NULL), 0);
    assert_true(break_epoll());
    watchdog wd;
    assert_true(watchdog_start(&wd, loop, 20));
    int rc = async_loop_run_forever(loop);
    bool rescued = watchdog_stop(&wd);
    assert_false(rescued);
    assert_int_equal(rc, -EINVAL);
    assert_int_equal(handler_calls, 1);
    assert_int_equal(handler_error, -EINVAL);
    assert_int_equal(async_loop_free(loop), 0);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* ---- failed interest removal ------------------------------------------------------ */

static int count_reader(void *arg)
{
    (void)arg;
    reader_calls++;
    async_loop_stop(async_get_running_loop());
    return 0;
}

static int stop_loop(void *arg)
{
    async_loop_stop(arg);
    return 0;
}

/* Watches fd for reading, makes it readable and runs the loop until the
 * reader runs (or 10 s pass); returns how often it ran. */
static int reader_fires(async_loop *loop, int rfd, int wfd)
{
    reader_calls = 0;
    assert_int_equal(async_loop_add_reader(loop, rfd, count_reader, NULL), 0);
    assert_int_equal(write(wfd, "x", 1), 1);
    async_handle *h;
    assert_int_equal(async_loop_call_later(loop, 10 * ASYNC_SEC, stop_loop,
                                           loop, &h), 0);
    assert_int_equal(async_loop_run_forever(loop), 0);
    async_handle_cancel(h);
    async_handle_unref(h);
    assert_int_equal(async_loop_remove_reader(loop, rfd), 0);
    return reader_calls;
}

/* The fd is closed before remove_reader: EPOLL_CTL_DEL fails with EBADF.
 * The next pipe reuses the number, and its watch must reach the kernel. */
static void test_remove_after_close_then_reuse(void **state)
{
    (void)state;
    async_loop *loop;
    assert_int_equal(async_loop_new(&loop), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(async_loop_add_reader(loop, p[0], never_called, NULL), 0);
    int old = p[0];
    close(p[0]);
    close(p[1]);
    assert_int_equal(async_loop_remove_reader(loop, old), 0);
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(p[0], old); /* the lowest free number, as before */
    assert_int_equal(reader_fires(loop, p[0], p[1]), 1);
    assert_int_equal(async_loop_free(loop), 0);
    close(p[0]);
    close(p[1]);
}

/* EPOLL_CTL_DEL fails and the kernel keeps the registration: a later
 * add_reader must still succeed (ADD finds EEXIST, MOD follows). */
static void test_remove_fails_then_add(void **state)
{
    (void)state;
    if (strcmp(async__backend_name(), "epoll") != 0)
        skip();
    async_loop *loop;
    assert_int_equal(async_loop_new(&loop), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(async_loop_add_reader(loop, p[0], never_called, NULL), 0);
    atomic_store(&del_failures, 1000); /* every removal attempt fails */
    assert_int_equal(async_loop_remove_reader(loop, p[0]), 0);
    assert_true(atomic_load(&del_failures) < 1000);
    atomic_store(&del_failures, 0);
    assert_int_equal(reader_fires(loop, p[0], p[1]), 1);
    assert_int_equal(async_loop_free(loop), 0);
    close(p[0]);
    close(p[1]);
}

/* ---- a worker out of memory ------------------------------------------------------- */

/* Runs on a pool thread: from now on, for 2 s, that thread cannot allocate.
 * Before the fix the worker retried posting its outcome every millisecond
 * (each a refused allocation) until memory came back. */
static int job_then_oom(void *arg, void **result)
{
    (void)arg;
    alloc_fail_until = now_ns() + 2 * (uint64_t)ASYNC_SEC;
    *result = (void *)(intptr_t)42;
    return 0;
}

static intptr_t job_result;
static int job_rc = 1;

static int await_oom_job(void *arg, void **result)
{
    (void)arg;
    (void)result;
    void *r = NULL;
    job_rc = async_to_thread(job_then_oom, NULL, &r);
    job_result = (intptr_t)r;
    return 0;
}

static void test_executor_delivers_without_memory(void **state)
{
    (void)state;
    job_rc = 1;
    job_result = 0;
    assert_int_equal(async_run(await_oom_job, NULL, NULL), 0);
    assert_int_equal(job_rc, 0);
    assert_int_equal(job_result, 42);
    assert_int_equal(atomic_load(&allocs_refused), 0);
}

/* The job is still running when async_run closes the loop: close joins the
 * worker, which must be able to finish without memory. */
static atomic_bool slow_job_started;

static int job_slow_then_oom(void *arg, void **result)
{
    (void)arg;
    (void)result;
    atomic_store(&slow_job_started, true);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    alloc_fail_until = now_ns() + 2 * (uint64_t)ASYNC_SEC;
    return 0;
}

static int leave_job_running(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_future *f;
    int rc = async_run_in_executor(NULL, job_slow_then_oom, NULL, &f);
    if (rc)
        return rc;
    async_future_unref(f);
    /* Running, not queued: close cancels queued jobs without running them. */
    while (!atomic_load(&slow_job_started) && rc == 0)
        rc = async_sleep(ASYNC_MSEC);
    return rc;
}

static void test_executor_close_joins_worker_without_memory(void **state)
{
    (void)state;
    atomic_store(&slow_job_started, false);
    assert_int_equal(async_run(leave_job_running, NULL, NULL), 0);
    assert_true(atomic_load(&slow_job_started));
    assert_int_equal(atomic_load(&allocs_refused), 0);
    assert_int_equal(async__executor_threads_unjoined(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_drain_sleeps_in_poll, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_poll_failure_ends_async_run,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll_failure_ends_run_forever,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_after_close_then_reuse,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_fails_then_add, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_executor_delivers_without_memory,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_executor_close_joins_worker_without_memory, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
