/*
 * Lifetimes across loop close and free (issue 9's memory bugs), each a
 * regression test that ASan (and most of them a plain assert) catches:
 * - an unretrieved error outliving its loop is reported to stderr, not
 *   through the freed loop;
 * - completing a future of a closed loop is refused and leaks nothing;
 * - closing a loop while a task awaits a future releases the future and
 *   reports the pending task;
 * - to_thread / run_in_executor never return while the job still runs;
 *   the detached variant disposes of every outcome.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include "core/internal.h"
#include "services/executor.h"
#include "helpers.h"

static async_loop *L;
static th_leaks leaks;

static int setup(void **state)
{
    (void)state;
    th_leaks_begin(&leaks);
    return async_loop_new(&L);
}

static int teardown(void **state)
{
    (void)state;
    if (L)
        async_loop_free(L);
    L = NULL;
    th_leaks_end(&leaks);
    return 0;
}

/* ---- stderr capture ------------------------------------------------------ */

static int saved_stderr = -1;
static char capture_path[64];

static void capture_begin(void)
{
    snprintf(capture_path, sizeof(capture_path), "/tmp/libasync-lt-%d",
             (int)getpid());
    fflush(stderr);
    saved_stderr = dup(2);
    FILE *f = fopen(capture_path, "w");
    assert_non_null(f);
    dup2(fileno(f), 2);
    fclose(f);
}

/* Returns what was written to stderr since capture_begin (static buffer). */
static const char *capture_end(void)
{
    static char buf[4096];
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    FILE *f = fopen(capture_path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(capture_path);
    return buf;
}

/* ---- exception handler records --------------------------------------------- */

static struct {
    int n;
    char msg[4][64];
    char task[4][32];
} R;

static void record_handler(async_loop *loop, const async_exception_context *ctx,
                           void *arg)
{
    (void)loop;
    (void)arg;
    if (R.n < 4) {
        snprintf(R.msg[R.n], sizeof(R.msg[0]), "%s", ctx->message);
        snprintf(R.task[R.n], sizeof(R.task[0]), "%s",
                 ctx->task ? async_task_name(ctx->task) : "");
    }
    R.n++;
}

static int fail_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return ASYNC_EPIPE;
}

/* A failed task and a failed future whose errors nobody retrieved, still
 * referenced after async_loop_free: their reports go to stderr (before the
 * fix, through the freed loop: heap-use-after-free). */
static void test_unretrieved_outlives_loop(void **state)
{
    (void)state;
    async_task *t;
    async_future *f;
    assert_int_equal(async_loop_spawn(L, &t, fail_body, NULL, NULL), 0);
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), 0);
    async_loop_stop(L);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_true(async_future_done(async_task_future(t)));
    async_loop_set_exception_handler(L, record_handler, NULL);
    assert_int_equal(async_loop_free(L), 0);
    L = NULL;
    capture_begin();
    async_task_unref(t);
    async_future_unref(f);
    const char *out = capture_end();
    assert_int_equal(R.n, 0); /* the freed loop's handler is not called */
    assert_non_null(strstr(out, "Task exception was never retrieved"));
    assert_non_null(strstr(out, "Future exception was never retrieved"));
    memset(&R, 0, sizeof(R));
}

static void count_cb(async_future *f, void *arg)
{
    (void)f;
    ++*(int *)arg;
}

/* Completing a future of a closed loop is refused (asyncio: "Event loop is
 * closed") and changes nothing; before the fix the done callbacks were
 * scheduled on the dead loop and leaked with the future. */
static void test_complete_on_closed_loop(void **state)
{
    (void)state;
    async_future *f;
    int calls = 0;
    assert_int_equal(async_future_new(L, &f), 0);
    assert_int_equal(async_future_add_done_callback(f, count_cb, &calls), 0);
    assert_int_equal(async_loop_close(L), 0);
    assert_int_equal(async_future_set_result(f, (void *)1), ASYNC_ECLOSED);
    assert_int_equal(async_future_set_error(f, ASYNC_EPIPE), ASYNC_ECLOSED);
    assert_int_equal(async_future_cancel(f), ASYNC_ECLOSED);
    assert_false(async_future_done(f));
    assert_int_equal(async_future_result(f, NULL), ASYNC_EPENDING);
    async_future_unref(f);
    assert_int_equal(calls, 0);
    assert_int_equal(L->nfutures, 0);
}

static int await_body(void *arg, void **result)
{
    return async_await((async_future *)arg, result);
}

/* Closing the loop while a task waits in async_future_await releases the
 * reference the await took (before the fix the future leaked), and the
 * destroyed pending task is reported with its name. */
static void test_close_while_awaiting(void **state)
{
    (void)state;
    memset(&R, 0, sizeof(R));
    async_future *f;
    assert_int_equal(async_future_new(L, &f), 0);
    async_task_opts opts = {.name = "waiter"};
    assert_int_equal(async_loop_spawn(L, NULL, await_body, f, &opts), 0);
    async_loop_stop(L);
    assert_int_equal(async_loop_run_forever(L), 0);
    async_future_unref(f); /* every reference of ours is gone */
    async_loop_set_exception_handler(L, record_handler, NULL);
    assert_int_equal(async_loop_close(L), 0);
    assert_int_equal(L->nfutures, 0);
    assert_int_equal(R.n, 1);
    assert_string_equal(R.msg[0], "Task was destroyed but it is pending!");
    assert_string_equal(R.task[0], "waiter");
}

/* ---- executor: never return while the job runs ---------------------------- */

typedef struct job_arg {
    atomic_bool started;  /* the job began */
    atomic_bool finished; /* the job is about to return */
    int value;            /* read by the job at its very end */
} job_arg;

static atomic_bool release_jobs;

static int slow_job(void *arg, void **result)
{
    job_arg *a = arg;
    atomic_store(&a->started, true);
    while (!atomic_load(&release_jobs))
        usleep(1000);
    usleep(20000); /* still running when the cancel arrives */
    *result = (void *)(intptr_t)a->value; /* use-after-free before the fix */
    atomic_store(&a->finished, true);
    return 0;
}

static struct {
    int rc;
    bool finished_at_return;
    bool ran;
} X;

static int to_thread_body(void *arg, void **result)
{
    (void)result;
    job_arg *a = arg;
    X.rc = async_to_thread(slow_job, a, NULL);
    X.finished_at_return = atomic_load(&a->finished);
    X.ran = atomic_load(&a->started);
    free(a); /* the natural code: the argument was borrowed */
    return X.rc;
}

static int cancel_when_started(void *arg, void **result)
{
    (void)result;
    async_task *t = arg;
    while (async__executor_jobs_run(async_get_running_loop()) == 0)
        async_sleep(ASYNC_MSEC);
    async_task_cancel(t);
    atomic_store(&release_jobs, true);
    return 0;
}

/* async_to_thread cancelled while its job runs returns ASYNC_ECANCELED
 * only after the job has returned. */
static void test_to_thread_cancel_running(void **state)
{
    (void)state;
    memset(&X, 0, sizeof(X));
    atomic_store(&release_jobs, false);
    job_arg *a = calloc(1, sizeof(*a));
    a->value = 7;
    async_task *t, *c;
    assert_int_equal(async_loop_spawn(L, &t, to_thread_body, a, NULL), 0);
    assert_int_equal(async_loop_spawn(L, &c, cancel_when_started, t, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_int_equal(async_loop_run_until_complete(L, c, NULL), 0);
    assert_int_equal(X.rc, ASYNC_ECANCELED);
    assert_true(X.ran);
    assert_true(X.finished_at_return);
    async_task_unref(t);
    async_task_unref(c);
}

static int await_fut_body(void *arg, void **result)
{
    async_future *f = arg;
    return async_await(f, result);
}

/* The same through run_in_executor: the awaiting task is cancelled, the
 * cancel goes down to the job's future, which completes (cancelled) only
 * when the running job returns. */
static void test_run_in_executor_cancel_running(void **state)
{
    (void)state;
    memset(&X, 0, sizeof(X));
    atomic_store(&release_jobs, false);
    job_arg a = {.value = 3};
    async_future *f;
    assert_int_equal(async_run_in_executor(L, slow_job, &a, &f), 0);
    async_task *t, *c;
    assert_int_equal(async_loop_spawn(L, &t, await_fut_body, f, NULL), 0);
    assert_int_equal(async_loop_spawn(L, &c, cancel_when_started, t, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    assert_true(atomic_load(&a.finished));
    assert_true(async_future_cancelled(f));
    assert_int_equal(async_loop_run_until_complete(L, c, NULL), 0);
    async_future_unref(f);
    async_task_unref(t);
    async_task_unref(c);
}

static atomic_int queued_ran;

static int mark_job(void *arg, void **result)
{
    (void)arg;
    (void)result;
    atomic_fetch_add(&queued_ran, 1);
    return 0;
}

static int to_thread_mark(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return async_to_thread(mark_job, NULL, NULL);
}

static int cancel_soon(void *arg, void **result)
{
    (void)result;
    async_sleep(ASYNC_MSEC);
    async_task_cancel(arg);
    return 0;
}

/* A queued job of a cancelled to_thread is removed and never runs. */
static void test_to_thread_cancel_queued(void **state)
{
    (void)state;
    atomic_store(&queued_ran, 0);
    atomic_store(&release_jobs, false);
    assert_int_equal(async_loop_set_executor_threads(L, 1), 0);
    job_arg a = {.value = 1};
    async_future *busy;
    assert_int_equal(async_run_in_executor(L, slow_job, &a, &busy), 0);
    async_task *t, *c;
    assert_int_equal(async_loop_spawn(L, &t, to_thread_mark, NULL, NULL), 0);
    assert_int_equal(async_loop_spawn(L, &c, cancel_soon, t, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), ASYNC_ECANCELED);
    atomic_store(&release_jobs, true);
    assert_int_equal(async_loop_run_until_complete(L, busy, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, c, NULL), 0);
    assert_int_equal(atomic_load(&queued_ran), 0);
    async_future_unref(busy);
    async_task_unref(t);
    async_task_unref(c);
}

static struct {
    int n;
    int rc[4];
    void *result[4];
} D;

static void dispose(void *arg, int rc, void *result)
{
    if (D.n < 4) {
        D.rc[D.n] = rc;
        D.result[D.n] = result;
    }
    D.n++;
    free(arg);
}

static int dup_job(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static int fail_job(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return ASYNC_EPIPE;
}

static int wait_disposed(void *arg, void **result)
{
    (void)result;
    while (D.n < (intptr_t)arg)
        async_sleep(ASYNC_MSEC);
    return 0;
}

/* Fire and forget: dispose gets every outcome (a result, an error, and a
 * job that never ran because the loop closed), frees arg; nothing leaks
 * and no "never retrieved" report for the failed one. */
static void test_detached(void **state)
{
    (void)state;
    memset(&D, 0, sizeof(D));
    memset(&R, 0, sizeof(R));
    async_loop_set_exception_handler(L, record_handler, NULL);
    assert_int_equal(async_run_in_executor_detached(NULL, dup_job, NULL, dispose),
                     ASYNC_ENOLOOP);
    assert_int_equal(async_run_in_executor_detached(L, NULL, NULL, dispose),
                     ASYNC_EINVAL);
    void *p = malloc(8);
    assert_int_equal(async_run_in_executor_detached(L, dup_job, p, dispose), 0);
    assert_int_equal(async_run_in_executor_detached(L, fail_job, malloc(8),
                                                    dispose), 0);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, wait_disposed, (void *)2, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    async_task_unref(t);
    assert_int_equal(D.n, 2);
    int ok = D.rc[0] == 0 ? 0 : 1;
    assert_int_equal(D.rc[ok], 0);
    assert_ptr_equal(D.result[ok], p);
    assert_int_equal(D.rc[1 - ok], ASYNC_EPIPE);
    assert_int_equal(R.n, 0);
    /* A job still queued at close never runs; dispose hears of it. */
    atomic_store(&release_jobs, false);
    assert_int_equal(async_loop_free(L), 0);
    L = NULL;
    assert_int_equal(async_loop_new(&L), 0);
    assert_int_equal(async_loop_set_executor_threads(L, 1), 0);
    job_arg *a = calloc(1, sizeof(*a));
    assert_int_equal(async_run_in_executor_detached(L, slow_job, a, dispose), 0);
    assert_int_equal(async_run_in_executor_detached(L, dup_job, malloc(8),
                                                    dispose), 0);
    while (!atomic_load(&a->started))
        usleep(1000);
    atomic_store(&release_jobs, true);
    assert_int_equal(async_loop_close(L), 0);
    assert_int_equal(D.n, 4);
    assert_int_equal(D.rc[2], ASYNC_ECANCELED); /* the queued one, at close */
    assert_null(D.result[2]);
    assert_int_equal(D.rc[3], 0);               /* the running one, joined */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unretrieved_outlives_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_on_closed_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_while_awaiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_to_thread_cancel_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_in_executor_cancel_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_to_thread_cancel_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detached, setup, teardown),
    };
    return cmocka_run_group_tests_name("lifetime", tests, NULL, NULL);
}
