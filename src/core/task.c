/*
 * Tasks: a future driven by a coroutine, and the suspension points that
 * every wait in libasync goes through (async__task_park / async__task_wake).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/internal.h"
#include "core/objcache.h"

_Thread_local async_task *async__current_task_tls ASYNC__TLS_IE;
#define current_task async__current_task_tls
static atomic_size_t live_tasks;

/* Freed task objects, reused by the next spawn on this thread. */
static _Thread_local async__objcache task_cache ASYNC__TLS_IE =
    ASYNC__OBJCACHE_INIT(64);


async_task *async_current_task(void)
{
    return current_task;
}

size_t async__task_live_count(void)
{
    return atomic_load(&live_tasks);
}

/* ---- park and wake ------------------------------------------------------- */

/* task_interrupt when a cancel is requested or a deadline scope is open. */
static __attribute__((noinline)) int task_interrupt_slow(async_task *t)
{
    if (t->shield)
        return 0;
    if (t->cancel_requested) {
        t->must_cancel = false; /* delivered */
        return ASYNC_ECANCELED;
    }
    if (t->scope_deadline != ASYNC__FOREVER &&
        t->scope_deadline <= async__loop_now(t->fut.loop))
        return ASYNC_ETIMEDOUT;
    return 0;
}

/* Why a suspension point must return at once, or 0.  Shielded code ignores
 * both cancellation and deadline scopes (asyncio.shield protects from
 * asyncio.timeout too, since that is a cancellation).  Inline: two tests
 * when neither is there, the common case, shielded or not. */
static inline int task_interrupt(async_task *t)
{
    if (__builtin_expect(!t->cancel_requested &&
                             t->scope_deadline == ASYNC__FOREVER,
                         1))
        return 0;
    return task_interrupt_slow(t);
}


static void task_timer_fire(async_loop *loop, async__ltimer *timer)
{
    async_task *t = async__container_of(timer, async_task, timer);
    if (!loop->closed)
        async__task_wake(t, ASYNC_ETIMEDOUT);
}

static void task_switch_out(async_task *t);

int async__task_park(async_task *t, uint64_t deadline)
{
    int rc = task_interrupt(t);
    if (rc)
        return rc;
    if (!t->shield && t->scope_deadline < deadline)
        deadline = t->scope_deadline;
    if (deadline != ASYNC__FOREVER) {
        if (deadline <= async__loop_now(t->fut.loop))
            return ASYNC_ETIMEDOUT;
        async__loop_timer_arm(t->fut.loop, &t->timer, deadline);
    }
    t->parked = true;
    t->wake_rc = 0;
    task_switch_out(t);
    t->wait_kind = ASYNC_WAIT_NONE;
    if (deadline != ASYNC__FOREVER)
        async__loop_timer_disarm(t->fut.loop, &t->timer);
    if (t->wake_rc == ASYNC_ECANCELED)
        t->must_cancel = false; /* delivered */
    return t->wake_rc;
}

/* ---- running ---------------------------------------------------------------- */

/* Unlinks a task that will never run again and drops the loop's reference. */
static void task_retire(async_task *t)
{
    async_loop *loop = t->fut.loop;
    async__coro_destroy(&t->coro);
    async__list_remove(&t->link);
    loop->ntasks--;
    async_task_unref(t);
}

/* Body of every task coroutine. */
static void task_main(void *arg)
{
    async_task *t = arg;
    void *result = NULL;
    int rc = t->fn(t->arg, &result);
    if (__builtin_expect(rc != 0, 0)) {
        if (rc > 0)
            rc = ASYNC_EUNKNOWN; /* async_fn returns 0 or a negative code */
    } else if (__builtin_expect(t->must_cancel, 0)) {
        /* asyncio's _must_cancel: a cancel that no suspension point
         * delivered before a plain return still ends the task cancelled. */
        rc = ASYNC_ECANCELED;
    }
    async__future_complete(&t->fut, rc, result);
}

/* Prepares a task popped from the ready queue to run.  False if it was
 * cancelled before its first step: it is then completed and retired here,
 * without its body ever running. */
static bool task_begin(async_task *t)
{
    t->queued = false;
    if (t->started)
        return true;
    t->started = true;
    if (!t->cancel_requested)
        return true;
    async__future_complete(&t->fut, ASYNC_ECANCELED, NULL);
    task_retire(t);
    return false;
}

static void task_run(async__runnable *r, bool drop)
{
    async_task *t = async__container_of(r, async_task, run);
    if (drop) {
        t->queued = false;
        return;
    }
    if (!task_begin(t))
        return;
    async_task *prev = current_task;
    current_task = t;
    /* What comes back may be another task that t transferred to. */
    async__coro *back = async__coro_resume(&t->coro);
    current_task = prev;
    if (back->state == ASYNC__CORO_FINISHED)
        task_retire(async__container_of(back, async_task, coro));
}

struct async_task *async__task_of(async__runnable *r)
{
    return r->run == task_run ? async__container_of(r, async_task, run) : NULL;
}

/* task_switch_out's rare case: the next ready task has not started yet
 * (it may have been cancelled before its first step). */
static __attribute__((noinline)) void task_switch_out_slow(async_task *t,
                                                           async_task *next)
{
    async_loop *loop = t->fut.loop;
    while (!task_begin(next)) {
        async__runnable *r = async__loop_next_ready(loop, task_run);
        if (!r) {
            async__coro_suspend();
            return;
        }
        next = async__container_of(r, async_task, run);
        if (next == t) {
            t->queued = false;
            return;
        }
    }
    current_task = next;
    async__coro_transfer(&t->coro, &next->coro);
}

/*
 * The running task t (parked, or queued again by a yield) gives up the
 * CPU.  If the loop's next step would be to resume another task, switch to
 * it directly: one context switch instead of two through the loop.
 * Otherwise suspend back to the loop.
 */
static void task_switch_out(async_task *t)
{
    async__runnable *r = async__loop_next_ready(t->fut.loop, task_run);
    if (!r) {
        async__coro_suspend();
        return;
    }
    async_task *next = async__container_of(r, async_task, run);
    if (next == t) {
        t->queued = false; /* a yield with nobody else to run */
        return;
    }
    if (!next->started) {
        task_switch_out_slow(t, next);
        return;
    }
    next->queued = false;
    current_task = next;
    async__coro_transfer(&t->coro, &next->coro);
}

/* ---- spawning ----------------------------------------------------------------- */

/* Writes "Task-<id>" (cut to fit, as snprintf would). */
static void task_autoname(char *buf, size_t size, uint64_t id)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    size_t len = 5;
    memcpy(buf, "Task-", len);
    while (n > 0 && len + 1 < size)
        buf[len++] = digits[--n];
    buf[len] = '\0';
}

/* The scalar state of a new task (struct async_task in internal.h: keep
 * this in step with it, in its order, so that the stores merge).  ctx is
 * set by the spawn once the task cannot fail any more. */
static void task_init_fields(async_task *t, async_fn fn, void *arg)
{
    t->fn = fn;
    t->arg = arg;
    t->wake_rc = 0;
    t->parked = false;
    t->queued = false;
    t->cancel_requested = false;
    t->must_cancel = false;
    t->shielding = false;
    t->started = false;
    t->wait_kind = ASYNC_WAIT_NONE;
    t->cancel_count = 0;
    t->shield = 0;
    t->ndeadlines = 0;
    t->fut_waiter = NULL;
    t->deadlines = NULL;
    t->parent = NULL;
    t->spawn_site = NULL;
    t->scope_deadline = ASYNC__FOREVER;
}

int async_loop_spawn(async_loop *loop, async_task **out, async_fn fn,
                     void *arg, const async_task_opts *opts)
{
    if (!loop || !fn)
        return ASYNC_EINVAL;
    if (loop->closed)
        return ASYNC_ECLOSED;
    int rc = async__loop_check_thread(loop);
    if (rc)
        return rc;
    /* No calloc or memset: task_init_fields sets every field that the
     * init functions below do not. */
    async_task *t = async__objcache_get(&task_cache, sizeof(async_task));
    if (!t)
        return ASYNC_ENOMEM;
    task_init_fields(t, fn, arg);
    char *name = NULL;
    if (opts && opts->name && !(name = strdup(opts->name))) {
        async__objcache_put(&task_cache, t);
        return ASYNC_ENOMEM;
    }
    rc = async__coro_init(&t->coro, task_main, t, opts ? opts->stack_size : 0);
    if (rc) {
        free(name);
        async__objcache_put(&task_cache, t);
        return rc;
    }
    async__future_init(&t->fut, loop, true);
    t->ctx = async__context_capture(); /* asyncio copies it at create_task */
    t->run.run = task_run;
    t->timer.fire = task_timer_fire;
    async__timer_init(&t->timer.node);
    async__list_init(&t->waiters);
    /* "Task-N" is formatted only when someone asks for the name. */
    t->coro.id = ++loop->next_task_id;
    t->coro.name = name;
    t->autoname[0] = '\0';
    if (__builtin_expect(loop->debug, 0))
        t->spawn_site = async__debug_spawn_site();
    async__list_push_back(&loop->tasks, &t->link);
    loop->ntasks++;
    atomic_fetch_add(&live_tasks, 1);
    t->queued = true;
    async__loop_schedule(loop, &t->run);
    if (out) {
        t->fut.refs++;
        *out = t;
    }
    return 0;
}

int async_spawn_opts(async_task **out, async_fn fn, void *arg,
                     const async_task_opts *opts)
{
    async_loop *loop = async_get_running_loop();
    if (!fn)
        return ASYNC_EINVAL;
    if (!loop)
        return ASYNC_ENOLOOP;
    return async_loop_spawn(loop, out, fn, arg, opts);
}

int async_spawn(async_task **out, async_fn fn, void *arg)
{
    return async_spawn_opts(out, fn, arg, NULL);
}

/* ---- references and queries ------------------------------------------------------ */

async_task *async_task_ref(async_task *t)
{
    if (t)
        t->fut.refs++;
    return t;
}

void async_task_unref(async_task *t)
{
    if (t)
        async_future_unref(&t->fut);
}

/* What a task may own besides itself: its deadline stack, its name, its
 * context (out of line: most tasks own none). */
static __attribute__((noinline)) void task_free_extras(async_task *t)
{
    free(t->deadlines);
    free((char *)t->coro.name);
    async__context_unref(t->ctx);
}

void async__task_free(async_task *t)
{
    if (__builtin_expect(((uintptr_t)t->deadlines | (uintptr_t)t->coro.name |
                          (uintptr_t)t->ctx) != 0, 0))
        task_free_extras(t);
    async__objcache_put(&task_cache, t);
    atomic_fetch_sub(&live_tasks, 1);
}

async_future *async_task_future(async_task *t)
{
    return t ? &t->fut : NULL;
}

const char *async_task_name(const async_task *t)
{
    if (!t)
        return NULL;
    if (t->coro.name)
        return t->coro.name;
    async_task *mut = (async_task *)t; /* a cache, filled on first use */
    if (!mut->autoname[0])
        task_autoname(mut->autoname, sizeof(mut->autoname), t->coro.id);
    return t->autoname;
}

int async_task_set_name(async_task *t, const char *name)
{
    if (!t || !name)
        return ASYNC_EINVAL;
    char *copy = strdup(name);
    if (!copy)
        return ASYNC_ENOMEM;
    free((char *)t->coro.name);
    t->coro.name = copy;
    return 0;
}

int async_task_await(async_task *t, void **result)
{
    return async_future_await(t ? &t->fut : NULL, result);
}

/* ---- cancellation -------------------------------------------------------------- */

int async_task_cancel(async_task *t)
{
    if (!t)
        return ASYNC_EINVAL;
    int rc = async__loop_check_thread(t->fut.loop);
    if (rc)
        return rc;
    if (t->fut.state != ASYNC__PENDING) {
        t->fut.retrieved = true; /* asyncio: cancel() clears _log_traceback */
        return ASYNC_EDONE;
    }
    t->cancel_requested = true;
    t->cancel_count++;
    t->must_cancel = true;
    if (t->shield)
        return 0; /* delivered after the scope, by a suspension point */
    if (t->parked && t->fut_waiter && !t->shielding)
        async_future_cancel(t->fut_waiter); /* down the await chain: its
                                               completion wakes t */
    else if (t->parked)
        async__task_wake(t, ASYNC_ECANCELED);
    return 0;
}

int async_task_uncancel(async_task *t)
{
    if (!t)
        return ASYNC_EINVAL;
    if (t->cancel_count > 0 && --t->cancel_count == 0) {
        t->cancel_requested = false;
        t->must_cancel = false;
    }
    return (int)t->cancel_count;
}

int async_task_cancelling(const async_task *t)
{
    if (!t)
        return ASYNC_EINVAL;
    return (int)t->cancel_count;
}

int async_shield_enter(void)
{
    async_task *t = current_task;
    if (!t)
        return ASYNC_ENOTTASK;
    t->shield++;
    return 0;
}

int async_shield_leave(void)
{
    async_task *t = current_task;
    if (!t)
        return ASYNC_ENOTTASK;
    if (t->shield == 0)
        return ASYNC_EINVAL;
    t->shield--;
    return 0;
}

/* ---- deadline scopes ----------------------------------------------------------- */

static void task_scope_recompute(async_task *t)
{
    uint64_t min = ASYNC__FOREVER;
    for (unsigned i = 0; i < t->ndeadlines; i++)
        if (t->deadlines[i] < min)
            min = t->deadlines[i];
    t->scope_deadline = min;
}

int async_deadline_push(uint64_t deadline)
{
    async_task *t = current_task;
    if (!t)
        return ASYNC_ENOTTASK;
    if (t->ndeadlines == ASYNC__TASK_MAX_DEADLINES)
        return ASYNC_ENOMEM;
    if (!t->deadlines) {
        t->deadlines = malloc(ASYNC__TASK_MAX_DEADLINES * sizeof(uint64_t));
        if (!t->deadlines)
            return ASYNC_ENOMEM;
    }
    t->deadlines[t->ndeadlines++] = deadline;
    task_scope_recompute(t);
    return 0;
}

int async_deadline_pop(void)
{
    async_task *t = current_task;
    if (!t)
        return ASYNC_ENOTTASK;
    if (t->ndeadlines == 0)
        return ASYNC_EINVAL;
    t->ndeadlines--;
    task_scope_recompute(t);
    return 0;
}

/* ---- yield and sleep --------------------------------------------------------------- */

/* Puts the running task t at the back of the ready queue (not parked: a
 * cancel arriving meanwhile is seen by the next suspension point) and
 * gives up the CPU.  Nothing but a park's wake sets a wake code, so a
 * yield returns 0. */
static inline void task_yield(async_task *t)
{
    t->queued = true;
    async__loop_schedule(t->fut.loop, &t->run);
    task_switch_out(t);
}

/* async_yield with a cancel requested or a deadline scope open. */
static __attribute__((noinline)) int task_yield_checked(async_task *t)
{
    int rc = task_interrupt_slow(t);
    if (rc)
        return rc;
    task_yield(t);
    return 0;
}

/* Aligned to a cache line: its speed otherwise depends on where the edits
 * above it happen to leave it (bench_tasks yield measured 15.7 ns aligned,
 * 17.0 ns at 48 bytes into a line, the instructions being the same).  The
 * rare case is a tail call, so that the common one keeps nothing across
 * the switch and needs no saved registers. */
__attribute__((aligned(64))) int async_yield(void)
{
    async_task *t = current_task;
    if (!t)
        return ASYNC_ENOTTASK;
    if (__builtin_expect(t->cancel_requested ||
                             t->scope_deadline != ASYNC__FOREVER,
                         0))
        return task_yield_checked(t);
    task_yield(t);
    return 0;
}

int async_sleep_until(uint64_t deadline)
{
    async_task *t = current_task;
    if (!t)
        return ASYNC_ENOTTASK;
    if (deadline <= async__loop_now(t->fut.loop))
        return async_yield();
    uint64_t scope = t->shield ? ASYNC__FOREVER : t->scope_deadline;
    async__task_wait_on(t, ASYNC_WAIT_SLEEP, NULL);
    int rc = async__task_park(t, deadline);
    /* Our own deadline passing is the normal end of a sleep; a deadline
     * scope that ends first is a time-out. */
    if (rc == ASYNC_ETIMEDOUT && deadline <= scope)
        rc = 0;
    return rc;
}

int async_sleep(int64_t delay)
{
    async_task *t = current_task;
    if (!t)
        return ASYNC_ENOTTASK;
    if (delay <= 0)
        return async_yield(); /* asyncio: a negative delay is "now" */
    return async_sleep_until(async__loop_now(t->fut.loop) + (uint64_t)delay);
}

/* ---- loop close and async_run --------------------------------------------------- */

/* Frees a task that will never run again (loop close): its stack goes back
 * unwound, so objects on it are lost; async_run avoids this by cancelling
 * and draining tasks first. */
static void task_kill(async_task *t)
{
    if (t->fut.state == ASYNC__PENDING)
        async__loop_report(t->fut.loop, "Task was destroyed but it is pending!",
                           ASYNC_ECANCELED, t, &t->fut);
    async__list *n;
    while ((n = async__list_pop_front(&t->waiters))) {
        async__waiter *w = async__container_of(n, async__waiter, task_link);
        async__list_remove(&w->link);
    }
    async__loop_timer_disarm(t->fut.loop, &t->timer);
    t->parked = false;
    if (t->fut.state == ASYNC__PENDING) {
        t->fut.state = ASYNC__CANCELLED;
        t->fut.error = ASYNC_ECANCELED;
    }
    async__list_init(&t->fut.waiters);
    /* The reference async_future_await took; its frame is gone. */
    async_future *awaited = t->fut_waiter;
    t->fut_waiter = NULL;
    async_future_unref(awaited);
}

void async__tasks_kill_all(async_loop *loop)
{
    async__list *n;
    for (n = loop->tasks.next; n != &loop->tasks; n = n->next)
        task_kill(async__container_of(n, async_task, link));
    while ((n = loop->tasks.next) != &loop->tasks)
        task_retire(async__container_of(n, async_task, link));
}

void async__loop_drain_tasks(async_loop *loop)
{
    while (loop->ntasks > 0) {
        /* Again each turn: tasks born during the drain are cancelled too. */
        for (async__list *n = loop->tasks.next; n != &loop->tasks; n = n->next) {
            async_task *t = async__container_of(n, async_task, link);
            if (!t->cancel_requested)
                async_task_cancel(t);
        }
        /* One iteration with the usual poll timeout, so a shielded
         * cleanup that sleeps or waits for I/O is waited for, not spun on. */
        if (async__loop_run_once(loop) != 0)
            break;
    }
}
