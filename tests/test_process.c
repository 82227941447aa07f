/*
 * Subprocesses: output capture, stdin feeding, exit status and signals,
 * time-outs and cancellation without zombies, spawn errors without leaks,
 * environment and working directory, close-on-exec, and both exit watchers
 * (pidfd and the helper thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"
#include "process/process.h"

#define BIG (4u << 20) /* bytes through cat */
#define NCONC 20       /* concurrent children */

/* What a test's coroutines record, asserted after the loop returns. */
typedef struct rec {
    async_loop *loop;           /* loop under test */
    th_leaks leaks;             /* counters before the test */
    int rc;                     /* main return code */
    int rc2;                    /* a second code (another task, a re-wait) */
    int status;                 /* an exit status */
    pid_t pid;                  /* the child, for zombie checks */
    async_process_result res;   /* captured output */
    async_process *proc;        /* a handle kept across tasks */
    bool done_after;            /* async_process_done() at some point */
    uint64_t elapsed;           /* ns a wait took */
    char *input;                /* BIG bytes for cat */
    int rcs[NCONC];             /* per-child codes */
    async_process_result many[NCONC]; /* per-child outputs */
} rec;

static rec R;

static int setup(void **state)
{
    (void)state;
    memset(&R, 0, sizeof(R));
    R.pid = -1;
    th_leaks_begin(&R.leaks);
    assert_int_equal(async_loop_new(&R.loop), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_loop_free(R.loop), 0);
    async_process_result_free(&R.res);
    for (int i = 0; i < NCONC; i++)
        async_process_result_free(&R.many[i]);
    free(R.input);
    async__process_force_thread_watch(false);
    th_leaks_end(&R.leaks);
    return 0;
}

/* Runs fn as a task until it finishes; returns its code. */
static int run_task(async_fn fn, void *arg)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(R.loop, &t, fn, arg, NULL), 0);
    int rc = async_loop_run_until_complete(R.loop, t, NULL);
    async_task_unref(t);
    return rc;
}

/* The child is gone: not even a zombie of it is left to reap. */
static void assert_no_child(pid_t pid)
{
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* No child of this process at all (no zombie of a run we cannot see). */
static void assert_no_children(void)
{
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* ---- output capture ---------------------------------------------------------- */

static int co_echo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/echo", "hello", "world", NULL};
    async_process_opts o = {.argv = argv};
    R.rc = async_process_run(&o, NULL, 0, -1, &R.res);
    return 0;
}

static void test_echo_capture(void **state)
{
    (void)state;
    run_task(co_echo, NULL);
    assert_int_equal(R.rc, 0);
    assert_int_equal(R.res.status, 0);
    assert_string_equal(R.res.out, "hello world\n");
    assert_int_equal(R.res.out_len, 12);
    assert_non_null(R.res.err);
    assert_int_equal(R.res.err_len, 0);
    assert_no_children();
}

/* Program found through PATH, like execvp. */
static int co_path(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"echo", "via PATH", NULL};
    async_process_opts o = {.argv = argv};
    R.rc = async_process_run(&o, NULL, 0, -1, &R.res);
    return 0;
}

static void test_path_search(void **state)
{
    (void)state;
    run_task(co_path, NULL);
    assert_int_equal(R.rc, 0);
    assert_string_equal(R.res.out, "via PATH\n");
}

static int co_stderr(void *arg, void **result)
{
    (void)result;
    const char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2", NULL};
    async_process_opts o = {.argv = argv};
    o.stderr_mode = (async_process_stdio)(intptr_t)arg;
    R.rc = async_process_run(&o, NULL, 0, -1, &R.res);
    return 0;
}

static void test_stderr_capture_and_merge(void **state)
{
    (void)state;
    run_task(co_stderr, (void *)(intptr_t)ASYNC_PROCESS_PIPE);
    assert_int_equal(R.rc, 0);
    assert_string_equal(R.res.out, "out\n");
    assert_string_equal(R.res.err, "err\n");
    async_process_result_free(&R.res);
    assert_null(R.res.out);

    run_task(co_stderr, (void *)(intptr_t)ASYNC_PROCESS_STDOUT);
    assert_int_equal(R.rc, 0);
    assert_string_equal(R.res.out, "out\nerr\n");
    assert_null(R.res.err);
    async_process_result_free(&R.res);

    run_task(co_stderr, (void *)(intptr_t)ASYNC_PROCESS_DEVNULL);
    assert_int_equal(R.rc, 0);
    assert_string_equal(R.res.out, "out\n");
    assert_null(R.res.err);
}

/* ---- stdin ------------------------------------------------------------------------ */

static void fill_input(void)
{
    R.input = malloc(BIG);
    assert_non_null(R.input);
    uint32_t x = 12345;
    for (size_t i = 0; i < BIG; i++) {
        x = x * 1103515245u + 12345u;
        R.input[i] = (char)(x >> 16);
    }
}

static int co_cat(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/cat", NULL};
    async_process_opts o = {.argv = argv};
    R.rc = async_process_run(&o, R.input, BIG, -1, &R.res);
    return 0;
}

static void check_cat(void)
{
    assert_int_equal(R.rc, 0);
    assert_int_equal(R.res.status, 0);
    assert_int_equal(R.res.out_len, BIG);
    assert_memory_equal(R.res.out, R.input, BIG);
    assert_int_equal(R.res.err_len, 0);
}

static void test_cat_big(void **state)
{
    (void)state;
    fill_input();
    run_task(co_cat, NULL);
    check_cat();
}

/* A child that reads 10 bytes and exits: the rest of the input is dropped
 * without SIGPIPE killing us. */
static int co_head(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/usr/bin/head", "-c", "10", NULL};
    async_process_opts o = {.argv = argv};
    R.rc = async_process_run(&o, R.input, BIG, -1, &R.res);
    return 0;
}

static void test_child_stops_reading(void **state)
{
    (void)state;
    fill_input();
    run_task(co_head, NULL);
    assert_int_equal(R.rc, 0);
    assert_int_equal(R.res.status, 0);
    assert_int_equal(R.res.out_len, 10);
    assert_memory_equal(R.res.out, R.input, 10);
}

/* Megabytes on both stdout and stderr: neither pipe may block the other. */
static int co_both_streams(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sh", "-c",
        "head -c 3000000 /dev/zero >&2; head -c 2000000 /dev/zero; "
        "head -c 1000000 /dev/zero >&2", NULL};
    async_process_opts o = {.argv = argv};
    R.rc = async_process_run(&o, NULL, 0, -1, &R.res);
    return 0;
}

static void test_both_streams_no_deadlock(void **state)
{
    (void)state;
    run_task(co_both_streams, NULL);
    assert_int_equal(R.rc, 0);
    assert_int_equal(R.res.out_len, 2000000);
    assert_int_equal(R.res.err_len, 4000000);
}

/* ---- exit status and signals -------------------------------------------------- */

static int co_exit3(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sh", "-c", "exit 3", NULL};
    async_process_opts o = {.argv = argv};
    async_process *p;
    R.rc = async_process_spawn(&o, &p);
    if (R.rc)
        return 0;
    R.pid = async_process_pid(p);
    R.rc2 = async_process_status(p, &R.status); /* not reaped yet */
    R.rc = async_process_wait(p, -1, &R.status);
    R.done_after = async_process_done(p);
    async_process_free(p);
    return 0;
}

static void test_exit_status(void **state)
{
    (void)state;
    run_task(co_exit3, NULL);
    assert_int_equal(R.rc, 0);
    assert_int_equal(R.rc2, ASYNC_EPENDING);
    assert_int_equal(R.status, 3);
    assert_true(R.done_after);
    assert_no_child(R.pid);
}

static int co_sigterm(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sleep", "10", NULL};
    async_process_opts o = {.argv = argv};
    async_process *p;
    R.rc = async_process_spawn(&o, &p);
    if (R.rc)
        return 0;
    R.pid = async_process_pid(p);
    R.rc = async_process_kill(p, SIGTERM);
    if (!R.rc)
        R.rc = async_process_wait(p, -1, NULL);
    int st = 0;
    R.rc2 = async_process_status(p, &st);
    R.status = st;
    /* After the reap, kill is a no-op: the pid may belong to someone else. */
    if (!R.rc && async_process_kill(p, SIGKILL) != 0)
        R.rc = -1;
    async_process_free(p);
    return 0;
}

static void test_death_by_signal(void **state)
{
    (void)state;
    run_task(co_sigterm, NULL);
    assert_int_equal(R.rc, 0);
    assert_int_equal(R.rc2, 0);
    assert_int_equal(R.status, -SIGTERM);
    assert_no_child(R.pid);
}

/* ---- time-outs and cancellation ------------------------------------------------ */

static int co_run_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sleep", "10", NULL};
    async_process_opts o = {.argv = argv};
    uint64_t t0 = async_loop_time(R.loop);
    R.rc = async_process_run(&o, NULL, 0, 100 * ASYNC_MSEC, &R.res);
    R.elapsed = async_loop_time(R.loop) - t0;
    return 0;
}

static void test_run_timeout_kills(void **state)
{
    (void)state;
    run_task(co_run_timeout, NULL);
    assert_int_equal(R.rc, ASYNC_ETIMEDOUT);
    assert_true(R.elapsed >= 100 * ASYNC_MSEC);
    assert_null(R.res.out);
    assert_no_children();
}

static int co_wait_timeout(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sleep", "10", NULL};
    async_process_opts o = {.argv = argv};
    async_process *p;
    R.rc = async_process_spawn(&o, &p);
    if (R.rc)
        return 0;
    R.pid = async_process_pid(p);
    uint64_t t0 = async_loop_time(R.loop);
    R.rc = async_process_wait(p, 50 * ASYNC_MSEC, NULL);
    R.elapsed = async_loop_time(R.loop) - t0;
    R.done_after = async_process_done(p);
    async_process_free(p); /* SIGKILL + reap */
    return 0;
}

static void test_wait_timeout_then_free(void **state)
{
    (void)state;
    run_task(co_wait_timeout, NULL);
    assert_int_equal(R.rc, ASYNC_ETIMEDOUT);
    assert_true(R.elapsed >= 50 * ASYNC_MSEC);
    assert_false(R.done_after);
    assert_no_child(R.pid);
}

static int co_waiter(void *arg, void **result)
{
    (void)result;
    int *rc = arg;
    *rc = async_process_wait(R.proc, -1, NULL);
    return 0;
}

/* A task waiting on a child is cancelled: wait says ECANCELED, the handle
 * still owns the child, and a later wait reaps it. */
static int co_cancel_waiter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sleep", "10", NULL};
    async_process_opts o = {.argv = argv};
    R.rc = async_process_spawn(&o, &R.proc);
    if (R.rc)
        return 0;
    R.pid = async_process_pid(R.proc);
    async_task *t;
    async_spawn(&t, co_waiter, &R.rc);
    async_sleep(20 * ASYNC_MSEC);
    async_task_cancel(t);
    (void)async_task_await(t, NULL);
    async_task_unref(t);
    R.done_after = async_process_done(R.proc);
    async_process_kill(R.proc, SIGTERM);
    R.rc2 = async_process_wait(R.proc, -1, &R.status);
    return 0;
}

static void test_cancel_waiter_then_rewait(void **state)
{
    (void)state;
    run_task(co_cancel_waiter, NULL);
    assert_int_equal(R.rc, ASYNC_ECANCELED);
    assert_false(R.done_after);
    assert_int_equal(R.rc2, 0);
    assert_int_equal(R.status, -SIGTERM);
    async_process_free(R.proc);
    assert_no_child(R.pid);
}

/* Cancelled waiter, then free without waiting again: no zombie either. */
static int co_cancel_then_free(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sleep", "10", NULL};
    async_process_opts o = {.argv = argv};
    R.rc = async_process_spawn(&o, &R.proc);
    if (R.rc)
        return 0;
    R.pid = async_process_pid(R.proc);
    async_task *t;
    async_spawn(&t, co_waiter, &R.rc);
    async_sleep(20 * ASYNC_MSEC);
    async_task_cancel(t);
    (void)async_task_await(t, NULL);
    async_task_unref(t);
    async_process_free(R.proc);
    R.proc = NULL;
    return 0;
}

static void test_cancel_waiter_then_free(void **state)
{
    (void)state;
    run_task(co_cancel_then_free, NULL);
    assert_int_equal(R.rc, ASYNC_ECANCELED);
    assert_no_child(R.pid);
}

/* Cancelling a task inside async_process_run kills and reaps the child. */
static int co_run_sleep(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sleep", "10", NULL};
    async_process_opts o = {.argv = argv};
    R.rc = async_process_run(&o, NULL, 0, -1, &R.res);
    return 0;
}

static int co_cancel_run(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *t;
    async_spawn(&t, co_run_sleep, NULL);
    async_sleep(20 * ASYNC_MSEC);
    async_task_cancel(t);
    (void)async_task_await(t, NULL);
    async_task_unref(t);
    return 0;
}

static void test_cancel_run(void **state)
{
    (void)state;
    run_task(co_cancel_run, NULL);
    assert_int_equal(R.rc, ASYNC_ECANCELED);
    assert_no_children();
}

/* Several tasks wait on one child; all get the same status. */
static int co_many_waiters(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sh", "-c", "sleep 0.05; exit 7", NULL};
    async_process_opts o = {.argv = argv};
    R.rc = async_process_spawn(&o, &R.proc);
    if (R.rc)
        return 0;
    R.pid = async_process_pid(R.proc);
    async_task *t[4];
    for (int i = 0; i < 4; i++)
        async_spawn(&t[i], co_waiter, &R.rcs[i]);
    R.rc = async_process_wait(R.proc, -1, &R.status);
    for (int i = 0; i < 4; i++) {
        (void)async_task_await(t[i], NULL);
        async_task_unref(t[i]);
    }
    async_process_free(R.proc);
    return 0;
}

static void test_many_waiters(void **state)
{
    (void)state;
    run_task(co_many_waiters, NULL);
    assert_int_equal(R.rc, 0);
    assert_int_equal(R.status, 7);
    for (int i = 0; i < 4; i++)
        assert_int_equal(R.rcs[i], 0);
    assert_no_child(R.pid);
}

/* ---- spawn errors ------------------------------------------------------------------ */

static int co_missing(void *arg, void **result)
{
    (void)result;
    const char *argv[] = {arg, NULL};
    async_process_opts o = {.argv = argv, .stdin_mode = ASYNC_PROCESS_PIPE,
                            .stdout_mode = ASYNC_PROCESS_PIPE,
                            .stderr_mode = ASYNC_PROCESS_DEVNULL};
    async_process *p = (async_process *)&R; /* must stay untouched */
    R.rc = async_process_spawn(&o, &p);
    R.done_after = p == (async_process *)&R;
    R.rc2 = async_process_run(&o, NULL, 0, -1, &R.res);
    return 0;
}

static void test_missing_executable(void **state)
{
    (void)state;
    const char *names[] = {"/nonexistent/program", "no-such-program-h6",
                           "/bin/no-such-program"};
    for (int i = 0; i < 3; i++) {
        run_task(co_missing, (void *)names[i]);
        assert_int_equal(R.rc, ASYNC_ENOENT);
        assert_int_equal(R.rc2, ASYNC_ENOENT);
        assert_true(R.done_after);
        assert_null(R.res.out);
        assert_no_children();
    }
    /* Not executable: the error of exec itself. */
    run_task(co_missing, (void *)"/etc/passwd");
    assert_int_equal(R.rc, -EACCES);
    assert_no_children();
}

static int co_bad_cwd(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/true", NULL};
    async_process_opts o = {.argv = argv, .cwd = "/nonexistent/dir"};
    async_process *p;
    R.rc = async_process_spawn(&o, &p);
    return 0;
}

static void test_missing_cwd(void **state)
{
    (void)state;
    run_task(co_bad_cwd, NULL);
    assert_int_equal(R.rc, ASYNC_ENOENT);
    assert_no_children();
}

/* ---- environment, directory, descriptors ---------------------------------------- */

static int co_env_cwd(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sh", "-c", "echo $FOO; pwd", NULL};
    const char *envp[] = {"FOO=bar baz", NULL};
    async_process_opts o = {.argv = argv, .envp = envp, .cwd = "/"};
    R.rc = async_process_run(&o, NULL, 0, -1, &R.res);
    return 0;
}

static void test_env_and_cwd(void **state)
{
    (void)state;
    run_task(co_env_cwd, NULL);
    assert_int_equal(R.rc, 0);
    assert_string_equal(R.res.out, "bar baz\n/\n");
}

/* The child sees only 0, 1 and 2 (and ls's own directory fd, 3), even
 * though this process holds a pipe opened without O_CLOEXEC. */
static int co_ls_fds(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/ls", "/proc/self/fd", NULL};
    async_process_opts o = {.argv = argv};
    R.rc = async_process_run(&o, NULL, 0, -1, &R.res);
    return 0;
}

static void test_child_sees_only_stdio(void **state)
{
    (void)state;
    int leak[2];
    assert_int_equal(pipe(leak), 0); /* deliberately inheritable */
    run_task(co_ls_fds, NULL);
    close(leak[0]);
    close(leak[1]);
    assert_int_equal(R.rc, 0);
    assert_string_equal(R.res.out, "0\n1\n2\n3\n");
}

/* The parent's pipe ends: non-blocking, close-on-exec, usable by hand. */
static int co_pipe_fds(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/cat", NULL};
    async_process_opts o = {.argv = argv, .stdin_mode = ASYNC_PROCESS_PIPE,
                            .stdout_mode = ASYNC_PROCESS_PIPE};
    async_process *p;
    R.rc = async_process_spawn(&o, &p);
    if (R.rc)
        return 0;
    R.pid = async_process_pid(p);
    int in = async_process_fd(p, 0), out = async_process_fd(p, 1);
    bool ok = in >= 0 && out >= 0 && async_process_fd(p, 2) == -1 &&
              async_process_fd(p, 3) == -1;
    for (int i = 0; ok && i < 2; i++) {
        int fd = i ? out : in;
        ok = (fcntl(fd, F_GETFL) & O_NONBLOCK) &&
             (fcntl(fd, F_GETFD) & FD_CLOEXEC);
    }
    ok = ok && write(in, "ping", 4) == 4;
    ok = ok && async_process_close_fd(p, 0) == 0;
    ok = ok && async_process_close_fd(p, 0) == ASYNC_EBADF;
    char buf[8] = {0};
    ssize_t n;
    while (ok && (n = read(out, buf, sizeof(buf))) < 0 && errno == EAGAIN)
        ok = async__loop_fd_wait(R.loop, out, ASYNC__EV_READ,
                                 ASYNC__FOREVER) == 0;
    ok = ok && strcmp(buf, "ping") == 0;
    R.rc = ok ? async_process_wait(p, -1, &R.status) : -1;
    async_process_free(p);
    return 0;
}

static void test_pipe_fds(void **state)
{
    (void)state;
    run_task(co_pipe_fds, NULL);
    assert_int_equal(R.rc, 0);
    assert_int_equal(R.status, 0);
    assert_no_child(R.pid);
}

/* ---- many at once -------------------------------------------------------------------- */

static int co_one_of_many(void *arg, void **result)
{
    (void)result;
    int i = (int)(intptr_t)arg;
    char num[16], code[32];
    snprintf(num, sizeof(num), "%d", i);
    snprintf(code, sizeof(code), "echo %d; exit %d", i, i);
    const char *argv[] = {"/bin/sh", "-c", code, NULL};
    async_process_opts o = {.argv = argv};
    R.rcs[i] = async_process_run(&o, NULL, 0, 10 * ASYNC_SEC, &R.many[i]);
    return 0;
}

static int co_gather(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *t[NCONC];
    async_future *f[NCONC];
    for (int i = 0; i < NCONC; i++) {
        async_spawn(&t[i], co_one_of_many, (void *)(intptr_t)i);
        f[i] = async_task_future(t[i]);
    }
    R.rc = async_gather(f, NCONC, ASYNC_GATHER_ALL, NULL, NULL);
    for (int i = 0; i < NCONC; i++)
        async_task_unref(t[i]);
    return 0;
}

static void test_twenty_concurrent(void **state)
{
    (void)state;
    run_task(co_gather, NULL);
    assert_int_equal(R.rc, 0);
    for (int i = 0; i < NCONC; i++) {
        char want[16];
        snprintf(want, sizeof(want), "%d\n", i);
        assert_int_equal(R.rcs[i], 0);
        assert_string_equal(R.many[i].out, want);
        assert_int_equal(R.many[i].status, i);
    }
    assert_no_children();
}

/* ---- the thread watcher (no pidfd) ----------------------------------------------------- */

static int co_thread_mode(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sh", "-c", "exit 5", NULL};
    async_process_opts o = {.argv = argv};
    async_process *p;
    R.rc = async_process_spawn(&o, &p);
    if (R.rc)
        return 0;
    R.done_after = async__process_uses_thread(p);
    R.pid = async_process_pid(p);
    R.rc = async_process_wait(p, -1, &R.status);
    async_process_free(p);
    return 0;
}

static void test_thread_watcher(void **state)
{
    (void)state;
    async__process_force_thread_watch(true);
    run_task(co_thread_mode, NULL);
    assert_true(R.done_after);
    assert_int_equal(R.rc, 0);
    assert_int_equal(R.status, 5);
    assert_no_child(R.pid);

    fill_input();
    run_task(co_cat, NULL);
    check_cat();
    memset(R.rcs, 0, sizeof(R.rcs));
    async_process_result_free(&R.res);
    run_task(co_sigterm, NULL);
    assert_int_equal(R.rc, 0);
    assert_int_equal(R.status, -SIGTERM);
    run_task(co_cancel_then_free, NULL);
    assert_int_equal(R.rc, ASYNC_ECANCELED);
    assert_no_child(R.pid);
    run_task(co_run_timeout, NULL);
    assert_int_equal(R.rc, ASYNC_ETIMEDOUT);
    run_task(co_gather, NULL);
    assert_int_equal(R.rc, 0);
    for (int i = 0; i < NCONC; i++)
        assert_int_equal(R.many[i].status, i);
    assert_no_children();
}

/* ---- loop closed before the handle is freed ------------------------------------------ */

static int co_spawn_keep(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/sleep", "10", NULL};
    async_process_opts o = {.argv = argv};
    R.rc = async_process_spawn(&o, &R.proc);
    R.pid = R.rc ? -1 : async_process_pid(R.proc);
    return 0;
}

static int co_wait_closed(void *arg, void **result)
{
    (void)arg;
    (void)result;
    R.rc2 = async_process_wait(R.proc, -1, NULL);
    return 0;
}

static void test_loop_closed_first(void **state)
{
    (void)state;
    run_task(co_spawn_keep, NULL);
    assert_int_equal(R.rc, 0);
    assert_int_equal(async_loop_close(R.loop), 0);
    async_loop *other;
    assert_int_equal(async_loop_new(&other), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(other, &t, co_wait_closed, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(other, t, NULL), 0);
    async_task_unref(t);
    assert_int_equal(async_loop_free(other), 0);
    assert_int_equal(R.rc2, ASYNC_ECLOSED);
    assert_int_equal(async_process_kill(R.proc, 0), 0);
    async_process_free(R.proc);
    assert_no_child(R.pid);
}

/* opts.loop lets plain code spawn before the loop runs. */
static int co_wait_proc(void *arg, void **result)
{
    (void)arg;
    (void)result;
    R.rc2 = async_process_wait(R.proc, -1, &R.status);
    return 0;
}

static void test_spawn_outside_loop(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/true", NULL};
    async_process_opts o = {.argv = argv};
    assert_int_equal(async_process_spawn(&o, &R.proc), ASYNC_ENOLOOP);
    o.loop = R.loop;
    assert_int_equal(async_process_spawn(&o, &R.proc), 0);
    assert_int_equal(async_process_wait(R.proc, -1, NULL), ASYNC_ENOTTASK);
    run_task(co_wait_proc, NULL);
    assert_int_equal(R.rc2, 0);
    assert_int_equal(R.status, 0);
    pid_t pid = async_process_pid(R.proc);
    async_process_free(R.proc);
    assert_no_child(pid);
}

/* ---- bad input ------------------------------------------------------------------------- */

static int co_bad_input(void *arg, void **result)
{
    (void)arg;
    (void)result;
    const char *argv[] = {"/bin/true", NULL};
    const char *empty[] = {NULL};
    const char *blank[] = {"", NULL};
    async_process *p = NULL;
    async_process_opts o = {.argv = NULL};
    int bad = 0;
    bad += async_process_spawn(NULL, &p) != ASYNC_EINVAL;
    bad += async_process_spawn(&o, &p) != ASYNC_EINVAL;
    o.argv = empty;
    bad += async_process_spawn(&o, &p) != ASYNC_EINVAL;
    o.argv = blank;
    bad += async_process_spawn(&o, &p) != ASYNC_EINVAL;
    o.argv = argv;
    bad += async_process_spawn(&o, NULL) != ASYNC_EINVAL;
    o.stdin_mode = ASYNC_PROCESS_STDOUT;
    bad += async_process_spawn(&o, &p) != ASYNC_EINVAL;
    o.stdin_mode = (async_process_stdio)42;
    bad += async_process_spawn(&o, &p) != ASYNC_EINVAL;
    o.stdin_mode = ASYNC_PROCESS_INHERIT;
    bad += async_process_run(&o, NULL, 0, -1, NULL) != ASYNC_EINVAL;
    bad += async_process_run(NULL, NULL, 0, -1, &R.res) != ASYNC_EINVAL;
    bad += async_process_run(&o, NULL, 5, -1, &R.res) != ASYNC_EINVAL;
    o.argv = empty;
    bad += async_process_run(&o, NULL, 0, -1, &R.res) != ASYNC_EINVAL;
    bad += p != NULL;
    bad += async_process_wait(NULL, -1, NULL) != ASYNC_EINVAL;
    bad += async_process_kill(NULL, SIGTERM) != ASYNC_EINVAL;
    bad += async_process_pid(NULL) != -1;
    bad += async_process_fd(NULL, 0) != -1;
    bad += async_process_close_fd(NULL, 0) != ASYNC_EINVAL;
    bad += async_process_status(NULL, &bad) != ASYNC_EINVAL;
    bad += async_process_done(NULL);
    async_process_free(NULL);
    async_process_result_free(NULL);
    o.argv = argv;
    if (async_process_spawn(&o, &p) == 0) {
        bad += async_process_kill(p, -1) != ASYNC_EINVAL;
        bad += async_process_kill(p, 100000) != ASYNC_EINVAL;
        bad += async_process_close_fd(p, 3) != ASYNC_EINVAL;
        bad += async_process_close_fd(p, 1) != ASYNC_EBADF;
        bad += async_process_wait(p, -1, NULL) != 0;
        async_process_free(p);
    } else {
        bad++;
    }
    R.rc = bad;
    return 0;
}

static void test_bad_input(void **state)
{
    (void)state;
    run_task(co_bad_input, NULL);
    assert_int_equal(R.rc, 0);
    async_process_result res;
    const char *argv[] = {"/bin/true", NULL};
    async_process_opts o = {.argv = argv};
    assert_int_equal(async_process_run(&o, NULL, 0, -1, &res), ASYNC_ENOTTASK);
    assert_no_children();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_capture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stderr_capture_and_merge, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cat_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_stops_reading, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_both_streams_no_deadlock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_exit_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_death_by_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_timeout_kills, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_timeout_then_free, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_waiter_then_rewait, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_waiter_then_free, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_waiters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_executable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_cwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_and_cwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_sees_only_stdio, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pipe_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twenty_concurrent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_thread_watcher, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_closed_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spawn_outside_loop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
