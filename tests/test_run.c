/*
 * async_run (asyncio.run): main's outcome, stray tasks cancelled and freed,
 * nesting refused, Ctrl-C as asyncio.run handles it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <async.h>

#include "child.h"
#include "helpers.h"
#include "core/internal.h"

static th_leaks leaks;

static int setup(void **state)
{
    (void)state;
    th_leaks_begin(&leaks);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    th_leaks_end(&leaks);
    return 0;
}

static int fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_sleep(ASYNC_MSEC);
    return ASYNC_ECONNRESET;
}

/* main's error is async_run's return. */
static void test_main_error(void **state)
{
    (void)state;
    assert_int_equal(async_run(fails, NULL, NULL), ASYNC_ECONNRESET);
    assert_null(async_get_running_loop());
}

static int nested(void *arg, void **result)
{
    (void)result;
    *(int *)arg = async_run(fails, NULL, NULL);
    return 0;
}

/* async_run inside a running loop is refused. */
static void test_nested_refused(void **state)
{
    (void)state;
    int rc = 0;
    assert_int_equal(async_run(nested, &rc, NULL), 0);
    assert_int_equal(rc, ASYNC_EOTHERLOOP);
}

typedef struct strays {
    async_future *never;  /* a future nobody completes */
    int cancelled;        /* strays that saw ECANCELED */
    int cleanup_awaits;   /* shielded cleanup awaits that completed */
    int started;          /* stray_awaits bodies that began */
} strays;

static int stray_awaits(void *arg, void **result)
{
    (void)result;
    strays *s = arg;
    s->started++;
    int rc = async_await(s->never, NULL);
    if (rc == ASYNC_ECANCELED) {
        s->cancelled++;
        async_shield_enter(); /* cleanup may still await */
        if (async_sleep(ASYNC_MSEC) == 0)
            s->cleanup_awaits++;
        async_shield_leave();
    }
    return rc;
}

static int stray_spawns_more(void *arg, void **result)
{
    (void)result;
    strays *s = arg;
    int rc = async_sleep(3600 * ASYNC_SEC);
    if (rc == ASYNC_ECANCELED) {
        s->cancelled++;
        async_spawn(NULL, stray_awaits, s); /* born during the drain */
    }
    return rc;
}

static int main_leaves_strays(void *arg, void **result)
{
    (void)result;
    strays *s = arg;
    int rc = async_future_new(async_get_running_loop(), &s->never);
    if (rc)
        return rc;
    for (int i = 0; i < 4; i++)
        async_spawn(NULL, stray_awaits, s);
    async_spawn(NULL, stray_spawns_more, s);
    return async_sleep(ASYNC_MSEC);
}

/* Stray tasks are cancelled, can clean up, and are freed. */
static void test_strays(void **state)
{
    (void)state;
    strays s = {0};
    assert_int_equal(async_run(main_leaves_strays, &s, NULL), 0);
    /* The task born during the drain is cancelled before its first step,
     * so its body never runs. */
    assert_int_equal(s.started, 4);
    assert_int_equal(s.cancelled, 5);
    assert_int_equal(s.cleanup_awaits, 4);
    async_future_unref(s.never);
}

static int self_cancel(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task_cancel(async_current_task());
    return async_sleep(ASYNC_SEC);
}

/* A cancelled main gives ASYNC_ECANCELED. */
static void test_main_cancelled(void **state)
{
    (void)state;
    assert_int_equal(async_run(self_cancel, NULL, NULL), ASYNC_ECANCELED);
}

/* ---- Ctrl-C (asyncio.Runner's SIGINT handling) -------------------------
 * Each scene runs in a forked child: it sends itself SIGINT, and the last
 * one must be able to kill it. */

static bool sigint_is_default(void)
{
    struct sigaction cur;
    return sigaction(SIGINT, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
           cur.sa_handler == SIG_DFL;
}

static void say(const char *s)
{
    ssize_t n = write(STDERR_FILENO, s, strlen(s));
    (void)n;
}

/* A scene: async_run(main, arg) in a forked child with SIGINT at its
 * default; the child exits 0 if async_run returned `want` and SIGINT is at
 * its default again, 1 otherwise. */
typedef struct scene {
    async_fn main;
    void *arg;
    int want;
} scene;

static void scene_child(void *arg)
{
    const scene *s = arg;
    signal(SIGINT, SIG_DFL);
    int rc = async_run(s->main, s->arg, NULL);
    _exit(rc == s->want && sigint_is_default() ? 0 : 1);
}

static void run_scene(async_fn main_fn, void *arg, int want, th_child *c)
{
    scene s = {main_fn, arg, want};
    assert_int_equal(th_child_run(scene_child, &s, c), 0);
}

static void assert_exited_ok(const th_child *c)
{
    assert_true(WIFEXITED(c->status));
    assert_int_equal(WEXITSTATUS(c->status), 0);
}

static void assert_killed_by_sigint(const th_child *c)
{
    assert_true(WIFSIGNALED(c->status));
    assert_int_equal(WTERMSIG(c->status), SIGINT);
}

static int stray_fn(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if (async_sleep(10 * ASYNC_SEC) == ASYNC_ECANCELED)
        say("[stray cancelled]");
    return 0;
}

static int interrupted_main(void *arg, void **result)
{
    (void)result;
    bool twice = arg != NULL;
    async_task *stray;
    async_spawn(&stray, stray_fn, NULL);
    async_task_unref(stray);
    async_sleep(0); /* the stray has started */
    kill(getpid(), SIGINT);
    int rc = async_sleep(10 * ASYNC_SEC);
    if (rc == ASYNC_ECANCELED)
        say("[main cancelled]");
    if (twice) {
        async_shield_enter();
        kill(getpid(), SIGINT);
        async_sleep(10 * ASYNC_SEC); /* the second Ctrl-C ends the process */
        async_shield_leave();
        say("[survived]");
    }
    return rc;
}

/* asyncio.run: the first Ctrl-C cancels main (its cleanup and the leftover
 * tasks' cancellation run); async_run returns ASYNC_EINTR (asyncio:
 * KeyboardInterrupt) and SIGINT is back at its default.  Ports
 * test_runners' test_interrupt_wait and test_interrupt_cancelled_task. */
static void test_ctrl_c_cancels_main(void **state)
{
    (void)state;
    th_child c;
    run_scene(interrupted_main, NULL, ASYNC_EINTR, &c);
    assert_exited_ok(&c);
    assert_non_null(strstr(c.err, "[main cancelled]"));
    assert_non_null(strstr(c.err, "[stray cancelled]"));
}

/* A second Ctrl-C while main still runs terminates the process as usual. */
static void test_second_ctrl_c_terminates(void **state)
{
    (void)state;
    th_child c;
    run_scene(interrupted_main, "twice", ASYNC_EINTR, &c);
    assert_killed_by_sigint(&c);
    assert_non_null(strstr(c.err, "[main cancelled]"));
    assert_null(strstr(c.err, "[survived]"));
}

static volatile sig_atomic_t own_hits;

static void own_handler(int sig)
{
    (void)sig;
    own_hits++;
}

static int uninterrupted_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    kill(getpid(), SIGINT);
    return async_sleep(20 * ASYNC_MSEC);
}

static void own_handler_child(void *arg)
{
    (void)arg;
    signal(SIGINT, own_handler);
    int rc = async_run(uninterrupted_main, NULL, NULL);
    struct sigaction cur;
    sigaction(SIGINT, NULL, &cur);
    _exit(rc == 0 && own_hits == 1 && cur.sa_handler == own_handler ? 0 : 1);
}

/* A program that handles SIGINT itself keeps its handler: main is not
 * cancelled (asyncio only takes over the default handler). */
static void test_ctrl_c_own_handler_kept(void **state)
{
    (void)state;
    th_child c;
    assert_int_equal(th_child_run(own_handler_child, NULL, &c), 0);
    assert_exited_ok(&c);
}

/* ---- Ctrl-C costs nothing until it comes --------------------------------
 * The handler watches no fd: a loop with none watched keeps skipping the
 * poll and switching tasks directly, and SIGINT still gets through. */

static int yielding_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_loop *loop = async_get_running_loop();
    struct sigaction cur;
    sigaction(SIGINT, NULL, &cur);
    if (cur.sa_handler == SIG_DFL || loop->nwatched != 0) {
        say("[handler missing or an fd watched]");
        return 0;
    }
    kill(getpid(), SIGINT);
    uint64_t give_up = async_loop_time(loop) + 10 * ASYNC_SEC;
    int rc;
    while ((rc = async_sleep(0)) == 0 && async_loop_time(loop) < give_up) {
    }
    if (rc == ASYNC_ECANCELED)
        say("[main cancelled]");
    return rc;
}

/* A main that only yields never makes the loop poll; Ctrl-C reaches it
 * through the flag the iteration checks.  Ports test_interrupt_call_soon. */
static void test_ctrl_c_while_only_yielding(void **state)
{
    (void)state;
    th_child c;
    run_scene(yielding_main, NULL, ASYNC_EINTR, &c);
    assert_exited_ok(&c);
    assert_non_null(strstr(c.err, "[main cancelled]"));
}

static void *raise_later(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    raise(SIGINT); /* delivered to this thread, not the loop's */
    return NULL;
}

static int sleeping_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    pthread_t th;
    if (pthread_create(&th, NULL, raise_later, NULL) != 0)
        return ASYNC_ENOMEM;
    int rc = async_sleep(10 * ASYNC_SEC);
    if (rc == ASYNC_ECANCELED)
        say("[main cancelled]");
    pthread_join(th, NULL); /* it is done: it raised the SIGINT */
    return rc;
}

/* The SIGINT lands on another thread while the loop sleeps in its poll:
 * the backend's wakeup gets the loop to it. */
static void test_ctrl_c_on_another_thread(void **state)
{
    (void)state;
    th_child c;
    run_scene(sleeping_main, NULL, ASYNC_EINTR, &c);
    assert_exited_ok(&c);
    assert_non_null(strstr(c.err, "[main cancelled]"));
}

static int spinning_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    kill(getpid(), SIGINT);
    kill(getpid(), SIGINT);
    /* Never yields: only the handler itself can end the process. */
    for (volatile unsigned long i = 0;; i++) {
    }
    return 0;
}

/* The second Ctrl-C ends the process even when main never yields (the
 * first one waits for the loop, as asyncio's does). */
static void test_second_ctrl_c_stops_a_busy_task(void **state)
{
    (void)state;
    th_child c;
    run_scene(spinning_main, NULL, 0, &c);
    assert_killed_by_sigint(&c);
}

static int disposition_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return sigint_is_default() ? 0 : ASYNC_EINVAL;
}

static void *run_off_main(void *arg)
{
    *(int *)arg = async_run(disposition_main, NULL, NULL);
    return NULL;
}

static void off_main_thread_child(void *arg)
{
    (void)arg;
    signal(SIGINT, SIG_DFL);
    pthread_t th;
    int rc = -1;
    if (pthread_create(&th, NULL, run_off_main, &rc) != 0)
        _exit(2);
    pthread_join(th, NULL);
    _exit(rc == 0 ? 0 : 1);
}

/* Off the main thread async_run leaves SIGINT alone (asyncio.Runner only
 * installs its handler on the main thread).  Ports
 * test_signal_install_not_supported_ok. */
static void test_ctrl_c_only_on_main_thread(void **state)
{
    (void)state;
    th_child c;
    assert_int_equal(th_child_run(off_main_thread_child, NULL, &c), 0);
    assert_exited_ok(&c);
}

static int on_loop_sigint(int signo, void *arg)
{
    (void)signo;
    (void)arg;
    return 0;
}

static int loop_handler_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* Installed over async_run's handler and never removed: the loop's
     * close removes it and puts async_run's back. */
    return async_loop_add_signal_handler(async_get_running_loop(), SIGINT,
                                         on_loop_sigint, NULL);
}

/* However main left SIGINT's loop handlers, async_run returns with the
 * default disposition back. */
static void test_ctrl_c_default_back_after_loop_handler(void **state)
{
    (void)state;
    th_child c;
    run_scene(loop_handler_main, NULL, 0, &c);
    assert_exited_ok(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_main_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_main_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_c_cancels_main, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_ctrl_c_terminates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_c_own_handler_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_c_while_only_yielding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_c_on_another_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_ctrl_c_stops_a_busy_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_c_only_on_main_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_c_default_back_after_loop_handler, setup, teardown),
    };
    return cmocka_run_group_tests_name("run", tests, NULL, NULL);
}
