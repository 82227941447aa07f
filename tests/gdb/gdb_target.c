/*
 * The program tests/gdb/check_gdb.py runs under gdb: tasks parked in known
 * places (a sleep, a lock, a task group, an await), then a breakpoint in
 * dbgt_gdb_ready() where the gdb extension looks at them.
 */
#include <stdio.h>

#include <async.h>

#define NOINLINE __attribute__((noinline))

static async_lock *lock;
static async_task *sleeper;
volatile int dbgt_gdb_sink; /* written after each parking call: no tail call */

NOINLINE int dbgt_gdb_sleep_here(void);
NOINLINE int dbgt_gdb_sleep_here(void)
{
    int rc = async_sleep(1000000000000LL);
    dbgt_gdb_sink = rc;
    return rc;
}

NOINLINE int dbgt_gdb_lock_here(void);
NOINLINE int dbgt_gdb_lock_here(void)
{
    int rc = async_lock_acquire(lock);
    dbgt_gdb_sink = rc;
    return rc;
}

NOINLINE int dbgt_gdb_await_here(void);
NOINLINE int dbgt_gdb_await_here(void)
{
    int rc = async_await(sleeper, NULL);
    dbgt_gdb_sink = rc;
    return rc;
}

static int sleep_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_gdb_sleep_here();
}

static int lock_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_gdb_lock_here();
}

static int await_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return dbgt_gdb_await_here();
}

static int group_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g;
    int rc = async_group_new(&g);
    if (rc)
        return rc;
    async_task_opts o = {.name = "member"};
    rc = async_group_spawn(g, NULL, sleep_body, NULL, &o);
    int wrc = async_group_wait(g);
    async_group_free(g);
    return rc ? rc : wrc;
}

/* gdb stops here. */
NOINLINE void dbgt_gdb_ready(void);
NOINLINE void dbgt_gdb_ready(void)
{
    dbgt_gdb_sink = 1;
}

static int main_body(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const struct {
        const char *name;
        async_fn fn;
    } prog[] = {{"sleeper", sleep_body}, {"locker", lock_body},
                {"awaiter", await_body}, {"grouper", group_body}};
    async_task *t[4];
    int rc = async_lock_acquire(lock);
    for (int i = 0; rc == 0 && i < 4; i++) {
        async_task_opts o = {.name = prog[i].name};
        rc = async_spawn_opts(&t[i], prog[i].fn, NULL, &o);
    }
    if (rc)
        return rc;
    sleeper = t[0];
    for (int i = 0; i < 5; i++)
        async_yield();
    dbgt_gdb_ready();
    for (int i = 0; i < 4; i++) {
        async_task_cancel(t[i]);
        (void)async_await(t[i], NULL);
        async_task_unref(t[i]);
    }
    return async_lock_release(lock);
}

int main(void)
{
    if (async_lock_new(&lock))
        return 1;
    int rc = async_run(main_body, NULL, NULL);
    async_lock_free(lock);
    if (rc)
        fprintf(stderr, "gdb_target: %s\n", async_strerror(rc));
    return rc ? 1 : 0;
}
