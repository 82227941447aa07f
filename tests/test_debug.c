/*
 * Introspection: a known program parks tasks in known places (sleep, lock,
 * event, queue, pipe read, executor job, awaiting a task, gather, task
 * group); the task list, the await graph and the dump (from a task and
 * from a callback) must show each where it is, with the parking function
 * in its backtrace.
 *
 * The parking functions are global, noinline and do something after the
 * call (no tail call), and the executable is linked with -rdynamic: that is
 * what puts their names in the backtraces.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"
#include "core/internal.h"

#define NOINLINE __attribute__((noinline))
#define SEC 1000000000LL

static async_loop *L;
static th_leaks leaks;

typedef struct world {
    async_lock *lock;
    async_event *ev;
    async_queue *q;
    int rpipe[2];   /* "reader" waits on rpipe[0] */
    int jpipe[2];   /* the executor job blocks on jpipe[0] */
    async_task *sleeper;
    async_task *grouper;
} world;

static world W;

typedef struct seen {
    size_t ntasks;
    async_task_info info[32];
    char names[32][32];
    size_t nedges;
    char edges[32][80];   /* "waiter>awaited:kind" */
    char *dump_task;      /* dump taken by main (running) */
    char *dump_cb;        /* dump taken by a callback */
    int dump_rc[2];
    int cleanup_rc;
} seen;

static seen S;
volatile int dbgt_sink; /* written after each parking call: no tail call */

/* ---- the parked program ------------------------------------------------- */

NOINLINE int dbgt_sleep_here(void)
{
    int rc = async_sleep(1000 * SEC);
    dbgt_sink = rc;
    return rc;
}

NOINLINE int dbgt_lock_here(void)
{
    int rc = async_lock_acquire(W.lock);
    dbgt_sink = rc;
    if (rc == 0)
        async_lock_release(W.lock);
    return rc;
}

NOINLINE int dbgt_event_here(void)
{
    int rc = async_event_wait(W.ev);
    dbgt_sink = rc;
    return rc;
}

NOINLINE int dbgt_queue_here(void)
{
    void *item;
    int rc = async_queue_get(W.q, &item);
    dbgt_sink = rc;
    return rc;
}

NOINLINE int dbgt_read_here(void)
{
    char c;
    int rc = (int)async_read(W.rpipe[0], &c, 1);
    dbgt_sink = rc;
    return rc;
}

NOINLINE int dbgt_await_here(void)
{
    int rc = async_await(W.sleeper, NULL);
    dbgt_sink = rc;
    return rc;
}

static int blocking_job(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char c;
    return read(W.jpipe[0], &c, 1) == 1 ? 0 : ASYNC_EFAILED;
}

NOINLINE int dbgt_executor_here(void)
{
    int rc = async_to_thread(blocking_job, NULL, NULL);
    dbgt_sink = rc;
    return rc;
}

static int body_sleep(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_sleep_here();
}

static int body_lock(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_lock_here();
}

static int body_event(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_event_here();
}

static int body_queue(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_queue_here();
}

static int body_read(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_read_here();
}

static int body_await(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_await_here();
}

static int body_executor(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_executor_here();
}

NOINLINE int dbgt_gather_here(void)
{
    async_task *a = NULL, *b = NULL;
    async_task_opts oa = {.name = "gchild-1"}, ob = {.name = "gchild-2"};
    int rc = async_spawn_opts(&a, body_sleep, NULL, &oa);
    if (rc == 0)
        rc = async_spawn_opts(&b, body_sleep, NULL, &ob);
    if (rc == 0) {
        async_future *f[2] = {async_task_future(a), async_task_future(b)};
        rc = async_gather(f, 2, 0, NULL, NULL);
    }
    dbgt_sink = rc;
    async_task_unref(a);
    async_task_unref(b);
    return rc;
}

static int body_gather(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_gather_here();
}

NOINLINE int dbgt_group_here(void)
{
    async_group *g;
    int rc = async_group_new(&g);
    if (rc)
        return rc;
    async_task_opts o1 = {.name = "member-1"}, o2 = {.name = "member-2"};
    rc = async_group_spawn(g, NULL, body_sleep, NULL, &o1);
    if (rc == 0)
        rc = async_group_spawn(g, NULL, body_sleep, NULL, &o2);
    int wrc = async_group_wait(g);
    dbgt_sink = wrc;
    async_group_free(g);
    return rc ? rc : wrc;
}

static int body_group(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_group_here();
}

/* ---- observing ------------------------------------------------------------- */

static char *dump_string(unsigned flags, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    *rc = async_debug_dump(L, f, flags);
    fclose(f);
    return buf;
}

static int dump_from_callback(void *arg)
{
    (void)arg;
    S.dump_cb = dump_string(ASYNC_DUMP_BACKTRACES, &S.dump_rc[1]);
    return 0;
}

NOINLINE void dbgt_observe(void);
NOINLINE void dbgt_observe(void)
{
    async_loop *loop = async_get_running_loop();
    size_t n = 0;
    if (async_loop_tasks(loop, S.info, 32, &n) == 0 && n <= 32) {
        S.ntasks = n;
        for (size_t i = 0; i < n; i++)
            snprintf(S.names[i], sizeof S.names[i], "%s", S.info[i].name);
    }
    async_await_edge e[32];
    if (async_loop_await_graph(loop, e, 32, &n) == 0 && n <= 32) {
        S.nedges = n;
        for (size_t i = 0; i < n; i++)
            snprintf(S.edges[i], sizeof S.edges[i], "%s>%s:%s",
                     async_task_name(e[i].waiter),
                     e[i].awaited_task ? async_task_name(e[i].awaited_task)
                                       : "future",
                     async_wait_kind_name(e[i].kind));
    }
    S.dump_task = dump_string(ASYNC_DUMP_BACKTRACES, &S.dump_rc[0]);
}

typedef struct spawned {
    const char *name;
    async_fn fn;
} spawned;

static const spawned program[] = {
    {"sleeper", body_sleep},   {"locker", body_lock},
    {"eventer", body_event},   {"getter", body_queue},
    {"reader", body_read},     {"awaiter", body_await},
    {"offloader", body_executor}, {"gatherer", body_gather},
    {"grouper", body_group},
};
#define NPROG (sizeof program / sizeof program[0])

static int main_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_task *t[NPROG];
    int rc = async_lock_acquire(W.lock);
    for (size_t i = 0; rc == 0 && i < NPROG; i++) {
        async_task_opts o = {.name = program[i].name};
        rc = async_spawn_opts(&t[i], program[i].fn, NULL, &o);
        if (rc == 0 && i == 0)
            W.sleeper = t[i];
    }
    if (rc)
        return rc;
    /* Let everyone (and the children of gather and group) park. */
    for (int i = 0; i < 10; i++)
        async_yield();
    dbgt_observe();
    async_loop_call_soon(async_get_running_loop(), dump_from_callback, NULL,
                         NULL);
    async_yield();

    /* Clean up: unblock the executor job, cancel everything, await it. */
    S.cleanup_rc = write(W.jpipe[1], "x", 1) == 1 ? 0 : -1;
    async_future *f[NPROG];
    for (size_t i = 0; i < NPROG; i++) {
        async_task_cancel(t[i]);
        f[i] = async_task_future(t[i]);
    }
    async_lock_release(W.lock);
    int errs[NPROG];
    if (async_gather(f, NPROG, ASYNC_GATHER_ALL, NULL, errs) != 0)
        S.cleanup_rc = -1;
    for (size_t i = 0; i < NPROG; i++)
        async_task_unref(t[i]);
    return 0;
}

static const async_task_info *find(const char *name)
{
    for (size_t i = 0; i < S.ntasks; i++)
        if (strcmp(S.names[i], name) == 0)
            return &S.info[i];
    return NULL;
}

static bool has_edge(const char *edge)
{
    for (size_t i = 0; i < S.nedges; i++)
        if (strcmp(S.edges[i], edge) == 0)
            return true;
    return false;
}

/* The line of task `name` in dump, or NULL. */
static const char *dump_line(const char *dump, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\" #", name);
    return strstr(dump, pat);
}

/* True if one of the backtrace lines under task `name`'s line in dump
 * contains needle. */
static bool task_section_has(const char *dump, const char *name,
                             const char *needle)
{
    const char *p = dump_line(dump, name);
    if (!p || !(p = strchr(p, '\n')))
        return false;
    for (p++; *p; ) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *q = p + strspn(p, " ");
        if (*q != '#')
            return false; /* the next task's line */
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)len, p);
        if (strstr(line, needle))
            return true;
        p += len + (eol != NULL);
    }
    return false;
}

/* ---- tests ------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    memset(&S, 0, sizeof S);
    memset(&W, 0, sizeof W);
    th_leaks_begin(&leaks);
    assert_int_equal(async_loop_new(&L), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_loop_free(L), 0);
    free(S.dump_task);
    free(S.dump_cb);
    th_leaks_end(&leaks);
    return 0;
}

static void run_program(void)
{
    assert_int_equal(async_lock_new(&W.lock), 0);
    assert_int_equal(async_event_new(&W.ev), 0);
    assert_int_equal(async_queue_new(&W.q, NULL), 0);
    assert_int_equal(pipe(W.rpipe), 0);
    assert_int_equal(pipe(W.jpipe), 0);
    assert_int_equal(async_set_nonblocking(W.rpipe[0]), 0);
    async_task *m;
    async_task_opts o = {.name = "main"};
    assert_int_equal(async_loop_spawn(L, &m, main_task, NULL, &o), 0);
    assert_int_equal(async_loop_run_until_complete(L, m, NULL), 0);
    async_task_unref(m);
    async_lock_free(W.lock);
    async_event_free(W.ev);
    async_queue_free(W.q);
    for (int i = 0; i < 2; i++) {
        close(W.rpipe[i]);
        close(W.jpipe[i]);
    }
    assert_int_equal(S.cleanup_rc, 0);
}

static void expect_wait(const char *name, async_wait_kind kind)
{
    const async_task_info *ti = find(name);
    if (!ti)
        fail_msg("task %s not listed", name);
    if (ti->state != ASYNC_TASK_SUSPENDED || ti->wait != kind)
        fail_msg("%s: %s on %s, expected suspended on %s", name,
                 async_task_state_name(ti->state),
                 async_wait_kind_name(ti->wait), async_wait_kind_name(kind));
}

static void test_task_list(void **state)
{
    (void)state;
    run_program();
    /* main, 9 spawned, 2 gather children, 2 group members */
    assert_int_equal(S.ntasks, 14);
    const async_task_info *m = find("main");
    assert_non_null(m);
    assert_int_equal(m->state, ASYNC_TASK_RUNNING);
    assert_int_equal(m->wait, ASYNC_WAIT_NONE);
    expect_wait("sleeper", ASYNC_WAIT_SLEEP);
    assert_true(find("sleeper")->deadline != UINT64_MAX);
    expect_wait("locker", ASYNC_WAIT_LOCK);
    assert_ptr_equal(find("locker")->wait_object, W.lock);
    expect_wait("eventer", ASYNC_WAIT_EVENT);
    assert_ptr_equal(find("eventer")->wait_object, W.ev);
    expect_wait("getter", ASYNC_WAIT_QUEUE);
    assert_ptr_equal(find("getter")->wait_object, W.q);
    expect_wait("reader", ASYNC_WAIT_FD_READ);
    assert_int_equal(find("reader")->wait_fd, W.rpipe[0]);
    expect_wait("awaiter", ASYNC_WAIT_TASK);
    assert_ptr_equal(find("awaiter")->wait_object, W.sleeper);
    expect_wait("offloader", ASYNC_WAIT_EXECUTOR);
    expect_wait("gatherer", ASYNC_WAIT_GATHER);
    expect_wait("grouper", ASYNC_WAIT_GROUP);
    expect_wait("member-1", ASYNC_WAIT_SLEEP);
    assert_ptr_equal(find("member-1")->parent, find("grouper")->task);
    assert_null(find("gchild-1")->parent);
    assert_null(find("sleeper")->spawn_site); /* debug mode is off */
}

static void test_await_graph(void **state)
{
    (void)state;
    run_program();
    assert_true(has_edge("awaiter>sleeper:task"));
    assert_true(has_edge("gatherer>gchild-1:gather"));
    assert_true(has_edge("gatherer>gchild-2:gather"));
    assert_true(has_edge("grouper>member-1:group"));
    assert_true(has_edge("grouper>member-2:group"));
    assert_true(has_edge("offloader>future:executor"));
    assert_int_equal(S.nedges, 6);
}

static void check_dump(const char *d)
{
    assert_non_null(d);
    assert_non_null(strstr(d, " tasks"));
    assert_non_null(strstr(d, "\"locker\" #"));
    assert_non_null(strstr(d, "suspended on lock 0x"));
    assert_non_null(strstr(d, "suspended on fd-read"));
    assert_non_null(strstr(d, "suspended on sleep, wakes in"));
    assert_non_null(strstr(d, "suspended on task \"sleeper\""));
    assert_non_null(strstr(d, "suspended on gather of 2 (2 pending)"));
    assert_non_null(strstr(d, "suspended on executor"));
    assert_non_null(strstr(d, "suspended on group"));
    /* group members and gather children sit under their parent */
    assert_non_null(strstr(d, "    `-- \"member-1\""));
    assert_non_null(strstr(d, "    `-- \"gchild-2\""));
    assert_non_null(strstr(d, "    `-- \"sleeper\""));
    /* each task's backtrace shows where it parked */
    static const char *const where[][2] = {
        {"locker", "dbgt_lock_here"},   {"eventer", "dbgt_event_here"},
        {"getter", "dbgt_queue_here"},  {"reader", "dbgt_read_here"},
        {"awaiter", "dbgt_await_here"}, {"offloader", "dbgt_executor_here"},
        {"gatherer", "dbgt_gather_here"}, {"grouper", "dbgt_group_here"},
        {"member-2", "dbgt_sleep_here"},
    };
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++)
        if (!task_section_has(d, where[i][0], where[i][1]))
        {
            fprintf(stderr, "%s", d);
            fail_msg("dump: %s's backtrace lacks %s", where[i][0], where[i][1]);
        }
}

static void test_dump_from_task(void **state)
{
    (void)state;
    run_program();
    assert_int_equal(S.dump_rc[0], 0);
    check_dump(S.dump_task);
    assert_non_null(strstr(S.dump_task, "running \"main\""));
    assert_true(task_section_has(S.dump_task, "main", "dbgt_observe"));
}

static void test_dump_from_callback(void **state)
{
    (void)state;
    run_program();
    assert_int_equal(S.dump_rc[1], 0);
    check_dump(S.dump_cb);
    assert_null(strstr(S.dump_cb, " running"));
}

static void test_bad_input(void **state)
{
    (void)state;
    size_t n = 7;
    async_task_info ti;
    async_await_edge e;
    assert_int_equal(async_loop_tasks(NULL, &ti, 1, &n), ASYNC_EINVAL);
    assert_int_equal(async_loop_tasks(L, NULL, 1, &n), ASYNC_EINVAL);
    assert_int_equal(async_loop_tasks(L, &ti, 1, NULL), ASYNC_EINVAL);
    assert_int_equal(n, 7);
    assert_int_equal(async_loop_await_graph(NULL, &e, 1, &n), ASYNC_EINVAL);
    assert_int_equal(async_loop_await_graph(L, NULL, 1, &n), ASYNC_EINVAL);
    assert_int_equal(async_debug_dump(NULL, stderr, 0), ASYNC_EINVAL);
    assert_int_equal(async_debug_dump(L, NULL, 0), ASYNC_EINVAL);
    assert_int_equal(async_debug_dump_fd(L, -1, 0), ASYNC_EBADF);
    /* an empty loop */
    assert_int_equal(async_loop_tasks(L, NULL, 0, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(async_loop_await_graph(L, NULL, 0, &n), 0);
    assert_int_equal(n, 0);
    assert_string_equal(async_wait_kind_name(ASYNC_WAIT_FD_WRITE), "fd-write");
    assert_string_equal(async_wait_kind_name((async_wait_kind)99), "?");
    assert_string_equal(async_task_state_name(ASYNC_TASK_NEW), "new");
}

/* ---- debug mode ------------------------------------------------------------- */

#define MS 1000000ULL

static void spin_ms(unsigned ms)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ULL + (uint64_t)b.tv_nsec -
               (uint64_t)a.tv_nsec < ms * MS);
}

NOINLINE int dbgt_busy_callback(void *arg);
NOINLINE int dbgt_busy_callback(void *arg)
{
    (void)arg;
    spin_ms(30);
    dbgt_sink = 1;
    return 0;
}

NOINLINE int dbgt_busy_body(void *arg, void **result);
NOINLINE int dbgt_busy_body(void *arg, void **result)
{
    (void)result;
    int rc = async_yield();     /* the next step is resumed here */
    dbgt_sink = rc;
    spin_ms(arg ? 30 : 0);
    return rc;
}

NOINLINE int dbgt_spawner(async_loop *loop, async_task **t, bool busy);
NOINLINE int dbgt_spawner(async_loop *loop, async_task **t, bool busy)
{
    async_task_opts o = {.name = "busy"};
    int rc = async_loop_spawn(loop, t, dbgt_busy_body, busy ? &o : NULL, &o);
    dbgt_sink = rc;
    return rc;
}

static char *debug_out_buf;
static size_t debug_out_len;

static FILE *capture_debug_output(void)
{
    FILE *f = open_memstream(&debug_out_buf, &debug_out_len);
    assert_non_null(f);
    assert_int_equal(async_loop_set_debug_output(L, f), 0);
    return f;
}

static char *end_capture(FILE *f)
{
    assert_int_equal(async_loop_set_debug_output(L, NULL), 0);
    fclose(f);
    char *out = debug_out_buf;
    debug_out_buf = NULL;
    return out;
}

static void test_debug_mode_switch(void **state)
{
    (void)state;
    assert_false(async_loop_get_debug(L));
    assert_int_equal(async_loop_slow_callback_duration(L), 100 * MS);
    assert_int_equal(async_loop_set_debug(L, true), 0);
    assert_true(async_loop_get_debug(L));
    assert_int_equal(async_loop_set_slow_callback_duration(L, 5 * MS), 0);
    assert_int_equal(async_loop_slow_callback_duration(L), 5 * MS);
    assert_int_equal(async_loop_set_debug(NULL, true), ASYNC_EINVAL);
    assert_false(async_loop_get_debug(NULL));
    assert_int_equal(async_loop_set_slow_callback_duration(NULL, 1), ASYNC_EINVAL);
    assert_int_equal(async_loop_set_debug_output(NULL, NULL), ASYNC_EINVAL);
    assert_null(async_task_spawn_site(NULL));
    /* the environment turns it on for new loops */
    async_loop *l2;
    setenv("ASYNC_DEBUG", "1", 1);
    assert_int_equal(async_loop_new(&l2), 0);
    assert_true(async_loop_get_debug(l2));
    assert_int_equal(async_loop_free(l2), 0);
    setenv("ASYNC_DEBUG", "0", 1);
    assert_int_equal(async_loop_new(&l2), 0);
    assert_false(async_loop_get_debug(l2));
    assert_int_equal(async_loop_free(l2), 0);
    unsetenv("ASYNC_DEBUG");
}

static void test_slow_callback(void **state)
{
    (void)state;
    assert_int_equal(async_loop_set_debug(L, true), 0);
    assert_int_equal(async_loop_set_slow_callback_duration(L, 10 * MS), 0);
    FILE *f = capture_debug_output();
    assert_int_equal(async_loop_call_soon(L, dbgt_busy_callback, NULL, NULL), 0);
    async_loop_stop(L);
    assert_int_equal(async_loop_run_forever(L), 0);
    char *out = end_capture(f);
    assert_non_null(strstr(out, "libasync: slow callback ("));
    assert_non_null(strstr(out, "threshold 10.000 ms): dbgt_busy_callback+0x"));
    free(out);
}

static void test_slow_task_step(void **state)
{
    (void)state;
    assert_int_equal(async_loop_set_debug(L, true), 0);
    assert_int_equal(async_loop_set_slow_callback_duration(L, 10 * MS), 0);
    FILE *f = capture_debug_output();
    async_task *t;
    assert_int_equal(dbgt_spawner(L, &t, true), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    async_task_unref(t);
    char *out = end_capture(f);
    /* the first step (up to the yield) is fast; the second is slow */
    assert_null(strstr(out, "(its first step)"));
    assert_non_null(strstr(out, "libasync: slow task step ("));
    assert_non_null(strstr(out, "task \"busy\" #1, spawned at dbgt_spawner+0x"));
    const char *resumed = strstr(out, "resumed at:\n");
    assert_non_null(resumed);
    assert_non_null(strstr(resumed, "dbgt_busy_body+0x"));
    free(out);
}

static void test_fast_steps_not_reported(void **state)
{
    (void)state;
    assert_int_equal(async_loop_set_debug(L, true), 0);
    FILE *f = capture_debug_output();
    async_task *t;
    assert_int_equal(dbgt_spawner(L, &t, false), 0);
    assert_int_equal(async_loop_call_soon(L, dbgt_busy_callback, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    async_task_unref(t);
    char *out = end_capture(f);
    assert_string_equal(out, ""); /* 30 ms < the default 100 ms */
    free(out);
    /* debug mode off: a slow step is not reported */
    assert_int_equal(async_loop_set_debug(L, false), 0);
    assert_int_equal(async_loop_set_slow_callback_duration(L, 1 * MS), 0);
    f = capture_debug_output();
    assert_int_equal(async_loop_call_soon(L, dbgt_busy_callback, NULL, NULL), 0);
    async_loop_stop(L);
    assert_int_equal(async_loop_run_forever(L), 0);
    out = end_capture(f);
    assert_string_equal(out, "");
    free(out);
}

static void test_spawn_site(void **state)
{
    (void)state;
    async_task *t;
    assert_int_equal(dbgt_spawner(L, &t, false), 0);
    assert_null(async_task_spawn_site(t)); /* debug mode off */
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    async_task_unref(t);
    assert_int_equal(async_loop_set_debug(L, true), 0);
    assert_int_equal(dbgt_spawner(L, &t, false), 0);
    void *site = async_task_spawn_site(t);
    assert_non_null(site);
    Dl_info d;
    assert_true(dladdr((char *)site - 1, &d) != 0);
    assert_non_null(d.dli_sname);
    assert_string_equal(d.dli_sname, "dbgt_spawner");
    int rc;
    char *dump = dump_string(0, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(dump, "\"busy\" #2 new, spawned at dbgt_spawner+0x"));
    free(dump);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    async_task_unref(t);
}

static int short_sleep_body(void *arg, void **result);

/* Calls from another thread while the loop runs. */
typedef struct intruder {
    int rc_soon, rc_later, rc_spawn, rc_reader, rc_debug, rc_threadsafe;
    int rc_set_result, rc_set_error, rc_cancel, rc_add_cb, rc_task_cancel;
    async_future *fut;      /* a pending future of the loop */
    async_task *task;       /* a sleeping task of the loop */
    int fd;                 /* written when done */
} intruder;

static void noop_done(async_future *f, void *arg)
{
    (void)f;
    (void)arg;
}

static int noop_cb(void *arg)
{
    (void)arg;
    return 0;
}

static void *intrude(void *arg)
{
    intruder *in = arg;
    in->rc_soon = async_loop_call_soon(L, noop_cb, NULL, NULL);
    in->rc_later = async_loop_call_later(L, 1, noop_cb, NULL, NULL);
    in->rc_spawn = async_loop_spawn(L, NULL, dbgt_busy_body, NULL, NULL);
    in->rc_reader = async_loop_add_reader(L, in->fd, noop_cb, NULL);
    in->rc_debug = async_loop_set_debug(L, false);
    in->rc_threadsafe = async_loop_call_soon_threadsafe(L, noop_cb, NULL);
    in->rc_set_result = async_future_set_result(in->fut, NULL);
    in->rc_set_error = async_future_set_error(in->fut, ASYNC_EFAILED);
    in->rc_cancel = async_future_cancel(in->fut);
    in->rc_add_cb = async_future_add_done_callback(in->fut, noop_done, NULL);
    in->rc_task_cancel = async_task_cancel(in->task);
    ssize_t n = write(in->fd, "x", 1);
    (void)n;
    return NULL;
}

static int host_body(void *arg, void **result)
{
    (void)result;
    intruder *in = arg;
    int p[2];
    if (pipe(p))
        return ASYNC_EFAILED;
    async_set_nonblocking(p[0]);
    in->fd = p[1];
    if (async_future_new(L, &in->fut) ||
        async_loop_spawn(L, &in->task, short_sleep_body, NULL, NULL))
        return ASYNC_EFAILED;
    pthread_t th;
    int rc = pthread_create(&th, NULL, intrude, in) ? ASYNC_EFAILED : 0;
    char c;
    if (rc == 0) {
        rc = (int)async_read(p[0], &c, 1) == 1 ? 0 : ASYNC_EFAILED;
        pthread_join(th, NULL);
    }
    close(p[0]);
    close(p[1]);
    return rc;
}

static void test_wrong_thread(void **state)
{
    (void)state;
    assert_int_equal(async_loop_set_debug(L, true), 0);
    intruder in;
    memset(&in, 0, sizeof in);
    async_task *t;
    assert_int_equal(async_loop_spawn(L, &t, host_body, &in, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    async_task_unref(t);
    assert_int_equal(in.rc_soon, ASYNC_EWRONGTHREAD);
    assert_int_equal(in.rc_later, ASYNC_EWRONGTHREAD);
    assert_int_equal(in.rc_spawn, ASYNC_EWRONGTHREAD);
    assert_int_equal(in.rc_reader, ASYNC_EWRONGTHREAD);
    assert_int_equal(in.rc_debug, ASYNC_EWRONGTHREAD);
    assert_int_equal(in.rc_threadsafe, 0);
    /* A future or task of the loop is not touched from another thread
     * either: nothing changed. */
    assert_int_equal(in.rc_set_result, ASYNC_EWRONGTHREAD);
    assert_int_equal(in.rc_set_error, ASYNC_EWRONGTHREAD);
    assert_int_equal(in.rc_cancel, ASYNC_EWRONGTHREAD);
    assert_int_equal(in.rc_add_cb, ASYNC_EWRONGTHREAD);
    assert_int_equal(in.rc_task_cancel, ASYNC_EWRONGTHREAD);
    assert_false(async_future_done(in.fut));
    assert_int_equal(async_task_cancelling(in.task), 0);
    assert_int_equal(async_loop_run_until_complete(L, in.task, NULL), 0);
    async_task_unref(in.task);
    async_future_unref(in.fut);
    assert_true(async_loop_get_debug(L));
    assert_string_equal(async_err_name(ASYNC_EWRONGTHREAD), "EWRONGTHREAD");
    /* let the threadsafe callback run */
    async_loop_stop(L);
    assert_int_equal(async_loop_run_forever(L), 0);
}

static int signal_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    raise(SIGUSR1);
    /* the dump runs as a loop callback while this task sleeps */
    return dbgt_sleep_here() == 0 ? 0 : ASYNC_EFAILED;
}

static int short_sleep_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = async_sleep(20 * MS);
    dbgt_sink = rc;
    return rc;
}

static void test_dump_on_signal(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(async_debug_dump_on_signal(L, SIGUSR1, p[1]), 0);
    async__loop_use_virtual_clock(L, 0);
    async_task *t, *s;
    async_task_opts o = {.name = "raiser"};
    assert_int_equal(async_loop_spawn(L, &s, short_sleep_body, NULL, NULL), 0);
    assert_int_equal(async_loop_spawn(L, &t, signal_body, NULL, &o), 0);
    (void)s;
    assert_int_equal(async_loop_run_until_complete(L, t, NULL), 0);
    async_task_unref(t);
    async_task_unref(s);
    assert_int_equal(async_debug_dump_on_signal(L, SIGUSR1, -1), 0);
    assert_int_equal(async_debug_dump_on_signal(L, SIGUSR1, -1), ASYNC_ENOENT);
    assert_int_equal(async_debug_dump_on_signal(NULL, SIGUSR1, 1), ASYNC_EINVAL);
    close(p[1]);
    static char buf[65536];
    size_t len = 0;
    ssize_t n;
    while ((n = read(p[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
    assert_non_null(strstr(buf, "\"raiser\" #2 suspended on sleep"));
    assert_true(task_section_has(buf, "raiser", "dbgt_sleep_here"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_task_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_await_graph, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_from_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug_mode_switch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_task_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_steps_not_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spawn_site, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_on_signal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
