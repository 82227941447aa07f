/*
 * The executor: run_in_executor / to_thread results and errors, the pool's
 * bound, cancellation of queued and running jobs, shutdown at loop close
 * and at the end of async_run, and async_getaddrinfo off the loop thread.
 */
#include <netdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include "services/executor.h"
#include "helpers.h"
#include "core/internal.h"

/* ---- a gate that blocks jobs until the test opens it ----------------------- */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open_flag;

static void gate_close(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open_flag = false;
    pthread_mutex_unlock(&gate_lock);
}

static void gate_open(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open_flag = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static void gate_pass(void)
{
    pthread_mutex_lock(&gate_lock);
    while (!gate_open_flag)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
}

/* ---- shared records ------------------------------------------------------------ */

typedef struct rec {
    async_loop *loop;       /* loop under test */
    th_leaks leaks;         /* leak counters before the test */
    pthread_t loop_thread;  /* the thread running the loop */
    int rc[8];              /* codes seen inside tasks */
    intptr_t val[8];        /* values seen inside tasks */
    bool flag[8];           /* facts seen inside tasks */
} rec;

static rec R;
static atomic_int started;     /* jobs that began */
static atomic_int ran_b;       /* runs of the job that must never run */
static atomic_int concurrent;  /* jobs running right now */
static atomic_int max_concurrent; /* the most seen at once */
static atomic_int finished;    /* jobs that ended */
static atomic_int discards;    /* discard callbacks */
static atomic_int discard_rc;  /* last discard's rc */

static void reset_counters(void)
{
    atomic_store(&started, 0);
    atomic_store(&ran_b, 0);
    atomic_store(&concurrent, 0);
    atomic_store(&max_concurrent, 0);
    atomic_store(&finished, 0);
    atomic_store(&discards, 0);
    atomic_store(&discard_rc, 0);
}

static int setup(void **state)
{
    (void)state;
    memset(&R, 0, sizeof(R));
    reset_counters();
    gate_close();
    th_leaks_begin(&R.leaks);
    R.loop_thread = pthread_self();
    assert_int_equal(async_loop_new(&R.loop), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gate_open();
    assert_int_equal(async_loop_free(R.loop), 0);
    th_leaks_end(&R.leaks);
    assert_int_equal(async__executor_threads_unjoined(), 0);
    return 0;
}

/* Runs fn as a task on R.loop until it finishes; returns its outcome. */
static int run_task(async_fn fn, void *arg)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(R.loop, &t, fn, arg, NULL), 0);
    int rc = async_loop_run_until_complete(R.loop, t, NULL);
    async_task_unref(t);
    return rc;
}

/* ---- jobs ------------------------------------------------------------------------ */

static int job_double(void *arg, void **result)
{
    *result = (void *)((intptr_t)arg * 2);
    return 0;
}

static int job_fail(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return -EIO;
}

static int job_self(void *arg, void **result)
{
    (void)arg;
    *result = (void *)(uintptr_t)pthread_equal(pthread_self(), R.loop_thread);
    return 0;
}

/* Counts how many run at once. */
static int job_busy(void *arg, void **result)
{
    int now = atomic_fetch_add(&concurrent, 1) + 1;
    int max = atomic_load(&max_concurrent);
    while (now > max &&
           !atomic_compare_exchange_weak(&max_concurrent, &max, now))
        ;
    usleep(2000);
    atomic_fetch_sub(&concurrent, 1);
    atomic_fetch_add(&finished, 1);
    *result = arg;
    return 0;
}

/* Blocks on the gate; its result is heap memory someone must free. */
static int job_gated(void *arg, void **result)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    gate_pass();
    *result = malloc(32);
    atomic_fetch_add(&finished, 1);
    return 0;
}

static int job_must_not_run(void *arg, void **result)
{
    (void)arg;
    (void)result;
    atomic_fetch_add(&ran_b, 1);
    return 0;
}

static void discard_free(void *arg, int rc, void *result)
{
    (void)arg;
    atomic_fetch_add(&discards, 1);
    atomic_store(&discard_rc, rc);
    free(result);
}

/* Lets the loop run (the loop thread does not block) until cond holds. */
static void wait_started(int n)
{
    while (atomic_load(&started) < n)
        async_sleep(ASYNC_MSEC);
}

/* ---- results and errors ------------------------------------------------------ */

static int main_results(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_future *f;
    void *v = NULL;
    R.rc[0] = async_run_in_executor(NULL, job_double, (void *)21, &f);
    if (R.rc[0] == 0) {
        R.rc[1] = async_await(f, &v);
        R.val[0] = (intptr_t)v;
        async_future_unref(f);
    }
    R.rc[2] = async_to_thread(job_fail, NULL, &v);
    R.rc[3] = async_to_thread(job_self, NULL, &v);
    R.val[1] = (intptr_t)v;
    R.val[2] = (intptr_t)async__executor_jobs_run(R.loop);
    return 0;
}

static void test_results_and_errors(void **state)
{
    (void)state;
    assert_int_equal(run_task(main_results, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.val[0], 42);
    assert_int_equal(R.rc[2], -EIO);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.val[1], 0); /* not the loop thread */
    assert_int_equal(R.val[2], 3);
    /* Sequential jobs reuse the one idle thread: threads start lazily. */
    assert_int_equal(async__executor_threads(R.loop), 1);
}

/* ---- the bound --------------------------------------------------------------- */

#define NJOBS 100

static int main_hundred(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static async_future *fs[NJOBS];
    static void *results[NJOBS];
    int n = 0;
    for (; n < NJOBS; n++)
        if (async_run_in_executor(NULL, job_busy, (void *)(intptr_t)n,
                                  &fs[n]) != 0)
            break;
    R.val[0] = n;
    R.rc[0] = async_gather(fs, (size_t)n, 0, results, NULL);
    R.flag[0] = true;
    for (int i = 0; i < n; i++) {
        if ((intptr_t)results[i] != i)
            R.flag[0] = false;
        async_future_unref(fs[i]);
    }
    return 0;
}

static void test_hundred_jobs_pool_of_four(void **state)
{
    (void)state;
    assert_int_equal(async_loop_set_executor_threads(R.loop, 4), 0);
    assert_int_equal(run_task(main_hundred, NULL), 0);
    assert_int_equal(R.val[0], NJOBS);
    assert_int_equal(R.rc[0], 0);
    assert_true(R.flag[0]);
    assert_int_equal(atomic_load(&finished), NJOBS);
    assert_true(atomic_load(&max_concurrent) <= 4);
    assert_true(atomic_load(&max_concurrent) >= 1);
    assert_true(async__executor_threads(R.loop) <= 4);
    assert_int_equal(async__executor_jobs_run(R.loop), NJOBS);
}

/* ---- cancellation ---------------------------------------------------------- */

static int main_cancel_queued(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_future *a, *b;
    R.rc[0] = async_run_in_executor_ex(NULL, job_gated, NULL, discard_free, &a);
    R.rc[1] = async_run_in_executor_ex(NULL, job_must_not_run, NULL,
                                       discard_free, &b);
    wait_started(1); /* the single thread is busy with a: b is queued */
    R.rc[2] = async_future_cancel(b);
    /* Open the gate at once, without a loop iteration in between: the
     * worker goes straight for the next job, which must be gone. */
    gate_open();
    void *v = NULL;
    R.rc[3] = async_await(a, &v);
    free(v);
    R.rc[4] = async_await(b, NULL);
    async_sleep(10 * ASYNC_MSEC); /* let the deferred release run */
    async_future_unref(a);
    async_future_unref(b);
    return 0;
}

static void test_cancel_queued_never_runs(void **state)
{
    (void)state;
    assert_int_equal(async_loop_set_executor_threads(R.loop, 1), 0);
    assert_int_equal(run_task(main_cancel_queued, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[4], ASYNC_ECANCELED);
    assert_int_equal(atomic_load(&ran_b), 0);
    assert_int_equal(async__executor_jobs_run(R.loop), 1);
    /* b's discard ran (never-ran jobs report ECANCELED); a's did not. */
    assert_int_equal(atomic_load(&discards), 1);
    assert_int_equal(atomic_load(&discard_rc), ASYNC_ECANCELED);
}

static int main_cancel_running(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_future *a;
    R.rc[0] = async_run_in_executor_ex(NULL, job_gated, NULL, discard_free, &a);
    wait_started(1);
    R.rc[1] = async_future_cancel(a);
    /* A running job cannot be stopped: its future stays pending until the
     * job returns, so an await never resumes while the job runs. */
    R.rc[3] = async_future_done(a);
    gate_open();
    R.rc[2] = async_await(a, NULL);
    R.rc[4] = atomic_load(&discards); /* the result was discarded by then */
    async_future_unref(a);
    return 0;
}

static void test_cancel_running_discards_result(void **state)
{
    (void)state;
    assert_int_equal(run_task(main_cancel_running, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], ASYNC_ECANCELED);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[4], 1);
    assert_int_equal(atomic_load(&finished), 1);
    assert_int_equal(atomic_load(&discards), 1);
    assert_int_equal(atomic_load(&discard_rc), 0); /* it ran and succeeded */
}

static int task_to_thread(void *arg, void **result)
{
    (void)arg;
    (void)result;
    R.rc[1] = async_to_thread(job_must_not_run, NULL, NULL);
    return R.rc[1];
}

/* A task cancelled while its to_thread job is queued returns at once and
 * the job is removed. */
static int main_cancel_to_thread(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_future *a;
    R.rc[0] = async_run_in_executor_ex(NULL, job_gated, NULL, discard_free, &a);
    wait_started(1);
    async_task *t;
    async_spawn(&t, task_to_thread, NULL);
    async_sleep(ASYNC_MSEC); /* t is now parked in to_thread */
    async_task_cancel(t);
    R.rc[2] = async_await(t, NULL);
    R.flag[0] = atomic_load(&started) == 1 && atomic_load(&finished) == 0;
    async_task_unref(t);
    gate_open();
    void *v = NULL;
    R.rc[3] = async_await(a, &v);
    free(v);
    async_future_unref(a);
    return 0;
}

static void test_cancelled_task_in_to_thread(void **state)
{
    (void)state;
    assert_int_equal(async_loop_set_executor_threads(R.loop, 1), 0);
    assert_int_equal(run_task(main_cancel_to_thread, NULL), 0);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
    assert_int_equal(R.rc[2], ASYNC_ECANCELED);
    assert_true(R.flag[0]); /* returned while the pool was still blocked */
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(atomic_load(&ran_b), 0);
}

/* ---- shutdown ------------------------------------------------------------------ */

static async_future *shut_f[8]; /* futures of the shutdown test */

static int main_submit_and_leave(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 2; i++)
        async_run_in_executor_ex(NULL, job_gated, NULL, discard_free,
                                 &shut_f[i]);
    for (int i = 2; i < 7; i++)
        async_run_in_executor_ex(NULL, job_must_not_run, NULL, discard_free,
                                 &shut_f[i]);
    wait_started(2);
    return 0;
}

/* Opens the gate once loop close has discarded `arg` queued jobs (so
 * they can no longer run) and is joining the running ones. */
static void *open_after_discards(void *arg)
{
    while (atomic_load(&discards) < (int)(intptr_t)arg)
        usleep(1000);
    gate_open();
    return NULL;
}

static void test_shutdown_at_close(void **state)
{
    (void)state;
    assert_int_equal(async_loop_set_executor_threads(R.loop, 2), 0);
    assert_int_equal(run_task(main_submit_and_leave, NULL), 0);
    pthread_t opener;
    assert_int_equal(
        pthread_create(&opener, NULL, open_after_discards, (void *)5), 0);
    assert_int_equal(async_loop_close(R.loop), 0); /* joins the two */
    pthread_join(opener, NULL);
    assert_int_equal(atomic_load(&finished), 2);
    assert_int_equal(atomic_load(&ran_b), 0);
    assert_int_equal(atomic_load(&discards), 5);
    for (int i = 0; i < 2; i++) {
        void *v = NULL;
        assert_int_equal(async_future_result(shut_f[i], &v), 0);
        assert_non_null(v);
        free(v);
    }
    for (int i = 2; i < 7; i++)
        assert_true(async_future_cancelled(shut_f[i]));
    for (int i = 0; i < 7; i++)
        async_future_unref(shut_f[i]);
    assert_int_equal(async__executor_threads_unjoined(), 0);
}

static int job_gate_only(void *arg, void **result)
{
    (void)arg;
    (void)result;
    atomic_fetch_add(&started, 1);
    gate_pass();
    atomic_fetch_add(&finished, 1);
    return 0;
}

/* Leaves one job running and one queued when main returns. */
static int main_run_leaves_jobs(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_future *f;
    async_loop_set_executor_threads(NULL, 1);
    async_run_in_executor(NULL, job_gate_only, NULL, &f);
    async_future_unref(f);
    async_run_in_executor_ex(NULL, job_must_not_run, NULL, discard_free, &f);
    async_future_unref(f);
    wait_started(1);
    return 0;
}

static void test_async_run_shuts_down(void **state)
{
    (void)state;
    pthread_t opener;
    assert_int_equal(
        pthread_create(&opener, NULL, open_after_discards, (void *)1), 0);
    assert_int_equal(async_run(main_run_leaves_jobs, NULL, NULL), 0);
    pthread_join(opener, NULL);
    assert_int_equal(atomic_load(&finished), 1);
    assert_int_equal(atomic_load(&ran_b), 0);
    assert_int_equal(atomic_load(&discards), 1);
    assert_int_equal(async__executor_threads_unjoined(), 0);
}

/* ---- getaddrinfo --------------------------------------------------------------- */

static int main_gai(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    uint64_t before = async__executor_jobs_run(R.loop);
    R.rc[0] = async_getaddrinfo("localhost", "7000", &hints, &res);
    R.val[0] = (intptr_t)(async__executor_jobs_run(R.loop) - before);
    R.flag[0] = res && (res->ai_family == AF_INET ||
                        res->ai_family == AF_INET6);
    if (res)
        freeaddrinfo(res);
    res = NULL;
    hints.ai_flags = AI_NUMERICHOST;
    R.rc[1] = async_getaddrinfo("not a host", NULL, &hints, &res);
    R.flag[1] = res == NULL;
    hints.ai_flags = AI_NUMERICSERV;
    R.rc[2] = async_getaddrinfo("127.0.0.1", "http", &hints, &res);
    R.rc[3] = async_getaddrinfo("::1", "7000", NULL, &res);
    R.flag[2] = res && res->ai_family == AF_INET6;
    if (res)
        freeaddrinfo(res);
    return 0;
}

static void test_getaddrinfo_localhost_off_thread(void **state)
{
    (void)state;
    assert_int_equal(run_task(main_gai, NULL), 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.val[0], 1); /* one job ran on a pool thread */
    assert_true(R.flag[0]);
    assert_int_equal(R.rc[1], ASYNC_EAI_NONAME);
    assert_string_equal(async_strerror(ASYNC_EAI_NONAME),
                        "name or service not known");
    assert_true(R.flag[1]);
    assert_int_equal(R.rc[2], ASYNC_EAI_NONAME);
    assert_int_equal(R.rc[3], 0);
    assert_true(R.flag[2]);
}

static int task_gai(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct addrinfo *res = NULL;
    R.rc[1] = async_getaddrinfo("localhost", NULL, NULL, &res);
    R.flag[1] = res == NULL;
    return R.rc[1];
}

/* A task cancelled in getaddrinfo returns at once; the request (queued
 * behind a blocked job) is freed by the executor, never leaked. */
static int main_gai_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_future *a;
    R.rc[0] = async_run_in_executor_ex(NULL, job_gated, NULL, discard_free, &a);
    wait_started(1);
    async_task *t;
    async_spawn(&t, task_gai, NULL);
    async_sleep(ASYNC_MSEC);
    async_task_cancel(t);
    R.rc[2] = async_await(t, NULL);
    async_task_unref(t);
    gate_open();
    void *v = NULL;
    R.rc[3] = async_await(a, &v);
    free(v);
    async_future_unref(a);
    async_sleep(ASYNC_MSEC);
    return 0;
}

static void test_getaddrinfo_cancelled(void **state)
{
    (void)state;
    assert_int_equal(async_loop_set_executor_threads(R.loop, 1), 0);
    assert_int_equal(run_task(main_gai_cancel, NULL), 0);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
    assert_true(R.flag[1]);
    assert_int_equal(R.rc[2], ASYNC_ECANCELED);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(async__executor_jobs_run(R.loop), 1); /* lookup never ran */
}

/* ---- bad input ----------------------------------------------------------------- */

static void test_bad_input(void **state)
{
    (void)state;
    async_future *f = NULL;
    struct addrinfo *res = NULL;
    assert_int_equal(async_run_in_executor(R.loop, NULL, NULL, &f),
                     ASYNC_EINVAL);
    assert_int_equal(async_run_in_executor(R.loop, job_double, NULL, NULL),
                     ASYNC_EINVAL);
    assert_int_equal(async_run_in_executor(NULL, job_double, NULL, &f),
                     ASYNC_ENOLOOP);
    assert_null(f);
    assert_int_equal(async_loop_set_executor_threads(R.loop, 0), ASYNC_EINVAL);
    assert_int_equal(async_loop_set_executor_threads(
                         R.loop, ASYNC_EXECUTOR_MAX_THREADS + 1),
                     ASYNC_EINVAL);
    assert_int_equal(async_loop_set_executor_threads(NULL, 2), ASYNC_ENOLOOP);
    assert_int_equal(async_to_thread(job_double, NULL, NULL), ASYNC_ENOTTASK);
    assert_int_equal(async_to_thread(NULL, NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_getaddrinfo("localhost", NULL, NULL, &res),
                     ASYNC_ENOTTASK);
    assert_int_equal(async_getaddrinfo("localhost", NULL, NULL, NULL),
                     ASYNC_EINVAL);
    assert_int_equal(async_getaddrinfo(NULL, NULL, NULL, &res), ASYNC_EINVAL);
    /* Resizing is allowed until the first job, then refused. */
    assert_int_equal(async_loop_set_executor_threads(R.loop, 2), 0);
    assert_int_equal(async_loop_set_executor_threads(R.loop, 3), 0);
    assert_int_equal(async_run_in_executor(R.loop, job_double, (void *)1, &f),
                     0);
    assert_int_equal(async_loop_set_executor_threads(R.loop, 2), ASYNC_EBUSY);
    void *v = NULL;
    assert_int_equal(async_loop_run_until_complete(R.loop, f, &v), 0);
    assert_int_equal((intptr_t)v, 2);
    async_future_unref(f);
    f = NULL;
    assert_int_equal(async_loop_close(R.loop), 0);
    assert_int_equal(async_run_in_executor(R.loop, job_double, NULL, &f),
                     ASYNC_ECLOSED);
    assert_int_equal(async_loop_set_executor_threads(R.loop, 2),
                     ASYNC_ECLOSED);
    assert_null(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_results_and_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hundred_jobs_pool_of_four, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_queued_never_runs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_running_discards_result,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_task_in_to_thread,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_at_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_async_run_shuts_down, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_getaddrinfo_localhost_off_thread,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_getaddrinfo_cancelled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
