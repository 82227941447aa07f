/*
 * fd I/O in tasks (async/io.h) on socketpairs and pipes: optimistic reads
 * and writes, partial writes, half-close, deadlines, cancellation, closing
 * an fd under a waiting task, EINTR in the wait path, SIGPIPE, fairness,
 * bad input.  The TCP, UDP and address tests live in test_net.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"

/* What the tasks of one test saw; asserted after the loop returns. */
typedef struct rec {
    async_loop *loop;     /* loop under test */
    th_leaks leaks;       /* counters before the test */
    int sv[2];            /* a socketpair or a pipe */
    ssize_t rc[8];        /* return codes seen inside tasks */
    size_t n[8];          /* counts seen inside tasks */
    uint64_t t0, t1;      /* loop times */
    async_task *task[4];  /* tasks other tasks act on */
} rec;

static rec R;

static int setup(void **state)
{
    (void)state;
    memset(&R, 0, sizeof(R));
    R.sv[0] = R.sv[1] = -1;
    th_leaks_begin(&R.leaks);
    assert_int_equal(async_loop_new(&R.loop), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_loop_free(R.loop), 0);
    for (int i = 0; i < 2; i++)
        if (R.sv[i] >= 0)
            close(R.sv[i]);
    th_leaks_end(&R.leaks);
    return 0;
}

static void make_socketpair(void)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
                                SOCK_CLOEXEC, 0, R.sv), 0);
}

/* Runs fn as a task on R.loop until it finishes; returns its outcome. */
static int run(async_fn fn, void *arg)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(R.loop, &t, fn, arg, NULL), 0);
    int rc = async_loop_run_until_complete(R.loop, t, NULL);
    async_task_unref(t);
    return rc;
}

/* Closes both ends through the loop (the tasks waited on them). */
static int close_pair(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 2; i++) {
        if (R.sv[i] >= 0)
            async_close(R.sv[i]);
        R.sv[i] = -1;
    }
    return 0;
}

/* Spawns two bodies and awaits both (from a task). */
static void spawn_two(async_fn a, async_fn b)
{
    async_task *ta, *tb;
    async_spawn(&ta, a, NULL);
    async_spawn(&tb, b, NULL);
    R.task[0] = ta;
    R.task[1] = tb;
    async_task_await(ta, NULL);
    async_task_await(tb, NULL);
    async_task_unref(ta);
    async_task_unref(tb);
}

/* ---- optimistic read and write ------------------------------------------------ */

static int rw_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    R.rc[0] = async_write(R.sv[0], "hello", 5);
    char buf[16];
    R.rc[1] = async_read(R.sv[1], buf, sizeof(buf));
    R.n[0] = memcmp(buf, "hello", 5) == 0;
    R.rc[2] = async_read(R.sv[1], buf, 0);
    return close_pair(NULL, NULL);
}

static void test_read_write(void **state)
{
    (void)state;
    make_socketpair();
    assert_int_equal(run(rw_body, NULL), 0);
    assert_int_equal(R.rc[0], 5);
    assert_int_equal(R.rc[1], 5);
    assert_true(R.n[0]);
    assert_int_equal(R.rc[2], 0);
}

/* ---- a reader that waits, then gets data ------------------------------------- */

static int wait_reader(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[8];
    R.rc[0] = async_read(R.sv[1], buf, sizeof(buf));
    return 0;
}

static int late_writer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_sleep(10 * ASYNC_MSEC);
    R.rc[1] = async_write(R.sv[0], "abc", 3);
    return 0;
}

static int wait_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    spawn_two(wait_reader, late_writer);
    return close_pair(NULL, NULL);
}

static void test_read_waits(void **state)
{
    (void)state;
    make_socketpair();
    assert_int_equal(run(wait_body, NULL), 0);
    assert_int_equal(R.rc[0], 3);
    assert_int_equal(R.rc[1], 3);
}

/* ---- partial writes ------------------------------------------------------------ */

#define BIG (4u << 20)

/* Fills the pair's buffer: async_write must return partial counts. */
static int fill_writer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    unsigned char *buf = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        buf[i] = (unsigned char)(i * 7);
    R.rc[0] = async_write(R.sv[0], buf, BIG);
    size_t done = 0;
    R.rc[1] = async_write_all_deadline(R.sv[0], buf, BIG, ASYNC_NO_DEADLINE,
                                       &done);
    R.n[0] = done;
    free(buf);
    return 0;
}

/* Drains slowly at first, so the writer has to wait. */
static int slow_drainer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_sleep(20 * ASYNC_MSEC);
    unsigned char *buf = malloc(65536);
    size_t total = 0, first = (size_t)R.rc[0], bad = 0;
    while (total < first + BIG) {
        ssize_t n = async_read(R.sv[1], buf, 65536);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            size_t pos = total + (size_t)i;
            size_t idx = pos < first ? pos : pos - first;
            bad += buf[i] != (unsigned char)(idx * 7);
        }
        total += (size_t)n;
    }
    R.n[1] = total;
    R.n[2] = bad;
    free(buf);
    return 0;
}

static int partial_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    spawn_two(fill_writer, slow_drainer);
    return close_pair(NULL, NULL);
}

static void test_partial_writes(void **state)
{
    (void)state;
    make_socketpair();
    assert_int_equal(run(partial_body, NULL), 0);
    assert_true(R.rc[0] > 0);
    assert_true((size_t)R.rc[0] < BIG); /* the buffer is smaller than 4 MiB */
    assert_int_equal(R.rc[1], BIG);
    assert_int_equal(R.n[0], BIG);
    assert_int_equal(R.n[1], (size_t)R.rc[0] + BIG);
    assert_int_equal(R.n[2], 0);
}

/* ---- half-close ----------------------------------------------------------------- */

static int half_close_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[8];
    async_write_all(R.sv[0], "abc", 3);
    shutdown(R.sv[0], SHUT_WR);
    R.rc[0] = async_read_full(R.sv[1], buf, sizeof(buf), ASYNC_NO_DEADLINE,
                              NULL);
    R.rc[1] = async_read(R.sv[1], buf, sizeof(buf)); /* EOF again */
    R.rc[2] = async_write_all(R.sv[1], "xyz", 3);     /* other way works */
    R.rc[3] = async_read(R.sv[0], buf, sizeof(buf));
    R.n[0] = memcmp(buf, "xyz", 3) == 0;
    return close_pair(NULL, NULL);
}

static void test_half_close(void **state)
{
    (void)state;
    make_socketpair();
    assert_int_equal(run(half_close_body, NULL), 0);
    assert_int_equal(R.rc[0], 3); /* short: EOF after 3 bytes */
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], 3);
    assert_int_equal(R.rc[3], 3);
    assert_true(R.n[0]);
}

/* ---- deadlines --------------------------------------------------------------------- */

static int deadline_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[8];
    R.t0 = async_loop_time(R.loop);
    R.rc[0] = async_read_deadline(R.sv[1], buf, sizeof(buf),
                                  async_deadline_in(20 * ASYNC_MSEC));
    R.t1 = async_loop_time(R.loop);
    R.rc[1] = async_wait_readable(R.sv[1], async_deadline_in(0));
    /* A deadline scope bounds a call without a deadline of its own. */
    async_deadline_push(async_deadline_in(10 * ASYNC_MSEC));
    R.rc[2] = async_read(R.sv[1], buf, sizeof(buf));
    async_deadline_pop();
    return close_pair(NULL, NULL);
}

static void test_read_deadline(void **state)
{
    (void)state;
    make_socketpair();
    assert_int_equal(run(deadline_body, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_true(R.t1 - R.t0 >= 20 * ASYNC_MSEC);
    assert_int_equal(R.rc[1], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[2], ASYNC_ETIMEDOUT);
}

/* ---- cancellation --------------------------------------------------------------------- */

static int cancel_reader(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[8];
    R.rc[0] = async_read(R.sv[1], buf, sizeof(buf));
    /* Level-triggered: data is ready now, still ECANCELED. */
    async_write(R.sv[0], "x", 1);
    R.rc[1] = async_read(R.sv[1], buf, sizeof(buf));
    R.rc[2] = async_write(R.sv[0], "x", 1);
    return (int)R.rc[0];
}

static int cancel_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *t;
    async_spawn(&t, cancel_reader, NULL);
    async_sleep(5 * ASYNC_MSEC);
    async_task_cancel(t);
    R.rc[3] = async_task_await(t, NULL);
    async_task_unref(t);
    return close_pair(NULL, NULL);
}

static void test_cancel_read(void **state)
{
    (void)state;
    make_socketpair();
    assert_int_equal(run(cancel_body, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_ECANCELED);
    assert_int_equal(R.rc[1], ASYNC_ECANCELED);
    assert_int_equal(R.rc[2], ASYNC_ECANCELED);
    assert_int_equal(R.rc[3], ASYNC_ECANCELED);
}

/* ---- closing an fd under a waiting task ------------------------------------------------ */

static int close_reader(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[8];
    R.rc[0] = async_read(R.sv[1], buf, sizeof(buf));
    return 0;
}

static int close_writer_waiter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    R.rc[1] = async_wait_readable(R.sv[1], ASYNC_NO_DEADLINE);
    return 0;
}

/* Writes one byte to the fd in arg after 5 ms. */
static int late_writer_fd(void *arg, void **result)
{
    (void)result;
    async_sleep(5 * ASYNC_MSEC);
    async_write((int)(intptr_t)arg, "z", 1);
    return 0;
}

static int close_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *a, *b;
    async_spawn(&a, close_reader, NULL);
    async_spawn(&b, close_writer_waiter, NULL);
    async_sleep(5 * ASYNC_MSEC);
    R.rc[2] = async_close(R.sv[1]);
    R.sv[1] = -1;
    async_task_await(a, NULL);
    async_task_await(b, NULL);
    async_task_unref(a);
    async_task_unref(b);
    /* The reused fd number must be watched afresh: a new pair that likely
     * reuses it works. */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    char c;
    async_task *w;
    R.sv[1] = sv[1];
    async_spawn(&w, late_writer_fd, (void *)(intptr_t)sv[0]);
    R.rc[3] = async_read(sv[1], &c, 1);
    async_task_await(w, NULL);
    async_task_unref(w);
    async_close(sv[0]);
    return close_pair(NULL, NULL);
}

static void test_close_wakes_waiters(void **state)
{
    (void)state;
    make_socketpair();
    assert_int_equal(run(close_body, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_EBADF);
    assert_int_equal(R.rc[1], ASYNC_EBADF);
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.rc[3], 1);
}

/* ---- EINTR while the loop is blocked in the poll ------------------------------------------ */

/* Atomic, not volatile sig_atomic_t: the kicker thread reads it too. */
static atomic_int usr1_count;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&usr1_count, 1);
}

typedef struct kicker {
    pthread_t target;   /* the loop thread */
    int fd;             /* where to write afterwards */
} kicker;

/* Interrupts the loop thread's epoll_wait with a signal (no SA_RESTART),
 * several times, then writes the byte the task waits for. */
static void *kick_thread(void *arg)
{
    kicker *k = arg;
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 3; i++) {
        nanosleep(&ts, NULL);
        pthread_kill(k->target, SIGUSR1);
        /* A standard signal sent while one is still pending merges with
         * it: wait until this one was handled before the next (bounded,
         * so a lost signal fails the count below instead of hanging). */
        for (int w = 0; w < 5000 && atomic_load(&usr1_count) <= i; w++)
            nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    }
    nanosleep(&ts, NULL);
    ssize_t n = write(k->fd, "e", 1);
    (void)n;
    return NULL;
}

static int eintr_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char c;
    R.rc[0] = async_read(R.sv[1], &c, 1);
    R.n[0] = c == 'e';
    return close_pair(NULL, NULL);
}

static void test_eintr(void **state)
{
    (void)state;
    make_socketpair();
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1; /* no SA_RESTART: epoll_wait fails with EINTR */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&usr1_count, 0);
    kicker k = {pthread_self(), R.sv[0]};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, kick_thread, &k), 0);
    int rc = run(eintr_body, NULL);
    pthread_join(th, NULL);
    sigaction(SIGUSR1, &old, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&usr1_count), 3);
    assert_int_equal(R.rc[0], 1);
    assert_true(R.n[0]);
}

/* ---- SIGPIPE ---------------------------------------------------------------------------------- */

static int sigpipe_socket_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_close(R.sv[1]);
    R.sv[1] = -1;
    R.rc[0] = async_write(R.sv[0], "x", 1);
    R.rc[1] = async_write_all(R.sv[0], "xyz", 3);
    return close_pair(NULL, NULL);
}

/* Sockets: the default SIGPIPE disposition stays, and nobody dies. */
static void test_sigpipe_socket(void **state)
{
    (void)state;
    struct sigaction dfl, old;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, &old);
    make_socketpair();
    int rc = run(sigpipe_socket_body, NULL);
    sigaction(SIGPIPE, &old, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(R.rc[0], ASYNC_EPIPE);
    assert_int_equal(R.rc[1], ASYNC_EPIPE);
}

/* Pipes: write() raises SIGPIPE, so the program ignores it (documented in
 * async/io.h) and gets ASYNC_EPIPE; reads and writes on pipes work. */
static int pipe_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[4];
    R.rc[0] = async_write(R.sv[1], "ab", 2);
    R.rc[1] = async_read(R.sv[0], buf, sizeof(buf));
    async_close(R.sv[0]);
    R.sv[0] = -1;
    R.rc[2] = async_write(R.sv[1], "x", 1);
    return close_pair(NULL, NULL);
}

static void test_pipe_epipe(void **state)
{
    (void)state;
    struct sigaction ign, old;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);
    assert_int_equal(pipe2(R.sv, O_NONBLOCK | O_CLOEXEC), 0);
    int rc = run(pipe_body, NULL);
    sigaction(SIGPIPE, &old, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(R.rc[0], 2);
    assert_int_equal(R.rc[1], 2);
    assert_int_equal(R.rc[2], ASYNC_EPIPE);
}

/* ---- fairness: a reader that never has to wait still lets others run ----------------------- */

#define FAIR_BYTES 4096

static int greedy_reader(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char c;
    for (size_t i = 0; i < FAIR_BYTES; i++)
        if (async_read(R.sv[1], &c, 1) != 1)
            break;
    R.n[0] = 1; /* done */
    return 0;
}

static int counter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    while (!R.n[0]) {
        R.n[1]++;
        if (async_yield() != 0)
            break;
    }
    return 0;
}

static int fair_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static char data[FAIR_BYTES];
    async_write_all(R.sv[0], data, sizeof(data));
    spawn_two(greedy_reader, counter);
    return close_pair(NULL, NULL);
}

static void test_fairness(void **state)
{
    (void)state;
    make_socketpair();
    assert_int_equal(run(fair_body, NULL), 0);
    /* Without the budget the counter would run once, after the reader;
     * with it, about once per ASYNC__IO_BUDGET reads. */
    assert_true(R.n[1] >= FAIR_BYTES / 64);
}

/* ---- the drained hint: a short read makes the next read wait first ------------------- */

static int drained_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[16];
    async_write(R.sv[0], "ab", 2);
    R.rc[0] = async_read(R.sv[1], buf, sizeof(buf)); /* short: hint set */
    async_write(R.sv[0], "cd", 2);                    /* data already there */
    R.rc[1] = async_read(R.sv[1], buf, sizeof(buf)); /* waits, then reads */
    R.n[0] = memcmp(buf, "cd", 2) == 0;
    /* A regular file cannot be polled: a short read at its end must not
     * turn the next read into ASYNC_EPERM. */
    int f = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    char big[8192];
    R.rc[2] = async_read(f, big, sizeof(big));
    R.rc[3] = async_read(f, big, sizeof(big));
    close(f);
    return close_pair(NULL, NULL);
}

static void test_drained_hint(void **state)
{
    (void)state;
    make_socketpair();
    assert_int_equal(run(drained_body, NULL), 0);
    assert_int_equal(R.rc[0], 2);
    assert_int_equal(R.rc[1], 2);
    assert_true(R.n[0]);
    assert_true(R.rc[2] > 0);
    assert_int_equal(R.rc[3], 0);
}

/* After a short read, a read whose deadline has already passed ("take what
 * is there") still tries the system call first: the data that arrived
 * since is returned, not ASYNC_ETIMEDOUT. */
static int drained_past_deadline_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[16];
    R.rc[0] = async_write(R.sv[1], "ab", 2);
    R.rc[1] = async_read(R.sv[0], buf, sizeof(buf)); /* short: sets the hint */
    R.rc[2] = async_write(R.sv[1], "cde", 3);
    R.rc[3] = async_read_deadline(R.sv[0], buf, sizeof(buf), 1);
    R.n[0] = R.rc[3] == 3 && memcmp(buf, "cde", 3) == 0;
    /* Nothing left: the past deadline now answers ETIMEDOUT. */
    R.rc[4] = async_read_deadline(R.sv[0], buf, sizeof(buf), 1);
    return close_pair(NULL, NULL);
}

static void test_drained_hint_past_deadline(void **state)
{
    (void)state;
    make_socketpair();
    assert_int_equal(run(drained_past_deadline_body, NULL), 0);
    assert_int_equal(R.rc[0], 2);
    assert_int_equal(R.rc[1], 2);
    assert_int_equal(R.rc[2], 3);
    assert_int_equal(R.rc[3], 3);
    assert_true(R.n[0]);
    assert_int_equal(R.rc[4], ASYNC_ETIMEDOUT);
}

/* ---- bad input and odd fds ------------------------------------------------------------------- */

static int bad_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[4];
    R.rc[0] = async_read(-1, buf, 1);
    R.rc[1] = async_read(R.sv[0], NULL, 1);
    R.rc[2] = async_write(R.sv[0], NULL, 1);
    R.rc[3] = async_accept(R.sv[0], (struct sockaddr *)buf, NULL);
    R.rc[4] = async_connect(R.sv[0], NULL, 0);
    /* A regular file cannot be polled; reading it never has to wait. */
    int f = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    R.rc[5] = async_wait_readable(f, ASYNC_NO_DEADLINE);
    R.rc[6] = async_read(f, buf, sizeof(buf));
    close(f);
    R.rc[7] = async_accept(R.sv[0], NULL, NULL); /* not listening */
    return close_pair(NULL, NULL);
}

static void test_bad_input(void **state)
{
    (void)state;
    make_socketpair();
    assert_int_equal(run(bad_body, NULL), 0);
    assert_int_equal(R.rc[0], ASYNC_EBADF);
    assert_int_equal(R.rc[1], ASYNC_EINVAL);
    assert_int_equal(R.rc[2], ASYNC_EINVAL);
    assert_int_equal(R.rc[3], ASYNC_EINVAL);
    assert_int_equal(R.rc[4], ASYNC_EINVAL);
    assert_int_equal(R.rc[5], ASYNC_EPERM);
    assert_int_equal(R.rc[6], 4);
    assert_int_equal(R.rc[7], ASYNC_EINVAL);
    /* Outside a task. */
    char c;
    assert_int_equal(async_read(R.sv[0], &c, 1), ASYNC_ENOTTASK);
    assert_int_equal(async_write(R.sv[0], &c, 1), ASYNC_ENOTTASK);
    assert_int_equal(async_wait_readable(R.sv[0], 0), ASYNC_ENOTTASK);
    assert_int_equal(async_close(-1), ASYNC_EBADF);
    assert_int_equal(async_set_nonblocking(-1), ASYNC_EBADF);
    assert_int_equal(async_deadline_in(-1), ASYNC_NO_DEADLINE);
    assert_true(async_deadline_in(ASYNC_SEC) > ASYNC_SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_wakes_waiters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_eintr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigpipe_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipe_epipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fairness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drained_hint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drained_hint_past_deadline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
